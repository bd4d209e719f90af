// Activation: registers commands, the model overview editor and the report panel serializer.
// Nothing heavy loads here; the engine's worker process starts on the first model opened or
// analysed.
// Taken when this entry module starts running (its bundled imports load just before).
const moduleLoaded = performance.now();

import * as path from 'node:path';
import * as vscode from 'vscode';
import { HostDiagnostics } from './analysis/hostDiagnostics';
import { AnalysisService } from './analysis/analysisService';
import { ReportStore } from './analysis/reportStore';
import { InlineSensitivityHints } from './hints/inlineHints';
import { MODEL_OVERVIEW_VIEW_TYPE, ModelOverviewEditor } from './modelEditor/modelOverviewEditor';
import { COMPARISON_PANEL_VIEW_TYPE, ComparisonPanels } from './panel/comparisonPanels';
import { REPORT_PANEL_VIEW_TYPE, ReportPanels } from './panel/reportPanels';
import { WebviewStarts } from './panel/webviewStarts';
import { SampleModel, TRY_SAMPLE_COMMAND } from './sample/sampleModel';
import { trackWalkthroughSteps } from './sample/walkthroughProgress';
import { registerModelsTree } from './tree/modelsTree';

export function activate(context: vscode.ExtensionContext): void {
  const activateCalled = performance.now();
  const log = vscode.window.createOutputChannel('Plasticity Lens');
  const store = new ReportStore(context);
  const diagnostics = new HostDiagnostics(0);
  const service = new AnalysisService(store, log, diagnostics);
  // One queue for every webview this extension restores or resolves (see webviewStarts.ts).
  const starts = new WebviewStarts();
  const panels = new ReportPanels(context.extensionUri, service, store, log, starts);
  const comparisons = new ComparisonPanels(context.extensionUri, store, log, starts);
  const sample = new SampleModel(context, service);

  context.subscriptions.push(
    log,
    service,
    panels,
    vscode.window.registerWebviewPanelSerializer(REPORT_PANEL_VIEW_TYPE, panels),
    vscode.window.registerWebviewPanelSerializer(COMPARISON_PANEL_VIEW_TYPE, comparisons),
    vscode.window.registerCustomEditorProvider(MODEL_OVERVIEW_VIEW_TYPE, new ModelOverviewEditor(context.extensionUri, service, store, panels, starts), {
      supportsMultipleEditorsPerDocument: true,
      webviewOptions: { retainContextWhenHidden: false },
    }),
    vscode.commands.registerCommand('plasticityLens.analyzeModel', async (uri?: vscode.Uri) => {
      const model = uri ?? activeModel() ?? (await pickModelFile());
      if (model) await service.analyze(model);
    }),
    vscode.commands.registerCommand('plasticityLens.showReport', async (uri?: vscode.Uri) => {
      const model = uri ?? activeModel() ?? (await pickAnalysedModel(store));
      if (model) await panels.open(model);
    }),
    vscode.commands.registerCommand('plasticityLens.cancelAnalysis', () => service.cancel()),
    // A first run without a model (the Getting Started walkthrough's first step).
    vscode.commands.registerCommand(TRY_SAMPLE_COMMAND, () => sample.tryIt()),
    ...trackWalkthroughSteps(service, panels),
    comparisons,
    // A report panel's "Compare with..." passes its model; from the palette the baseline is picked first.
    vscode.commands.registerCommand('plasticityLens.compareWith', (uri?: vscode.Uri) => comparisons.compareWith(uri instanceof vscode.Uri ? uri : activeModel())),
    // A multi-target report's targets side by side (its report panel's "Compare targets").
    vscode.commands.registerCommand('plasticityLens.compareTargets', (uri?: vscode.Uri) => comparisons.compareTargetsOf(uri instanceof vscode.Uri ? uri : activeModel())),
    // End-of-line plasticity hints where Python or config files name a module of the analysed model.
    new InlineSensitivityHints(context.workspaceState, store, service),
    // The explorer's "Plasticity" view of analysed models.
    ...registerModelsTree(store, service, (model, block, component) => panels.revealBlock(model, block, component)),
    // Hidden (not in the palette): what the extension costs the editor, for support and benchmarks.
    vscode.commands.registerCommand('plasticityLens.diagnostics', () => diagnostics.snapshot()),
  );
  diagnostics.activationMs = performance.now() - activateCalled;
  // The gap before activate() is VS Code's own scheduling (other extensions starting), not ours.
  log.appendLine(`Activated in ${diagnostics.activationMs.toFixed(1)} ms (activate(); ${(activateCalled - moduleLoaded).toFixed(1)} ms earlier the bundle had loaded).`);
}

export function deactivate(): void {
  // Disposables (the worker among them) are released through context.subscriptions.
}

/** The .onnx file of the active editor tab (text or custom editor), if any. */
function activeModel(): vscode.Uri | undefined {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  const uri = input instanceof vscode.TabInputCustom || input instanceof vscode.TabInputText ? input.uri : undefined;
  return uri && uri.scheme === 'file' && uri.fsPath.toLowerCase().endsWith('.onnx') ? uri : undefined;
}

async function pickModelFile(): Promise<vscode.Uri | undefined> {
  const picked = await vscode.window.showOpenDialog({ canSelectMany: false, filters: { 'ONNX model': ['onnx'] }, openLabel: 'Analyze' });
  return picked?.[0];
}

async function pickAnalysedModel(store: ReportStore): Promise<vscode.Uri | undefined> {
  const models = store.analysedModels();
  if (models.length === 0) {
    void vscode.window.showInformationMessage('Plasticity Lens has no reports yet: right-click an .onnx file and choose "Analyze Model".');
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(
    models.map((model) => ({ label: path.basename(model), description: path.dirname(model), model })),
    { placeHolder: 'Show the report of which model?' },
  );
  return picked ? vscode.Uri.file(picked.model) : undefined;
}
