// Runs analyses for the extension: in the engine's worker process (never on this thread), with
// a cancellable progress notification, a status bar item naming the provider, errors in words,
// and the report stored per model.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { CancelledError, InputDataError, ModelFileError, UsageError } from '../core/errors';
import { MeasuredModuleParameters } from '../core/recommend/measuredModel';
import { ModelOverview } from '../core/report/modelDescription';
import { PlasticityBounds, PlasticityReport } from '../core/report/reportSchema';
import { describeProgress } from '../worker/progressText';
import { AnalysisRequest } from '../worker/workerProtocol';
import { WorkerCrashError, WorkerSupervisor } from '../worker/workerSupervisor';
import { analysisRequestFor, FixedImages, measurementSettings } from './analysisSettings';
import { HostDiagnostics } from './hostDiagnostics';
import { ReportStore } from './reportStore';

const RUNNING_CONTEXT = 'plasticityLens.analysisRunning';

export interface AnalysisFinished {
  model: vscode.Uri;
  report: PlasticityReport;
}

export class AnalysisService implements vscode.Disposable {
  private supervisor: WorkerSupervisor | undefined;
  private running: { model: vscode.Uri; abort: AbortController } | undefined;
  private readonly statusBar: vscode.StatusBarItem;
  /** Models measured on their own images, whatever the folder settings say (by file path). */
  private readonly fixedImages = new Map<string, FixedImages>();
  private readonly started = new vscode.EventEmitter<vscode.Uri>();
  private readonly finished = new vscode.EventEmitter<AnalysisFinished>();
  private readonly stateChanged = new vscode.EventEmitter<{ model: vscode.Uri; running: boolean; message?: string }>();
  /** An analysis of the model starts (fired just before its first state change). */
  readonly onDidStart = this.started.event;
  readonly onDidFinish = this.finished.event;
  /**
   * While running, `message` is the progress; when it stops without a report (cancelled, failed),
   * the sentence saying why; after a report, none.
   */
  readonly onDidChangeState = this.stateChanged.event;

  constructor(
    private readonly store: ReportStore,
    private readonly log: vscode.OutputChannel,
    private readonly diagnostics: HostDiagnostics,
  ) {
    this.statusBar = vscode.window.createStatusBarItem('plasticityLens.provider', vscode.StatusBarAlignment.Right, 100);
    this.statusBar.name = 'Plasticity Lens execution provider';
    this.statusBar.command = 'plasticityLens.showReport';
  }

  private worker(): WorkerSupervisor {
    this.supervisor ??= new WorkerSupervisor({ onLog: (text) => this.log.append(text) });
    return this.supervisor;
  }

  /** Measures `modelPath` on `images` from now on (the sample model on the sample's images). */
  useImagesFor(modelPath: string, images: FixedImages): void {
    this.fixedImages.set(modelPath, { reference: images.reference, target: images.target });
  }

  private requestFor(model: vscode.Uri): AnalysisRequest {
    return analysisRequestFor(model, this.fixedImages.get(model.fsPath));
  }

  isRunning(model?: vscode.Uri): boolean {
    return this.running !== undefined && (!model || this.running.model.fsPath === model.fsPath);
  }

  /** The model's overview, without its hash (fast). */
  describe(model: vscode.Uri): Promise<ModelOverview> {
    return this.worker().describe(model.fsPath);
  }

  /**
   * The data-free upper bounds before any measurement (under a second for a ViT-B), computed in
   * the worker from the weights and the first inputs the settings name (synthetic without them).
   * Not in an untrusted workspace: that runs onnxruntime on its file without asking.
   */
  async bounds(model: vscode.Uri): Promise<PlasticityBounds> {
    if (!vscode.workspace.isTrusted && vscode.workspace.getWorkspaceFolder(model)) {
      throw new UsageError('This workspace is not trusted, so the bounds wait for an analysis (Analyze Model asks before running onnxruntime on the file).');
    }
    const { modelPath, reference, target, pairs, seed, mean, std, size } = this.requestFor(model);
    return this.worker().bounds({ modelPath, reference, target, pairs, seed, mean, std, size });
  }

  /** sha256 of the model file (about a second for a ViT-B), computed in the worker. */
  hash(model: vscode.Uri): Promise<string> {
    return this.worker().hashFile(model.fsPath);
  }

  /** The parameters of `modules` in the model file and its sha256, read in the worker (no onnxruntime). */
  moduleParameters(model: vscode.Uri, modules: string[]): Promise<MeasuredModuleParameters> {
    return this.worker().moduleParameters(model.fsPath, modules);
  }

  cancel(): void {
    this.running?.abort.abort();
  }

