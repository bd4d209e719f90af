// The paper's data-free upper bounds on plasticity (PAPER.md, "Theory"), per block and
// component, from the spectral norms the bounds model computes (boundsModel.ts), the LayerNorm
// gammas, and token statistics of a few embedded images.
import { OnnxModel } from '../onnx/onnxModel';
import { readFloats } from '../onnx/tensorValues';
import { LayerNormLayer, VitStructure } from '../vit/vitStructure';
import { ComponentBound, PlasticityBounds, TokenStatistics } from '../report/reportSchema';
import { BOUNDS_OUTPUTS } from './boundsModel';

export type { ComponentBound, PlasticityBounds, TokenStatistics } from '../report/reportSchema';

export const BOUNDS_METHOD =
  'Data-free bounds of Odonnat et al. (2026): spectral norms from Gram matrices by power iteration in onnxruntime (on repeated squares, Rayleigh quotient at the end); token radius r = RMS token norm of the given embeddings';

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
 * Bounds per block from the bounds model's outputs (`spectral`, keyed by output name).
 * - FC1, FC2: σ_max of the (probed) weight, since P <= σ_max for a linear map.
 * - LN: max|γ| / s_min when token statistics are known, else max|γ| alone (what the reference
 *   code plots); detail.maxAbsGamma always.
 * - MHA: Σ_h ||W_O^h|| ||W_V^h|| sqrt(3n + (12n+3) r⁴ ||A_h||²); null without token statistics.
 */
export function combineBounds(structure: VitStructure, model: OnnxModel, spectral: Record<string, Float32Array>, tokens: TokenStatistics | null, iterations: number): PlasticityBounds {
  const totalHeads = structure.blocks.reduce((sum, block) => sum + block.attention.heads, 0);
  // A mismatch means the outputs came from another model's bounds graph.
  const output = (name: string, length: number): Float32Array => {
    const values = spectral[name];
    if (!values) throw new Error(`the bounds model's output '${name}' is missing`);
    if (values.length !== length) throw new Error(`the bounds model's output '${name}' has ${values.length} values, this model needs ${length}`);
    return values;
  };
  const fc1 = output(BOUNDS_OUTPUTS.fc1, structure.blocks.length);
  const fc2 = output(BOUNDS_OUTPUTS.fc2, structure.blocks.length);
  const valueHeads = output(BOUNDS_OUTPUTS.valueHeads, totalHeads);
  const outputHeads = output(BOUNDS_OUTPUTS.outputHeads, totalHeads);
  const scoreHeads = output(BOUNDS_OUTPUTS.scoreHeads, totalHeads);

  const layerNormBound = (layer: LayerNormLayer): ComponentBound => {
    const maxAbsGamma = layer.gamma ? readFloats(model, layer.gamma).reduce((max, gamma) => Math.max(max, Math.abs(gamma)), 0) : 1;
    if (!tokens) return { bound: maxAbsGamma, detail: { maxAbsGamma } };
    return { bound: maxAbsGamma / tokens.minTokenStd, detail: { maxAbsGamma, minTokenStd: tokens.minTokenStd } };
  };

  let firstHead = 0;
  const blocks = structure.blocks.map((block, position) => {
    const { heads, headDim, scoreScale } = block.attention;
    const headNorms = Array.from({ length: heads }, (_, h) => ({
      value: valueHeads[firstHead + h],
      output: outputHeads[firstHead + h],
      score: scoreHeads[firstHead + h],
    }));
    firstHead += heads;
    return {
      index: block.index,
      LN1: layerNormBound(block.ln1),
      MHA: tokens ? attentionBound(headNorms, tokens, scoreScale * Math.sqrt(headDim)) : null,
      LN2: layerNormBound(block.ln2),
      FC1: { bound: fc1[position], detail: { spectralNorm: fc1[position] } },
      FC2: { bound: fc2[position], detail: { spectralNorm: fc2[position], probedRows: structure.hiddenSize } },
    };
  });
  return { method: BOUNDS_METHOD, iterations, lastStepChange: output(BOUNDS_OUTPUTS.lastStepChange, 1)[0], tokens, blocks };
}

/** One head's share of the MHA bound: ||W_O^h|| ||W_V^h|| sqrt(3n + (12n+3) r⁴ ||A_h||²). */
function attentionHeadTerm(norms: { value: number; output: number; score: number }, tokens: number, radius: number): number {
  return norms.output * norms.value * Math.sqrt(3 * tokens + (12 * tokens + 3) * radius ** 4 * norms.score ** 2);
}

/** `scoreScaleRatio`: the model's score scale times sqrt(dh), 1 when it uses the theory's 1/sqrt(dh). */
function attentionBound(headNorms: { value: number; output: number; score: number }[], tokens: TokenStatistics, scoreScaleRatio: number): ComponentBound {
  const detail: Record<string, number> = { tokens: tokens.tokens, radius: tokens.radius, modelScoreScaleRatio: scoreScaleRatio };
  let bound = 0;
  headNorms.forEach((norms, h) => {
    const term = attentionHeadTerm(norms, tokens.tokens, tokens.radius);
    bound += term;
    Object.assign(detail, { [`head${h}.term`]: term, [`head${h}.value`]: norms.value, [`head${h}.output`]: norms.output, [`head${h}.score`]: norms.score });
  });
  return { bound, detail };
}
