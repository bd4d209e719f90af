// The readable comparison the command line prints: the series, the ranking of component types
// side by side, then each series' per-cell differences against the first.
import { PlasticityComparison } from '../core/compare/reportComparison';

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

const signed = (value: number, digits = 4) => (value >= 0 ? `+${value.toFixed(digits)}` : value.toFixed(digits));

/** p-values as people read them: 3 significant digits, "<1e-12" below that. */
export function formatP(p: number | null): string {
  if (p === null) return 'n/a';
  if (p < 1e-12) return '<1e-12';
  return p < 0.001 ? p.toExponential(1) : p.toFixed(3);
}

export function formatComparisonTable(comparison: PlasticityComparison): string {
  const lines: string[] = [];
  const series = comparison.series;
  const labelWidth = Math.max(...series.map((one) => one.label.length));
  lines.push(`Mode      ${comparison.mode === 'isolated' ? "isolated (the paper's measure)" : "in-context (not the paper's measure)"}`);
  series.forEach((one, index) => {
    const source = one.source;
    const role = index === 0 ? 'baseline' : `vs ${series[0].label}`;
    if (source.kind === 'target') {
      lines.push(
        `${index === 0 ? 'Targets' : ''}`.padEnd(10) +
          `${pad(one.label, labelWidth)}  ${source.pairs} pairs, mean ||X-Y|| ${source.meanInputDistance.toFixed(3)}, ${source.folder}  (${role})`,
      );
      return;
    }
    lines.push(
      `${index === 0 ? 'Reports' : ''}`.padEnd(10) +
        `${pad(one.label, labelWidth)}  ${source.pairs} pairs, model sha256 ${source.sha256.slice(0, 12)}…, ${source.createdAt}${source.synthetic ? ', SYNTHETIC inputs' : ''}  (${role})`,
    );
  });
  lines.push('');
  if (comparison.recommendations) {
    lines.push('Recommendations of k component types: what each target alone would choose, and across targets');
    for (const agreement of comparison.recommendations) {
      const perSeries = agreement.perSeries.map((types, index) => `${series[index].label} ${types.join('+')}`).join('; ');
      lines.push(
        `  k=${agreement.types}  ${agreement.agree ? 'agree' : 'differ'}: ${perSeries}; mean rank ${agreement.meanRank.join('+')}, worst case ${agreement.worstCase.join('+')}`,
      );
    }
    lines.push('');
  }

  const column = Math.max(14, labelWidth + 2);
  lines.push('Ranking of component types (rank, mean over blocks; 1 = most plastic)');
  lines.push(pad('type', 6) + series.map((one) => pad(one.label, column, true)).join(''));
  const baselineOrder = comparison.rankings[0].order;
  for (const component of baselineOrder) {
    lines.push(pad(component, 6) + series.map((one) => pad(`${one.summary[component].rank}  ${one.summary[component].mean.toFixed(3)}`, column, true)).join(''));
  }
  lines.push(pad('τ', 6) + comparison.rankings.map((ranking) => pad(`Kendall ${ranking.kendallTau.toFixed(2)}`, column, true)).join(''));
  for (const ranking of comparison.rankings.slice(1)) {
    const label = series[ranking.series].label;
    lines.push(
      ranking.moved.length === 0
        ? `  ${label}: same ranking as ${series[0].label}`
        : `  ${label}: ${ranking.order.join(' > ')}${ranking.sameTop ? '' : `; most plastic type differs (${ranking.order[0]} vs ${baselineOrder[0]})`}`,
    );
  }

  for (const difference of comparison.differences) {
    const other = series[difference.series];
    lines.push('');
    lines.push(`${other.label} − ${series[0].label} per block: difference of means, 95% interval (Welch), p (two-sided Welch t-test)`);
    lines.push(
      pad('block', 6) +
        pad('comp', 5) +
        pad(series[0].label.slice(0, 10), 11, true) +
        pad(other.label.slice(0, 10), 11, true) +
        pad('difference', 12, true) +
        pad('95% interval', 24, true) +
        pad('t', 8, true) +
        pad('df', 7, true) +
        pad('p', 9, true),
    );
    for (const cell of difference.cells) {
      const before = series[0].blocks.find((block) => block.index === cell.block)!.components[cell.component].mean;
      const after = other.blocks.find((block) => block.index === cell.block)!.components[cell.component].mean;
      const interval = cell.ci95 ? `[${signed(cell.ci95[0])}, ${signed(cell.ci95[1])}]` : 'n/a';
      const marker = cell.p !== null && cell.p < 0.05 ? ' *' : '';
      lines.push(
        pad(String(cell.block), 6) +
          pad(cell.component, 5) +
          pad(before.toFixed(4), 11, true) +
          pad(after.toFixed(4), 11, true) +
          pad(signed(cell.difference), 12, true) +
          pad(interval, 24, true) +
          pad(cell.t === null ? 'n/a' : cell.t.toFixed(2), 8, true) +
          pad(cell.degreesOfFreedom === null ? 'n/a' : cell.degreesOfFreedom.toFixed(1), 7, true) +
          pad(formatP(cell.p), 9, true) +
          marker,
      );
    }
    const significant = difference.cells.filter((cell) => cell.p !== null && cell.p < 0.05).length;
    lines.push(
      `  ${significant} of ${difference.cells.length} cells differ at p < 0.05 (marked *); type means: ${comparison.components.map((component) => `${component} ${signed(difference.typeMeans[component], 3)}`).join(', ')}`,
    );
  }
  lines.push('');
  for (const note of comparison.notes) lines.push(`Note      ${note}`);
  return lines.join('\n');
}