  /** Analyses `model` with the current settings; resolves undefined when cancelled or failed (already reported). */
  async analyze(model: vscode.Uri): Promise<PlasticityReport | undefined> {
    if (this.running) {
      void vscode.window.showInformationMessage(`Plasticity Lens is already analysing ${path.basename(this.running.model.fsPath)}; cancel it first or wait for it to finish.`);
      return undefined;
    }
    if (!(await this.confirmTrust(model))) return undefined;
    const request = this.requestFor(model);
    const abort = new AbortController();
    this.running = { model, abort };
    await vscode.commands.executeCommand('setContext', RUNNING_CONTEXT, true);
    this.started.fire(model);
    this.stateChanged.fire({ model, running: true, message: 'Starting' });
    const name = path.basename(model.fsPath);
    const started = Date.now();
    const stopWatching = this.diagnostics.watchAnalysis(model.fsPath);
    let failure: string | undefined;
    try {
      const report = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Plasticity Lens: ${name}`, cancellable: true },
        async (progress, token) => {
          token.onCancellationRequested(() => abort.abort());
          let reported = 0;
          return this.worker().analyze(
            request,
            (update) => {
              const fraction = update.pairsTotal > 0 ? (100 * update.pairsDone) / update.pairsTotal : 0;
              progress.report({ message: describeProgress(update), increment: Math.max(0, fraction - reported) });
              reported = Math.max(reported, fraction);
              if (update.executionProvider) this.showProvider(update.executionProvider, true);
              this.stateChanged.fire({ model, running: true, message: describeProgress(update) });
            },
            abort.signal,
          );
        },
      );
      this.showProvider(report.settings.executionProvider.used, false, report);
      await this.store.save(report, measurementSettings(request));
      this.log.appendLine(
        `[${new Date().toISOString()}] ${name}: ${report.settings.pairs} pairs on ${report.settings.executionProvider.used} in ${((Date.now() - started) / 1000).toFixed(1)} s${report.stopping?.rule === 'until-settled' ? `; ${report.stopping.message}` : ''}`,
      );
      this.finished.fire({ model, report });
      return report;
    } catch (error) {
      failure = this.reportFailure(model, error);
      return undefined;
    } finally {
      const lag = stopWatching();
      this.log.appendLine(`[${new Date().toISOString()}] ${name}: longest extension-host stall during the analysis ${lag.maxStallMs.toFixed(1)} ms`);
      this.running = undefined;
      await vscode.commands.executeCommand('setContext', RUNNING_CONTEXT, false);
      this.stateChanged.fire({ model, running: false, message: failure });
    }
  }

  private showProvider(provider: string, running: boolean, report?: PlasticityReport): void {
    this.statusBar.text = `$(${running ? 'sync~spin' : 'pulse'}) Plasticity: ${provider}`;
    const tried = report?.settings.executionProvider.tried.map((attempt) => `${attempt.name}: ${attempt.reason}`).join('\n');
    this.statusBar.tooltip = `Plasticity Lens ran on the ${provider} execution provider${tried ? `\n${tried}` : ''}`;
    this.statusBar.show();
  }

  /** Native inference on a file of an untrusted workspace needs the user's explicit yes. */
  private async confirmTrust(model: vscode.Uri): Promise<boolean> {
    if (vscode.workspace.isTrusted || !vscode.workspace.getWorkspaceFolder(model)) return true;
    const run = 'Analyze Anyway';
    const answer = await vscode.window.showWarningMessage(
      `This workspace is not trusted. Analysing ${path.basename(model.fsPath)} runs native code (onnxruntime) on it. Continue?`,
      { modal: true },
      run,
    );
    return answer === run;
  }

  /** Tells the user why the analysis of `model` ended without a report; returns that as one sentence for the views' state lines. */
  private reportFailure(model: vscode.Uri, error: unknown): string {
    const message = error instanceof Error ? error.message : String(error);
    this.log.appendLine(`[${new Date().toISOString()}] ${path.basename(model.fsPath)}: ${error instanceof Error && error.stack ? error.stack : message}`);
    if (error instanceof CancelledError) {
      // A cancelled run leaves no process behind; the next request starts a fresh worker.
      this.supervisor?.dispose();
      this.supervisor = undefined;
      void vscode.window.showInformationMessage(`Plasticity Lens: analysis of ${path.basename(model.fsPath)} cancelled.`);
      return 'Analysis cancelled.';
    }
    if (error instanceof InputDataError || error instanceof UsageError) {
      void vscode.window.showErrorMessage(`Plasticity Lens: ${message}`, 'Open Settings').then((choice) => {
        if (choice) void vscode.commands.executeCommand('workbench.action.openSettings', 'plasticityLens');
      });
    } else if (error instanceof ModelFileError) {
      void vscode.window.showErrorMessage(`Plasticity Lens: ${message}`);
    } else if (error instanceof WorkerCrashError) {
      void vscode.window.showErrorMessage(`Plasticity Lens: ${message}`, 'Retry').then((choice) => {
        if (choice) void this.analyze(model);
      });
    } else {
      const sentence = `internal error: ${message.split('\n')[0]} (details in the Plasticity Lens output).`;
      void vscode.window.showErrorMessage(`Plasticity Lens: ${sentence}`);
      return `Analysis failed: ${sentence}`;
    }
    return `Analysis failed: ${message}`;
  }

  dispose(): void {
    this.running?.abort.abort();
    this.supervisor?.dispose();
    this.statusBar.dispose();
    this.started.dispose();
    this.finished.dispose();
    this.stateChanged.dispose();
  }
}
