// Self-attention: a Softmax over Q·Kᵀ (scaled by constants, plus at most one constant bias such
// as BEiT's relative position bias), multiplied by V, then an output projection; Q, K and V traced
// back to their linear layers (separate, or thirds of a fused qkv).
import type { ConstantTensor } from '../../graph/constantTensor';
import type { GraphNode } from '../../graph/graphRewrite';
import { GraphIndex, LAYOUT_OPS } from '../../graph/graphIndex';
import { elementCount } from '../../onnx/onnxModel';
import { AttentionLayer, Projection, RotaryEmbedding, ScoreBias } from '../vitStructure';
import { DiscoveryContext } from './discoveryContext';
import { BlockResolutionError, scaledInput } from './nodeMatching';
import { rotaryBefore, RotaryMatch } from './rotary';

/** Ops that change a constant's shape but not its order: a bias reshaped to [1, heads, N, N]. */
const SHAPE_ONLY_OPS = new Set(['Reshape', 'Squeeze', 'Unsqueeze', 'Identity', 'Flatten']);

/** The constant behind a shape-only chain (the exporter's folded bias, maybe unsqueezed), if any. */
function constantThroughShape(graph: GraphIndex, tensor: string): ConstantTensor | undefined {
  return graph.constant(graph.sourceThrough(tensor, SHAPE_ONLY_OPS, 6));
}

/**
 * The MatMul producing the softmax's scores, walking up through scaling and layout ops and at most
 * one Add of a constant (a bias on the logits; `bias.factor` is the scaling applied after it).
 */
export function scoreMatMul(context: DiscoveryContext, softmax: GraphNode): { matMul: GraphNode; scale: number; bias?: { values: ConstantTensor; factor: number } } | undefined {
  const { graph } = context;
  let tensor = softmax.inputs[0];
  let scale = 1;
  let bias: { values: ConstantTensor; factor: number } | undefined;
  for (let step = 0; step < 12; step++) {
    const node = graph.producer.get(tensor);
    if (!node) return undefined;
    if (node.opType === 'MatMul') {
      return node.inputs.every((input) => !graph.isConstant(input)) ? { matMul: node, scale, bias } : undefined;
    }
    const scaled = scaledInput(graph, node);
    const biasIndex = node.opType === 'Add' && !bias ? node.inputs.findIndex((input) => constantThroughShape(graph, input) !== undefined) : -1;
    if (scaled) {
      scale *= scaled.factor;
      tensor = scaled.input;
    } else if (biasIndex >= 0 && node.inputs.length === 2) {
      bias = { values: constantThroughShape(graph, node.inputs[biasIndex])!, factor: scale };
      tensor = node.inputs[1 - biasIndex];
    } else if (LAYOUT_OPS.has(node.opType)) {
      tensor = node.inputs[0];
    } else {
      return undefined;
    }
  }
  return undefined;
}

/** True when `softmax` normalises attention scores (Q·Kᵀ of two computed tensors). */
export function isAttentionSoftmax(context: DiscoveryContext, softmax: GraphNode): boolean {
  return scoreMatMul(context, softmax) !== undefined;
}

interface TracedProjection {
  projection: Projection;
  scale: number;
  headDim?: number;
  /** The rotary embedding met on the way (q and k of DINOv3). */
  rotary?: RotaryMatch;
}

