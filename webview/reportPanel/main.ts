// The report panel: plasticity across depth with 95% bands, the ranking of component types with
// each block's value, a sortable heatmap table, the run's facts, and exports. Before the model's
// first report: that nothing is measured yet, an Analyze button and the data-free bounds.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import { ChartDataset } from 'chart.js';
import type { PlasticityReport } from '../../extension/core/report/reportSchema';
import type { ComponentName } from '../../extension/core/vocabulary';
import type { AnalysisStateMessage, BoundsMessage, HostToReportPanel, ReportPanelState, ReportPanelToHost } from '../../extension/panel/webviewProtocol';
import { boundsBeforeMeasuringSection, boundsSection } from '../shared/boundsSection';
import { familySection } from '../shared/familySection';
import { customElement, element, vscodeApi } from '../shared/vscodeApi';
import { BudgetControl } from './budgetControl';
import { onThemeChange, ThemeColors, themeColors } from '../shared/theme';
import { axisOptions, bandDatasets, canvasPng, Chart, lineChartAcrossDepth, scaleSwitch, toolbarButton } from '../shared/charts';

const vscode = vscodeApi<ReportPanelState, ReportPanelToHost>();
const root = document.getElementById('root')!;
let report: PlasticityReport | undefined;
/** No report yet (the pending state): the model, and its bounds once they come. */
let pending: { modelPath: string; bounds?: BoundsMessage } | undefined;
let stale: string | undefined;
let analysis: AnalysisStateMessage | undefined;
let scale: 'linear' | 'log' = vscode.getState()?.scale ?? 'linear';
let sort: { column: 'block' | ComponentName; descending: boolean } = { column: 'block', descending: false };
const charts: Chart[] = [];
const budgetControl = new BudgetControl(
  (message) => vscode.postMessage(message),
  vscode.getState()?.budget,
  () => saveState(),
);
/** The block the Plasticity tree view asked to see; kept so a re-render highlights it again. */
let revealed: { block: number; component?: string } | undefined;

function saveState(): void {
  const modelPath = report?.model.path ?? pending?.modelPath;
  if (modelPath) vscode.setState({ modelPath, scale, budget: budgetControl.current });
}

window.addEventListener('message', (event: MessageEvent<HostToReportPanel>) => {
  const message = event.data;
  switch (message.type) {
    case 'showReport':
      report = message.report;
      pending = undefined;
      stale = message.stale ? 'The model file changed after this report was made.' : undefined;
      saveState();
      render();
      break;
    case 'showPending':
      report = undefined;
      pending = { modelPath: message.modelPath, bounds: pending?.modelPath === message.modelPath ? pending.bounds : undefined };
      saveState();
      render();
      break;
    case 'showBounds':
    case 'boundsUnavailable':
      if (!pending) break;
      pending.bounds = message;
      if (!report) renderPendingBounds();
      break;
    case 'markStale':
      stale = message.reason;
      render();
      break;
    case 'analysisState':
      analysis = message;
      renderStatus();
      break;
    case 'recommendation':
      budgetControl.receive(message.requestId, { preview: message.preview });
      break;
    case 'recommendationError':
      budgetControl.receive(message.requestId, { error: message.message });
      break;
    case 'revealBlock':
      revealed = { block: message.block, component: message.component };
      highlightRevealedBlock(true);
      break;
  }
});
onThemeChange(() => render());
vscode.postMessage({ type: 'ready' });

const fixed = (value: number, digits = 3) => (Number.isFinite(value) ? value.toFixed(digits) : '–');
const fileName = (file: string) => file.split(/[\\/]/).pop() ?? file;

