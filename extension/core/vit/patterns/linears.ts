// Linear layers: MatMul by a constant 2-D weight (with the bias Add that follows it), or Gemm.
import type { GraphNode } from '../../graph/graphRewrite';
import { GraphIndex } from '../../graph/graphIndex';
import { elementCount } from '../../onnx/onnxModel';
import { LinearLayer } from '../vitStructure';
import { BlockResolutionError, singleConsumer } from './nodeMatching';

export class LinearIndex {
  readonly byOutput = new Map<string, LinearLayer>();
  readonly byInput = new Map<string, LinearLayer[]>();

  constructor(private readonly graph: GraphIndex) {
    for (const node of graph.nodes) {
      const linear = node.opType === 'MatMul' ? matMulLinear(graph, node) : node.opType === 'Gemm' ? gemmLinear(graph, node) : undefined;
      if (!linear) continue;
      this.byOutput.set(linear.output, linear);
      const list = this.byInput.get(linear.input) ?? [];
      list.push(linear);
      this.byInput.set(linear.input, list);
    }
  }

  /** The one linear layer reading `tensor`, directly or through layout ops. */
  consuming(tensor: string): LinearLayer | undefined {
    const direct = this.byInput.get(tensor);
    if (direct?.length === 1) return direct[0];
    const next = this.graph.nextThroughLayout(tensor);
    if (!next) return undefined;
    const input = next.via.length > 0 ? next.via[next.via.length - 1].outputs[0] : tensor;
    const list = this.byInput.get(input);
    return list?.length === 1 ? list[0] : undefined;
  }

  /** `consuming`, or an error naming the layer expected (`what`). */
  require(tensor: string, what: string): LinearLayer {
    const linear = this.consuming(tensor);
    if (!linear) throw new BlockResolutionError(`no linear layer (${what}) reads '${tensor}'`);
    return linear;
  }

  /** The linear layer whose product `node` is (a MatMul followed by its bias Add ends at the Add). */
  ofNode(node: GraphNode): LinearLayer | undefined {
    if (node.opType !== 'MatMul') return this.byOutput.get(node.outputs[0]);
    const add = singleConsumer(this.graph, node.outputs[0], 'Add');
    return (add && this.byOutput.get(add.outputs[0])) ?? this.byOutput.get(node.outputs[0]);
  }
}

function matMulLinear(graph: GraphIndex, node: GraphNode): LinearLayer | undefined {
  const weight = graph.constant(node.inputs[1]);
  if (!weight || weight.dims.length !== 2 || graph.isConstant(node.inputs[0])) return undefined;
  const [inFeatures, outFeatures] = weight.dims;
  const linear: LinearLayer = { input: node.inputs[0], output: node.outputs[0], weight, weightLayout: 'inOut', inFeatures, outFeatures, nodeName: node.name };
  const add = singleConsumer(graph, node.outputs[0], 'Add');
  const biasInput = add?.inputs.find((input) => input !== node.outputs[0]);
  const bias = biasInput ? graph.constant(biasInput) : undefined;
  if (add && bias && elementCount(bias.dims) === outFeatures) {
    linear.bias = bias;
    linear.output = add.outputs[0];
  }
  return linear;
}

function gemmLinear(graph: GraphIndex, node: GraphNode): LinearLayer | undefined {
  const weight = graph.constant(node.inputs[1]);
  if (!weight || weight.dims.length !== 2 || graph.isConstant(node.inputs[0])) return undefined;
  if ((node.attributes.get('transA')?.i ?? 0) !== 0) return undefined;
  if ((node.attributes.get('alpha')?.f ?? 1) !== 1 || (node.attributes.get('beta')?.f ?? 1) !== 1) return undefined;
  const transposed = (node.attributes.get('transB')?.i ?? 0) === 1;
  const [inFeatures, outFeatures] = transposed ? [weight.dims[1], weight.dims[0]] : weight.dims;
  const bias = node.inputs[2] ? graph.constant(node.inputs[2]) : undefined;
  if (node.inputs[2] && (!bias || elementCount(bias.dims) !== outFeatures)) return undefined;
  return {
    input: node.inputs[0],
    output: node.outputs[0],
    weight,
    weightLayout: transposed ? 'outIn' : 'inOut',
    bias,
    inFeatures,
    outFeatures,
    nodeName: node.name,
  };
}
