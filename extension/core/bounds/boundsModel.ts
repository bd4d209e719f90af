// The model that computes the spectral norms the paper's data-free bounds need, in one run with
// no inputs. Weights are the user's initializers referenced in place; only Gram matrices are
// formed on the graph (d x d per FC layer, dh x dh per attention head), and their largest
// eigenvalues come from power iteration (powerIteration.ts).
import { OnnxModel, TensorDataType } from '../onnx/onnxModel';
import { OnnxGraphBuilder } from '../onnx/onnxWriter';
import { PROBE_OPSET } from '../probe/probeOps';
import { LinearLayer, Projection, VitStructure } from '../vit/vitStructure';
import { largestEigenvalues } from './powerIteration';

/** Names of the bounds model's outputs. Head outputs are block-major: [block 0 heads, block 1 heads, ...]. */
export interface BoundsModelOutputs {
  /** [blocks]: σ_max of FC1's weight. */
  fc1: string;
  /** [blocks]: σ_max of FC2's first d input rows (the rows the zero-padded input reaches). */
  fc2: string;
  /** [total heads]: ||W_V^h||, the head's output rows of the value projection. */
  valueHeads: string;
  /** [total heads]: ||W_O^h||, the output projection's input columns for the head. */
  outputHeads: string;
  /** [total heads]: ||A_h||, A_h = W_Q^hᵀ W_K^h / sqrt(dh). */
  scoreHeads: string;
  /** Scalar: the largest relative change of any eigenvalue estimate over the last step. */
  lastStepChange: string;
}

export const BOUNDS_OUTPUTS: BoundsModelOutputs = {
  fc1: 'fc1_spectral_norm',
  fc2: 'fc2_spectral_norm',
  valueHeads: 'value_head_norm',
  outputHeads: 'output_head_norm',
  scoreHeads: 'score_head_norm',
  lastStepChange: 'last_step_change',
};

/** Power steps per stack, on the squared matrices (powerIteration.ts). */
export const DEFAULT_BOUNDS_ITERATIONS = 100;

/**
 * Squarings before the steps: 100 steps on M^(2^s) act like 100 * 2^s plain ones. Measured on a
 * seeded (random-weight) ViT-B/16, whose top eigenvalues are nearly equal (λ₂/λ₁ up to 0.9985):
 * 200 plain steps leave errors up to 5e-3; these settings leave under 4e-7 (float32 rounding)
 * against float64 eigenvalues. A squaring of the [2L, d, d] FC stack costs about as much as 45 of
 * its steps there; one of the [heads, dh, dh] stacks almost nothing.
 */
export const BOUNDS_SQUARINGS = { fc: 5, heads: 8 };

/** Which side of a weight the head blocks lie on: output features (Q, K, V) or input features (W_O). */
type HeadSide = 'out' | 'in';

