// The report panel's "What to finetune" section: a budget control whose every change asks the
// host for a recommendation (computed there with the core, never here) and shows it live, plus
// the freeze-plan exports. The section is built once per render; answers only replace the preview,
// so typing keeps the focus.
import { FRAMEWORK_NAMINGS } from '../../extension/core/vocabulary';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import type {
  BudgetForm,
  BudgetFormAcross,
  BudgetFormKind,
  BudgetFormNaming,
  BudgetFormUnit,
  PlanExportFormat,
  RecommendationPreview,
  ReportPanelToHost,
} from '../../extension/panel/webviewProtocol';
import { customElement, element } from '../shared/vscodeApi';

export const DEFAULT_BUDGET_FORM: BudgetForm = { kind: 'types', value: '1', unit: 'types', naming: 'detected', includeHead: true };

/** What a budget kind's field starts with when the user switches to it. */
const DEFAULT_VALUE: Record<BudgetFormKind, string> = { types: '1', share: '10', parameters: '1M' };

const KIND_LABELS: Record<BudgetFormKind, string> = {
  types: 'Number of component types',
  share: 'Share of parameters (%)',
  parameters: 'Number of parameters',
};
const VALUE_HINTS: Record<BudgetFormKind, string> = {
  types: 'e.g. 1 or 2: the most plastic types, each in every block',
  share: "e.g. 10: at most 10% of the model's parameters, in block components",
  parameters: 'e.g. 120000, 18k, 28.3M: at most this many block parameters',
};
const UNIT_LABELS: Record<BudgetFormUnit, string> = {
  types: "Component types across all blocks (the paper's protocol)",
  cells: 'Single (block, component) cells',
};
const NAMINGS: BudgetFormNaming[] = ['detected', ...FRAMEWORK_NAMINGS];
const NAMING_LABELS: Record<Exclude<BudgetFormNaming, 'detected'>, string> = {
  timm: 'timm',
  hf: 'Hugging Face ViT (hf)',
  'hf-dinov2': 'Hugging Face DINOv2 (hf-dinov2)',
  'hf-dinov3': 'Hugging Face DINOv3 (hf-dinov3)',
  torchvision: 'torchvision',
  clip: 'OpenAI / OpenCLIP (clip)',
  'hf-clip': 'Hugging Face CLIP (hf-clip)',
  'timm-beit': 'timm BEiT (timm-beit)',
  'hf-beit': 'Hugging Face BEiT (hf-beit)',
  onnx: "The ONNX file's own names (onnx)",
};
const EXPORTS: { format: PlanExportFormat; label: string }[] = [
  { format: 'json', label: 'Freeze plan JSON' },
  { format: 'pytorch', label: 'PyTorch apply(model)' },
  { format: 'peft', label: 'PEFT LoraConfig' },
  { format: 'yaml', label: 'YAML' },
];

const count = (value: number) => value.toLocaleString('en-US');

const ACROSS_LABELS: Record<BudgetFormAcross, string> = {
  'mean-rank': 'Mean rank across targets',
  'worst-case': 'Worst case (worst rank in any target)',
};

export class BudgetControl {
  private form: BudgetForm;
  private requestId = 0;
  private debounce: number | undefined;
  private preview: { requestId: number; preview?: RecommendationPreview; error?: string } | undefined;

  constructor(
    private readonly post: (message: ReportPanelToHost) => void,
    initial: BudgetForm | undefined,
    /** Persists the form through the webview's state. */
    private readonly remember: (form: BudgetForm) => void,
  ) {
    this.form = { ...DEFAULT_BUDGET_FORM, ...initial };
  }

  get current(): BudgetForm {
    return this.form;
  }