function render(): void {
  for (const chart of charts.splice(0)) chart.destroy();
  root.replaceChildren();
  if (!report) {
    if (pending) renderPending(pending.modelPath);
    return;
  }
  const colors = themeColors();
  const architecture = report.model.architecture;
  const modelName = fileName(report.model.path);

  root.append(element('h1', {}, `Plasticity of ${modelName}`));
  root.append(element('div', { id: 'status', role: 'status' }));
  if (report.settings.inputs.synthetic) {
    root.append(
      element(
        'div',
        { class: 'banner warning', role: 'alert' },
        'Synthetic inputs: these numbers describe the model on generated patterns, not on your data. Set reference and target image folders in the settings and re-run.',
      ),
    );
  }
  if (report.settings.mode === 'in-context') {
    root.append(element('div', { class: 'banner info' }, "In-context mode: each component fed what it receives in the forward pass. This is not the paper's measure."));
  }
  if (stale) {
    const rerun = customElement('vscode-button', { id: 'rerun-stale' }, 'Re-run');
    rerun.addEventListener('click', () => vscode.postMessage({ type: 'rerun' }));
    root.append(element('div', { class: 'banner warning', role: 'alert' }, `Out of date: ${stale} `, rerun));
  }
  root.append(factsSection(report, architecture));
  const family = familySection(architecture);
  if (family) root.append(family);
  root.append(toolbar((report.targets?.length ?? 0) > 1));

  const depthCanvas = element('canvas', { id: 'depth-chart', role: 'img', 'aria-label': 'Plasticity of each component across block depth, with 95% confidence bands' });
  root.append(element('section', {}, element('h2', {}, 'Across depth'), element('div', { class: 'chart' }, depthCanvas)));
  charts.push(depthChart(depthCanvas, report, colors));

  const rankCanvas = element('canvas', { id: 'ranking-chart', role: 'img', 'aria-label': 'Component types ordered by mean plasticity, with the value of every block' });
  root.append(element('section', {}, element('h2', {}, 'Ranking of component types'), rankingList(report), element('div', { class: 'chart short' }, rankCanvas)));
  charts.push(rankingChart(rankCanvas, report, colors));

  root.append(budgetControl.render(report.model.architecture.naming, report.targets && report.targets.length > 1 ? report.targets.map((target) => target.name) : undefined));
  root.append(element('section', {}, element('h2', {}, 'Blocks × components'), heatmapTable(report)));
  if (report.bounds)
    root.append(boundsSection(report.bounds, "Upper bounds on plasticity from the weights (the paper's theory), with token statistics from this run's first pairs."));
  if (report.warnings.length > 0 || report.settings.inputs.notes.length > 0) {
    root.append(
      element('section', {}, element('h2', {}, 'Notes'), element('ul', {}, ...[...report.settings.inputs.notes, ...report.warnings].map((note) => element('li', {}, note)))),
    );
  }
  renderStatus();
  highlightRevealedBlock(false);
}

/** Marks the revealed block's row (and component cell) in the heatmap; scrolls to it when asked. */
function highlightRevealedBlock(scroll: boolean): void {
  for (const node of document.querySelectorAll('#heatmap .revealed')) node.classList.remove('revealed');
  if (!revealed) return;
  const row = document.querySelector<HTMLTableRowElement>(`#heatmap tr[data-block="${revealed.block}"]`);
  if (!row) return;
  row.classList.add('revealed');
  if (revealed.component) row.querySelector(`td[data-component="${CSS.escape(revealed.component)}"]`)?.classList.add('revealed');
  if (scroll) {
    row.scrollIntoView({ block: 'center', behavior: 'smooth' });
    row.focus({ preventScroll: true });
  }
}

/** Nothing measured yet: the model, an Analyze button, the analysis state and the data-free bounds. */
function renderPending(modelPath: string): void {
  const name = fileName(modelPath);
  const analyze = customElement('vscode-button', { id: 'analyze' }, 'Analyze Model');
  analyze.addEventListener('click', () => vscode.postMessage({ type: 'analyze' }));
  root.append(
    element('h1', {}, `Plasticity of ${name}`),
    element('div', { id: 'status', role: 'status' }),
    element(
      'p',
      { id: 'not-measured', class: 'banner info' },
      'Nothing measured yet. Analyze Model measures the plasticity of every block and component on the image pairs the settings name; until then, the data-free upper bounds below are all that is known, and they are bounds, not plasticity.',
    ),
    element('div', { class: 'toolbar' }, analyze),
  );
  renderPendingBounds();
  renderStatus();
}

function renderPendingBounds(): void {
  document.getElementById('bounds')?.remove();
  root.append(boundsBeforeMeasuringSection(pending?.bounds));
}

function renderStatus(): void {
  const status = document.getElementById('status');
  if (status) status.textContent = analysis?.running ? `Analysis running${analysis.message ? `: ${analysis.message}` : '…'}` : (analysis?.message ?? '');
  // One analysis at a time: the pending state's button waits for the run it started.
  document.getElementById('analyze')?.toggleAttribute('disabled', analysis?.running === true);
}

