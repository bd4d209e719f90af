// The MLP: FC1, an activation, FC2; or a SwiGLU MLP, fc2(norm?(silu(gate) ⊙ value)), whose gate
// and value are two linear layers reading the same tensor (timm SwiGLU: `fc1_g`, `fc1_x`) or the
// two halves of one packed fc1 [d, 2h] (timm GluMlp / SwiGLUPacked: Split, or two Slices of the
// last axis as torch exports `chunk`).
import type { GraphNode } from '../../graph/graphRewrite';
import { GraphIndex } from '../../graph/graphIndex';
import { Activation, GatedMlp, LinearLayer } from '../vitStructure';
import { DiscoveryContext } from './discoveryContext';
import { BlockResolutionError } from './nodeMatching';

/** What an MLP is made of, as structure found it. */
export interface MlpParts {
  fc1: LinearLayer[];
  fc2: LinearLayer;
  activation: Activation;
  gatedMlp?: GatedMlp;
}

/** The MLP reading `input` (LN2's output in a pre-norm block); `what` names FC1 in errors. */
export function resolveMlp(context: DiscoveryContext, input: string, what: string): MlpParts {
  const readers = context.linears.byInput.get(input) ?? [];
  if (readers.length === 2) {
    const separate = separateGatedMlp(context, readers[0], readers[1]);
    if (separate) return separate;
  }
  const fc1 = context.linears.require(input, what);
  const packed = packedGatedMlp(context, fc1);
  if (packed) return packed;
  const { fc2, activation } = mlpAfter(context, fc1);
  return { fc1: [fc1], fc2, activation };
}

/** The second MLP linear after fc1, and the activation between them. */
export function mlpAfter(context: DiscoveryContext, fc1: LinearLayer): { fc2: LinearLayer; activation: Activation } {
  const { graph, linears } = context;
  const seen = new Set<string>();
  const ops = new Set<string>();
  let frontier = [fc1.output];
  for (let depth = 0; depth < 12; depth++) {
    const nextFrontier: string[] = [];
    for (const tensor of frontier) {
      for (const node of graph.consumersOf(tensor)) {
        const linear =
          node.opType === 'MatMul' || node.opType === 'Gemm' ? linears.byInput.get(node.inputs[0])?.find((candidate) => candidate.input === node.inputs[0]) : undefined;
        if (linear && linear !== fc1) return { fc2: linear, activation: classifyActivation(context, ops, fc1.output) };
        if (seen.has(node.outputs[0])) continue;
        seen.add(node.outputs[0]);
        ops.add(node.opType);
        nextFrontier.push(...node.outputs);
      }
    }
    frontier = nextFrontier;
  }
  throw new BlockResolutionError('no second MLP linear layer (FC2) follows FC1');
}

function separateGatedMlp(context: DiscoveryContext, first: LinearLayer, second: LinearLayer): MlpParts | undefined {
  if (first.outFeatures !== second.outFeatures) return undefined;
  const product = gatedProduct(context.graph, first.output, second.output);
  if (!product) return undefined;
  const [gate, value] = product.gateFirst ? [first, second] : [second, first];
  return gatedMlpAfter(context, product.output, [gate, value], { gate: { linear: gate }, value: { linear: value } }, gate.outFeatures);
}

function packedGatedMlp(context: DiscoveryContext, fc1: LinearLayer): MlpParts | undefined {
  const halves = packedHalves(context.graph, fc1);
  if (!halves) return undefined;
  const product = gatedProduct(context.graph, halves[0], halves[1]);
  if (!product) return undefined;
  const gateHalf = product.gateFirst ? 0 : 1;
  return gatedMlpAfter(context, product.output, [fc1], { gate: { linear: fc1, half: gateHalf }, value: { linear: fc1, half: gateHalf === 0 ? 1 : 0 } }, fc1.outFeatures / 2);
}

/** The optional norm over the hidden width after silu(gate) ⊙ value, then FC2. */
function gatedMlpAfter(context: DiscoveryContext, product: string, fc1: LinearLayer[], halves: Omit<GatedMlp, 'norm'>, hidden: number): MlpParts {
  const norms = context.layerNorms.byInput.get(product);
  const norm = norms?.length === 1 && norms[0].width === hidden ? norms[0] : undefined;
  const fc2 = context.linears.require(norm ? norm.output : product, norm ? 'FC2 after the MLP norm' : 'FC2 after the SwiGLU gate');
  if (fc2.inFeatures !== hidden) throw new BlockResolutionError(`its SwiGLU gate is ${hidden} wide but FC2 reads ${fc2.inFeatures} features`);
  return { fc1, fc2, activation: 'silu', gatedMlp: { ...halves, ...(norm ? { norm } : {}) } };
}

/**
 * x ⊙ sigmoid(x), as exporters write SiLU, or onnxruntime's fusion of it (its extended
 * optimizations save com.microsoft QuickGelu with alpha 1: x ⊙ sigmoid(alpha x)).
 */
