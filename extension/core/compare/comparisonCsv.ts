// A comparison's numbers as CSV: one row per (series, block, component), with the difference
// against the first series and Welch's test (empty for the first series itself).
import { PlasticityComparison } from './reportComparison';

export function comparisonToCsv(comparison: PlasticityComparison): string {
  const rows = [
    [
      'series',
      'block',
      'component',
      'mean',
      'std',
      'n',
      'ci95_low',
      'ci95_high',
      'rank',
      'difference',
      'difference_ci95_low',
      'difference_ci95_high',
      't',
      'df',
      'p_welch',
      'mode',
    ],
  ];
  const text = (value: number | null | undefined) => (value === null || value === undefined || !Number.isFinite(value) ? '' : String(value));
  comparison.series.forEach((series, s) => {
    const difference = comparison.differences.find((candidate) => candidate.series === s);
    series.blocks.forEach((block) => {
      for (const component of comparison.components) {
        const stats = block.components[component];
        const cell = difference?.cells.find((candidate) => candidate.block === block.index && candidate.component === component);
        rows.push([
          series.label,
          String(block.index),
          component,
          text(stats.mean),
          text(stats.std),
          String(stats.n),
          text(stats.ci95[0]),
          text(stats.ci95[1]),
          String(series.summary[component].rank),
          text(cell?.difference),
          text(cell?.ci95?.[0]),
          text(cell?.ci95?.[1]),
          text(cell?.t),
          text(cell?.degreesOfFreedom),
          text(cell?.p),
          comparison.mode,
        ]);
      }
    });
  });
  return rows.map((row) => row.map(csvField).join(',')).join('\n') + '\n';
}

function csvField(value: string): string {
  return /[",\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}
