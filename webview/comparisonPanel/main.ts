// The comparison panel: series of per-block plasticity (reports, or the targets of one
// multi-target report) side by side: the ranking of component types per series, a types × series heatmap, the
// per-block curves of one component with one line per series, and every cell's difference from
// the first series with its interval and Welch p-value; for targets, also which recommendations
// of k component types they agree on. Exports PNG, CSV and JSON.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import type { PointStyle } from 'chart.js';
import type { ComparisonSeries, PlasticityComparison, RecommendationAgreement } from '../../extension/core/compare/reportComparison';
import type { ComponentName } from '../../extension/core/vocabulary';
import type { ComparisonPanelState, ComparisonPanelToHost, HostToComparisonPanel, ShownComparison } from '../../extension/panel/webviewProtocol';
import { bandDatasets, canvasPng, Chart, lineChartAcrossDepth, scaleSwitch, toolbarButton, ValueScale } from '../shared/charts';
import { onThemeChange, ThemeColors, themeColors } from '../shared/theme';
import { customElement, element, vscodeApi } from '../shared/vscodeApi';

const vscode = vscodeApi<ComparisonPanelState, ComparisonPanelToHost>();
const root = document.getElementById('root')!;
let comparison: PlasticityComparison | undefined;
/** Kept in the webview state: the host restores the panel from it after a reload. */
let shown: ShownComparison | undefined = vscode.getState()?.shown;
let scale: ValueScale = vscode.getState()?.scale ?? 'linear';
let component: string | undefined = vscode.getState()?.component;
const charts: Chart[] = [];

/** Lines are told apart by dash and point shape too, never by colour alone. */
const DASHES: number[][] = [[], [8, 4], [2, 3], [10, 3, 2, 3], [4, 4]];
const POINT_STYLES: PointStyle[] = ['circle', 'rect', 'triangle', 'rectRot', 'crossRot'];
const MARKERS = ['●', '■', '▲', '◆', '✕'];

window.addEventListener('message', (event: MessageEvent<HostToComparisonPanel>) => {
  const message = event.data;
  if (message.type === 'showComparison') {
    comparison = message.comparison;
    shown = { comparison: message.comparison, exportsBeside: message.exportsBeside, protectedFiles: message.protectedFiles };
    if (!component || !comparison.components.includes(component as ComponentName)) component = comparison.rankings[0].order[0];
    saveState();
    render();
  }
});
onThemeChange(() => render());
vscode.postMessage({ type: 'ready' });

function saveState(): void {
  vscode.setState({ scale, component, shown });
}

const fixed = (value: number | null | undefined, digits = 3) => (value !== null && value !== undefined && Number.isFinite(value) ? value.toFixed(digits) : '–');
const signed = (value: number | null | undefined, digits = 4) =>
  value === null || value === undefined || !Number.isFinite(value) ? '–' : value >= 0 ? `+${value.toFixed(digits)}` : value.toFixed(digits);
const formatP = (p: number | null) => (p === null ? 'n/a' : p < 1e-12 ? '<1e-12' : p < 0.001 ? p.toExponential(1) : p.toFixed(3));
const seriesStyle = (index: number, colors: ThemeColors) => ({
  color: colors.series[index % colors.series.length],
  dash: DASHES[index % DASHES.length],
  pointStyle: POINT_STYLES[index % POINT_STYLES.length],
  marker: MARKERS[index % MARKERS.length],
});

