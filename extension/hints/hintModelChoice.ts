// Which analysed model the inline hints speak about: the one picked in the status bar (kept in
// workspace state), else the only analysed one, else the most recently analysed. Reports are read
// from the store once, when hints are first needed, and then kept current from finished analyses.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { PlasticityReport } from '../core/report/reportSchema';
import { ReportStore } from '../analysis/reportStore';
import { buildModuleIndex, ModuleIndex } from './moduleMatcher';

const PICKED_MODEL_KEY = 'plasticityLens.hints.model';
export const CHOOSE_HINT_MODEL_COMMAND = 'plasticityLens.chooseHintModel';

export interface HintSource {
  modelPath: string;
  report: PlasticityReport;
  index: ModuleIndex;
}

export class HintModelChoice implements vscode.Disposable {
  private readonly reports = new Map<string, PlasticityReport>();
  private loading: Promise<void> | undefined;
  private source: HintSource | undefined;
  private readonly statusBar: vscode.StatusBarItem;
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires when the chosen model or its report changes. */
  readonly onDidChange = this.changed.event;

  constructor(
    private readonly workspaceState: vscode.Memento,
    private readonly store: ReportStore,
  ) {
    this.statusBar = vscode.window.createStatusBarItem('plasticityLens.hintModel', vscode.StatusBarAlignment.Right, 99);
    this.statusBar.name = 'Plasticity Lens hints model';
    this.statusBar.command = CHOOSE_HINT_MODEL_COMMAND;
  }

  /** The chosen model's report and index; loads the stored reports on first use. */
  async current(): Promise<HintSource | undefined> {
    this.loading ??= this.loadStoredReports();
    await this.loading;
    return this.source;
  }

  /** The chosen model without waiting for the stored reports (undefined until they are read). */
  currentIfLoaded(): HintSource | undefined {
    return this.source;
  }

  /** A finished analysis: its report replaces the stored one and may become the chosen model. */
  reportFinished(report: PlasticityReport): void {
    this.reports.set(report.model.path, report);
    // Before the first load the store already holds this report; loading will find it.
    if (this.loading) this.choose();
  }

  async pick(): Promise<void> {
    await this.current();
    const models = [...this.reports.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    if (models.length === 0) {
      void vscode.window.showInformationMessage('Plasticity Lens has no reports yet: right-click an .onnx file and choose "Analyze Model".');
      return;
    }
    const picked = this.workspaceState.get<string>(PICKED_MODEL_KEY);
    type Item = vscode.QuickPickItem & { modelPath: string | undefined };
    const inUse = (modelPath: string | undefined) => (modelPath === picked ? ' · in use' : '');
    const items: Item[] = [
      { label: 'Automatic', description: `the only or most recently analysed model${inUse(undefined)}`, modelPath: undefined },
      ...models.map((report) => ({
        label: path.basename(report.model.path),
        description: `${path.dirname(report.model.path)}${inUse(report.model.path)}`,
        detail: `analysed ${new Date(report.createdAt).toLocaleString()}, ${report.settings.pairs} pairs${report.settings.inputs.synthetic ? ', synthetic inputs' : ''}`,
        modelPath: report.model.path,
      })),
    ];
    const choice = await vscode.window.showQuickPick(items, { placeHolder: 'Inline hints show the plasticity of which model?' });
    if (!choice) return;
    await this.workspaceState.update(PICKED_MODEL_KEY, choice.modelPath);
    this.choose();
    // The same model may now be picked rather than automatic: the status bar says which.
    this.changed.fire();
  }

  /** Shows the status bar item while hints are on and the active editor can show them. */
  showStatusBar(visible: boolean): void {
    const source = this.source;
    if (!visible || !source) {
      this.statusBar.hide();
      return;
    }
    const report = source.report;
    const automatic = this.workspaceState.get<string>(PICKED_MODEL_KEY) === undefined;
    this.statusBar.text = `$(symbol-numeric) ${path.basename(source.modelPath)}`;
    this.statusBar.tooltip = [
      `Plasticity Lens hints: numbers from ${source.modelPath}`,
      `analysed ${new Date(report.createdAt).toLocaleString()}, ${report.settings.pairs} pairs${report.settings.inputs.synthetic ? ' of synthetic inputs' : ''}${automatic ? ' (chosen automatically)' : ''}`,
      'Click to choose another model.',
    ].join('\n');
    this.statusBar.show();
  }

  private async loadStoredReports(): Promise<void> {
    const stored = await Promise.all(this.store.analysedModels().map((modelPath) => this.store.latest(modelPath)));
    for (const report of stored) {
      // A report that finished while loading is newer than the stored one read here.
      if (report && !this.reports.has(report.model.path)) this.reports.set(report.model.path, report);
    }
    this.choose();
  }

  private choose(): void {
    const picked = this.workspaceState.get<string>(PICKED_MODEL_KEY);
    const report = (picked !== undefined ? this.reports.get(picked) : undefined) ?? this.mostRecent();
    if (report === this.source?.report) return;
    this.source = report ? sourceOf(report) : undefined;
    this.changed.fire();
  }

  private mostRecent(): PlasticityReport | undefined {
    let newest: PlasticityReport | undefined;
    for (const report of this.reports.values()) if (!newest || report.createdAt > newest.createdAt) newest = report;
    return newest;
  }

  dispose(): void {
    this.statusBar.dispose();
    this.changed.dispose();
  }
}

function sourceOf(report: PlasticityReport): HintSource | undefined {
  try {
    return { modelPath: report.model.path, report, index: buildModuleIndex(report) };
  } catch {
    return undefined; // a report from another version without usable block names: no hints rather than a broken editor
  }
}