  /** The whole section, for a fresh render; asks the host for the preview. `targets`: a multi-target report's target names. */
  render(detectedNaming: string, targets?: string[]): HTMLElement {
    const kind = this.select(
      'budget-kind',
      'Budget kind',
      (Object.keys(KIND_LABELS) as BudgetFormKind[]).map((value) => [value, KIND_LABELS[value]]),
      this.form.kind,
    );
    const valueField = customElement('vscode-textfield', {
      id: 'budget-value',
      'aria-label': KIND_LABELS[this.form.kind],
      value: this.form.value,
      placeholder: VALUE_HINTS[this.form.kind],
    }) as HTMLElement & { value: string };
    const hint = element('span', { id: 'budget-value-hint', class: 'muted' }, VALUE_HINTS[this.form.kind]);
    const unit = this.select(
      'budget-unit',
      'Unit',
      (Object.keys(UNIT_LABELS) as BudgetFormUnit[]).map((value) => [value, UNIT_LABELS[value]]),
      this.form.unit,
    );
    const naming = this.select(
      'budget-naming',
      'Module naming',
      NAMINGS.map((value) => [value, value === 'detected' ? `Detected (${detectedNaming})` : NAMING_LABELS[value]]),
      this.form.naming,
    );
    const includeHead = customElement('vscode-checkbox', {
      id: 'budget-include-head',
      label: 'Train the classification head and final norm (as in the paper)',
      ...(this.form.includeHead ? { checked: '' } : {}),
    }) as HTMLElement & { checked: boolean };

    kind.addEventListener('change', () => {
      const next = (kind as HTMLElement & { value: string }).value as BudgetFormKind;
      if (next === this.form.kind) return;
      // A value typed for one kind rarely means anything for another.
      this.update({ kind: next, value: DEFAULT_VALUE[next], ...(next === 'types' ? { unit: 'types' as const } : {}) }, true);
      valueField.value = this.form.value;
      valueField.setAttribute('aria-label', KIND_LABELS[next]);
      valueField.setAttribute('placeholder', VALUE_HINTS[next]);
      hint.textContent = VALUE_HINTS[next];
      (unit as HTMLElement & { value: string }).value = this.form.unit;
    });
    valueField.addEventListener('input', () => this.update({ value: valueField.value }, false));
    unit.addEventListener('change', () => this.update({ unit: (unit as HTMLElement & { value: string }).value as BudgetFormUnit }, true));
    naming.addEventListener('change', () => this.update({ naming: (naming as HTMLElement & { value: string }).value as BudgetFormNaming }, true));
    includeHead.addEventListener('change', () => this.update({ includeHead: includeHead.checked }, true));
    const across = targets
      ? this.select(
          'budget-across',
          'Choose across targets by',
          (Object.keys(ACROSS_LABELS) as BudgetFormAcross[]).map((value) => [value, ACROSS_LABELS[value]]),
          this.form.across ?? 'mean-rank',
        )
      : undefined;
    across?.addEventListener('change', () => this.update({ across: (across as HTMLElement & { value: string }).value as BudgetFormAcross }, true));

    const field = (label: string, control: HTMLElement, ...extra: HTMLElement[]) =>
      element('div', { class: 'budget-field' }, element('label', { for: control.id }, label), control, ...extra);
    const exports = element(
      'div',
      { class: 'toolbar', role: 'toolbar', 'aria-label': 'Freeze plan exports' },
      ...EXPORTS.map(({ format, label }) => {
        const button = customElement('vscode-button', { id: `export-plan-${format}`, secondary: '' }, label);
        button.addEventListener('click', () => this.post({ type: 'exportPlan', form: this.form, format }));
        return button;
      }),
    );
    const section = element(
      'section',
      { id: 'budget' },
      element('h2', {}, 'What to finetune'),
      element(
        'div',
        { class: 'budget-form', role: 'group', 'aria-label': 'Finetuning budget' },
        field('Budget', kind),
        field('Value', valueField, hint),
        field('Unit', unit),
        field('Naming', naming),
        ...(across ? [field(`Across ${targets!.length} targets`, across)] : []),
        element('div', { class: 'budget-field wide' }, includeHead),
      ),
      element('div', { id: 'recommendation-preview', class: 'preview', 'aria-live': 'polite' }),
      exports,
    );
    // Shown again at once (a re-render keeps the last answer), then refreshed.
    queueMicrotask(() => {
      this.renderPreview();
      this.request();
    });
    return section;
  }

  /** A host answer: shown only when it answers the latest request (typing outruns the host). */
  receive(requestId: number, answer: { preview?: RecommendationPreview; error?: string }): void {
    if (requestId !== this.requestId) return;
    this.preview = { requestId, ...answer };
    this.renderPreview();
  }