function render(): void {
  for (const chart of charts.splice(0)) chart.destroy();
  root.replaceChildren();
  if (!comparison) return;
  const colors = themeColors();
  const series = comparison.series;
  const targets = comparison.seriesKind === 'targets';
  const what = targets ? 'target' : 'series';
  root.append(
    element(
      'h1',
      {},
      targets
        ? `Targets of ${series[0].source.modelPath.split(/[\\/]/).pop()}: ${series.map((one) => one.label).join(', ')}`
        : `Comparison: ${series[0].label} vs ${series
            .slice(1)
            .map((one) => one.label)
            .join(', ')}`,
    ),
  );
  if (comparison.mode === 'in-context') {
    root.append(element('div', { class: 'banner info' }, "In-context mode: each component fed what it receives in the forward pass. This is not the paper's measure."));
  }
  root.append(seriesList(comparison, colors));
  root.append(toolbar());
  root.append(element('section', {}, element('h2', {}, 'Ranking of component types'), rankingTable(comparison)));
  root.append(element('section', {}, element('h2', {}, `Plasticity by type and ${what}`), typeHeatmap(comparison)));
  if (comparison.recommendations)
    root.append(element('section', {}, element('h2', {}, 'Do the recommendations agree across targets?'), agreementTable(comparison, comparison.recommendations)));

  const canvas = element('canvas', {
    id: 'curves-chart',
    role: 'img',
    'aria-label': `Plasticity of ${component} across block depth, one line per ${what}, with 95% confidence bands`,
  });
  root.append(element('section', {}, element('h2', {}, 'Across depth'), componentSwitch(comparison), element('div', { class: 'chart' }, canvas)));
  charts.push(curvesChart(canvas, comparison, component as ComponentName, colors));

  for (const difference of comparison.differences) root.append(differenceSection(comparison, difference.series));
  root.append(element('section', {}, element('h2', {}, 'Notes'), element('ul', {}, ...comparison.notes.map((note) => element('li', {}, note)))));
}

function seriesList(comparison: PlasticityComparison, colors: ThemeColors): HTMLElement {
  const table = element('table', { id: 'series', class: 'facts-table' }, element('caption', { class: 'visually-hidden' }, 'The compared series'));
  comparison.series.forEach((one, index) => {
    const style = seriesStyle(index, colors);
    const swatch = element('span', { class: 'swatch', 'aria-hidden': 'true' }, style.marker);
    swatch.style.color = style.color;
    const source = one.source;
    if (source.kind === 'target') {
      const facts = `${source.pairs} pairs · mean input distance ||X−Y|| ${fixed(source.meanInputDistance, 3)} · ${source.folder}`;
      table.append(
        element(
          'tr',
          { 'data-series': String(index) },
          element('th', { scope: 'row' }, swatch, ` ${one.label}${index === 0 ? ' (baseline)' : ''}`),
          element('td', { title: source.folder }, facts),
        ),
      );
      return;
    }
    const facts = `${source.pairs} pairs · model ${source.modelPath.split(/[\\/]/).pop()} (sha256 ${source.sha256.slice(0, 12)}…) · ${new Date(source.createdAt).toLocaleString()}${source.synthetic ? ' · SYNTHETIC inputs' : ''}`;
    table.append(
      element(
        'tr',
        {},
        element('th', { scope: 'row' }, swatch, ` ${one.label}${index === 0 ? ' (baseline)' : ''}`),
        element('td', { title: source.file ?? source.modelPath }, facts),
      ),
    );
  });
  return table;
}

function toolbar(): HTMLElement {
  return element(
    'div',
    { class: 'toolbar', role: 'toolbar', 'aria-label': 'Comparison actions' },
    scaleSwitch(scale, (value) => {
      scale = value;
      saveState();
      render();
    }),
    toolbarButton('export-curves-png', 'Curves PNG', () => {
      const dataUrl = canvasPng('curves-chart');
      if (dataUrl) vscode.postMessage({ type: 'exportPng', chart: `comparison-${component}`, dataUrl });
    }),
    toolbarButton('export-csv', 'Export CSV', () => vscode.postMessage({ type: 'exportCsv' })),
    toolbarButton('export-json', 'Export JSON', () => vscode.postMessage({ type: 'exportJson' })),
  );
}

