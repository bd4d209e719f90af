// The paper's data-free upper bounds on plasticity (PAPER.md, "Theory"), per block and
// component, from the spectral norms the bounds model yields (boundsModel.ts), the LayerNorm
// gammas, and token statistics of a few embedded images.
import { OnnxModel } from '../onnx/onnxModel';
import { constantValues } from '../graph/constantTensor';
import { AttentionLayer, LayerNormLayer, VitStructure } from '../vit/vitStructure';
import { ComponentBound, PlasticityBounds, TokenStatistics } from '../report/reportSchema';
import { BOUNDS_QUERY_BIAS, BOUNDS_STACKS, stackEigenvalues } from './boundsModel';

export type { ComponentBound, PlasticityBounds, TokenStatistics } from '../report/reportSchema';

export const BOUNDS_METHOD =
  "Data-free bounds of Odonnat et al. (2026): spectral norms by Lanczos in onnxruntime (FC weights applied directly, attention heads through dh x dh Gram matrices), largest tridiagonal eigenvalue in float64; token radius r = RMS token norm of the given embeddings; the attention bound with the query bias's term (the paper's attention has none), a constant added to the logits (a relative position bias) changing nothing in it";

/**
 * Pairs whose embeddings give the token statistics (their reference and target images): the
 * first ones of the inputs, in an analysis and in the model overview alike, so both give one r.
 */
export const TOKEN_STATISTICS_PAIRS = 4;

/** n, r and s_min from embeddings laid out [count, tokens, d]. */
export function tokenStatistics(embeddings: Float32Array, count: number, tokens: number, d: number): TokenStatistics {
  if (embeddings.length !== count * tokens * d) throw new Error(`expected ${count} x ${tokens} x ${d} embedding values, got ${embeddings.length}`);
  if (count * tokens === 0) throw new Error('token statistics need at least one token');
  let squaredNorms = 0;
  let minTokenStd = Infinity;
  for (let start = 0; start < embeddings.length; start += d) {
    let sum = 0;
    let squares = 0;
    for (let f = start; f < start + d; f++) {
      sum += embeddings[f];
      squares += embeddings[f] * embeddings[f];
    }
    squaredNorms += squares;
    const mean = sum / d;
    let variance = 0;
    for (let f = start; f < start + d; f++) variance += (embeddings[f] - mean) ** 2;
    minTokenStd = Math.min(minTokenStd, Math.sqrt(variance / d));
  }
  // The paper bounds attention for ||x_i|| <= r, yet estimates r as the RMS token norm (19.4 for
  // ViT-B/16) rather than the largest norm met; we follow its choice.
  return { tokens, radius: Math.sqrt(squaredNorms / (count * tokens)), minTokenStd, images: count };
}

/**
 * Bounds per block from the bounds model's outputs (keyed by output name), after `steps` Lanczos steps.
 * - FC1, FC2: σ_max of the (probed) weight, since P <= σ_max for a linear map.
 * - LN: max|γ| / s_min when token statistics are known, else max|γ| alone (what the reference
 *   code plots); detail.maxAbsGamma always.
 * - MHA: Σ_h ||W_O^h|| ||W_V^h|| sqrt(3n + 3 r⁴ ||A_h||² + 12n r² (r ||A_h|| + ||u_h||)²), the
 *   paper's sqrt(3n + (12n+3) r⁴ ||A_h||²) when the query has no bias; null without token statistics.
 *   Rotary attention (DINOv3): token i's q and k are rotated (R_i, orthogonal) between the
 *   projections, so the logit of tokens i, j is x_iᵀ W_Q^h R_iᵀ R_j W_K^hᵀ x_j / sqrt(dh): its form
 *   changes with the pair and can exceed ||A_h||. ||A_h|| is replaced by ||W_Q^h|| ||W_K^h|| / sqrt(dh),
 *   which bounds every pair's form (rotations keep norms), as the bound's derivation needs.
 *
 * The paper's argument bounds the Jacobian of softmax(L) X per row i by three terms: P dX (rows of
 * P are probability vectors: ||P|| <= sqrt(n)), Xᵀ(diag p_i - p_i p_iᵀ) X Aᵀ dx_iᵀ (at most r² ||A||
 * ||dx_i||), and Xᵀ(diag p_i - p_i p_iᵀ) dX w_i (at most 2r ||dX|| ||w_i||) with w_i the logits'
 * derivative in the key tokens, (x_i A + u)ᵀ. A query bias b_Q adds u = b_Q W_Kᵀ / sqrt(dh) to
 * w_i, which the paper leaves out (a key bias adds a constant per row, which softmax ignores). A
 * constant added to the logits (BEiT's relative position bias) is in none of the three: P stays
 * row-stochastic and the logits' derivative is unchanged, so the bound holds as it is.
 */
