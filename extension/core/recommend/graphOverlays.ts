// Per-block plasticity laid over the model's graph in two viewers, keyed by ONNX node names:
//
// - Google Model Explorer "node data" (model_explorer/node_data_builder.py, GraphNodeData; the UI's
//   NodeDataProviderGraphData): { name?, results: { <nodeId>: { value } }, gradient?, thresholds? }.
//   A file without graph ids applies to the graph on screen (getNodeDataProviderData in the UI).
//   ONNX opens through the model-explorer-onnx adapter, whose node ids are the ONNX node names.
// - Netron "attachment" (source/view.js, metadata.Attachment, since Netron 8.2.8): a .json file with
//   signature "netron:attachment" and lists `metadata` / `metrics` of { kind, target, name, value };
//   a node's entries are found under kind "node" and target = the node's name. Netron lists them in
//   the node's properties (sections Metadata and Metrics); it does not colour the graph.
import * as path from 'node:path';
import { ModelFileError } from '../errors';
import { PlasticityReport } from '../report/reportSchema';
import { modulesOfComponent } from '../vit/moduleNames';
import { COMPONENTS, ComponentName } from '../vit/vitStructure';
import { isUnder, moduleOfScopedNodeName } from './onnxScopes';

/** What an overlay needs of a graph node. */
export interface GraphNodeName {
  name: string;
  inputs: string[];
}

export interface NodeAssignment {
  node: string;
  block: number;
  component: ComponentName;
}

/**
 * Which (block, component) each node computes: by the module scope in its name (longest component
 * module first), else by the component parameters it reads. Nodes outside every component
 * (embeddings, residual adds, head) are left out.
 */
export function assignNodesToComponents(report: PlasticityReport, nodes: readonly GraphNodeName[]): NodeAssignment[] {
  // A module group (a gated MLP's "blocks.0.mlp.{fc1_g,fc1_x}") is no scope: its layers' modules are.
  const scopesOf = (block: PlasticityReport['blocks'][number], component: ComponentName) => modulesOfComponent(block.modules[component], block.components[component].parameters);
  const modules = report.blocks
    .flatMap((block) => COMPONENTS.flatMap((component) => scopesOf(block, component).map((module) => ({ module, block: block.index, component }))))
    .sort((a, b) => b.module.length - a.module.length);
  const parameterOwners = new Map<string, { block: number; component: ComponentName }>();
  for (const block of report.blocks) {
    for (const component of COMPONENTS) {
      for (const parameter of block.components[component].parameters) parameterOwners.set(parameter, { block: block.index, component });
    }
  }
  const assignments: NodeAssignment[] = [];
  for (const node of nodes) {
    if (!node.name) continue;
    const scope = moduleOfScopedNodeName(node.name);
    const byScope = scope ? modules.find((entry) => entry.module !== '' && isUnder(scope, entry.module)) : undefined;
    const owner = byScope ?? node.inputs.map((input) => parameterOwners.get(input)).find((entry) => entry !== undefined);
    if (owner) assignments.push({ node: node.name, block: owner.block, component: owner.component });
  }
  return assignments;
}

function requireAssignments(report: PlasticityReport, nodes: readonly GraphNodeName[]): NodeAssignment[] {
  const assignments = assignNodesToComponents(report, nodes);
  if (assignments.length === 0) {
    throw new ModelFileError(
      `${path.basename(report.model.path)} has no node named after its modules (as PyTorch's exporter scopes them, e.g. "/blocks/blocks.0/attn/..."), so plasticity cannot be placed on its graph; export the model with torch.onnx.export to get scoped node names.`,
    );
  }
  return assignments;
}

function statisticsOf(report: PlasticityReport, block: number, component: ComponentName) {
  return report.blocks.find((entry) => entry.index === block)!.components[component];
}

/** Light to dark red: more plastic is darker (worth finetuning first). */
const PLASTICITY_GRADIENT = [
  { stop: 0, bgColor: '#fff5f0' },
  { stop: 0.5, bgColor: '#fb6a4a' },
  { stop: 1, bgColor: '#a50f15' },
];

export interface ModelExplorerNodeData {
  name: string;
  results: Record<string, { value: number }>;
  gradient: { stop: number; bgColor: string }[];
}

/** Model Explorer node data for the graph on screen: each component node's plasticity mean. */
export function modelExplorerNodeData(report: PlasticityReport, nodes: readonly GraphNodeName[]): ModelExplorerNodeData {
  const results: Record<string, { value: number }> = {};
  for (const { node, block, component } of requireAssignments(report, nodes)) {
    results[node] = { value: statisticsOf(report, block, component).mean };
  }
  const synthetic = report.settings.inputs.synthetic ? ', SYNTHETIC inputs' : '';
  return { name: `Plasticity (${report.settings.mode}, ${report.settings.pairs} pairs${synthetic})`, results, gradient: PLASTICITY_GRADIENT };
}

export interface NetronAttachmentEntry {
  kind: 'node';
  target: string;
  name: string;
  value: string | number;
}

export interface NetronAttachment {
  signature: 'netron:attachment';
  metadata: NetronAttachmentEntry[];
  metrics: NetronAttachmentEntry[];
}

/** Netron attachment: each component node gets its block, component, plasticity, interval and rank. */
export function netronAttachment(report: PlasticityReport, nodes: readonly GraphNodeName[]): NetronAttachment {
  const metadata: NetronAttachmentEntry[] = [];
  const metrics: NetronAttachmentEntry[] = [];
  const source = `Plasticity Lens, ${report.settings.mode} measure, ${report.settings.pairs} pairs${report.settings.inputs.synthetic ? ', SYNTHETIC inputs (not your data)' : ''}`;
  for (const { node, block, component } of requireAssignments(report, nodes)) {
    const statistics = statisticsOf(report, block, component);
    const summary = report.summary[component];
    metadata.push({ kind: 'node', target: node, name: 'plasticity component', value: `block ${block} ${component} (${source})` });
    metrics.push({ kind: 'node', target: node, name: 'plasticity', value: statistics.mean });
    metrics.push({ kind: 'node', target: node, name: 'plasticity 95% interval', value: `${statistics.ci95[0].toFixed(4)} to ${statistics.ci95[1].toFixed(4)}` });
    metrics.push({ kind: 'node', target: node, name: `${component} rank (mean over blocks)`, value: `${summary.rank} of ${COMPONENTS.length}, mean ${summary.mean.toFixed(4)}` });
  }
  return { signature: 'netron:attachment', metadata, metrics };
}

export type OverlayFormat = 'model-explorer' | 'netron';
export const OVERLAY_FORMATS: readonly OverlayFormat[] = ['model-explorer', 'netron'];

export function exportOverlay(report: PlasticityReport, nodes: readonly GraphNodeName[], format: OverlayFormat): string {
  const overlay = format === 'model-explorer' ? modelExplorerNodeData(report, nodes) : netronAttachment(report, nodes);
  return `${JSON.stringify(overlay, null, 2)}\n`;
}
