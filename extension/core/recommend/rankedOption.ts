// One option a recommendation ranks (a component type, or a single block's component), shared by
// the single-report ranking and the ranking across targets.
import { ComponentName } from '../vocabulary';

export type SelectionUnit = 'types' | 'cells';

export interface RankedOption {
  component: ComponentName;
  /** The block of a cell; null for a component type taken in every block. */
  block: number | null;
  /** Mean plasticity: over blocks for a type, over pairs for a cell. */
  plasticity: number;
  /** The cell's 95% interval; null for a type. */
  ci95: [number, number] | null;
  /** 1 = most plastic. */
  rank: number;
  parameterCount: number;
  selected: boolean;
  /** Why a more plastic option than the last one chosen was left out. */
  skipped?: string;
  /** The paper's figures on this choice, when the paper speaks to it. */
  paperNote: string | null;
  /** Across targets: this option's rank in each target, in the report's target order. */
  targetRanks?: number[];
  /** Across targets: its plasticity in each target (plasticity is their mean). */
  targetPlasticity?: number[];
  meanRank?: number;
  worstRank?: number;
}
