// LayerNorms, as the LayerNormalization op (opset 17+, or rewritten from fused forms) or
// decomposed by older exporters into ReduceMean, Sub, Pow, Sqrt, Div, Mul, Add.
import type { GraphNode } from '../../graph/graphRewrite';
import { ConstantTensor } from '../../graph/constantTensor';
import { GraphIndex } from '../../graph/graphIndex';
import { elementCount } from '../../onnx/onnxModel';
import { LayerNormLayer } from '../vitStructure';
import { BlockResolutionError, singleConsumer } from './nodeMatching';

export class LayerNormIndex {
  readonly byInput = new Map<string, LayerNormLayer[]>();
  readonly byOutput = new Map<string, LayerNormLayer>();

  constructor(graph: GraphIndex) {
    for (const node of graph.nodes) {
      const layerNorm = node.opType === 'LayerNormalization' ? fusedLayerNorm(graph, node) : node.opType === 'ReduceMean' ? decomposedLayerNorm(graph, node) : undefined;
      if (!layerNorm) continue;
      this.byOutput.set(layerNorm.output, layerNorm);
      const list = this.byInput.get(layerNorm.input) ?? [];
      list.push(layerNorm);
      this.byInput.set(layerNorm.input, list);
    }
  }

  get count(): number {
    return new Set(this.byOutput.values()).size;
  }

  /** The one LayerNorm reading `tensor`; `what` names it in the error. */
  on(tensor: string, what: string): LayerNormLayer {
    const list = this.byInput.get(tensor);
    if (!list || list.length !== 1) throw new BlockResolutionError(`no single LayerNorm (${what}) reads '${tensor}'`);
    return list[0];
  }
}

function fusedLayerNorm(graph: GraphIndex, node: GraphNode): LayerNormLayer | undefined {
  const gamma = graph.constant(node.inputs[1]);
  if (!gamma) return undefined;
  const beta = node.inputs[2] ? graph.constant(node.inputs[2]) : undefined;
  const axis = node.attributes.get('axis')?.i ?? -1;
  if (axis !== -1 && axis !== 2) return undefined;
  return {
    input: node.inputs[0],
    output: node.outputs[0],
    gamma,
    beta,
    epsilon: node.attributes.get('epsilon')?.f ?? 1e-5,
    width: elementCount(gamma.dims),
  };
}

/** mean -> Sub -> Pow 2 -> mean -> Add eps -> Sqrt -> Div [-> Mul gamma] [-> Add beta]. */
function decomposedLayerNorm(graph: GraphIndex, meanNode: GraphNode): LayerNormLayer | undefined {
  const x = meanNode.inputs[0];
  const sub = graph.consumersOf(meanNode.outputs[0]).find((node) => node.opType === 'Sub' && node.inputs[0] === x);
  if (!sub) return undefined;
  const centred = sub.outputs[0];
  const div = graph.consumersOf(centred).find((node) => node.opType === 'Div' && node.inputs[0] === centred);
  if (!div) return undefined;
  const sqrt = graph.producer.get(div.inputs[1]);
  if (sqrt?.opType !== 'Sqrt') return undefined;
  const addEps = graph.producer.get(sqrt.inputs[0]);
  if (addEps?.opType !== 'Add') return undefined;
  const epsilonIndex = addEps.inputs.findIndex((input) => graph.isConstant(input));
  if (epsilonIndex < 0) return undefined;
  const epsilon = graph.scalar(addEps.inputs[epsilonIndex]);
  const variance = graph.producer.get(addEps.inputs[1 - epsilonIndex]);
  if (variance?.opType !== 'ReduceMean' || epsilon === undefined) return undefined;
  const square = graph.producer.get(variance.inputs[0]);
  const isSquare =
    (square?.opType === 'Pow' && square.inputs[0] === centred && graph.scalar(square.inputs[1]) === 2) ||
    (square?.opType === 'Mul' && square.inputs[0] === centred && square.inputs[1] === centred);
  if (!isSquare) return undefined;

  let output = div.outputs[0];
  let gamma: ConstantTensor | undefined;
  let beta: ConstantTensor | undefined;
  const mul = singleConsumer(graph, output, 'Mul');
  const gammaInput = mul?.inputs.find((input) => input !== output && graph.isConstant(input));
  if (mul && gammaInput) {
    gamma = graph.constant(gammaInput);
    output = mul.outputs[0];
  }
  const add = singleConsumer(graph, output, 'Add');
  const betaInput = add?.inputs.find((input) => input !== output && graph.isConstant(input));
  if (add && betaInput) {
    beta = graph.constant(betaInput);
    output = add.outputs[0];
  }
  const width = gamma ? elementCount(gamma.dims) : beta ? elementCount(beta.dims) : 0;
  return { input: x, output, gamma, beta, epsilon, width };
}
