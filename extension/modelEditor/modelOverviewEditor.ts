// A read-only custom editor for .onnx files: what the model is (inputs, outputs, opset,
// producer, size) and what discovery found in it (or why it is not a ViT), with an Analyze
// button and the last report's headline. The file is read in the worker, never here.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { AnalysisService } from '../analysis/analysisService';
import { ReportStore } from '../analysis/reportStore';
import { PlasticityReport } from '../core/report/reportSchema';
import { COMPONENTS } from '../core/vit/vitStructure';
import { boundsMessage } from '../panel/boundsMessage';
import { ReportPanels } from '../panel/reportPanels';
import { webviewHtml, webviewOptions } from '../panel/webviewHtml';
import { WebviewStarts } from '../panel/webviewStarts';
import { HostToModelOverview, ModelOverviewToHost, ReportHeadline } from '../panel/webviewProtocol';

export const MODEL_OVERVIEW_VIEW_TYPE = 'plasticityLens.modelOverview';

function reportHeadline(report: PlasticityReport): ReportHeadline {
  return {
    createdAt: report.createdAt,
    mode: report.settings.mode,
    pairs: report.settings.pairs,
    synthetic: report.settings.inputs.synthetic,
    ranking: [...COMPONENTS].sort((a, b) => report.summary[a].rank - report.summary[b].rank).map((component) => ({ component, mean: report.summary[component].mean })),
    stale: false,
  };
}

export class ModelOverviewEditor implements vscode.CustomReadonlyEditorProvider {
  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly service: AnalysisService,
    private readonly store: ReportStore,
    private readonly panels: ReportPanels,
    private readonly starts: WebviewStarts,
  ) {}

  openCustomDocument(uri: vscode.Uri): vscode.CustomDocument {
    return { uri, dispose: () => undefined };
  }

  /** Settles when the webview may start: after the one started before it (a reload restores editors and panels at once). */
  resolveCustomEditor(document: vscode.CustomDocument, webviewPanel: vscode.WebviewPanel): Promise<void> {
    const turn = this.starts.turn(webviewPanel);
    const model = document.uri;
    const webview = webviewPanel.webview;
    webview.options = webviewOptions(this.extensionUri);
    webview.html = webviewHtml(webview, this.extensionUri, 'modelOverview', path.basename(model.fsPath));
    const post = (message: HostToModelOverview) => void webview.postMessage(message);
    const refresh = async () => {
      try {
        // The overview first (read and discovery take a fraction of a second even for a ViT-B),
        // then the data-free bounds (the worker reuses the file it just read), then whether the
        // last report is out of date, once the file is hashed (about a second for a ViT-B).
        const overview = await this.service.describe(model);
        const report = await this.store.latest(model.fsPath);
        const headline = report ? reportHeadline(report) : undefined;
        post({ type: 'showOverview', overview, lastReport: headline });
        // A failure here (say, memory) must not take the overview away: the bounds are extra.
        if (overview.architecture) post(await boundsMessage(() => this.service.bounds(model)));
        const sha256 = await this.service.hash(model);
        post({
          type: 'showOverview',
          overview: { ...overview, model: { ...overview.model, sha256 } },
          lastReport: headline && report ? { ...headline, stale: sha256 !== report.model.sha256 } : undefined,
        });
      } catch (error) {
        post({ type: 'overviewError', message: error instanceof Error ? error.message : String(error) });
      }
    };
    const subscriptions = [
      webview.onDidReceiveMessage((message: ModelOverviewToHost) => {
        if (message.type === 'ready') {
          void refresh();
        } else if (message.type === 'analyze') void this.service.analyze(model);
        else if (message.type === 'showReport') void this.panels.open(model);
      }),
      this.service.onDidFinish((event) => event.model.fsPath === model.fsPath && void refresh()),
      this.service.onDidChangeState((event) => event.model.fsPath === model.fsPath && post({ type: 'analysisState', running: event.running, message: event.message })),
    ];
    webviewPanel.onDidDispose(() => {
      for (const subscription of subscriptions) subscription.dispose();
    });
    // Also without waiting for 'ready' (messages to a loading webview are queued).
    void refresh();
    return turn;
  }
}
