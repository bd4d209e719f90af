// "Compare with...": picks the reports to compare (the extension's stored reports or JSON report
// files), checks they can be compared, and opens a comparison panel beside the model.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { comparisonToCsv } from '../core/compare/comparisonCsv';
import { compareReports, compareTargets, NamedReport } from '../core/compare/compareReports';
import { PlasticityComparison } from '../core/compare/reportComparison';
import { InputDataError, UsageError } from '../core/errors';
import { parseReport } from '../core/recommend/reportInput';
import { PlasticityReport } from '../core/report/reportSchema';
import { ReportStore } from '../analysis/reportStore';
import { saveExport } from './exportFile';
import { webviewHtml, webviewOptions } from './webviewHtml';
import { WebviewStarts } from './webviewStarts';
import { ComparisonPanelState, ComparisonPanelToHost, HostToComparisonPanel, ShownComparison } from './webviewProtocol';

export const COMPARISON_PANEL_VIEW_TYPE = 'plasticityLens.comparison';

class ComparisonPanel implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    readonly panel: vscode.WebviewPanel,
    private readonly shown: ShownComparison,
    extensionUri: vscode.Uri,
  ) {
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'icon.svg');
    panel.webview.options = webviewOptions(extensionUri);
    panel.webview.html = webviewHtml(panel.webview, extensionUri, 'comparisonPanel', panel.title);
    this.disposables.push(panel.webview.onDidReceiveMessage((message: ComparisonPanelToHost) => void this.handle(message)));
    this.post({ type: 'showComparison', ...shown });
  }

  private post(message: HostToComparisonPanel): void {
    void this.panel.webview.postMessage(message);
  }

  private async handle(message: ComparisonPanelToHost): Promise<void> {
    switch (message.type) {
      case 'ready':
        this.post({ type: 'showComparison', ...this.shown });
        break;
      case 'exportPng':
        await this.save(`${message.chart}.png`, { 'PNG image': ['png'] }, Buffer.from(message.dataUrl.replace(/^data:image\/png;base64,/, ''), 'base64'));
        break;
      case 'exportCsv':
        await this.save('comparison.csv', { CSV: ['csv'] }, Buffer.from(comparisonToCsv(this.shown.comparison)));
        break;
      case 'exportJson':
        await this.save('comparison.json', { JSON: ['json'] }, Buffer.from(`${JSON.stringify(this.shown.comparison, null, 2)}\n`));
        break;
    }
  }

  /** Saved next to the baseline's model by default; never over the model or a compared report. */
  private async save(suffix: string, filters: Record<string, string[]>, content: Buffer): Promise<void> {
    await saveExport({ besideFile: this.shown.exportsBeside, suffix, filters, content, protectReports: true, protectedFiles: this.shown.protectedFiles });
  }

  dispose(): void {
    for (const disposable of this.disposables) disposable.dispose();
  }
}

interface ReportPick extends vscode.QuickPickItem {
  named?: NamedReport;
  /** The item that opens a file dialog for JSON report files. */
  chooseFiles?: true;
}

