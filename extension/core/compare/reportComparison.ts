// Comparing plasticity between series of per-block measurements of one architecture: reports now
// (two checkpoints, two models, two runs), later the targets of one multi-target report. Every
// series is compared with the first (the baseline): per (block, component) difference of means
// with Welch's test, and the ranking of component types.
import { MeasureMode } from '../report/reportSchema';
import { ComponentName } from '../vocabulary';
import { SampleSummary, welchTest, WelchResult } from './welchTest';

export const COMPARISON_KIND = 'plasticity-lens-comparison';
export const COMPARISON_VERSION = 1;

export interface CellStatistics extends SampleSummary {
  ci95: [number, number];
}

/** What every series says of the report it comes from. */
interface ReportFacts {
  /** The report file, when it was read from one (for a target: the multi-target report's). */
  file: string | null;
  modelPath: string;
  sha256: string;
  createdAt: string;
  pairs: number;
  synthetic: boolean;
}

/** Where a series' numbers come from: a whole report, or one target of a multi-target report. */
export type SeriesSource =
  | ({ kind: 'report' } & ReportFacts)
  | ({
      kind: 'target';
      /** The target's image folder. */
      folder: string;
      /** Mean ||X - Y||_F of its pairs: its shift from the reference. */
      meanInputDistance: number;
    } & ReportFacts);

/** Per budget of k component types: what each target alone would choose, and the choices across targets. */
export interface RecommendationAgreement {
  types: number;
  /** Per series (target), the k types it ranks highest. */
  perSeries: ComponentName[][];
  /** True when every target would choose the same k types. */
  agree: boolean;
  /** The k types chosen across the targets by mean rank and by the worst case. */
  meanRank: ComponentName[];
  worstCase: ComponentName[];
}

/** One line of the comparison: per-block statistics of every component, and their summary. */
export interface ComparisonSeries {
  /** Short and unique among the series: legends, column headers. */
  label: string;
  source: SeriesSource;
  blocks: { index: number; components: Record<ComponentName, CellStatistics> }[];
  /** Per component type: mean over blocks and rank (1 = most plastic). */
  summary: Record<ComponentName, { mean: number; rank: number }>;
}

export interface CellDifference extends WelchResult {
  block: number;
  component: ComponentName;
}

/** One series against the baseline: every (block, component) cell, and each type's mean over blocks. */
export interface SeriesDifference {
  series: number;
  cells: CellDifference[];
  /** Difference of the per-type means over blocks (no test: blocks are not independent samples). */
  typeMeans: Record<ComponentName, number>;
}

export interface RankingAgreement {
  series: number;
  /** Component types, most plastic first. */
  order: ComponentName[];
  /** Kendall's τ between this ranking and the baseline's (1: the same order, −1: reversed). */
  kendallTau: number;
  /** True when the most plastic type is the baseline's. */
  sameTop: boolean;
  /** Types whose rank differs from the baseline's. */
  moved: ComponentName[];
}

export interface PlasticityComparison {
  kind: typeof COMPARISON_KIND;
  version: typeof COMPARISON_VERSION;
  mode: MeasureMode;
  components: ComponentName[];
  blockIndices: number[];
  /** series[0] is the baseline every other series is compared with. */
  series: ComparisonSeries[];
  differences: SeriesDifference[];
  rankings: RankingAgreement[];
  /** How to read the numbers (what the test assumes, inputs that say little about real data). */
  notes: string[];
  /** What the series are: reports, or the targets of one multi-target report. */
  seriesKind?: 'reports' | 'targets';
  /** The targets of one report: which recommendations of k component types they agree on. */
  recommendations?: RecommendationAgreement[];
}

export interface ComparisonInput {
  mode: MeasureMode;
  components: ComponentName[];
  series: ComparisonSeries[];
  notes?: string[];
  seriesKind?: 'reports' | 'targets';
  recommendations?: RecommendationAgreement[];
}

/** Builds the comparison; the series must share blocks and components (checked by the caller, which knows where they come from). */
export function compareSeries(input: ComparisonInput): PlasticityComparison {
  const { components, series } = input;
  const [baseline, ...others] = series;
  const differences = others.map((other, position): SeriesDifference => {
    const cells: CellDifference[] = [];
    baseline.blocks.forEach((block, b) => {
      for (const component of components) {
        cells.push({ block: block.index, component, ...welchTest(block.components[component], other.blocks[b].components[component]) });
      }
    });
    const typeMeans = Object.fromEntries(components.map((component) => [component, other.summary[component].mean - baseline.summary[component].mean])) as Record<
      ComponentName,
      number
    >;
    return { series: position + 1, cells, typeMeans };
  });
  const baselineOrder = rankOrder(baseline, components);
  const rankings = series.map((one, index): RankingAgreement => {
    const order = rankOrder(one, components);
    return {
      series: index,
      order,
      kendallTau: kendallTau(baselineOrder, order),
      sameTop: order[0] === baselineOrder[0],
      moved: components.filter((component) => one.summary[component].rank !== baseline.summary[component].rank),
    };
  });
  const notes = [
    "Differences are each series minus the first. Welch's test treats the two series' pairs as independent samples; p-values are per cell, not adjusted for the number of cells.",
    ...(input.notes ?? []),
  ];
  return {
    kind: COMPARISON_KIND,
    version: COMPARISON_VERSION,
    mode: input.mode,
    components,
    blockIndices: baseline.blocks.map((block) => block.index),
    series,
    differences,
    rankings,
    notes,
    ...(input.seriesKind ? { seriesKind: input.seriesKind } : {}),
    ...(input.recommendations ? { recommendations: input.recommendations } : {}),
  };
}

export function rankOrder(series: ComparisonSeries, components: ComponentName[]): ComponentName[] {
  return [...components].sort((a, b) => series.summary[a].rank - series.summary[b].rank);
}

/** Kendall's τ-a between two orders of the same items. */
export function kendallTau(first: ComponentName[], second: ComponentName[]): number {
  const position = new Map(second.map((item, index) => [item, index]));
  let concordant = 0;
  let discordant = 0;
  for (let i = 0; i < first.length; i++) {
    for (let j = i + 1; j < first.length; j++) {
      if (position.get(first[i])! < position.get(first[j])!) concordant++;
      else discordant++;
    }
  }
  const pairs = (first.length * (first.length - 1)) / 2;
  return pairs === 0 ? 1 : (concordant - discordant) / pairs;
}

/** Labels made unique by numbering repeats: "report.json", "report.json (2)". */
export function uniqueLabels(labels: string[]): string[] {
  const seen = new Map<string, number>();
  return labels.map((label) => {
    const count = (seen.get(label) ?? 0) + 1;
    seen.set(label, count);
    return count === 1 ? label : `${label} (${count})`;
  });
}
