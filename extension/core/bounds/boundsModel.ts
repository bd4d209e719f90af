// The model that computes the spectral norms the paper's data-free bounds need, in one run with
// no inputs. Weights are the user's initializers referenced in place; FC weights are applied as
// they are (no Gram matrix formed), attention heads through their small dh x dh Gram matrices.
// The model outputs Lanczos coefficients (lanczos.ts); their largest eigenvalues are taken in
// float64 by `stackEigenvalues`.
import { OnnxModel, TensorDataType } from '../onnx/onnxModel';
import { OnnxGraphBuilder } from '../onnx/onnxWriter';
import { emitConstant } from '../graph/constantTensor';
import { PROBE_OPSET } from '../probe/probeOps';
import { LinearLayer, Projection, VitStructure } from '../vit/vitStructure';
import { LanczosCoefficients, lanczosCoefficients, LanczosOperator } from './lanczos';
import { largestTridiagonalEigenvalue } from './tridiagonal';

/** The stacks whose largest eigenvalues the bounds need; each has outputs `<name>_alpha` and `<name>_beta`. */
export const BOUNDS_STACKS = {
  /** [2L]: W Wᵀ of FC1's weight (blocks 0..L-1; a gated FC1's gate and value side by side), then of FC2's first d input rows. */
  fc: 'fc',
  /** [2H] (H = heads over all blocks, block-major): W_V^h W_V^hᵀ, then W_O^hᵀ W_O^h. */
  valueOutput: 'value_output',
  /** [H]: (W_Q^h W_Q^hᵀ)(W_K^h W_K^hᵀ), whose largest eigenvalue is dh ||A_h||². */
  score: 'score',
  /** [2H], models with rotary attention only: W_Q^h W_Q^hᵀ, then W_K^h W_K^hᵀ (||W_Q^h||², ||W_K^h||²). */
  queryKey: 'query_key',
} as const;

/**
 * [H] (block-major): dh ||u_h||², u_h = b_Q^h W_K^h / sqrt(dh) the part of the logits the query's
 * bias adds, linear in the key token (0 for a head whose query has no bias).
 */
export const BOUNDS_QUERY_BIAS = 'query_bias';

/**
 * Lanczos steps per matrix (at most its dimension). Measured on a seeded random-weight ViT-B/16,
 * the hard case (top singular values 0.1% apart), against float64 SVD: 40 steps leave errors up
 * to 1.5e-3, 56 steps 1.8e-6, 64 steps 2.4e-8 (bench/bounds-bench.ts).
 */
export const DEFAULT_BOUNDS_STEPS = 64;

/** Largest eigenvalues of one stack, and how much the estimates moved at the last step. */
export interface StackEigenvalues {
  values: Float64Array;
  /**
   * Max over the stack of |λ_k - λ_(k-1)| / λ_k, the estimates after k and k - 1 steps; 0 when
   * k steps span the whole space (k = n), where the estimate is exact up to rounding.
   */
  lastStepChange: number;
}

/** Which side of a weight the head blocks lie on: output features (Q, K, V) or input features (W_O). */
type HeadSide = 'out' | 'in';

