// Small matchers every pattern uses, and the error a pattern throws when a block does not fit.
import type { GraphNode } from '../../graph/graphRewrite';
import { GraphIndex } from '../../graph/graphIndex';

/** A block whose parts do not fit a known pattern: the message says which part and why. */
export class BlockResolutionError extends Error {}

/** The only node reading `tensor`'s values, when it is an `opType`. */
export function singleConsumer(graph: GraphIndex, tensor: string, opType: string): GraphNode | undefined {
  const consumers = graph.dataConsumersOf(tensor);
  return consumers.length === 1 && consumers[0].opType === opType ? consumers[0] : undefined;
}

/** For Mul/Div by a scalar constant: the other input and the factor applied. */
export function scaledInput(graph: GraphIndex, node: GraphNode): { input: string; factor: number } | undefined {
  if (node.opType !== 'Mul' && node.opType !== 'Div') return undefined;
  const constantIndex = node.inputs.findIndex((input) => graph.scalar(input) !== undefined);
  if (constantIndex < 0 || (node.opType === 'Div' && constantIndex !== 1)) return undefined;
  const value = graph.scalar(node.inputs[constantIndex])!;
  return { input: node.inputs[1 - constantIndex], factor: node.opType === 'Div' ? 1 / value : value };
}