export class ComparisonPanels implements vscode.Disposable, vscode.WebviewPanelSerializer<ComparisonPanelState> {
  private readonly panels = new Set<ComparisonPanel>();

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly store: ReportStore,
    private readonly log: vscode.OutputChannel,
    private readonly starts: WebviewStarts,
  ) {}

  /**
   * The "Compare with..." command: `model` (from a report panel) makes its latest report the
   * baseline; without it the user picks the baseline first. Then the reports to compare it with.
   */
  async compareWith(model?: vscode.Uri): Promise<void> {
    const stored = await this.store.all();
    let baseline: NamedReport | undefined;
    if (model) {
      const report = await this.store.latest(model.fsPath);
      if (!report) {
        void vscode.window.showInformationMessage(`Plasticity Lens has no report of ${path.basename(model.fsPath)} yet: analyse it first.`);
        return;
      }
      baseline = { report, file: null, label: path.basename(report.model.path) };
    } else {
      baseline = (await this.pickReports(stored, undefined, false))?.[0];
    }
    if (!baseline) return;
    const others = await this.pickReports(stored, baseline.report, true);
    if (!others || others.length === 0) return;
    await this.open([baseline, ...others]);
  }

  /** The "Compare targets" command: the latest report of `model`, when it measured several targets, with its targets as the series. */
  async compareTargetsOf(model?: vscode.Uri): Promise<PlasticityComparison | undefined> {
    if (!model) {
      void vscode.window.showInformationMessage('Plasticity Lens: open a model, or its report, to compare the targets of its report.');
      return undefined;
    }
    const report = await this.store.latest(model.fsPath);
    if (!report) {
      void vscode.window.showInformationMessage(`Plasticity Lens has no report of ${path.basename(model.fsPath)} yet: analyse it first.`);
      return undefined;
    }
    return this.show(
      () => compareTargets(report, null),
      [{ report, file: null }],
      (comparison) => `Targets: ${path.basename(report.model.path)} · ${comparison.series.map((series) => series.label).join(' · ')}`,
    );
  }

  /** Compares the reports (the first is the baseline) and opens the panel, or says in one sentence why they cannot be compared. */
  async open(reports: NamedReport[]): Promise<PlasticityComparison | undefined> {
    return this.show(
      () => compareReports(reports),
      reports,
      (comparison) => `Compare: ${comparison.series.map((series) => series.label).join(' · ')}`,
    );
  }

  private async show(
    compare: () => PlasticityComparison,
    reports: NamedReport[],
    titleOf: (comparison: PlasticityComparison) => string,
  ): Promise<PlasticityComparison | undefined> {
    let comparison: PlasticityComparison;
    try {
      comparison = compare();
    } catch (error) {
      if (!(error instanceof UsageError)) this.log.appendLine(`Comparison failed: ${(error as Error).stack ?? String(error)}`);
      void vscode.window.showErrorMessage(`Plasticity Lens: ${(error as Error).message.split('\n')[0]}`);
      return undefined;
    }
    const title = titleOf(comparison);
    const webviewPanel = vscode.window.createWebviewPanel(
      COMPARISON_PANEL_VIEW_TYPE,
      title,
      { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
      { retainContextWhenHidden: false },
    );
    const protectedFiles = reports.flatMap((named) => (named.file ? [named.file] : []));
    this.adopt(webviewPanel, { comparison, exportsBeside: reports[0].report.model.path, protectedFiles });
    return comparison;
  }

  /** After a reload: the panel comes back with the comparison it kept in its state, its webview started after the one restored before it. */
  deserializeWebviewPanel(webviewPanel: vscode.WebviewPanel, state: ComparisonPanelState | undefined): Promise<void> {
    if (!isShownComparison(state?.shown)) {
      // A panel from an older version, or one closed by the reload before it had shown its comparison.
      this.log.appendLine(`The comparison panel "${webviewPanel.title}" kept no comparison to restore; it is closed (run the comparison again).`);
      webviewPanel.dispose();
      return Promise.resolve();
    }
    const turn = this.starts.turn(webviewPanel);
    this.adopt(webviewPanel, state.shown);
    this.log.appendLine(`Restored the comparison panel "${webviewPanel.title}".`);
    return turn;
  }

  private adopt(webviewPanel: vscode.WebviewPanel, shown: ShownComparison): void {
    const panel = new ComparisonPanel(webviewPanel, shown, this.extensionUri);
    this.panels.add(panel);
    webviewPanel.onDidDispose(() => {
      panel.dispose();
      this.panels.delete(panel);
    });
  }

  /** Stored reports (other than `exclude`) and an item to choose JSON report files. */
  private async pickReports(stored: PlasticityReport[], exclude: PlasticityReport | undefined, many: boolean): Promise<NamedReport[] | undefined> {
    const items: ReportPick[] = stored
      .filter((report) => report !== exclude && !(exclude && report.createdAt === exclude.createdAt && report.model.sha256 === exclude.model.sha256))
      .map((report) => ({
        label: path.basename(report.model.path),
        description: `${report.settings.mode}, ${report.settings.pairs} pairs${report.settings.inputs.synthetic ? ', synthetic' : ''}`,
        detail: `${new Date(report.createdAt).toLocaleString()} · ${path.dirname(report.model.path)}`,
        named: { report, file: null, label: path.basename(report.model.path) },
      }));
    items.push({ label: '$(file) Choose JSON report files…', chooseFiles: true, alwaysShow: true });
    const placeHolder = many ? 'Compare with which reports? (stored reports, or JSON report files)' : 'Which report is the baseline?';
    const picked = many
      ? await vscode.window.showQuickPick(items, { canPickMany: true, placeHolder })
      : await vscode.window.showQuickPick(items, { placeHolder }).then((item) => (item ? [item] : undefined));
    if (!picked || picked.length === 0) return undefined;
    const named = picked.flatMap((item) => (item.named ? [item.named] : []));
    if (picked.some((item) => item.chooseFiles)) {
      const files = await vscode.window.showOpenDialog({ canSelectMany: many, filters: { 'Plasticity Lens report': ['json'] }, openLabel: 'Compare' });
      if (!files) return named.length > 0 ? named : undefined;
      for (const file of files) {
        const report = await readReportFile(file.fsPath);
        if (report) named.push({ report, file: file.fsPath });
      }
    }
    return named;
  }

  dispose(): void {
    for (const panel of this.panels) panel.panel.dispose();
  }
}

/** A panel state written by this extension's comparison panel (a state from an older version has none). */
function isShownComparison(value: unknown): value is ShownComparison {
  if (typeof value !== 'object' || value === null) return false;
  const shown = value as Partial<ShownComparison>;
  return (
    typeof shown.exportsBeside === 'string' &&
    Array.isArray(shown.protectedFiles) &&
    typeof shown.comparison === 'object' &&
    shown.comparison !== null &&
    Array.isArray(shown.comparison.series) &&
    shown.comparison.series.length > 0
  );
}

/** A JSON report file, or undefined after saying in one sentence why it cannot be used. */
async function readReportFile(file: string): Promise<PlasticityReport | undefined> {
  try {
    return parseReport(await fs.readFile(file, 'utf8'), file);
  } catch (error) {
    const message =
      error instanceof InputDataError ? error.message : `${path.basename(file)} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}).`;
    void vscode.window.showErrorMessage(`Plasticity Lens: ${message}`);
    return undefined;
  }
}