export function buildBoundsModel(model: OnnxModel, structure: VitStructure, options: { steps?: number } = {}): Uint8Array {
  const steps = options.steps ?? DEFAULT_BOUNDS_STEPS;
  const b = new OnnxGraphBuilder(PROBE_OPSET);
  const d = structure.hiddenSize;
  const headDim = structure.blocks[0]?.attention.headDim;
  if (headDim === undefined) throw new Error('the model has no transformer blocks');
  for (const block of structure.blocks) {
    if (block.attention.headDim !== headDim)
      throw new Error(`block ${block.index} has head size ${block.attention.headDim}, block 0 has ${headDim}; the bounds stack heads of one size`);
  }
  const totalHeads = structure.blocks.reduce((sum, block) => sum + block.attention.heads, 0);
  const output = (name: string, coefficients: LanczosCoefficients[]) => {
    for (const [part, values] of [
      ['alpha', coefficients.map((c) => c.alpha)],
      ['beta', coefficients.map((c) => c.beta)],
    ] as const) {
      const joined = `${name}_${part}`;
      if (values.length === 1) b.op('Identity', values, {}, joined);
      else b.concat(values, 0, joined);
      b.output(joined, TensorDataType.FLOAT, [values.length === 1 ? 'batch' : values.length, coefficients[0].steps]);
    }
  };

  // FC1 and FC2 (first d input rows): one batch of 2L operators WᵀW on d-vectors.
  const fcLayers = [...structure.blocks.map((block) => block.fc1), ...structure.blocks.map((block) => [block.fc2])];
  output(
    BOUNDS_STACKS.fc,
    fcLayers.map((layers) => lanczosCoefficients(b, weightGramOperator(b, model, layers, d), steps)),
  );

  // Value and output heads: one symmetric stack [2H, dh, dh].
  const headStack = (grams: string[]) => b.concat(grams, 0);
  const valueGrams = headStack(structure.blocks.map((block) => projectionHeadGrams(b, model, block.attention.value, block.attention.heads, headDim)));
  const outputGrams = headStack(structure.blocks.map((block) => headGrams(b, model, block.attention.outProjection, 'in', 0, block.attention.heads, headDim)));
  output(BOUNDS_STACKS.valueOutput, [lanczosCoefficients(b, stackOperator(b.op('Concat', [valueGrams, outputGrams], { axis: 0 }), 2 * totalHeads, headDim), steps)]);

  // ||A_h||² = λ_max(A_hᵀ A_h) = λ_max(G_Q G_K) / dh with G_Q = W_Q^h W_Q^hᵀ, G_K = W_K^h W_K^hᵀ:
  // the nonzero eigenvalues of XᵀY YᵀX equal those of (X Xᵀ)(Y Yᵀ), so dh x dh matrices
  // suffice. G_K G_Q is self-adjoint for <x, y> = xᵀ G_Q y, the metric of its Lanczos run. The
  // theory uses 1/sqrt(dh); the model's own score scale (usually the same) is not used here.
  const queryGrams = headStack(structure.blocks.map((block) => projectionHeadGrams(b, model, block.attention.query, block.attention.heads, headDim)));
  const keyGrams = headStack(structure.blocks.map((block) => projectionHeadGrams(b, model, block.attention.key, block.attention.heads, headDim)));
  output(BOUNDS_STACKS.score, [lanczosCoefficients(b, { ...stackOperator(keyGrams, totalHeads, headDim), metric: (g, vector) => g.op('MatMul', [vector, queryGrams]) }, steps)]);
  // Rotary attention rotates q and k between the projections, so its logits' bilinear forms are
  // W_Q^h R W_K^hᵀ for rotations R: bounded by ||W_Q^h|| ||W_K^h||, not by ||W_Q^h W_K^hᵀ||.
  if (structure.blocks.some((block) => block.attention.rotary)) {
    output(BOUNDS_STACKS.queryKey, [lanczosCoefficients(b, stackOperator(b.op('Concat', [queryGrams, keyGrams], { axis: 0 }), 2 * totalHeads, headDim), steps)]);
  }

  // The query's bias b_Q^h times the key's head rows W_K^h ([heads, 1, dh] x [heads, dh, d]).
  const queryBias = structure.blocks.map(({ attention }) => {
    const { query, key, heads } = attention;
    if (!query.linear.bias) return b.floatConstant(new Float32Array(heads), [heads], 'no_query_bias');
    const offset = query.part === undefined ? 0 : (query.part * query.linear.outFeatures) / 3;
    const bias = b.op('Slice', [emitConstant(b, model, query.linear.bias), b.intConstant([offset]), b.intConstant([offset + heads * headDim]), b.intConstant([0])]);
    const keyOffset = key.part === undefined ? 0 : (key.part * key.linear.outFeatures) / 3;
    const product = b.op('MatMul', [b.op('Reshape', [bias, b.intConstant([heads, 1, headDim])]), headRows(b, model, key.linear, 'out', keyOffset, heads, headDim)]);
    return b.op('ReduceSumSquare', [product], { axes: [1, 2], keepdims: 0 });
  });
  b.concat(queryBias, 0, BOUNDS_QUERY_BIAS);
  b.output(BOUNDS_QUERY_BIAS, TensorDataType.FLOAT, [totalHeads]);
  return b.encode();
}

/** The largest eigenvalue of every matrix of a stack of `batch` n x n operators (n = `size`), from the bounds model's outputs (keyed by name). */
export function stackEigenvalues(outputs: Record<string, Float32Array>, stack: string, batch: number, size: number): StackEigenvalues {
  const read = (part: string) => {
    const values = outputs[`${stack}_${part}`];
    if (!values) throw new Error(`the bounds model's output '${stack}_${part}' is missing`);
    if (values.length % batch !== 0 || values.length === 0) throw new Error(`the bounds model's output '${stack}_${part}' has ${values.length} values, not a multiple of ${batch}`);
    return values;
  };
  const alpha = read('alpha');
  const beta = read('beta');
  const steps = alpha.length / batch;
  const values = new Float64Array(batch);
  let lastStepChange = 0;
  for (let i = 0; i < batch; i++) {
    const a = alpha.subarray(i * steps, (i + 1) * steps);
    const bb = beta.subarray(i * steps, (i + 1) * steps);
    values[i] = largestTridiagonalEigenvalue(a, bb);
    if (steps < size && values[i] > 0) {
      const before = largestTridiagonalEigenvalue(a.subarray(0, steps - 1), bb);
      lastStepChange = Math.max(lastStepChange, Math.abs(values[i] - before) / values[i]);
    }
  }
  return { values, lastStepChange };
}

