// The residual connection around a branch (attention or MLP): an Add of the branch's output and
// the stream it branched from.
import type { GraphNode } from '../../graph/graphRewrite';
import { LAYOUT_OPS } from '../../graph/graphIndex';
import { DiscoveryContext } from './discoveryContext';
import { BlockResolutionError } from './nodeMatching';

/** The residual Add that `branchOutput` (through layout ops) feeds, and its other operand. */
export function residualAdd(context: DiscoveryContext, branchOutput: string, what: string): { add: GraphNode; skip: string } {
  const { graph } = context;
  const consumers = graph.dataConsumersOf(branchOutput);
  const next = LAYOUT_OPS.has(consumers[0]?.opType ?? '') ? graph.nextThroughLayout(branchOutput) : consumers.length === 1 ? { node: consumers[0], via: [] } : undefined;
  if (!next || next.node.opType !== 'Add') throw new BlockResolutionError(`the ${what} output does not feed a residual Add`);
  const fed = next.via.length > 0 ? next.via[next.via.length - 1].outputs[0] : branchOutput;
  const skip = next.node.inputs[0] === fed ? next.node.inputs[1] : next.node.inputs[0];
  return { add: next.node, skip };
}