  private select(id: string, label: string, options: [string, string][], selected: string): HTMLElement {
    return customElement(
      'vscode-single-select',
      { id, 'aria-label': label },
      ...options.map(([value, text]) => customElement('vscode-option', { value, ...(value === selected ? { selected: '' } : {}) }, text)),
    );
  }

  private update(change: Partial<BudgetForm>, immediately: boolean): void {
    this.form = { ...this.form, ...change };
    if (this.form.kind === 'types' && this.form.unit === 'cells') {
      // The core chooses cells only under a parameter budget; say so rather than guess.
      this.requestId++;
      this.preview = { requestId: this.requestId, error: 'Single (block, component) cells need a parameter budget: choose "Share of parameters" or "Number of parameters".' };
      this.renderPreview();
      this.remember(this.form);
      return;
    }
    this.remember(this.form);
    window.clearTimeout(this.debounce);
    if (immediately) this.request();
    else this.debounce = window.setTimeout(() => this.request(), 150);
  }

  private request(): void {
    this.requestId++;
    document.getElementById('recommendation-preview')?.setAttribute('aria-busy', 'true');
    this.post({ type: 'recommend', requestId: this.requestId, form: this.form });
  }

  private renderPreview(): void {
    const container = document.getElementById('recommendation-preview');
    if (!container) return;
    container.removeAttribute('aria-busy');
    if (!this.preview) {
      container.replaceChildren(element('p', { class: 'muted' }, 'Computing…'));
      return;
    }
    if (this.preview.error !== undefined) {
      container.replaceChildren(element('p', { id: 'recommendation-error', class: 'banner error', role: 'alert' }, this.preview.error));
      return;
    }
    const preview = this.preview.preview!;
    const counts = preview.counts;
    const total =
      counts.trainable === null
        ? `${count(counts.selectedBlockParameters)} block parameters trainable (head and final norm: count unknown) of ${count(counts.model)}`
        : `${count(counts.trainable)} of ${count(counts.model)} parameters trainable (${(100 * counts.trainableShare!).toFixed(2)}%), ${count(counts.selectedBlockParameters)} of them in blocks`;
    const children: HTMLElement[] = [
      ...preview.warnings.map((warning) => element('div', { class: 'banner warning preview-warning', role: 'alert' }, warning)),
      element('p', { id: 'recommendation-summary' }, `Budget: ${preview.budgetDescription}. `, element('strong', {}, total), `. Names: ${preview.namingLabel}.`),
      ...(preview.across ? [acrossSummary(preview.across)] : []),
      element(
        'ol',
        { id: 'recommendation-choices', class: 'choices' },
        ...preview.choices.map((choice) =>
          element(
            'li',
            { value: String(choice.rank), 'data-rank': String(choice.rank) },
            `${choice.label}: plasticity ${choice.plasticity.toFixed(3)}, ${count(choice.parameterCount)} parameters`,
          ),
        ),
      ),
    ];
    if (preview.skipped.length > 0) {
      children.push(element('p', { class: 'muted' }, 'Left out (did not fit): ', preview.skipped.map((option) => `${option.rank}. ${option.label}, ${option.reason}`).join('; ')));
    }
    children.push(
      element(
        'details',
        { id: 'recommendation-modules' },
        element('summary', {}, `Trainable modules (${preview.trainableModules.length})`),
        element('ul', { class: 'modules' }, ...preview.trainableModules.map((module) => element('li', {}, element('code', {}, module)))),
      ),
    );
    for (const note of preview.paperNotes) children.push(element('p', { class: 'banner info paper-note' }, note));
    if (preview.notes.length > 0) children.push(element('ul', { class: 'notes muted' }, ...preview.notes.map((note) => element('li', {}, note))));
    container.replaceChildren(...children);
  }
}

/** The rule that chose across targets, and where they disagree (in words: agreement is never shown by colour alone). */
function acrossSummary(across: NonNullable<RecommendationPreview['across']>): HTMLElement {
  return element(
    'div',
    { id: 'recommendation-across', class: `banner ${across.allAgree ? 'info' : 'warning'}` },
    element('p', {}, across.statement),
    element('p', {}, element('strong', {}, across.allAgree ? `The ${across.targets.length} targets agree: each alone would make this choice.` : 'The targets disagree:')),
    ...(across.disagreements.length > 0 ? [element('ul', {}, ...across.disagreements.map((sentence) => element('li', {}, sentence)))] : []),
  );
}