/**
 * W Wᵀ ([in, out] terms) for a weight restricted to its first d input features (all of FC1's),
 * on a row [1, d]: v W then that times Wᵀ (Gemm's flag: no transposed copy). Several layers side
 * by side (a gated FC1 [W_gate W_value]) sum their terms. No Gram matrix is formed: on a ViT-B
 * forming one costs as much as all the steps, which stream W from the cache.
 */
function weightGramOperator(b: OnnxGraphBuilder, model: OnnxModel, layers: LinearLayer[], d: number): LanczosOperator {
  const weights = layers.map((linear) => {
    let weight = emitConstant(b, model, linear.weight);
    const inputAxis = linear.weightLayout === 'inOut' ? 0 : 1;
    if (linear.inFeatures !== d) weight = b.op('Slice', [weight, b.intConstant([0]), b.intConstant([d]), b.intConstant([inputAxis])]);
    return { linear, weight };
  });
  return {
    size: d,
    vectorShape: [1, d],
    featureAxis: 1,
    apply: (g, vector) => {
      const terms = weights.map(
        ({ linear, weight }) =>
          linear.weightLayout === 'inOut'
            ? g.op('Gemm', [g.op('MatMul', [vector, weight]), weight], { transB: 1 }) // W [in, out]: (v W) Wᵀ
            : g.op('MatMul', [g.op('Gemm', [vector, weight], { transB: 1 }), weight]), // W [out, in]: (v Wᵀ) W
      );
      return terms.length === 1 ? terms[0] : g.op('Sum', terms);
    },
  };
}

/** A stack [batch, n, n] of symmetric matrices on rows [batch, 1, n] (v G = (G v)ᵀ). */
function stackOperator(stack: string, batch: number, size: number): LanczosOperator {
  return { size, vectorShape: [batch, 1, size], featureAxis: 2, apply: (g, _vector, metricVector) => g.op('MatMul', [metricVector, stack]) };
}

/** Head Grams of a query, key or value projection (inside its third of a fused qkv layer). */
function projectionHeadGrams(b: OnnxGraphBuilder, model: OnnxModel, projection: Projection, heads: number, headDim: number): string {
  const offset = projection.part === undefined ? 0 : (projection.part * projection.linear.outFeatures) / 3;
  return headGrams(b, model, projection.linear, 'out', offset, heads, headDim);
}

/**
 * [heads, dh, dh]: R_h R_hᵀ, R_h the head's [dh, other] block in PyTorch (out, in) terms — its
 * output rows for `side` 'out', its input columns (transposed) for 'in'. Features
 * offset + h*dh .. offset + (h+1)*dh of that side belong to head h. Only the layer's own
 * [heads*dh, other] slice is rearranged (at most d x d values), never an FC weight.
 */
function headGrams(b: OnnxGraphBuilder, model: OnnxModel, linear: LinearLayer, side: HeadSide, offset: number, heads: number, headDim: number): string {
  const rows = headRows(b, model, linear, side, offset, heads, headDim);
  return b.op('MatMul', [rows, b.op('Transpose', [rows], { perm: [0, 2, 1] })]);
}

/** [heads, dh, other]: every head's R_h (see headGrams). */
function headRows(b: OnnxGraphBuilder, model: OnnxModel, linear: LinearLayer, side: HeadSide, offset: number, heads: number, headDim: number): string {
  const width = heads * headDim;
  // The weight axis holding that side's features: [in, out] keeps outputs on axis 1.
  const axis = (side === 'out') === (linear.weightLayout === 'inOut') ? 1 : 0;
  const sideFeatures = side === 'out' ? linear.outFeatures : linear.inFeatures;
  let weight = emitConstant(b, model, linear.weight);
  if (offset !== 0 || width !== sideFeatures) {
    weight = b.op('Slice', [weight, b.intConstant([offset]), b.intConstant([offset + width]), b.intConstant([axis])]);
  }
  return axis === 0
    ? b.op('Reshape', [weight, b.intConstant([heads, headDim, -1])])
    : b.op('Transpose', [b.op('Reshape', [weight, b.intConstant([-1, heads, headDim])])], { perm: [1, 2, 0] });
}
