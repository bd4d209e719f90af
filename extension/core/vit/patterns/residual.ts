// The residual connection around a branch (attention or MLP): an Add of the branch's output and
// the stream it branched from, the branch's output scaled first by a LayerScale γ where the model
// has one (a Mul by a constant [d] vector: timm `ls1.gamma`, HF Dinov2 `layer_scale1.lambda1`).
// γ is not part of the branch's component (the paper's MHA ends at the output projection).
import type { GraphNode } from '../../graph/graphRewrite';
import { LAYOUT_OPS } from '../../graph/graphIndex';
import { ConstantTensor } from '../../graph/constantTensor';
import { elementCount } from '../../onnx/onnxModel';
import { DiscoveryContext } from './discoveryContext';
import { BlockResolutionError, singleConsumer } from './nodeMatching';

/** The residual Add that `branchOutput` (through layout ops) feeds, and its other operand. */
export function residualAdd(context: DiscoveryContext, branchOutput: string, what: string, width: number): { add: GraphNode; skip: string; layerScale?: ConstantTensor } {
  const scaled = layerScaleAfter(context, branchOutput, width);
  if (scaled) return { ...plainResidualAdd(context, scaled.output, what), layerScale: scaled.gamma };
  return plainResidualAdd(context, branchOutput, what);
}

/** A Mul of `tensor` by a constant vector of the model's width, and that Mul's output. */
function layerScaleAfter(context: DiscoveryContext, tensor: string, width: number): { gamma: ConstantTensor; output: string } | undefined {
  const { graph } = context;
  const mul = singleConsumer(graph, tensor, 'Mul');
  const gammaInput = mul?.inputs.find((input) => input !== tensor);
  const gamma = gammaInput ? graph.constant(gammaInput) : undefined;
  if (!mul || !gamma || elementCount(gamma.dims) !== width || gamma.dims[gamma.dims.length - 1] !== width) return undefined;
  return { gamma, output: mul.outputs[0] };
}

function plainResidualAdd(context: DiscoveryContext, branchOutput: string, what: string): { add: GraphNode; skip: string } {
  const { graph } = context;
  const consumers = graph.dataConsumersOf(branchOutput);
  const next = LAYOUT_OPS.has(consumers[0]?.opType ?? '') ? graph.nextThroughLayout(branchOutput) : consumers.length === 1 ? { node: consumers[0], via: [] } : undefined;
  if (!next || next.node.opType !== 'Add') throw new BlockResolutionError(`the ${what} output does not feed a residual Add`);
  const fed = next.via.length > 0 ? next.via[next.via.length - 1].outputs[0] : branchOutput;
  const skip = next.node.inputs[0] === fed ? next.node.inputs[1] : next.node.inputs[0];
  return { add: next.node, skip };
}
