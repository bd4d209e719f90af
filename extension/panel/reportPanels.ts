// Report panels: one per model, beside the model file, titled by its file name; restored after
// a reload from the stored report; marked stale when the model file changes. Before a model's
// first report its panel shows that nothing is measured yet, with the data-free bounds.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { UsageError } from '../core/errors';
import { exportFreezePlan } from '../core/recommend/planExports';
import { reportToCsv } from '../core/report/reportCsv';
import { PlasticityReport } from '../core/report/reportSchema';
import { AnalysisService } from '../analysis/analysisService';
import { ReportStore } from '../analysis/reportStore';
import { boundsMessage } from './boundsMessage';
import { saveExport } from './exportFile';
import { PLAN_EXPORT_FILES, planFromForm, previewOfPlan } from './budgetForm';
import { ModelFileParameters } from './modelFileParameters';
import { webviewHtml, webviewOptions } from './webviewHtml';
import { WebviewStarts } from './webviewStarts';
import { AnalysisStateMessage, BoundsMessage, BudgetForm, HostToReportPanel, ReportPanelState, ReportPanelToHost } from './webviewProtocol';

export const REPORT_PANEL_VIEW_TYPE = 'plasticityLens.report';

/** True when `file` exists (a restored panel of a deleted model with no report is not brought back). */
async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(
    () => true,
    () => false,
  );
}

/**
 * What a report panel shows. Every change goes through `enter`, which posts it; `replay` posts it
 * again when the webview (re)loads, so a restored or reloaded webview always shows the state.
 * - loading: adopted, the stored report not read yet;
 * - pending: no report: nothing measured yet, with the data-free bounds once they come;
 * - report: a report, possibly out of date (the model changed since).
 */
type PanelContent = { kind: 'loading' } | { kind: 'pending'; bounds?: BoundsMessage } | { kind: 'report'; report: PlasticityReport; staleReason?: string };