/** Walks up from a Q, K or V operand to the linear layer that made it. */
function traceProjection(context: DiscoveryContext, tensor: string, role: string): TracedProjection {
  const { graph } = context;
  let scale = 1;
  let headDim: number | undefined;
  let selector: { op: string; value: number } | undefined;
  let rotary: RotaryMatch | undefined;
  let current = tensor;
  for (let step = 0; step < 32; step++) {
    const linear = context.linears.byOutput.get(current);
    if (linear) {
      const fused = linear.outFeatures === 3 * linear.inFeatures;
      let part: number | undefined;
      if (fused) {
        if (!selector) throw new BlockResolutionError(`the ${role} comes from a fused qkv layer but the slice taken from it was not found`);
        const third = linear.outFeatures / 3;
        part = selector.op === 'Slice' && selector.value >= 3 ? Math.round(selector.value / third) : selector.value;
        if (!(part >= 0 && part <= 2)) throw new BlockResolutionError(`the ${role}'s slice of the fused qkv layer is ${selector.op} ${selector.value}, not one of three parts`);
      }
      return { projection: { linear, part }, scale, headDim, rotary };
    }
    const node = graph.producer.get(current);
    if (!node) break;
    const scaled = scaledInput(graph, node);
    if (scaled) {
      scale *= scaled.factor;
      current = scaled.input;
      continue;
    }
    switch (node.opType) {
      case 'Concat':
      case 'Add': {
        const match = rotary ? undefined : rotaryBefore(graph, node);
        if (!match) break;
        rotary = match;
        current = match.source;
        continue;
      }
      case 'Reshape': {
        headDim ??= lastShapeValue(context, node.inputs[1]);
        current = node.inputs[0];
        continue;
      }
      case 'Gather': {
        const index = graph.scalar(node.inputs[1]);
        if (index === undefined) break;
        selector ??= { op: 'Gather', value: index };
        current = node.inputs[0];
        continue;
      }
      case 'Split': {
        selector ??= { op: 'Split', value: node.outputs.indexOf(current) };
        current = node.inputs[0];
        continue;
      }
      case 'Slice': {
        const starts = graph.ints(node.inputs[1]);
        const position = starts?.length === 1 ? starts[0] : slicePosition(context, node);
        if (position === undefined) break;
        selector ??= { op: 'Slice', value: position };
        current = node.inputs[0];
        continue;
      }
      default:
        if (LAYOUT_OPS.has(node.opType)) {
          current = node.inputs[0];
          continue;
        }
    }
    throw new BlockResolutionError(`the ${role} path meets '${node.opType}' (${node.name || node.outputs[0]}) before reaching a linear layer`);
  }
  throw new BlockResolutionError(`no linear layer produces the ${role}`);
}

/**
 * Which of consecutive slices of one tensor this is, when the bounds are computed at run time
 * (as PyTorch exports chunk() of a dynamic shape): the first starts at constant 0, each next
 * one starts where the previous ends.
 */
function slicePosition(context: DiscoveryContext, slice: GraphNode): number | undefined {
  const { graph } = context;
  const siblings = graph.consumersOf(slice.inputs[0]).filter((node) => node.opType === 'Slice');
  let current = siblings.find((node) => graph.ints(node.inputs[1])?.[0] === 0);
  for (let position = 0; current && position < siblings.length; position++) {
    if (current === slice) return position;
    const end = current.inputs[2];
    current = siblings.find((node) => node.inputs[1] === end);
  }
  return undefined;
}

/** The last entry of a Reshape's target shape (a head dimension), when the graph states it. */
function lastShapeValue(context: DiscoveryContext, shapeTensor: string): number | undefined {
  const { graph } = context;
  const values = graph.ints(shapeTensor);
  if (values) {
    const last = values[values.length - 1];
    return last > 0 ? last : undefined;
  }
  const concat = graph.producer.get(shapeTensor);
  if (concat?.opType === 'Concat') {
    const lastValues = graph.ints(concat.inputs[concat.inputs.length - 1]);
    const last = lastValues?.[lastValues.length - 1];
    return last !== undefined && last > 0 ? last : undefined;
  }
  return undefined;
}

function headDimFromScale(scale: number): number | undefined {
  const headDim = Math.round(1 / (scale * scale));
  return Math.abs(1 / Math.sqrt(headDim) - scale) < 1e-4 * scale ? headDim : undefined;
}