function factsSection(report: PlasticityReport, architecture: PlasticityReport['model']['architecture']): HTMLElement {
  const settings = report.settings;
  const inputs = settings.inputs.synthetic
    ? 'synthetic images (seeded)'
    : settings.inputs.kind === 'split-folder'
      ? `${settings.inputs.reference} split in halves`
      : `${settings.inputs.reference} vs ${settings.inputs.target}`;
  const facts: [string, string][] = [
    ['Mode', settings.mode === 'isolated' ? "isolated (the paper's measure)" : 'in-context (not the paper’s measure)'],
    ['Pairs', String(settings.pairs)],
    ...(report.stopping?.rule === 'until-settled'
      ? ([['Stopped', `after ${report.stopping.pairsMeasured} of at most ${report.stopping.maxPairs} pairs: ${report.stopping.message}`]] as [string, string][])
      : []),
    ['Inputs', inputs],
    ...(report.targets && report.targets.length > 1
      ? ([
          [
            'Targets',
            `${report.targets.length} against the same reference pairs: ${report.targets.map((target) => target.name).join(', ')}; shown here: the first, ${report.targets[0].name} (Compare targets shows all; What to finetune chooses across all)`,
          ],
        ] as [string, string][])
      : []),
    [
      'Provider',
      `${settings.executionProvider.used}${settings.executionProvider.requested !== settings.executionProvider.used ? ` (requested ${settings.executionProvider.requested})` : ''}`,
    ],
    ['Time', `${(report.timing.totalMs / 1000).toFixed(1)} s, ${report.timing.pairsPerSecond.toFixed(2)} pairs/s`],
    [
      'Architecture',
      `${architecture.blocks} blocks, d=${architecture.hiddenSize}, ${architecture.heads} heads, MLP ${architecture.mlpSize}, ${architecture.tokens} tokens, ${architecture.naming} naming`,
    ],
    ...(architecture.graph ? ([['Graph', architecture.graph.summary]] as [string, string][]) : []),
    ['Model SHA-256', report.model.sha256.slice(0, 16) + '…'],
    ['Made', new Date(report.createdAt).toLocaleString()],
  ];
  const list = element('dl', { class: 'facts' });
  for (const [term, value] of facts) list.append(element('dt', {}, term), element('dd', { title: term === 'Model SHA-256' ? report.model.sha256 : value }, value));
  return list;
}

function toolbar(multiTarget: boolean): HTMLElement {
  const scaleGroup = scaleSwitch(scale, (value) => {
    scale = value;
    saveState();
    render();
  });
  return element(
    'div',
    { class: 'toolbar', role: 'toolbar', 'aria-label': 'Report actions' },
    scaleGroup,
    toolbarButton('export-depth-png', 'Depth chart PNG', () => exportPng('depth-chart', 'depth')),
    toolbarButton('export-ranking-png', 'Ranking chart PNG', () => exportPng('ranking-chart', 'ranking')),
    toolbarButton('export-csv', 'Export CSV', () => vscode.postMessage({ type: 'exportCsv' })),
    toolbarButton('export-json', 'Export JSON', () => vscode.postMessage({ type: 'exportJson' })),
    toolbarButton('compare', 'Compare with…', () => vscode.postMessage({ type: 'compare' })),
    ...(multiTarget ? [toolbarButton('compare-targets', 'Compare targets', () => vscode.postMessage({ type: 'compareTargets' }))] : []),
    toolbarButton('rerun', 'Re-run', () => vscode.postMessage({ type: 'rerun' })),
  );
}

function exportPng(canvasId: string, name: string): void {
  const dataUrl = canvasPng(canvasId);
  if (dataUrl) vscode.postMessage({ type: 'exportPng', chart: name, dataUrl });
}

function depthChart(canvas: HTMLCanvasElement, report: PlasticityReport, colors: ThemeColors): Chart {
  const labels = report.blocks.map((block) => String(block.index));
  const datasets: ChartDataset<'line'>[] = [];
  report.components.forEach((component, c) => {
    const stats = report.blocks.map((block) => block.components[component]);
    datasets.push(
      ...bandDatasets(
        { label: component, color: colors.series[c], mean: stats.map((s) => s.mean), low: stats.map((s) => s.ci95[0]), high: stats.map((s) => s.ci95[1]) },
        colors,
        scale,
      ),
    );
  });
  return lineChartAcrossDepth(canvas, labels, datasets, colors, scale, 'plasticity ||f(X)−f(Y)|| / ||X−Y||');
}

