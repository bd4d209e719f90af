// The explorer's "Plasticity" view: every analysed model, under it the component types in rank
// order, under each type the blocks. Clicking opens the model's report panel; a block also
// scrolls the panel's table to its row.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { AnalysisService } from '../analysis/analysisService';
import { ReportStore } from '../analysis/reportStore';
import { PlasticityReport } from '../core/report/reportSchema';
import { ComponentName } from '../core/vit/vitStructure';
import { blockRows, componentTypeRows } from './modelTreeRows';

export const MODELS_VIEW_ID = 'plasticityLens.models';
export const REVEAL_BLOCK_COMMAND = 'plasticityLens.revealBlock';
export const REFRESH_MODELS_COMMAND = 'plasticityLens.refreshModels';

export type ModelTreeNode =
  | { kind: 'model'; modelPath: string }
  | { kind: 'type'; modelPath: string; component: ComponentName }
  | { kind: 'block'; modelPath: string; component: ComponentName; block: number };

export class ModelsTreeProvider implements vscode.TreeDataProvider<ModelTreeNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  /** Reports read from the store since the last refresh (the store reads a file each time). */
  private readonly reports = new Map<string, Promise<PlasticityReport | undefined>>();
  private readonly disposables: vscode.Disposable[] = [this.changed];

  constructor(
    private readonly store: ReportStore,
    service: AnalysisService,
  ) {
    this.disposables.push(service.onDidFinish(() => this.refresh()));
  }

  refresh(): void {
    this.reports.clear();
    this.changed.fire();
  }

  private report(modelPath: string): Promise<PlasticityReport | undefined> {
    let report = this.reports.get(modelPath);
    if (!report) {
      report = this.store.latest(modelPath);
      this.reports.set(modelPath, report);
    }
    return report;
  }

  async getChildren(node?: ModelTreeNode): Promise<ModelTreeNode[]> {
    if (!node) {
      return this.store
        .analysedModels()
        .sort((a, b) => path.basename(a).localeCompare(path.basename(b)) || a.localeCompare(b))
        .map((modelPath) => ({ kind: 'model', modelPath }));
    }
    if (node.kind === 'block') return [];
    const report = await this.report(node.modelPath);
    if (!report) return [];
    if (node.kind === 'model') return componentTypeRows(report).map((row) => ({ kind: 'type', modelPath: node.modelPath, component: row.component }));
    return blockRows(report, node.component).map((row) => ({ kind: 'block', modelPath: node.modelPath, component: node.component, block: row.block }));
  }

  async getTreeItem(node: ModelTreeNode): Promise<vscode.TreeItem> {
    const model = vscode.Uri.file(node.modelPath);
    if (node.kind === 'model') {
      const report = await this.report(node.modelPath);
      const item = new vscode.TreeItem(path.basename(node.modelPath), vscode.TreeItemCollapsibleState.Collapsed);
      item.id = `model:${node.modelPath}`;
      item.resourceUri = model;
      item.description = report?.settings.inputs.synthetic ? 'synthetic inputs' : undefined;
      item.tooltip = report
        ? `${node.modelPath}\nAnalysed ${new Date(report.createdAt).toLocaleString()}, ${report.settings.pairs} pairs, ${report.settings.mode}`
        : `${node.modelPath}\nIts report can no longer be read.`;
      item.contextValue = 'plasticityModel';
      item.command = { command: 'plasticityLens.showReport', title: 'Show Report', arguments: [model] };
      return item;
    }
    const report = await this.report(node.modelPath);
    if (node.kind === 'type') {
      const row = report && componentTypeRows(report).find((candidate) => candidate.component === node.component);
      const item = new vscode.TreeItem(row?.label ?? node.component, vscode.TreeItemCollapsibleState.Collapsed);
      item.id = `type:${node.modelPath}:${node.component}`;
      item.description = row?.description;
      item.tooltip = row?.tooltip;
      item.contextValue = 'plasticityComponentType';
      item.command = { command: 'plasticityLens.showReport', title: 'Show Report', arguments: [model] };
      return item;
    }
    const row = report && blockRows(report, node.component).find((candidate) => candidate.block === node.block);
    const item = new vscode.TreeItem(row?.label ?? `block ${node.block}`, vscode.TreeItemCollapsibleState.None);
    item.id = `block:${node.modelPath}:${node.component}:${node.block}`;
    item.description = row?.description;
    item.tooltip = row?.tooltip;
    item.contextValue = 'plasticityBlock';
    item.command = { command: REVEAL_BLOCK_COMMAND, title: 'Show Block in Report', arguments: [model, node.block, node.component] };
    return item;
  }

  dispose(): void {
    for (const disposable of this.disposables) disposable.dispose();
  }
}

/** Registers the view and its commands; `revealBlock` opens the panel and scrolls it to the block. */
export function registerModelsTree(
  store: ReportStore,
  service: AnalysisService,
  revealBlock: (model: vscode.Uri, block: number, component: ComponentName) => Promise<void>,
): vscode.Disposable[] {
  const provider = new ModelsTreeProvider(store, service);
  const view = vscode.window.createTreeView(MODELS_VIEW_ID, { treeDataProvider: provider, showCollapseAll: true });
  const describeEmpty = () => {
    view.message = store.analysedModels().length === 0 ? 'No analysed models yet: right-click an .onnx file and choose "Analyze Model".' : undefined;
  };
  describeEmpty();
  return [
    provider,
    view,
    provider.onDidChangeTreeData(describeEmpty),
    vscode.commands.registerCommand(REFRESH_MODELS_COMMAND, () => provider.refresh()),
    vscode.commands.registerCommand(REVEAL_BLOCK_COMMAND, (model: vscode.Uri, block: number, component: ComponentName) => revealBlock(model, block, component)),
  ];
}