function siluOf(graph: GraphIndex, tensor: string): string | undefined {
  const fused = graph.dataConsumersOf(tensor).find((node) => node.opType === 'QuickGelu' && node.domain === 'com.microsoft' && node.attributes.get('alpha')?.f === 1);
  if (fused) return fused.outputs[0];
  const sigmoid = graph.dataConsumersOf(tensor).find((node) => node.opType === 'Sigmoid');
  if (!sigmoid) return undefined;
  return graph.dataConsumersOf(sigmoid.outputs[0]).find((node) => node.opType === 'Mul' && node.inputs.includes(tensor))?.outputs[0];
}

/** The Mul of silu(gate) by value, with gate one of the two tensors: which one, and its output. */
function gatedProduct(graph: GraphIndex, first: string, second: string): { output: string; gateFirst: boolean } | undefined {
  for (const [gate, value, gateFirst] of [
    [first, second, true],
    [second, first, false],
  ] as const) {
    const activated = siluOf(graph, gate);
    const mul = activated ? graph.dataConsumersOf(activated).find((node) => node.opType === 'Mul' && node.inputs.includes(value)) : undefined;
    if (mul) return { output: mul.outputs[0], gateFirst };
  }
  return undefined;
}

/**
 * The first and second half of a packed fc1's output along its last axis: one Split in two, or
 * two Slices, the first starting at 0 (torch's `chunk` computes the other bounds from the shape
 * in a dynamic export, so only constant ones are checked).
 */
function packedHalves(graph: GraphIndex, fc1: LinearLayer): [string, string] | undefined {
  const width = fc1.outFeatures;
  if (width % 2 !== 0) return undefined;
  const consumers = graph.dataConsumersOf(fc1.output);
  const lastAxis = (axis: number | undefined) => axis === -1 || axis === 2;
  if (consumers.length === 1 && consumers[0].opType === 'Split' && consumers[0].outputs.length === 2) {
    const split = consumers[0];
    const sizes = split.inputs[1] ? graph.ints(split.inputs[1]) : (split.attributes.get('split')?.ints ?? undefined);
    if (!lastAxis(split.attributes.get('axis')?.i ?? 0) || (sizes && (sizes[0] !== width / 2 || sizes[1] !== width / 2))) return undefined;
    return [split.outputs[0], split.outputs[1]];
  }
  if (consumers.length !== 2 || !consumers.every((node) => node.opType === 'Slice' && sliceOnLastAxis(graph, node))) return undefined;
  const starts = consumers.map((node) => graph.ints(node.inputs[1]));
  const ends = consumers.map((node) => graph.ints(node.inputs[2]));
  const first = starts.findIndex((start) => start?.length === 1 && start[0] === 0);
  if (first < 0) return undefined;
  const second = 1 - first;
  const constantMismatch = (values: number[] | undefined, expected: number) => values !== undefined && values[0] !== expected && !(expected === width && values[0] >= width);
  if (constantMismatch(ends[first], width / 2) || constantMismatch(starts[second], width / 2) || constantMismatch(ends[second], width)) return undefined;
  return [consumers[first].outputs[0], consumers[second].outputs[0]];
}

function sliceOnLastAxis(graph: GraphIndex, node: GraphNode): boolean {
  const axes = node.inputs[3] ? graph.ints(node.inputs[3]) : undefined;
  const steps = node.inputs[4] ? graph.ints(node.inputs[4]) : undefined;
  return axes !== undefined && axes.length === 1 && (axes[0] === -1 || axes[0] === 2) && (steps === undefined || (steps.length === 1 && steps[0] === 1));
}

function classifyActivation(context: DiscoveryContext, ops: Set<string>, fc1Output: string): Activation {
  const { graph } = context;
  if (ops.has('Gelu')) {
    const gelu = graph.consumersOf(fc1Output).find((node) => node.opType === 'Gelu');
    return gelu?.attributes.get('approximate')?.s === 'tanh' ? 'gelu_tanh' : 'gelu';
  }
  if (ops.has('FastGelu')) return 'gelu_tanh';
  if (ops.has('Erf')) return 'gelu';
  if (ops.has('Tanh')) return 'gelu_tanh';
  if (ops.has('Sigmoid')) {
    const sigmoidInput = graph.consumersOf(fc1Output).find((node) => node.opType === 'Mul');
    const factor = sigmoidInput ? sigmoidInput.inputs.map((input) => graph.scalar(input)).find((value) => value !== undefined) : undefined;
    return factor !== undefined && Math.abs(factor - 1.702) < 1e-3 ? 'quick_gelu' : 'silu';
  }
  if (ops.has('Relu')) return 'relu';
  throw new BlockResolutionError(`the activation between FC1 and FC2 (${[...ops].join(', ')}) is not one of GELU, tanh-GELU, quick-GELU, SiLU or ReLU`);
}