function rankedComponents(report: PlasticityReport): ComponentName[] {
  return [...report.components].sort((a, b) => report.summary[a].rank - report.summary[b].rank);
}

function rankingList(report: PlasticityReport): HTMLElement {
  return element(
    'ol',
    { class: 'ranking' },
    ...rankedComponents(report).map((component) => {
      const summary = report.summary[component];
      return element('li', {}, `${component}: mean ${fixed(summary.mean)} over blocks, ${summary.parameterCount.toLocaleString()} parameters`);
    }),
  );
}

function rankingChart(canvas: HTMLCanvasElement, report: PlasticityReport, colors: ThemeColors): Chart {
  const ordered = rankedComponents(report);
  const datasets = ordered.map((component) => {
    const c = report.components.indexOf(component);
    return {
      label: component,
      data: report.blocks.map((block) => ({
        x: ordered.indexOf(component) + (block.index / Math.max(1, report.blocks.length - 1) - 0.5) * 0.5,
        y: block.components[component].mean,
      })),
      backgroundColor: colors.series[c],
      borderColor: colors.series[c],
      pointRadius: 4,
    };
  });
  return new Chart(canvas, {
    type: 'scatter',
    data: { datasets },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      plugins: {
        legend: { display: false },
        tooltip: { callbacks: { label: (item) => `${item.dataset.label} block ${item.dataIndex}: ${fixed(item.parsed.y ?? NaN)}` } },
      },
      scales: {
        x: {
          type: 'linear',
          min: -0.5,
          max: ordered.length - 0.5,
          ticks: { color: colors.foreground, stepSize: 1, callback: (value) => (Number.isInteger(value) ? `${Number(value) + 1}. ${ordered[Number(value)] ?? ''}` : '') },
          grid: { color: colors.grid },
          title: { display: true, text: 'rank (each dot is one block)', color: colors.foreground },
        },
        y: axisOptions(colors, 'plasticity', scale === 'log'),
      },
    },
  });
}

function heatmapTable(report: PlasticityReport): HTMLElement {
  const components = report.components;
  const values = report.blocks.flatMap((block) => components.map((component) => block.components[component].mean)).filter((value) => value > 0);
  const [low, high] = [Math.log(Math.min(...values)), Math.log(Math.max(...values))];
  const intensity = (value: number) => (high > low && value > 0 ? (Math.log(value) - low) / (high - low) : 0.5);
  const rows = [...report.blocks].sort((a, b) => {
    const key = (block: PlasticityReport['blocks'][number]) => (sort.column === 'block' ? block.index : block.components[sort.column].mean);
    return (key(a) - key(b)) * (sort.descending ? -1 : 1);
  });
  const header = (column: 'block' | ComponentName, label: string) => {
    const ariaSort = sort.column === column ? (sort.descending ? 'descending' : 'ascending') : 'none';
    const button = element('button', { class: 'sort', type: 'button', 'data-column': column }, label, sort.column === column ? (sort.descending ? ' ▼' : ' ▲') : '');
    button.addEventListener('click', () => {
      sort = { column, descending: sort.column === column ? !sort.descending : column !== 'block' };
      render();
    });
    return element('th', { scope: 'col', 'aria-sort': ariaSort }, button);
  };
  const table = element(
    'table',
    { id: 'heatmap', class: 'heatmap' },
    element('caption', {}, 'Mean plasticity per block and component, with the 95% interval; darker cells are more plastic. Column headers sort.'),
    element('thead', {}, element('tr', {}, header('block', 'Block'), ...components.map((component) => header(component, component)))),
  );
  const body = element('tbody');
  for (const block of rows) {
    const cells = components.map((component) => {
      const stats = block.components[component];
      const cell = element(
        'td',
        {
          'data-component': component,
          'data-mean': String(stats.mean),
          title: `${block.modules[component]}: ${fixed(stats.mean, 4)} (95% ${fixed(stats.ci95[0], 4)} – ${fixed(stats.ci95[1], 4)}, n=${stats.n})`,
        },
        fixed(stats.mean),
        element('span', { class: 'interval' }, ` ±${fixed((stats.ci95[1] - stats.ci95[0]) / 2, 3)}`),
      );
      cell.style.setProperty('--heat', intensity(stats.mean).toFixed(3));
      return cell;
    });
    body.append(element('tr', { 'data-block': String(block.index), tabindex: '-1' }, element('th', { scope: 'row' }, String(block.index)), ...cells));
  }
  table.append(body);
  return table;
}
