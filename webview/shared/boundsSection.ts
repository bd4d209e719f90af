// The paper's data-free upper bounds as a section of a webview (model overview and report
// panel alike): labelled as bounds, never as plasticity.
import type { PlasticityBounds } from '../../extension/core/report/reportSchema';
import type { BoundsMessage } from '../../extension/panel/webviewProtocol';
import { COMPONENTS } from '../../extension/core/vocabulary';
import { element } from './vscodeApi';

const TITLE = 'Data-free upper bounds (not plasticity)';

/** What the bounds are where no measurement has been made (model overview, report panel before its first report). */
export const BEFORE_MEASURING_INTRO = "Upper bounds on plasticity before any measurement (the paper's theory), from the weights and the first inputs an analysis would use.";

const fixed = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : '–');

/** Where r and s_min came from, or why there is no MHA bound. */
function tokenSentence(bounds: PlasticityBounds): string {
  const tokens = bounds.tokens;
  if (!tokens) return bounds.tokensUnavailable ? `No MHA bound: ${bounds.tokensUnavailable}` : 'No MHA bound: it needs token statistics from embedded inputs.';
  const source = tokens.synthetic ? `${tokens.images} synthetic images (set plasticityLens.referenceFolder and targetFolder for yours)` : `${tokens.images} embedded images`;
  return `Token radius r = ${fixed(tokens.radius, 2)} (RMS token norm) and smallest token deviation s_min = ${fixed(tokens.minTokenStd, 3)} from ${source}, n = ${tokens.tokens} tokens.`;
}

/**
 * `intro`: what the section is in its view. `elapsedMs`: how long computing them took, when known.
 */
export function boundsSection(bounds: PlasticityBounds, intro: string, elapsedMs?: number): HTMLElement {
  const method =
    `σ_max for FC1 and FC2's probed rows, max|γ|/s_min for the LayerNorms (max|γ| alone without s_min), and the attention bound. ` +
    `Spectral norms by ${bounds.iterations} ${/power iteration/i.test(bounds.method) ? 'power-iteration' : 'Lanczos'} steps, each approaching σ_max from below (${bounds.lastStepChange > 0 ? `relative change at the last step ${bounds.lastStepChange.toExponential(1)}` : 'the steps span every matrix: exact up to rounding'})` +
    (elapsedMs !== undefined ? `; computed in ${elapsedMs.toFixed(0)} ms.` : '.');
  const body = element(
    'tbody',
    {},
    ...bounds.blocks.map((block) =>
      element(
        'tr',
        {},
        element('th', { scope: 'row' }, String(block.index)),
        ...COMPONENTS.map((component) => element('td', {}, block[component] ? fixed(block[component]!.bound, 3) : '–')),
      ),
    ),
  );
  return element(
    'section',
    { id: 'bounds' },
    element('h2', {}, TITLE),
    element('p', { class: 'muted' }, `${intro} ${method}`),
    element('p', { class: 'muted' }, tokenSentence(bounds)),
    element(
      'table',
      { class: 'heatmap bounds', 'aria-label': 'Data-free upper bounds per block and component' },
      element('thead', {}, element('tr', {}, element('th', { scope: 'col' }, 'Block'), ...COMPONENTS.map((component) => element('th', { scope: 'col' }, `${component} ≤`)))),
      body,
    ),
  );
}

/** The bounds computed before any measurement, or one line saying why they were not (or that they are coming). */
export function boundsBeforeMeasuringSection(message: BoundsMessage | undefined): HTMLElement {
  if (message?.type === 'showBounds') return boundsSection(message.bounds, BEFORE_MEASURING_INTRO, message.elapsedMs);
  const line = message ? `Not computed: ${message.message}` : 'Computing…';
  return element('section', { id: 'bounds' }, element('h2', {}, TITLE), element('p', { class: 'muted' }, line));
}
