// Attention-pooling heads (SigLIP's MAP head, CaiT's class attention): a query that does not come
// from the image's tokens (a learned probe) attends to the trunk's output. They are the head, not
// blocks: the paper's components are the trunk's.
import type { GraphNode } from '../../graph/graphRewrite';
import { OnnxModel } from '../../onnx/onnxModel';
import { moduleOfScopedNodeName, onnxModuleParameterLookup } from '../../recommend/onnxScopes';
import { ExtraParameter } from '../vitStructure';
import { scoreMatMul } from './attention';
import { DiscoveryContext } from './discoveryContext';

/** True when the softmax's query is computed without the image's values (its shape aside): a learned probe. */
export function isPoolingHeadAttention(context: DiscoveryContext, softmax: GraphNode, imageInput: string): boolean {
  const scores = scoreMatMul(context, softmax);
  return scores !== undefined && !readsValuesOf(context, scores.matMul.inputs[0], imageInput);
}

/** Whether `tensor`'s values depend on `source`'s (a batch size read with Shape does not count). */
function readsValuesOf(context: DiscoveryContext, tensor: string, source: string): boolean {
  const seen = new Set<string>();
  const stack = [tensor];
  while (stack.length > 0) {
    const current = stack.pop()!;
    if (current === source) return true;
    if (seen.has(current)) continue;
    seen.add(current);
    const node = context.graph.producer.get(current);
    if (!node || node.opType === 'Shape' || node.opType === 'Size') continue;
    for (const input of node.inputs) if (input) stack.push(input);
  }
  return false;
}

/**
 * The head module a pooling attention belongs to, as the exporter scoped it
 * ("/vision_model/head/attention/Softmax" -> "vision_model.head"), with its parameter count.
 */
export function poolingHeadParameter(model: OnnxModel, softmax: GraphNode): ExtraParameter | undefined {
  const attentionModule = moduleOfScopedNodeName(softmax.name);
  const head = attentionModule?.split('.').slice(0, -1).join('.');
  if (!head) return undefined;
  return { name: head, kind: 'pooling head', block: null, follows: null, count: onnxModuleParameterLookup(model)(head)?.count ?? 0 };
}