class ReportPanel implements vscode.Disposable {
  private content: PanelContent = { kind: 'loading' };
  private disposed = false;
  /** The pending state's bounds are asked once per panel; the answer is kept in the state. */
  private boundsAsked = false;
  /** The model's last analysis state (progress, or why the last run ended without a report). */
  private analysisState: AnalysisStateMessage | undefined;
  /** Counts what the panel was told to show, so a slow read of the store never replaces something newer. */
  shown = 0;
  /** The worker's answer about the shown report's model file (head and final-norm parameters). */
  private modelFile: ModelFileParameters | undefined;
  /** The webview's latest preview request, answered again when the model file's answer comes. */
  private lastPreview: { requestId: number; form: BudgetForm } | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    readonly panel: vscode.WebviewPanel,
    readonly model: vscode.Uri,
    private readonly owner: ReportPanels,
  ) {
    panel.iconPath = vscode.Uri.joinPath(owner.extensionUri, 'media', 'icon.svg');
    panel.webview.options = webviewOptions(owner.extensionUri);
    panel.webview.html = webviewHtml(panel.webview, owner.extensionUri, 'reportPanel', panel.title);
    this.disposables.push(panel.webview.onDidReceiveMessage((message: ReportPanelToHost) => void this.handle(message)));
    const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(path.dirname(model.fsPath)), path.basename(model.fsPath)));
    this.disposables.push(
      watcher,
      watcher.onDidChange(() => this.modelChanged()),
      watcher.onDidDelete(() => this.modelChanged('The model file was deleted.')),
    );
  }

  /** The report shown, if any. */
  private get report(): PlasticityReport | undefined {
    return this.content.kind === 'report' ? this.content.report : undefined;
  }

  private enter(content: PanelContent): void {
    this.content = content;
    this.replay();
  }

  /**
   * Posts the state. Done on every change and again on 'ready': VS Code queues messages for a
   * loading webview, and a 'ready' sent while a restored panel was still being handed to us
   * would otherwise be lost.
   */
  private replay(): void {
    const content = this.content;
    if (content.kind === 'report') {
      this.post({ type: 'showReport', report: content.report, stale: content.staleReason !== undefined });
      if (content.staleReason !== undefined) this.post({ type: 'markStale', reason: content.staleReason });
    } else if (content.kind === 'pending') {
      this.post({ type: 'showPending', modelPath: this.model.fsPath });
      if (content.bounds) this.post(content.bounds);
    }
    if (this.analysisState) this.post(this.analysisState);
    else if (this.owner.service.isRunning(this.model)) this.post({ type: 'analysisState', running: true });
  }

  show(report: PlasticityReport): void {
    this.shown++;
    this.enter({ kind: 'report', report });
    this.owner.reportShown.fire(this.model);
    this.askModelFile(report);
  }

  /**
   * Nothing measured yet: the model's name, an Analyze button, the analysis state and the
   * data-free bounds, asked of the worker once; the panel renders at once and the bounds follow.
   */
  showPending(): void {
    if (this.disposed || this.content.kind === 'report') return;
    this.shown++;
    if (this.content.kind !== 'pending') this.enter({ kind: 'pending' });
    if (this.boundsAsked) return;
    this.boundsAsked = true;
    void boundsMessage(() => this.owner.service.bounds(this.model)).then((bounds) => {
      if (this.content.kind !== 'pending') return;
      // Only the new part is posted: the pending view is already shown.
      this.content = { kind: 'pending', bounds };
      this.post(bounds);
    });
  }

  /** The model's analysis started, progressed or stopped (with the reason when it made no report). */
  setAnalysisState(running: boolean, message?: string): void {
    this.analysisState = { type: 'analysisState', running, message };
    this.post(this.analysisState);
  }

  /**
   * Asks the worker, once per report, for the head and final-norm parameters in the model file.
   * The preview does not wait: it shows the framework's alternatives until the answer comes, then
   * the latest preview request is answered again with the exact names and counts.
   */
  private askModelFile(report: PlasticityReport): void {
    if (this.modelFile?.isFor(report)) return;
    const asked = new ModelFileParameters(
      report,
      this.model.fsPath,
      (modules) => this.owner.service.moduleParameters(this.model, modules),
      (error) => this.owner.log.appendLine(`Reading the head and final norm of ${this.model.fsPath} failed: ${(error as Error).stack ?? String(error)}`),
    );
    this.modelFile = asked;
    void asked.answered.then(() => {
      if (this.modelFile === asked && this.report && this.lastPreview) void this.preview(this.lastPreview.requestId, this.lastPreview.form);
    });
  }

  post(message: HostToReportPanel): void {
    if (this.disposed) return;
    void this.panel.webview.postMessage(message);
  }

  /** Marks the shown report out of date and offers to re-run it. */
  modelChanged(reason = 'The model file changed after this report was made.'): void {
    if (this.content.kind !== 'report' || this.content.staleReason !== undefined) return;
    // Only the mark is posted: the report is already shown (and its budget form keeps its input).
    this.content = { ...this.content, staleReason: reason };
    this.post({ type: 'markStale', reason });
    const rerun = 'Re-run Analysis';
    void vscode.window.showInformationMessage(`Plasticity Lens: ${path.basename(this.model.fsPath)} changed; its report is out of date.`, rerun).then((choice) => {
      if (choice === rerun) void this.owner.service.analyze(this.model);
    });
  }

  private async handle(message: ReportPanelToHost): Promise<void> {
    switch (message.type) {
      case 'ready':
        this.replay();
        break;
      case 'analyze':
      case 'rerun':
        await this.owner.service.analyze(this.model);
        break;
      case 'exportPng':
        await this.save(`${message.chart}.png`, { 'PNG image': ['png'] }, Buffer.from(message.dataUrl.replace(/^data:image\/png;base64,/, ''), 'base64'));
        break;
      case 'exportCsv':
        if (this.report) await this.save('plasticity.csv', { CSV: ['csv'] }, Buffer.from(reportToCsv(this.report)));
        break;
      case 'exportJson':
        if (this.report) await this.save('plasticity.json', { JSON: ['json'] }, Buffer.from(`${JSON.stringify(this.report, null, 2)}\n`));
        break;
      case 'recommend':
        await this.preview(message.requestId, message.form);
        break;
      case 'exportPlan':
        await this.exportPlan(message.form, message.format);
        break;
      case 'compare':
        await vscode.commands.executeCommand('plasticityLens.compareWith', this.model);
        break;
      case 'compareTargets':
        await vscode.commands.executeCommand('plasticityLens.compareTargets', this.model);
        break;
    }
  }

  /** Computes the recommendation for the form with the core and posts the preview (or the reason there is none). */
  private async preview(requestId: number, form: BudgetForm): Promise<void> {
    const report = this.report;
    if (!report) return;
    this.lastPreview = { requestId, form };
    try {
      const plan = planFromForm(report, form, this.modelFile?.isFor(report) ? this.modelFile.now() : {});
      this.post({ type: 'recommendation', requestId, preview: previewOfPlan(plan) });
    } catch (error) {
      this.post({ type: 'recommendationError', requestId, message: this.sentenceFor(error) });
    }
  }

  private async exportPlan(form: BudgetForm, format: keyof typeof PLAN_EXPORT_FILES): Promise<void> {
    const report = this.report;
    if (!report) return;
    let text: string;
    try {
      // An export made before the model file's answer waits for it (a few seconds at most).
      const fromModel = this.modelFile?.isFor(report) ? await this.modelFile.forExport() : {};
      text = exportFreezePlan(planFromForm(report, form, fromModel), format);
    } catch (error) {
      void vscode.window.showErrorMessage(`Plasticity Lens: ${this.sentenceFor(error)}`);
      return;
    }
    const { suffix, filters } = PLAN_EXPORT_FILES[format];
    const saved = await this.save(suffix, filters, Buffer.from(text), true);
    if (saved) this.owner.planExported.fire(vscode.Uri.file(saved));
  }

  private sentenceFor(error: unknown): string {
    if (error instanceof UsageError) return error.message;
    this.owner.log.appendLine(`Recommendation failed: ${(error as Error).stack ?? String(error)}`);
    return `The recommendation could not be computed (${(error as Error).message.split('\n')[0]}); see the Plasticity Lens output.`;
  }

  /** Scrolls the table to a block (from the Plasticity tree view). */
  revealBlock(block: number, component?: string): void {
    this.post({ type: 'revealBlock', block, component });
  }

  /** Asks where to save (next to the model by default); never overwrites the model, nor a report with a plan. */
  private save(suffix: string, filters: Record<string, string[]>, content: Buffer, protectReports = false): Promise<string | undefined> {
    return saveExport({ besideFile: this.model.fsPath, suffix, filters, content, protectReports });
  }

  dispose(): void {
    this.disposed = true;
    for (const disposable of this.disposables) disposable.dispose();
  }
}