export function combineBounds(structure: VitStructure, model: OnnxModel, outputs: Record<string, Float32Array>, tokens: TokenStatistics | null, steps: number): PlasticityBounds {
  const totalHeads = structure.blocks.reduce((sum, block) => sum + block.attention.heads, 0);
  const blockCount = structure.blocks.length;
  const headDim = structure.blocks[0]?.attention.headDim ?? 1;
  const fc = stackEigenvalues(outputs, BOUNDS_STACKS.fc, 2 * blockCount, structure.hiddenSize);
  const valueOutput = stackEigenvalues(outputs, BOUNDS_STACKS.valueOutput, 2 * totalHeads, headDim);
  const score = stackEigenvalues(outputs, BOUNDS_STACKS.score, totalHeads, headDim);
  const rotary = structure.blocks.some((block) => block.attention.rotary);
  const queryKey = rotary ? stackEigenvalues(outputs, BOUNDS_STACKS.queryKey, 2 * totalHeads, headDim) : undefined;
  const queryBias = outputs[BOUNDS_QUERY_BIAS];
  if (!queryBias || queryBias.length !== totalHeads) throw new Error(`the bounds model's output '${BOUNDS_QUERY_BIAS}' has ${queryBias?.length ?? 'no'} values, not ${totalHeads}`);
  const norm = (eigenvalue: number) => Math.sqrt(Math.max(eigenvalue, 0));

  const layerNormBound = (layer: LayerNormLayer): ComponentBound => {
    const maxAbsGamma = layer.gamma ? constantValues(model, layer.gamma).reduce((max, gamma) => Math.max(max, Math.abs(gamma)), 0) : 1;
    if (!tokens) return { bound: maxAbsGamma, detail: { maxAbsGamma } };
    return { bound: maxAbsGamma / tokens.minTokenStd, detail: { maxAbsGamma, minTokenStd: tokens.minTokenStd } };
  };

  /** ||b_Q^h||², the query bias's rows of head h (0 without a bias). */
  const squaredHeadBias = ({ query, headDim }: AttentionLayer, h: number): number => {
    if (!query.linear.bias) return 0;
    const start = (query.part === undefined ? 0 : (query.part * query.linear.outFeatures) / 3) + h * headDim;
    return constantValues(model, query.linear.bias)
      .subarray(start, start + headDim)
      .reduce((sum, value) => sum + value * value, 0);
  };

  let firstHead = 0;
  const blocks = structure.blocks.map((block, position) => {
    const { heads, headDim, scoreScale } = block.attention;
    const headNorms = Array.from({ length: heads }, (_, h) => ({
      value: norm(valueOutput.values[firstHead + h]),
      output: norm(valueOutput.values[totalHeads + firstHead + h]),
      score:
        block.attention.rotary && queryKey
          ? norm((queryKey.values[firstHead + h] * queryKey.values[totalHeads + firstHead + h]) / headDim)
          : norm(score.values[firstHead + h] / headDim),
      // Rotated, the bias's term is R_i b_Q^h against R_j W_K^h, a pair's rotation between them:
      // bounded by ||b_Q^h|| ||W_K^h|| / sqrt(dh), not by ||b_Q^h W_K^hᵀ||.
      queryBias:
        block.attention.rotary && queryKey
          ? norm((squaredHeadBias(block.attention, h) * queryKey.values[totalHeads + firstHead + h]) / headDim)
          : norm(queryBias[firstHead + h] / headDim),
    }));
    firstHead += heads;
    return {
      index: block.index,
      LN1: layerNormBound(block.ln1),
      MHA: tokens ? attentionBound(headNorms, tokens, scoreScale * Math.sqrt(headDim), block.attention.rotary !== undefined) : null,
      LN2: layerNormBound(block.ln2),
      FC1: { bound: norm(fc.values[position]), detail: { spectralNorm: norm(fc.values[position]) } },
      FC2: { bound: norm(fc.values[blockCount + position]), detail: { spectralNorm: norm(fc.values[blockCount + position]), probedRows: structure.hiddenSize } },
    };
  });
  const lastStepChange = Math.max(fc.lastStepChange, valueOutput.lastStepChange, score.lastStepChange, queryKey?.lastStepChange ?? 0);
  // Steps actually run on the widest matrices (d wide): a matrix n wide takes at most n.
  return { method: BOUNDS_METHOD, iterations: Math.min(steps, structure.hiddenSize), lastStepChange, tokens, blocks };
}

/** The norms one head's share of the MHA bound takes. */
interface HeadNorms {
  value: number;
  output: number;
  score: number;
  /** ||u_h||: the query bias through the key weight, over sqrt(dh). */
  queryBias: number;
}

/** One head's share of the MHA bound: ||W_O^h|| ||W_V^h|| sqrt(3n + 3 r⁴ ||A_h||² + 12n r² (r ||A_h|| + ||u_h||)²). */
function attentionHeadTerm(norms: HeadNorms, tokens: number, radius: number): number {
  const keyDerivative = radius * norms.score + norms.queryBias;
  return norms.output * norms.value * Math.sqrt(3 * tokens + 3 * radius ** 4 * norms.score ** 2 + 12 * tokens * radius ** 2 * keyDerivative ** 2);
}

/**
 * `scoreScaleRatio`: the model's score scale times sqrt(dh), 1 when it uses the theory's 1/sqrt(dh).
 * `rotary`: each head's score norm is ||W_Q^h|| ||W_K^h|| / sqrt(dh) (detail.rotaryScoreNorm = 1).
 */
function attentionBound(headNorms: HeadNorms[], tokens: TokenStatistics, scoreScaleRatio: number, rotary: boolean): ComponentBound {
  const detail: Record<string, number> = { tokens: tokens.tokens, radius: tokens.radius, modelScoreScaleRatio: scoreScaleRatio };
  if (rotary) detail.rotaryScoreNorm = 1;
  let bound = 0;
  headNorms.forEach((norms, h) => {
    const term = attentionHeadTerm(norms, tokens.tokens, tokens.radius);
    bound += term;
    Object.assign(detail, {
      [`head${h}.term`]: term,
      [`head${h}.value`]: norms.value,
      [`head${h}.output`]: norms.output,
      [`head${h}.score`]: norms.score,
      [`head${h}.queryBias`]: norms.queryBias,
    });
  });
  return { bound, detail };
}
