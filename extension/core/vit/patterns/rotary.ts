// Rotary position embedding (RoPE) on q or k, between the projection and Q·Kᵀ (HF DINOv3,
// EVA-02): per head, x ⊙ cos + rotate_half(x) ⊙ sin, rotate_half(x) = Concat(-x₂, x₁) of the head
// dimension's halves (Slice or Split, Neg, Concat); where prefix tokens (class, registers) stay
// unrotated, the tokens are split first (Slice or Split along the token axis) and concatenated back.
import type { GraphNode } from '../../graph/graphRewrite';
import { GraphIndex } from '../../graph/graphIndex';
import { RotaryEmbedding } from '../vitStructure';
import { BlockResolutionError } from './nodeMatching';

/** What a rotary embedding rotates, its description, and half the head width when the graph states it as a constant. */
export interface RotaryMatch {
  source: string;
  rotary: RotaryEmbedding;
  half?: number;
}

/** The rotary embedding whose output `node` (a Concat with the prefix tokens, or the rotation's Add) is, if it is one. */
export function rotaryBefore(graph: GraphIndex, node: GraphNode): RotaryMatch | undefined {
  if (node.opType === 'Add') {
    const rotation = rotationOf(graph, node);
    if (!rotation) return undefined;
    return { source: rotation.input, rotary: { ...rotation.tables, layout: layoutOf(graph, rotation.input), prefixUnrotated: false }, half: rotation.half };
  }
  if (node.opType !== 'Concat' || node.inputs.length !== 2) return undefined;
  const axis = node.attributes.get('axis')?.i;
  const layout = axis === -2 || axis === 2 ? 'heads-first' : axis === -3 || axis === 1 ? 'tokens-first' : undefined;
  const rotationNode = graph.producer.get(node.inputs[1]);
  if (!layout || axis === undefined || rotationNode?.opType !== 'Add') return undefined;
  const rotation = rotationOf(graph, rotationNode);
  const prefix = tokenPart(graph, node.inputs[0], axis);
  const patches = rotation && tokenPart(graph, rotation.input, axis);
  if (!rotation || !prefix || !patches || prefix.position !== 'first' || patches.position !== 'rest' || prefix.source !== patches.source) return undefined;
  if (!(prefix.split ? prefix.split === patches.split : sameValue(graph, prefix.end!, patches.start!))) return undefined;
  return { source: prefix.source, rotary: { ...rotation.tables, layout, prefixUnrotated: true }, half: rotation.half };
}

/** Token axis of a rotation applied without a prefix split: after the heads' Transpose, or right after the Reshape into heads. */
function layoutOf(graph: GraphIndex, rotated: string): RotaryEmbedding['layout'] {
  const producer = graph.producer.get(rotated);
  const perm = producer?.attributes.get('perm')?.ints;
  if (producer?.opType === 'Transpose' && perm?.join(',') === '0,2,1,3') return 'heads-first';
  if (producer?.opType === 'Reshape') return 'tokens-first';
  throw new BlockResolutionError(`the token axis of its rotary embedding could not be read ('${rotated}' is not the heads' Reshape or Transpose)`);
}

/** Add(Mul(x, cos), Mul(rotate_half(x), sin)), in any operand order: x and the tables. */
function rotationOf(graph: GraphIndex, add: GraphNode): { input: string; tables: { cos: string; sin: string }; half?: number } | undefined {
  if (add.opType !== 'Add' || add.inputs.length !== 2) return undefined;
  const muls = add.inputs.map((input) => graph.producer.get(input));
  if (!muls.every((mul) => mul?.opType === 'Mul' && mul.inputs.length === 2)) return undefined;
  for (const [plain, rotated] of [
    [muls[0]!, muls[1]!],
    [muls[1]!, muls[0]!],
  ]) {
    for (const [operand, table] of [
      [rotated.inputs[0], rotated.inputs[1]],
      [rotated.inputs[1], rotated.inputs[0]],
    ]) {
      const half = rotateHalfInput(graph, operand);
      if (!half || !plain.inputs.includes(half.input)) continue;
      const cos = plain.inputs[0] === half.input ? plain.inputs[1] : plain.inputs[0];
      for (const [name, tensor] of [
        ['cos', cos],
        ['sin', table],
      ]) {
        if (dependsOnValues(graph, tensor))
          throw new BlockResolutionError(`the ${name} table of its rotary embedding ('${tensor}') depends on the image's values, not only its size`);
      }
      return { input: half.input, tables: { cos, sin: table }, half: half.half };
    }
  }
  return undefined;
}

/** rotate_half(x) = Concat(-x[..., h:], x[..., :h]) along the last axis, h half the head width: x, and h when constant. */
function rotateHalfInput(graph: GraphIndex, tensor: string): { input: string; half?: number } | undefined {
  const concat = graph.producer.get(tensor);
  if (concat?.opType !== 'Concat' || concat.inputs.length !== 2 || !isLastAxis(concat.attributes.get('axis')?.i)) return undefined;
  const neg = graph.producer.get(concat.inputs[0]);
  if (neg?.opType !== 'Neg') return undefined;
  const second = lastAxisPart(graph, neg.inputs[0]);
  const first = lastAxisPart(graph, concat.inputs[1]);
  if (!first || !second || first.source !== second.source || first.position !== 'first' || second.position !== 'rest') return undefined;
  if (first.split) return first.split === second.split && first.split.outputs.length === 2 && equalSplit(graph, first.split) ? { input: first.source } : undefined;
  if (!sameValue(graph, first.end!, second.start!)) return undefined;
  const half = graph.scalar(first.end!);
  if (half === undefined && !isHalfOfLastAxis(graph, first.end!, first.source)) return undefined;
  return { input: first.source, half };
}

