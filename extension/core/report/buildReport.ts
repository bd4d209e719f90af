// Turns per-pair ratios into the report's statistics, ranking and summary.
import { COMPONENTS, ComponentName, VitStructure } from '../vit/vitStructure';
import { BlockReport, ComponentStatistics, ComponentSummary } from './reportSchema';

export interface Statistics {
  mean: number;
  std: number;
  ci95: [number, number];
  n: number;
}

/** Mean, sample standard deviation and normal 95% interval of the mean. */
export function describeSample(values: ArrayLike<number>): Statistics {
  const n = values.length;
  if (n === 0) return { mean: NaN, std: NaN, ci95: [NaN, NaN], n: 0 };
  let sum = 0;
  for (let i = 0; i < n; i++) sum += values[i];
  const mean = sum / n;
  let squares = 0;
  for (let i = 0; i < n; i++) squares += (values[i] - mean) ** 2;
  const std = n > 1 ? Math.sqrt(squares / (n - 1)) : 0;
  return { mean, std, ci95: normalInterval95(mean, std, n), n };
}

/** The report's 95% interval of a mean: mean ± 1.96 std / √n. */
export function normalInterval95(mean: number, std: number, n: number): [number, number] {
  const half = (1.96 * std) / Math.sqrt(n);
  return [mean - half, mean + half];
}

/** Component types, most plastic first (the order of the summary's ranks). */
export function rankingOf(summary: Record<ComponentName, ComponentSummary>): ComponentName[] {
  return [...COMPONENTS].sort((a, b) => summary[a].rank - summary[b].rank);
}

/**
 * The statistics of the union of disjoint samples from each one's mean, std and n alone (the
 * parallel variance formula): equal, up to rounding, to describeSample over all the values.
 */
export function combineStatistics(parts: Pick<Statistics, 'mean' | 'std' | 'n'>[]): Statistics {
  const n = parts.reduce((sum, part) => sum + part.n, 0);
  if (n === 0) return { mean: NaN, std: NaN, ci95: [NaN, NaN], n: 0 };
  const mean = parts.reduce((sum, part) => sum + part.n * part.mean, 0) / n;
  // Sum of squared deviations from the overall mean: each part's own, plus its mean's offset.
  const squares = parts.reduce((sum, part) => sum + (part.n - 1) * part.std ** 2 + part.n * (part.mean - mean) ** 2, 0);
  const std = n > 1 ? Math.sqrt(squares / (n - 1)) : 0;
  return { mean, std, ci95: normalInterval95(mean, std, n), n };
}

/**
 * Per-block statistics from ratios laid out [pair][block * 5 + component index].
 * `perPair` holds only pairs that count (pairs with X = Y are dropped before).
 */
export function blockReports(structure: VitStructure, perPair: Float64Array[]): BlockReport[] {
  const columns = structure.blocks.length * COMPONENTS.length;
  return blockReportsFromStatistics(
    structure,
    Array.from({ length: columns }, (_, column) => describeSample(perPair.map((ratios) => ratios[column]))),
  );
}

/** Per-block statistics from each column's statistics (block-major, as blockReports lays out ratios). */
export function blockReportsFromStatistics(structure: VitStructure, columns: Statistics[]): BlockReport[] {
  return structure.blocks.map((block) => {
    const components = {} as Record<ComponentName, ComponentStatistics>;
    COMPONENTS.forEach((component, c) => {
      components[component] = {
        ...columns[block.index * COMPONENTS.length + c],
        parameters: block.parameters[component],
        parameterCount: block.parameterCounts[component],
      };
    });
    return { index: block.index, module: block.module, modules: block.modules, components };
  });
}

/** Per component type: mean over blocks, rank (1 = most plastic), parameters across blocks. */
export function summarize(blocks: BlockReport[]): Record<ComponentName, ComponentSummary> {
  const means = COMPONENTS.map((component) => blocks.reduce((sum, block) => sum + block.components[component].mean, 0) / blocks.length);
  const order = COMPONENTS.map((_, index) => index).sort((a, b) => means[b] - means[a]);
  const summary = {} as Record<ComponentName, ComponentSummary>;
  COMPONENTS.forEach((component, index) => {
    summary[component] = {
      mean: means[index],
      rank: order.indexOf(index) + 1,
      parameterCount: blocks.reduce((sum, block) => sum + block.components[component].parameterCount, 0),
    };
  });
  return summary;
}