export function buildBoundsModel(model: OnnxModel, structure: VitStructure, options: { iterations?: number } = {}): { bytes: Uint8Array; outputs: BoundsModelOutputs } {
  const iterations = options.iterations ?? DEFAULT_BOUNDS_ITERATIONS;
  const b = new OnnxGraphBuilder(PROBE_OPSET);
  const d = structure.hiddenSize;
  const headDim = structure.blocks[0]?.attention.headDim;
  if (headDim === undefined) throw new Error('the model has no transformer blocks');
  for (const block of structure.blocks) {
    if (block.attention.headDim !== headDim) throw new Error(`block ${block.index} has head size ${block.attention.headDim}, block 0 has ${headDim}; the bounds stack heads of one size`);
  }

  // FC1 and FC2 (first d input rows): the [d, d] Gram of the input side, stacked [2L, d, d].
  const fcGrams = [...structure.blocks.map((block) => inputGram(b, model, block.fc1, d)), ...structure.blocks.map((block) => inputGram(b, model, block.fc2, d))];
  const fc = largestEigenvalues(b, { right: b.op('Concat', fcGrams, { axis: 0 }), size: d }, iterations, BOUNDS_SQUARINGS.fc);
  b.node('Split', [b.op('Sqrt', [fc.eigenvalues])], [BOUNDS_OUTPUTS.fc1, BOUNDS_OUTPUTS.fc2], { axis: 0 });

  // Value and output heads: one symmetric stack [2 * total heads, dh, dh].
  const headStack = (grams: string[]) => b.op('Concat', grams, { axis: 0 });
  const valueGrams = headStack(structure.blocks.map((block) => projectionHeadGrams(b, model, block.attention.value, block.attention.heads, headDim)));
  const outputGrams = headStack(structure.blocks.map((block) => headGrams(b, model, block.attention.outProjection, 'in', 0, block.attention.heads, headDim)));
  const valueOutput = largestEigenvalues(b, { right: b.op('Concat', [valueGrams, outputGrams], { axis: 0 }), size: headDim }, iterations, BOUNDS_SQUARINGS.heads);
  b.node('Split', [b.op('Sqrt', [valueOutput.eigenvalues])], [BOUNDS_OUTPUTS.valueHeads, BOUNDS_OUTPUTS.outputHeads], { axis: 0 });

  // ||A_h||² = λ_max(A_hᵀ A_h) = λ_max((W_Q^h W_Q^hᵀ)(W_K^h W_K^hᵀ)) / dh: the nonzero
  // eigenvalues of XᵀY YᵀX equal those of (X Xᵀ)(Y Yᵀ), so dh x dh matrices suffice. The theory
  // uses 1/sqrt(dh); the model's own score scale (usually the same) is not used here.
  const queryGrams = headStack(structure.blocks.map((block) => projectionHeadGrams(b, model, block.attention.query, block.attention.heads, headDim)));
  const keyGrams = headStack(structure.blocks.map((block) => projectionHeadGrams(b, model, block.attention.key, block.attention.heads, headDim)));
  const score = largestEigenvalues(b, { left: queryGrams, right: keyGrams, size: headDim }, iterations, BOUNDS_SQUARINGS.heads);
  b.op('Sqrt', [b.op('Div', [score.eigenvalues, b.floatConstant([headDim], [], 'head_dim')])], {}, BOUNDS_OUTPUTS.scoreHeads);

  b.op('ReduceMax', [b.op('Concat', [fc, valueOutput, score].map((estimate) => b.op('Unsqueeze', [estimate.lastStepChange, b.intConstant([0])])), { axis: 0 })], { keepdims: 0 }, BOUNDS_OUTPUTS.lastStepChange);

  const blocks = structure.blocks.length;
  const totalHeads = structure.blocks.reduce((sum, block) => sum + block.attention.heads, 0);
  b.output(BOUNDS_OUTPUTS.fc1, TensorDataType.FLOAT, [blocks]);
  b.output(BOUNDS_OUTPUTS.fc2, TensorDataType.FLOAT, [blocks]);
  for (const name of [BOUNDS_OUTPUTS.valueHeads, BOUNDS_OUTPUTS.outputHeads, BOUNDS_OUTPUTS.scoreHeads]) b.output(name, TensorDataType.FLOAT, [totalHeads]);
  b.output(BOUNDS_OUTPUTS.lastStepChange, TensorDataType.FLOAT, []);
  return { bytes: b.encode(), outputs: { ...BOUNDS_OUTPUTS } };
}

/**
 * [1, d, d]: W Wᵀ of the layer's [in, out] weight restricted to its first d input rows (all of
 * FC1's rows). Gemm's transpose flags read the [out, in] layout without a transposed copy.
 */
function inputGram(b: OnnxGraphBuilder, model: OnnxModel, linear: LinearLayer, d: number): string {
  let weight = b.useInitializer(model, linear.weight);
  const inputAxis = linear.weightLayout === 'inOut' ? 0 : 1;
  if (linear.inFeatures !== d) weight = b.op('Slice', [weight, b.intConstant([0]), b.intConstant([d]), b.intConstant([inputAxis])]);
  const gram = b.op('Gemm', [weight, weight], linear.weightLayout === 'inOut' ? { transB: 1 } : { transA: 1 });
  return b.op('Unsqueeze', [gram, b.intConstant([0])]);
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
  const width = heads * headDim;
  // The weight axis holding that side's features: [in, out] keeps outputs on axis 1.
  const axis = (side === 'out') === (linear.weightLayout === 'inOut') ? 1 : 0;
  const sideFeatures = side === 'out' ? linear.outFeatures : linear.inFeatures;
  let weight = b.useInitializer(model, linear.weight);
  if (offset !== 0 || width !== sideFeatures) {
    weight = b.op('Slice', [weight, b.intConstant([offset]), b.intConstant([offset + width]), b.intConstant([axis])]);
  }
  const rows =
    axis === 0
      ? b.op('Reshape', [weight, b.intConstant([heads, headDim, -1])])
      : b.op('Transpose', [b.op('Reshape', [weight, b.intConstant([-1, heads, headDim])])], { perm: [1, 2, 0] });
  return b.op('MatMul', [rows, b.op('Transpose', [rows], { perm: [0, 2, 1] })]);
}