interface TensorPart {
  source: string;
  /** 'first': the part from index 0; 'rest': the part after it. */
  position: 'first' | 'rest';
  /** Slice bounds (tensors). */
  start?: string;
  end?: string;
  /** The Split that made the part, when it is one. */
  split?: GraphNode;
}

function normalizedAxis(axis: number | undefined, rank = 4): number | undefined {
  return axis === undefined ? undefined : axis < 0 ? axis + rank : axis;
}

function isLastAxis(axis: number | undefined): boolean {
  return axis === -1 || axis === 3;
}

/** A Slice or Split output along `axis` (of a rank-4 head tensor), with where it starts. */
function tokenPart(graph: GraphIndex, tensor: string, axis: number): TensorPart | undefined {
  return partAlong(graph, tensor, (candidate) => normalizedAxis(candidate) === normalizedAxis(axis));
}

function lastAxisPart(graph: GraphIndex, tensor: string): TensorPart | undefined {
  return partAlong(graph, tensor, isLastAxis);
}

function partAlong(graph: GraphIndex, tensor: string, axisMatches: (axis: number | undefined) => boolean): TensorPart | undefined {
  const node = graph.producer.get(tensor);
  if (node?.opType === 'Split') {
    const index = node.outputs.indexOf(tensor);
    if (!axisMatches(node.attributes.get('axis')?.i ?? 0) || index > 1) return undefined;
    return { source: node.inputs[0], position: index === 0 ? 'first' : 'rest', split: node };
  }
  if (node?.opType !== 'Slice' || node.inputs.length < 4) return undefined;
  const axes = graph.ints(node.inputs[3]);
  const steps = node.inputs[4] ? graph.ints(node.inputs[4]) : [1];
  if (axes?.length !== 1 || !axisMatches(axes[0]) || steps?.length !== 1 || steps[0] !== 1) return undefined;
  return { source: node.inputs[0], position: graph.scalar(node.inputs[1]) === 0 ? 'first' : 'rest', start: node.inputs[1], end: node.inputs[2] };
}

/** A Split in two equal parts (no sizes given, or two equal ones). */
function equalSplit(graph: GraphIndex, split: GraphNode): boolean {
  const sizes = split.inputs[1] ? graph.ints(split.inputs[1]) : split.attributes.get('split')?.ints;
  return !sizes || (sizes.length === 2 && sizes[0] === sizes[1]);
}

const SCALAR_LAYOUT_OPS = new Set(['Unsqueeze', 'Squeeze', 'Cast', 'Reshape', 'Identity']);

/** True when `bound` is x.shape[-1] // 2 as PyTorch traces it: Shape(x), Gather of the last axis, Div by 2. */
function isHalfOfLastAxis(graph: GraphIndex, bound: string, x: string): boolean {
  const div = graph.producer.get(graph.sourceThrough(bound, SCALAR_LAYOUT_OPS, 6));
  if (div?.opType !== 'Div' || graph.scalar(div.inputs[1]) !== 2) return false;
  const gather = graph.producer.get(graph.sourceThrough(div.inputs[0], SCALAR_LAYOUT_OPS, 6));
  if (gather?.opType !== 'Gather' || !isLastAxis(graph.scalar(gather.inputs[1]))) return false;
  const shape = graph.producer.get(gather.inputs[0]);
  return shape?.opType === 'Shape' && graph.sourceThroughLayout(shape.inputs[0]) === graph.sourceThroughLayout(x);
}

/** Two tensors holding the same value: the same tensor, equal constants, or the same op on the same values. */
function sameValue(graph: GraphIndex, a: string, b: string, depth = 4): boolean {
  if (a === b) return true;
  const [constantA, constantB] = [graph.ints(a), graph.ints(b)];
  if (constantA || constantB) return constantA !== undefined && constantB !== undefined && constantA.join(',') === constantB.join(',');
  const [nodeA, nodeB] = [graph.producer.get(a), graph.producer.get(b)];
  if (depth === 0 || !nodeA || !nodeB || nodeA.opType !== nodeB.opType || nodeA.inputs.length !== nodeB.inputs.length) return false;
  if ((nodeA.attributes.get('axes')?.ints ?? []).join(',') !== (nodeB.attributes.get('axes')?.ints ?? []).join(',')) return false;
  return nodeA.inputs.every((input, i) => sameValue(graph, input, nodeB.inputs[i], depth - 1));
}

/**
 * True when `tensor` depends on the values of a graph input (the image), not only on shapes:
 * tables computed from the image's size are the same for every image; ones from its pixels are not.
 */
function dependsOnValues(graph: GraphIndex, tensor: string): boolean {
  const inputs = new Set(graph.model.inputs.filter((input) => !graph.model.initializers.has(input.name)).map((input) => input.name));
  const seen = new Set<string>();
  const stack = [tensor];
  while (stack.length > 0) {
    const current = stack.pop()!;
    if (seen.has(current)) continue;
    seen.add(current);
    if (inputs.has(current)) return true;
    const node = graph.producer.get(current);
    if (!node || node.opType === 'Shape' || node.opType === 'Size') continue;
    for (const input of node.inputs) if (input) stack.push(input);
  }
  return false;
}
