// The model overview editor: what the file is and what discovery found in it.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import type { ModelOverview } from '../../extension/core/report/reportSchema';
import { familySection } from '../shared/familySection';
import type { BoundsMessage, HostToModelOverview, ModelOverviewToHost, ReportHeadline } from '../../extension/panel/webviewProtocol';
import { boundsBeforeMeasuringSection } from '../shared/boundsSection';
import { customElement, element, vscodeApi } from '../shared/vscodeApi';

const vscode = vscodeApi<unknown, ModelOverviewToHost>();
const root = document.getElementById('root')!;
let running: string | undefined;
/** The bounds section's last content: a re-rendered overview (the hash arriving) keeps it. */
let boundsShown: BoundsMessage | undefined;

window.addEventListener('message', (event: MessageEvent<HostToModelOverview>) => {
  const message = event.data;
  if (message.type === 'showOverview') render(message.overview, message.lastReport);
  else if (message.type === 'showBounds' || message.type === 'boundsUnavailable') renderBounds(message);
  else if (message.type === 'overviewError') root.replaceChildren(element('div', { class: 'banner error', role: 'alert' }, message.message));
  else if (message.type === 'analysisState') {
    running = message.running ? (message.message ?? 'running') : undefined;
    const status = document.getElementById('status');
    if (status) status.textContent = running ? `Analysis running: ${running}` : '';
  }
});
vscode.postMessage({ type: 'ready' });

const shape = (dims: (number | string)[]) => `[${dims.join(', ')}]`;
const megabytes = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

function table(rows: [string, string][], label: string): HTMLElement {
  return element(
    'table',
    { class: 'facts-table', 'aria-label': label },
    element('tbody', {}, ...rows.map(([key, value]) => element('tr', {}, element('th', { scope: 'row' }, key), element('td', {}, value)))),
  );
}

function render(overview: ModelOverview, lastReport: ReportHeadline | undefined): void {
  const model = overview.model;
  const name = model.path.split(/[\\/]/).pop() ?? model.path;
  const analyze = customElement('vscode-button', { id: 'analyze' }, 'Analyze Model');
  analyze.addEventListener('click', () => vscode.postMessage({ type: 'analyze' }));
  root.replaceChildren(element('h1', {}, name), element('div', { id: 'status', role: 'status' }, running ? `Analysis running: ${running}` : ''));

  root.append(
    element(
      'section',
      {},
      element('h2', {}, 'File'),
      table(
        [
          ['Size', megabytes(model.sizeBytes)],
          ['Producer', model.producer || 'unknown'],
          ['Opset / IR', `${model.opset} / ${model.irVersion}`],
          ['Parameters', model.parameterCount.toLocaleString()],
          ['Inputs', model.inputs.map((input) => `${input.name} ${shape(input.shape)}`).join(', ')],
          ['Outputs', model.outputs.map((output) => `${output.name} ${shape(output.shape)}`).join(', ')],
          ['SHA-256', model.sha256 ?? '…'],
        ],
        'Model file',
      ),
    ),
  );
  const architecture = overview.architecture;
  if (architecture) {
    root.append(
      element(
        'section',
        {},
        element('h2', {}, 'Vision Transformer found'),
        table(
          [
            ['Blocks', String(architecture.blocks)],
            ['Width', String(architecture.hiddenSize)],
            ['Heads', String(architecture.heads)],
            ['MLP', String(architecture.mlpSize)],
            ['Tokens', architecture.tokens === null ? 'found when run' : String(architecture.tokens)],
            ['Image', architecture.imageSize ? architecture.imageSize.join(' × ') : 'symbolic (set a size)'],
            ['Patch', architecture.patchSize ? architecture.patchSize.join(' × ') : 'unknown'],
            ['Norm', `${architecture.norm}-norm`],
            ['Activation', architecture.activation],
            ['Naming', architecture.naming],
            ...(architecture.graph ? ([['Graph', architecture.graph.summary]] as [string, string][]) : []),
          ],
          'Architecture',
        ),
        element('div', { class: 'toolbar' }, analyze),
      ),
    );
    const family = familySection(architecture);
    if (family) root.append(family);
  } else {
    root.append(element('div', { class: 'banner warning', role: 'alert' }, overview.notVitReason ?? 'No Vision Transformer was found in this model.'));
  }
  if (lastReport) {
    const show = customElement('vscode-button', { id: 'show-report', secondary: '' }, 'Show Report');
    show.addEventListener('click', () => vscode.postMessage({ type: 'showReport' }));
    const ranking = lastReport.ranking.map((entry, index) => `${index + 1}. ${entry.component} ${entry.mean.toFixed(3)}`).join('   ');
    root.append(
      element(
        'section',
        {},
        element('h2', {}, 'Last report'),
        element(
          'p',
          {},
          `${new Date(lastReport.createdAt).toLocaleString()}: ${lastReport.pairs} pairs, ${lastReport.mode} mode${lastReport.synthetic ? ', synthetic inputs' : ''}${lastReport.stale ? ' (out of date: the model changed since)' : ''}`,
        ),
        element('p', { class: 'ranking-line' }, ranking),
        show,
      ),
    );
  }
  root.append(element('p', { class: 'muted' }, `Read in ${overview.timing.readMs.toFixed(0)} ms, discovered in ${overview.timing.discoverMs.toFixed(0)} ms.`));
  // A fresh reading (not yet hashed) is followed by fresh bounds; the hashed one keeps them.
  if (model.sha256 === null) boundsShown = undefined;
  else if (boundsShown) renderBounds(boundsShown);
}

/** The data-free bounds, before any measurement; or why they are missing. */
function renderBounds(shown: BoundsMessage): void {
  boundsShown = shown;
  document.getElementById('bounds')?.remove();
  root.append(boundsBeforeMeasuringSection(shown));
}