export class ReportPanels implements vscode.WebviewPanelSerializer<ReportPanelState>, vscode.Disposable {
  private readonly panels = new Map<string, ReportPanel>();
  private readonly disposables: vscode.Disposable[] = [];
  /** Fired by a panel when it shows a report (its model), and when it has written a freeze plan (the file). */
  readonly reportShown = new vscode.EventEmitter<vscode.Uri>();
  readonly planExported = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidShowReport = this.reportShown.event;
  readonly onDidExportPlan = this.planExported.event;

  constructor(
    readonly extensionUri: vscode.Uri,
    readonly service: AnalysisService,
    private readonly store: ReportStore,
    readonly log: vscode.OutputChannel,
    private readonly starts: WebviewStarts,
  ) {
    this.disposables.push(
      this.reportShown,
      this.planExported,
      // A model analysed without a panel gets one at once: its bounds and progress while it measures.
      service.onDidStart((model) => !this.panels.has(model.fsPath) && void this.open(model)),
      // A finished run updates its panel where it is: the user who moved on to another editor
      // meanwhile keeps it in front (the panel's tab shows the result); a closed panel reopens.
      service.onDidFinish(({ model, report }) => {
        const panel = this.panels.get(model.fsPath);
        if (panel) panel.show(report);
        else void this.open(model, report);
      }),
      service.onDidChangeState(({ model, running, message }) => this.panels.get(model.fsPath)?.setAnalysisState(running, message)),
    );
  }

