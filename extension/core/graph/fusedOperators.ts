// onnxruntime's fused operators (docs/ContribOperators.md) and the ONNX Attention op (opset 23),
// expanded into the plain operators they compute, so that discovery finds linears, residual adds,
// LayerNorms and softmax attention the same way in every graph. Masks are not carried over: image
// tokens are never padded, and a ViT attends to every token.
import { ModelFileError } from '../errors';
import * as path from 'node:path';
import { NodeInfo, TensorDataType } from '../onnx/onnxModel';
import { readInts } from '../onnx/tensorValues';
import { RewriteContext } from './graphRewrite';
import { valuesConstant } from './constantTensor';

/** Appends the plain operators `node` computes to the canonical graph. */
export type Expansion = (context: RewriteContext, node: NodeInfo) => void;

function fail(context: RewriteContext, node: NodeInfo, why: string): never {
  throw new ModelFileError(`${path.basename(context.model.filePath)}: ${node.opType} '${node.name || node.outputs[0]}' ${why}.`);
}

function intConstant(context: RewriteContext, values: number[], prefix: string): string {
  return context.graph.addConstant(valuesConstant(context.graph.fresh(prefix), TensorDataType.INT64, values));
}

function floatScalar(context: RewriteContext, value: number, prefix: string): string {
  return context.graph.addConstant(valuesConstant(context.graph.fresh(prefix), TensorDataType.FLOAT, [value], []));
}

/** x + bias when the fused op carries a bias input, else x. */
function withBias(context: RewriteContext, input: string, bias: string | undefined, output?: string): string {
  if (!bias) return output ? context.graph.add('Identity', [input], output) : input;
  return context.graph.add('Add', [input, bias], output);
}

const PRODUCTS = new Set(['MatMul', 'Gemm', 'FusedMatMul']);

/**
 * SkipLayerNormalization(input, skip, gamma, beta?, bias?) -> LN(input + skip + bias); output 3 is
 * the sum. The bias is the preceding linear layer's, so it is added to the operand that layer
 * made (onnxruntime's fusion puts the residual stream first, other writers put it second).
 */
const skipLayerNormalization: Expansion = (context, node) => {
  const [first, second, gamma, beta, bias] = node.inputs;
  const madeByProduct = (tensor: string) => PRODUCTS.has(context.producer.get(tensor)?.opType ?? '');
  const [input, skip] = madeByProduct(second) && !madeByProduct(first) ? [second, first] : [first, second];
  if ((node.outputs[1] && context.consumers.has(node.outputs[1])) || (node.outputs[2] && context.consumers.has(node.outputs[2]))) {
    fail(context, node, 'has its mean or inverse standard deviation read by other nodes, which a LayerNorm does not');
  }
  const biased = withBias(context, input, bias);
  const sum = context.graph.add('Add', [biased, skip], node.outputs[3] || context.graph.fresh('skip_sum'));
  const epsilon = node.attributes.get('epsilon')?.f ?? 1e-12;
  context.graph.add('LayerNormalization', beta ? [sum, gamma, beta] : [sum, gamma], node.outputs[0], { axis: -1, epsilon: { float: epsilon } }, '', node.name);
};

/** BiasGelu(x, bias) -> Gelu(x + bias) (erf GELU). */
const biasGelu: Expansion = (context, node) => {
  const sum = withBias(context, node.inputs[0], node.inputs[1]);
  context.graph.add('Gelu', [sum], node.outputs[0], {}, 'com.microsoft', node.name);
};

/** FastGelu(x, bias?) -> tanh-approximated GELU of x + bias. */
const fastGelu: Expansion = (context, node) => {
  const sum = withBias(context, node.inputs[0], node.inputs[1]);
  context.graph.add('FastGelu', [sum], node.outputs[0], {}, 'com.microsoft', node.name);
};

/**
 * FusedMatMul(A, B): alpha * op(A) op(B) (onnxruntime's contrib spec): transBatchA moves A's
 * first axis to just before its last, [1, ..., r-2, 0, r-1] (the head reshapes of
 * nn.MultiheadAttention fused into the product), then transA swaps the last two axes; the same
 * for B. Each operand becomes one Transpose by the composed permutation.
 */