/** Types in the baseline's order; per series its rank and mean over blocks; Kendall's τ against the baseline. */
function rankingTable(comparison: PlasticityComparison): HTMLElement {
  const series = comparison.series;
  const baselineOrder = comparison.rankings[0].order;
  const table = element(
    'table',
    { id: 'ranking', class: 'heatmap' },
    element(
      'caption',
      {},
      `Rank (1 = most plastic) and mean plasticity over blocks of each component type, per ${comparison.seriesKind === 'targets' ? 'target' : 'series'}; rows in the baseline’s order, changed ranks marked ≠.`,
    ),
    element('thead', {}, element('tr', {}, element('th', { scope: 'col' }, 'Type'), ...series.map((one) => element('th', { scope: 'col' }, one.label)))),
  );
  const body = element('tbody');
  for (const type of baselineOrder) {
    body.append(
      element(
        'tr',
        { 'data-component': type },
        element('th', { scope: 'row' }, type),
        ...series.map((one) => {
          const moved = one.summary[type].rank !== series[0].summary[type].rank;
          return element(
            'td',
            { class: moved ? 'moved' : '' },
            `#${one.summary[type].rank}${moved ? ' ≠' : ''}`,
            element('span', { class: 'interval' }, ` ${fixed(one.summary[type].mean)}`),
          );
        }),
      ),
    );
  }
  body.append(
    element(
      'tr',
      {},
      element('th', { scope: 'row' }, 'Kendall τ'),
      ...comparison.rankings.map((ranking) => element('td', {}, ranking.series === 0 ? '(baseline)' : `${fixed(ranking.kendallTau, 2)}${ranking.sameTop ? '' : ' · top differs'}`)),
    ),
  );
  table.append(body);
  return table;
}

/** Types × series of the mean over blocks: the value printed in each cell, darker when more plastic. */
function typeHeatmap(comparison: PlasticityComparison): HTMLElement {
  const series = comparison.series;
  const values = series.flatMap((one) => comparison.components.map((type) => one.summary[type].mean)).filter((value) => value > 0);
  const [low, high] = [Math.log(Math.min(...values)), Math.log(Math.max(...values))];
  const intensity = (value: number) => (high > low && value > 0 ? (Math.log(value) - low) / (high - low) : 0.5);
  const table = element(
    'table',
    { id: 'type-heatmap', class: 'heatmap' },
    element(
      'caption',
      {},
      `Mean plasticity over blocks per component type (rows) and ${comparison.seriesKind === 'targets' ? 'target' : 'series'} (columns); darker cells are more plastic. Below each value: its difference from the baseline.`,
    ),
    element('thead', {}, element('tr', {}, element('th', { scope: 'col' }, 'Type'), ...series.map((one) => element('th', { scope: 'col' }, one.label)))),
  );
  const body = element('tbody');
  for (const type of comparison.components) {
    const cells = series.map((one, index) => {
      const mean = one.summary[type].mean;
      const difference = index === 0 ? null : comparison.differences.find((candidate) => candidate.series === index)!.typeMeans[type];
      const cell = element(
        'td',
        { 'data-component': type, 'data-series': String(index), title: `${type}, ${one.label}: ${fixed(mean, 4)}` },
        fixed(mean),
        element('span', { class: 'interval' }, difference === null ? ' base' : ` ${signed(difference, 3)}`),
      );
      cell.style.setProperty('--heat', intensity(mean).toFixed(3));
      return cell;
    });
    body.append(element('tr', {}, element('th', { scope: 'row' }, type), ...cells));
  }
  table.append(body);
  return table;
}

function componentSwitch(comparison: PlasticityComparison): HTMLElement {
  const group = customElement(
    'vscode-radio-group',
    { id: 'component', 'aria-label': 'Component drawn across depth' },
    ...comparison.components.map((type) => customElement('vscode-radio', { name: 'component', value: type, label: type, ...(type === component ? { checked: '' } : {}) }, type)),
  );
  group.addEventListener('change', (event) => {
    const value = (event.target as HTMLInputElement).value;
    if (!comparison.components.includes(value as ComponentName) || value === component) return;
    component = value;
    saveState();
    render();
  });
  return element('div', { class: 'toolbar' }, element('span', { class: 'muted' }, 'Component:'), group);
}

function curvesChart(canvas: HTMLCanvasElement, comparison: PlasticityComparison, type: ComponentName, colors: ThemeColors): Chart {
  const labels = comparison.blockIndices.map(String);
  const datasets = comparison.series.flatMap((one: ComparisonSeries, index) => {
    const style = seriesStyle(index, colors);
    const stats = one.blocks.map((block) => block.components[type]);
    return bandDatasets(
      {
        label: one.label,
        color: style.color,
        dash: style.dash,
        pointStyle: style.pointStyle,
        mean: stats.map((s) => s.mean),
        low: stats.map((s) => s.ci95[0]),
        high: stats.map((s) => s.ci95[1]),
      },
      colors,
      scale,
    );
  });
  return lineChartAcrossDepth(canvas, labels, datasets, colors, scale, `${type} plasticity ||f(X)−f(Y)|| / ||X−Y||`);
}

