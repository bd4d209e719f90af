// When a run measuring "until settled" may stop: the ranking of component types no longer
// depends on more pairs (adjacent types' 95% intervals are disjoint), or every mean is known to
// a stated relative tolerance. Decided from running statistics after each batch of pairs.
import { COMPONENTS } from '../vit/vitStructure';
import { Statistics } from './buildReport';
import { StopReason } from './reportSchema';

/** Fewest pairs before a run may stop as settled: normal 95% intervals need some pairs to be trusted. */
export const MIN_SETTLED_PAIRS = 32;

export interface SettledRule {
  /** Stop also when every (block, component) mean's 95% half-interval is at most this fraction of the mean. */
  tolerance?: number;
  /** Fewest pairs before stopping (default MIN_SETTLED_PAIRS). */
  minPairs?: number;
}

export type SettledVerdict = { settled: false } | { settled: true; reason: Exclude<StopReason, 'all-pairs' | 'max-pairs'>; message: string };

/**
 * `types`: per component type (COMPONENTS order), the statistics of each pair's mean over
 * blocks (whose mean is the summary's mean); `cells`: per (block, component), block-major.
 */
export function settledVerdict(types: Statistics[], cells: Statistics[], rule: SettledRule): SettledVerdict {
  const n = types[0]?.n ?? 0;
  if (n < (rule.minPairs ?? MIN_SETTLED_PAIRS)) return { settled: false };
  const order = COMPONENTS.map((name, index) => ({ name, ...types[index] })).sort((a, b) => b.mean - a.mean);
  const separated = order.every((entry, i) => i === 0 || order[i - 1].ci95[0] > entry.ci95[1]);
  if (separated) {
    const ranking = order.map((entry) => entry.name).join(' > ');
    return {
      settled: true,
      reason: 'ranking-separated',
      message: `the ranking of component types (${ranking}) is settled after ${n} pairs: the 95% intervals of their means over blocks are disjoint`,
    };
  }
  if (rule.tolerance !== undefined) {
    const worst = largestRelativeHalfInterval(cells);
    if (worst <= rule.tolerance) {
      return {
        settled: true,
        reason: 'tolerance-reached',
        message: `every (block, component) mean is known to ${formatShare(rule.tolerance)} after ${n} pairs (largest 95% half-interval ${formatShare(worst)} of its mean)`,
      };
    }
  }
  return { settled: false };
}

/**
 * Several targets measured against one reference: the run may stop once every target's own
 * verdict is settled. The reason is the tolerance's when any target needed it.
 */
export function everyTargetSettled(verdicts: { name: string; verdict: SettledVerdict }[]): SettledVerdict {
  const settled: { name: string; reason: Exclude<StopReason, 'all-pairs' | 'max-pairs'>; message: string }[] = [];
  for (const { name, verdict } of verdicts) {
    if (!verdict.settled) return { settled: false };
    settled.push({ name, reason: verdict.reason, message: verdict.message });
  }
  if (settled.length === 0) return { settled: false };
  return {
    settled: true,
    reason: settled.some((entry) => entry.reason === 'tolerance-reached') ? 'tolerance-reached' : 'ranking-separated',
    message: `every target is settled: ${settled.map((entry) => `${entry.name}: ${entry.message}`).join('; ')}`,
  };
}

/** The largest 95% half-interval of the cells, relative to the cell's mean (Infinity for a zero mean with spread). */
export function largestRelativeHalfInterval(cells: Statistics[]): number {
  let worst = 0;
  for (const cell of cells) {
    const half = (cell.ci95[1] - cell.ci95[0]) / 2;
    if (half === 0) continue;
    worst = Math.max(worst, Math.abs(cell.mean) > 0 ? half / Math.abs(cell.mean) : Infinity);
  }
  return worst;
}

function formatShare(value: number): string {
  return `${Number((value * 100).toPrecision(2))}%`;
}