/** The attention module `softmax` belongs to, from its input tensor to its output projection. */
export function resolveAttention(context: DiscoveryContext, softmax: GraphNode): AttentionLayer {
  const { graph } = context;
  const { matMul: scores, scale: scoreScale, bias } = scoreMatMul(context, softmax)!;
  const query = traceProjection(context, scores.inputs[0], 'query');
  const key = traceProjection(context, scores.inputs[1], 'key');

  let probabilities = softmax.outputs[0];
  let valueMatMul: GraphNode | undefined;
  for (let step = 0; step < 6 && !valueMatMul; step++) {
    const consumers = graph.dataConsumersOf(probabilities);
    if (consumers.length !== 1) break;
    const node = consumers[0];
    if (node.opType === 'MatMul' && node.inputs[0] === probabilities) valueMatMul = node;
    else if (LAYOUT_OPS.has(node.opType)) probabilities = node.outputs[0];
    else break;
  }
  if (!valueMatMul) throw new BlockResolutionError('the attention probabilities are not multiplied by a value tensor');
  const value = traceProjection(context, valueMatMul.inputs[1], 'value');

  const next = graph.nextThroughLayout(valueMatMul.outputs[0]);
  const outProjection = next && context.linears.ofNode(next.node);
  if (!outProjection) throw new BlockResolutionError('no output projection follows the attention');

  const inputs = [query, key, value].map((entry) => graph.sourceThroughLayout(entry.projection.linear.input));
  if (new Set(inputs).size !== 1) throw new BlockResolutionError('its query, key and value are computed from different tensors (not self-attention)');
  if (value.scale !== 1) throw new BlockResolutionError(`its value path is scaled by ${value.scale}, which plain attention does not do`);
  const qWidth = query.projection.part === undefined ? query.projection.linear.outFeatures : query.projection.linear.outFeatures / 3;
  const headDim = query.headDim ?? key.headDim ?? value.headDim ?? headDimFromScale(scoreScale * query.scale * key.scale);
  if (!headDim || qWidth % headDim !== 0) {
    throw new BlockResolutionError(`its number of heads could not be read from the graph (query width ${qWidth}, head size ${headDim ?? 'unknown'})`);
  }
  const heads = qWidth / headDim;
  return {
    input: inputs[0],
    output: outProjection.output,
    ...rotaryOf(query, key, value, headDim),
    query: query.projection,
    key: key.projection,
    value: value.projection,
    outProjection,
    heads,
    headDim,
    scoreScale: scoreScale * query.scale * key.scale,
    scoreBias: bias && scoreBias(bias.values, bias.factor, heads),
  };
}

/** The rotary embedding of q and k: the same on both, none on v, over the whole head width. */
function rotaryOf(query: TracedProjection, key: TracedProjection, value: TracedProjection, headDim: number): { rotary?: RotaryEmbedding } {
  if (!query.rotary && !key.rotary && !value.rotary) return {};
  if (value.rotary) throw new BlockResolutionError('its value path is rotated (a rotary embedding), which attention does not do to values');
  if (!query.rotary || !key.rotary)
    throw new BlockResolutionError(`only its ${query.rotary ? 'query' : 'key'} is rotated by a rotary embedding; Plasticity Lens reads rotary attention that rotates both`);
  const [q, k] = [query.rotary.rotary, key.rotary.rotary];
  if (q.cos !== k.cos || q.sin !== k.sin || q.layout !== k.layout || q.prefixUnrotated !== k.prefixUnrotated) {
    throw new BlockResolutionError('its query and key are rotated differently (other tables or tokens), which Plasticity Lens does not read');
  }
  for (const half of [query.rotary.half, key.rotary.half]) {
    if (half !== undefined && 2 * half !== headDim) {
      throw new BlockResolutionError(`its rotary embedding rotates ${2 * half} of the ${headDim} features of a head (a partial rotation), which Plasticity Lens does not read`);
    }
  }
  return { rotary: q };
}

/** A constant added to the logits as [heads or 1, N, N] (the class token's rows included). */
function scoreBias(values: ConstantTensor, factor: number, heads: number): ScoreBias {
  const tokens = values.dims[values.dims.length - 1];
  const count = elementCount(values.dims);
  const biasHeads = count / (tokens * tokens);
  if (values.dims.length < 2 || values.dims[values.dims.length - 2] !== tokens || (biasHeads !== 1 && biasHeads !== heads)) {
    throw new BlockResolutionError(`the constant added to its attention logits has shape [${values.dims.join(', ')}], not [${heads}, N, N] (a relative position bias)`);
  }
  return { values, factor, heads: biasHeads, tokens };
}