/** Every (block, component) cell of one series against the baseline; p < 0.05 marked in words, not only in colour. */
function differenceSection(comparison: PlasticityComparison, seriesIndex: number): HTMLElement {
  const baseline = comparison.series[0];
  const other = comparison.series[seriesIndex];
  const difference = comparison.differences.find((candidate) => candidate.series === seriesIndex)!;
  const significant = difference.cells.filter((cell) => cell.p !== null && cell.p < 0.05).length;
  const table = element(
    'table',
    { id: `differences-${seriesIndex}`, class: 'heatmap differences' },
    element(
      'caption',
      {},
      `${other.label} − ${baseline.label}: difference of means per cell, its 95% interval and the two-sided Welch p-value. ${significant} of ${difference.cells.length} cells differ at p < 0.05 (marked “p<.05”).`,
    ),
    element(
      'thead',
      {},
      element(
        'tr',
        {},
        ...['Block', 'Component', baseline.label, other.label, 'Difference', '95% interval', 't', 'df', 'p (Welch)'].map((label) => element('th', { scope: 'col' }, label)),
      ),
    ),
  );
  const body = element('tbody');
  for (const cell of difference.cells) {
    const before = baseline.blocks.find((block) => block.index === cell.block)!.components[cell.component].mean;
    const after = other.blocks.find((block) => block.index === cell.block)!.components[cell.component].mean;
    const isSignificant = cell.p !== null && cell.p < 0.05;
    body.append(
      element(
        'tr',
        { 'data-block': String(cell.block), 'data-component': cell.component, class: isSignificant ? 'significant' : '' },
        element('th', { scope: 'row' }, String(cell.block)),
        element('td', {}, cell.component),
        element('td', {}, fixed(before, 4)),
        element('td', {}, fixed(after, 4)),
        element('td', {}, signed(cell.difference)),
        element('td', {}, cell.ci95 ? `[${signed(cell.ci95[0])}, ${signed(cell.ci95[1])}]` : 'n/a'),
        element('td', {}, fixed(cell.t, 2)),
        element('td', {}, fixed(cell.degreesOfFreedom, 1)),
        element('td', {}, formatP(cell.p), isSignificant ? element('span', { class: 'flag' }, ' p<.05') : ''),
      ),
    );
  }
  table.append(body);
  return element('section', {}, element('h2', {}, `Differences: ${other.label} − ${baseline.label}`), table);
}

/** Per budget of k types: each target's own choice, whether they all agree (in words), and the choices across targets by both rules. */
function agreementTable(comparison: PlasticityComparison, agreements: RecommendationAgreement[]): HTMLElement {
  const series = comparison.series;
  const table = element(
    'table',
    { id: 'recommendation-agreement', class: 'heatmap' },
    element(
      'caption',
      {},
      'The k most plastic component types each target alone would finetune, whether all targets agree, and the choice across targets by mean rank and by the worst case (recommend --across, and the report panel’s What to finetune).',
    ),
    element(
      'thead',
      {},
      element(
        'tr',
        {},
        element('th', { scope: 'col' }, 'Types'),
        ...series.map((one) => element('th', { scope: 'col' }, one.label)),
        element('th', { scope: 'col' }, 'Targets'),
        element('th', { scope: 'col' }, 'Mean rank'),
        element('th', { scope: 'col' }, 'Worst case'),
      ),
    ),
  );
  const body = element('tbody');
  for (const agreement of agreements) {
    body.append(
      element(
        'tr',
        { 'data-types': String(agreement.types), class: agreement.agree ? '' : 'moved' },
        element('th', { scope: 'row' }, `k = ${agreement.types}`),
        ...agreement.perSeries.map((types) => element('td', {}, types.join(' + '))),
        element('td', { class: 'agreement' }, agreement.agree ? 'agree' : 'differ ≠'),
        element('td', {}, agreement.meanRank.join(' + ')),
        element('td', {}, agreement.worstCase.join(' + ')),
      ),
    );
  }
  table.append(body);
  return table;
}