  /**
   * Shows the report panel of `model` beside its editor: with `report`, else the stored one, else
   * the pending state (nothing measured yet, the data-free bounds, an Analyze button).
   */
  async open(model: vscode.Uri, report?: PlasticityReport): Promise<void> {
    // Created before anything is awaited, so two calls at once make one panel.
    let panel = this.panels.get(model.fsPath);
    if (panel) {
      panel.panel.reveal(undefined, true);
    } else {
      const webviewPanel = vscode.window.createWebviewPanel(
        REPORT_PANEL_VIEW_TYPE,
        `Plasticity: ${path.basename(model.fsPath)}`,
        { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
        { retainContextWhenHidden: false },
      );
      panel = this.adopt(webviewPanel, model);
    }
    if (report) panel.show(report);
    else await this.showStored(panel);
  }

  /**
   * The stored report (checked for staleness once the file is hashed), else the pending state;
   * `missing` is what to do when there is no report and the model file is gone.
   */
  private async showStored(panel: ReportPanel, missing: 'pending' | 'dispose' = 'pending'): Promise<void> {
    const asked = panel.shown;
    const stored = await this.store.latest(panel.model.fsPath);
    const keep = stored !== undefined || missing === 'pending' || (await exists(panel.model.fsPath));
    if (panel.shown !== asked) return; // a report arrived meanwhile
    if (stored) {
      panel.show(stored);
      this.checkStale(panel, stored);
    } else if (keep) {
      panel.showPending();
    } else {
      panel.panel.dispose();
    }
  }

  /** Shows the model's report and scrolls its table to `block` (the Plasticity tree view's block items). */
  async revealBlock(model: vscode.Uri, block: number, component?: string): Promise<void> {
    await this.open(model);
    this.panels.get(model.fsPath)?.revealBlock(block, component);
  }

  async deserializeWebviewPanel(webviewPanel: vscode.WebviewPanel, state: ReportPanelState | undefined): Promise<void> {
    if (!state?.modelPath) {
      this.log.appendLine(`The report panel "${webviewPanel.title}" kept no model to restore; it is closed.`);
      webviewPanel.dispose();
      return;
    }
    this.log.appendLine(`Restoring the report panel of ${state.modelPath}.`);
    // Without a report the panel comes back in its pending state, unless the model is gone.
    const turn = this.starts.turn(webviewPanel);
    await Promise.all([this.showStored(this.adopt(webviewPanel, vscode.Uri.file(state.modelPath)), 'dispose'), turn]);
  }

  private adopt(webviewPanel: vscode.WebviewPanel, model: vscode.Uri): ReportPanel {
    const panel = new ReportPanel(webviewPanel, model, this);
    this.panels.set(model.fsPath, panel);
    webviewPanel.onDidDispose(() => {
      panel.dispose();
      if (this.panels.get(model.fsPath) === panel) this.panels.delete(model.fsPath);
    });
    return panel;
  }

  /** A stored report is shown at once; meanwhile the worker hashes the model to see whether it changed. */
  private checkStale(panel: ReportPanel, report: PlasticityReport): void {
    this.service.hash(panel.model).then(
      (sha256) => sha256 !== report.model.sha256 && panel.modelChanged(),
      () => panel.modelChanged('The model file can no longer be read.'),
    );
  }

  dispose(): void {
    for (const panel of this.panels.values()) panel.dispose();
    for (const disposable of this.disposables) disposable.dispose();
  }
}