const fusedMatMul: Expansion = (context, node) => {
  const attribute = (name: string) => node.attributes.get(name)?.i ?? 0;
  const batched = attribute('transBatchA') === 1 || attribute('transBatchB') === 1;
  const [first, second] = node.inputs;
  const operand = (name: string, other: string, transposeBatch: boolean, transposed: boolean) => {
    if (!transposeBatch && !transposed) return name;
    // The spec's batch transpose needs both operands of one rank, at least 3.
    const rank = batched ? (knownRank(context, name) ?? knownRank(context, other)) : (knownRank(context, name) ?? ATTENTION_RANK);
    if (rank === undefined) fail(context, node, `transposes the batch axes of an operand of unknown rank ('${name}')`);
    if (transposeBatch && rank < 3) fail(context, node, `transposes the batch axes of an operand of rank ${rank}`);
    let perm = Array.from({ length: rank }, (_, i) => i);
    if (transposeBatch) perm = [...perm.slice(1, rank - 1), perm[0], perm[rank - 1]];
    if (transposed) [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
    return context.graph.add('Transpose', [name], undefined, { perm });
  };
  const a = operand(first, second, attribute('transBatchA') === 1, attribute('transA') === 1);
  const b = operand(second, first, attribute('transBatchB') === 1, attribute('transB') === 1);
  const alpha = node.attributes.get('alpha')?.f ?? 1;
  if (alpha === 1) {
    context.graph.add('MatMul', [a, b], node.outputs[0], {}, '', node.name);
  } else {
    const product = context.graph.add('MatMul', [a, b], undefined, {}, '', node.name);
    context.graph.add('Mul', [product, floatScalar(context, alpha, 'alpha')], node.outputs[0]);
  }
};

/** onnxruntime fuses a transpose into the score product Q·Kᵀ, whose operands are [batch, heads, tokens, dh]. */
const ATTENTION_RANK = 4;

/** Ops whose output has the largest rank of their inputs (elementwise, broadcasting). */
const RANK_PRESERVING = new Set(['Softmax', 'Mul', 'Div', 'Add', 'Sub', 'Cast', 'Identity', 'Transpose', 'Erf', 'Relu', 'Sigmoid', 'Tanh']);

/**
 * Rank of a tensor when the file states it: a constant's dims, a declared shape, a Reshape to a
 * constant shape, or what a rank-preserving op reads.
 */
function knownRank(context: RewriteContext, name: string, depth = 0): number | undefined {
  const constant = context.model.initializers.get(name);
  if (constant) return constant.dims.length;
  const declared = context.model.valueInfo.get(name)?.shape ?? context.model.inputs.find((input) => input.name === name)?.shape;
  if (declared) return declared.length;
  const producer = context.producer.get(name);
  if (!producer || depth > 8) return undefined;
  if (producer.opType === 'Reshape') {
    const shape =
      context.model.initializers.get(producer.inputs[1]) ??
      (context.producer.get(producer.inputs[1])?.opType === 'Constant' ? context.producer.get(producer.inputs[1])!.attributes.get('value')?.t : undefined);
    return shape?.dims[0];
  }
  if (!RANK_PRESERVING.has(producer.opType)) return undefined;
  const ranks = producer.inputs.filter(Boolean).map((input) => knownRank(context, input, depth + 1));
  return ranks.every((rank) => rank !== undefined) ? Math.max(...(ranks as number[])) : undefined;
}

/** Width of the last axis of `tensor` when a linear layer's constant weight states it. */
function widthOf(context: RewriteContext, tensor: string): number | undefined {
  let current = tensor;
  for (let step = 0; step < 4; step++) {
    const node = context.producer.get(current);
    if (!node) return undefined;
    if (node.opType === 'MatMul') return context.model.initializers.get(node.inputs[1])?.dims.at(-1);
    if (node.opType !== 'Add') return undefined;
    current = node.inputs.find((input) => !context.model.initializers.has(input)) ?? node.inputs[0];
  }
  return undefined;
}

/** The head size of a [batch, heads, tokens, dh] operand, read from the Reshape that split the heads. */
function headSizeOf(context: RewriteContext, tensor: string): number | undefined {
  let current = tensor;
  for (let step = 0; step < 4; step++) {
    const node = context.producer.get(current);
    if (!node) return undefined;
    if (node.opType === 'Reshape') {
      // A Reshape whose shape is a constant (the model's own; shapes are never float16 or 8-bit).
      const shape = context.model.initializers.get(node.inputs[1]);
      const last = shape ? readInts(context.model, shape).at(-1) : undefined;
      return last !== undefined && last > 0 ? last : undefined;
    }
    if (node.opType !== 'Transpose') return undefined;
    current = node.inputs[0];
  }
  return undefined;
}

/**
 * softmax(Q Kᵀ · scale) V over `heads` heads of [batch, tokens, heads * dh] operands, written
 * as the plain operators a PyTorch export has (head split by Reshape, Transpose), ending in
 * `output` [batch, tokens, heads * dh].
 */
function headAttention(context: RewriteContext, q: string, k: string, v: string, heads: number, headDim: number, scale: number, output: string, name: string): void {
  const g = context.graph;
  const headShape = intConstant(context, [0, 0, heads, headDim], 'head_shape');
  const perHead = (tensor: string, perm: number[]) => g.add('Transpose', [g.add('Reshape', [tensor, headShape])], undefined, { perm });
  const scores = g.add('MatMul', [perHead(q, [0, 2, 1, 3]), perHead(k, [0, 2, 3, 1])], undefined, {}, '', `${name}/scores`);
  const probabilities = g.add('Softmax', [g.add('Mul', [scores, floatScalar(context, scale, 'scale')])], undefined, { axis: -1 });
  const context4d = g.add('MatMul', [probabilities, perHead(v, [0, 2, 1, 3])]);
  g.add('Reshape', [g.add('Transpose', [context4d], undefined, { perm: [0, 2, 1, 3] }), intConstant(context, [0, 0, heads * headDim], 'merge_shape')], output);
}

function headsAttribute(context: RewriteContext, node: NodeInfo, name: string): number {
  const heads = node.attributes.get(name)?.i;
  if (!heads || heads <= 0) fail(context, node, `has no ${name} attribute`);
  return heads;
}

/** com.microsoft.Attention(input, weights [d, 3d], bias [3d], mask?...) -> projections and attention. */
const packedAttention: Expansion = (context, node) => {
  const [input, weights, bias] = node.inputs;
  const heads = headsAttribute(context, node, 'num_heads');
  if (node.attributes.get('unidirectional')?.i) fail(context, node, 'is causal (unidirectional), which a ViT is not');
  if (node.attributes.get('do_rotary')?.i) fail(context, node, 'uses rotary embeddings, which a ViT does not');
  if (node.inputs[4] || node.inputs[6]) fail(context, node, 'reads a past key/value cache, which a ViT does not');
  const weight = context.model.initializers.get(weights);
  if (!weight || weight.dims.length !== 2) fail(context, node, 'has no constant [d, 3d] weight');
  const sizes: number[] = node.attributes.get('qkv_hidden_sizes')?.ints ?? Array.from({ length: 3 }, () => weight.dims[1] / 3);
  if (sizes.length !== 3 || sizes[0] !== sizes[1] || sizes[0] !== sizes[2]) {
    fail(context, node, `has unequal query, key and value widths (qkv_hidden_sizes ${sizes.join(', ')}), which Plasticity Lens does not read`);
  }
  const width = sizes[0];
  const headDim = width / heads;
  const g = context.graph;
  const projected = g.add('MatMul', [input, weights], undefined, {}, '', `${node.name}/qkv`);
  const qkv = withBias(context, projected, bias);
  const third = (part: number) =>
    g.add('Slice', [qkv, intConstant(context, [part * width], 'start'), intConstant(context, [(part + 1) * width], 'end'), intConstant(context, [-1], 'axis')]);
  const scale = node.attributes.get('scale')?.f ?? 1 / Math.sqrt(headDim);
  headAttention(context, third(0), third(1), third(2), heads, headDim, scale, node.outputs[0], node.name);
};

/** com.microsoft.MultiHeadAttention(query, key, value, bias? [3d], ...) with projected 3-D inputs. */
const multiHeadAttention: Expansion = (context, node) => {
  const [query, key, value, bias] = node.inputs;
  const heads = headsAttribute(context, node, 'num_heads');
  if (!key || !value) fail(context, node, 'has packed query/key/value input, which Plasticity Lens does not read; open the model before that fusion');
  if (node.inputs[6] || node.inputs[7]) fail(context, node, 'reads a past key/value cache, which a ViT does not');
  const width = widthOf(context, query);
  if (!width) fail(context, node, 'has a query whose width no linear layer states');
  const headDim = width / heads;
  const part = (tensor: string, index: number) => {
    if (!bias) return tensor;
    const slice = context.graph.addConstant({
      ...biasSlice(context, node, bias),
      name: `${bias}::part${index}`,
      slice: { axis: 0, start: index * width, end: (index + 1) * width },
      dims: [width],
    });
    return context.graph.add('Add', [tensor, slice]);
  };
  const scale = node.attributes.get('scale')?.f ?? 1 / Math.sqrt(headDim);
  headAttention(context, part(query, 0), part(key, 1), part(value, 2), heads, headDim, scale, node.outputs[0], node.name);
};

function biasSlice(context: RewriteContext, node: NodeInfo, bias: string) {
  const stored = context.model.initializers.get(bias);
  if (!stored) fail(context, node, 'has a bias that is not a constant');
  return { stored, storedIn: 'initializer' as const };
}

/** ONNX Attention (opset 23): Q, K, V as [B, S, heads*dh] (with q_num_heads) or [B, heads, S, dh]. */
const onnxAttention: Expansion = (context, node) => {
  const [query, key, value, , pastKey] = node.inputs;
  if (node.attributes.get('is_causal')?.i) fail(context, node, 'is causal, which a ViT is not');
  if (node.attributes.get('softcap')?.f) fail(context, node, 'caps its scores (softcap), which Plasticity Lens does not read');
  if (pastKey) fail(context, node, 'reads a past key/value cache, which a ViT does not');
  const g = context.graph;
  const qHeads = node.attributes.get('q_num_heads')?.i;
  if (qHeads) {
    const kvHeads = node.attributes.get('kv_num_heads')?.i ?? qHeads;
    if (kvHeads !== qHeads) fail(context, node, 'shares keys between query heads (grouped-query attention), which a ViT does not');
    const width = widthOf(context, query);
    if (!width) fail(context, node, 'has a query whose width no linear layer states');
    const headDim = width / qHeads;
    const scale = node.attributes.get('scale')?.f ?? 1 / Math.sqrt(headDim);
    headAttention(context, query, key, value, qHeads, headDim, scale, node.outputs[0], node.name);
    return;
  }
  // 4-D operands are already per head.
  const headDim = headSizeOf(context, query);
  const explicitScale = node.attributes.get('scale')?.f;
  if (explicitScale === undefined && !headDim) fail(context, node, 'has no scale attribute and a head size the graph does not state');
  const scale = explicitScale ?? 1 / Math.sqrt(headDim!);
  const keyTransposed = g.add('Transpose', [key], undefined, { perm: [0, 1, 3, 2] });
  const scores = g.add('MatMul', [query, keyTransposed], undefined, {}, '', `${node.name}/scores`);
  const probabilities = g.add('Softmax', [g.add('Mul', [scores, floatScalar(context, scale, 'scale')])], undefined, { axis: -1 });
  g.add('MatMul', [probabilities, value], node.outputs[0]);
};

export const FUSED_OPERATORS = new Map<string, Expansion>([
  ['com.microsoft.SkipLayerNormalization', skipLayerNormalization],
  ['com.microsoft.BiasGelu', biasGelu],
  ['com.microsoft.FastGelu', fastGelu],
  ['com.microsoft.FusedMatMul', fusedMatMul],
  ['com.microsoft.Attention', packedAttention],
  ['com.microsoft.MultiHeadAttention', multiHeadAttention],
  ['Attention', onnxAttention],
]);
