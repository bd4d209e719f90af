// A plain float64 implementation of the paper's data-free bounds (PAPER.md, "Theory"): every
// matrix built from the weights as the theory writes it (PyTorch (out, in) blocks, A_h formed
// explicitly), spectral norms from all eigenvalues of a Gram matrix by the cyclic Jacobi method.
// Deliberately none of the engine's shortcuts (dh x dh products, Lanczos).
import { OnnxModel } from '../../extension/core/onnx/onnxModel';
import { constantValues } from '../../extension/core/graph/constantTensor';
import { LinearLayer, Projection, VitStructure } from '../../extension/core/vit/vitStructure';

/** A [rows, cols] row-major matrix. */
interface Matrix {
  rows: number;
  cols: number;
  data: Float64Array;
}

function transpose(a: Matrix): Matrix {
  const data = new Float64Array(a.rows * a.cols);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) data[j * a.rows + i] = a.data[i * a.cols + j];
  return { rows: a.cols, cols: a.rows, data };
}

function multiply(a: Matrix, b: Matrix): Matrix {
  const data = new Float64Array(a.rows * b.cols);
  for (let i = 0; i < a.rows; i++)
    for (let k = 0; k < a.cols; k++) {
      const value = a.data[i * a.cols + k];
      if (value !== 0) for (let j = 0; j < b.cols; j++) data[i * b.cols + j] += value * b.data[k * b.cols + j];
    }
  return { rows: a.rows, cols: b.cols, data };
}

/** Rows [start, end) and columns [colStart, colEnd). */
/** (out, in) weights with the same inputs, one below the other. */
function stackOutputs(weights: Matrix[]): Matrix {
  const cols = weights[0].cols;
  const data = new Float64Array(weights.reduce((sum, weight) => sum + weight.rows, 0) * cols);
  let offset = 0;
  for (const weight of weights) {
    data.set(weight.data, offset);
    offset += weight.data.length;
  }
  return { rows: data.length / cols, cols, data };
}

function block(a: Matrix, start: number, end: number, colStart: number, colEnd: number): Matrix {
  const cols = colEnd - colStart;
  const data = new Float64Array((end - start) * cols);
  for (let i = start; i < end; i++) for (let j = colStart; j < colEnd; j++) data[(i - start) * cols + (j - colStart)] = a.data[i * a.cols + j];
  return { rows: end - start, cols, data };
}

/** All eigenvalues of a symmetric matrix, by cyclic Jacobi rotations until the off-diagonal part vanishes. */
export function symmetricEigenvalues(input: Matrix): number[] {
  const n = input.rows;
  const a = Float64Array.from(input.data);
  const total = a.reduce((sum, value) => sum + value * value, 0);
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q] ** 2;
    if (off <= 1e-22 * total) break; // eigenvalue errors are second order in the off-diagonal norm
    for (let p = 0; p < n; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (apq === 0) continue;
        // Rotation angle zeroing a[p][q] (Golub & Van Loan, symmetric Schur decomposition).
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p];
          const akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k];
          const aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
      }
  }
  return Array.from({ length: n }, (_, i) => a[i * n + i]);
}

/** σ_max from the Gram matrix of the smaller side. */
export function spectralNorm(a: Matrix): number {
  const gram = a.rows <= a.cols ? multiply(a, transpose(a)) : multiply(transpose(a), a);
  return Math.sqrt(Math.max(0, ...symmetricEigenvalues(gram)));
}

/** A layer's weight in PyTorch's (out, in) layout. */
function outInWeight(model: OnnxModel, linear: LinearLayer): Matrix {
  const values = constantValues(model, linear.weight);
  if (linear.weightLayout === 'outIn') return { rows: linear.outFeatures, cols: linear.inFeatures, data: values };
  return transpose({ rows: linear.inFeatures, cols: linear.outFeatures, data: values });
}

/** The projection's (out, in) weight (its third of a fused qkv layer). */
function projectionWeight(model: OnnxModel, projection: Projection): Matrix {
  const full = outInWeight(model, projection.linear);
  if (projection.part === undefined) return full;
  const width = full.rows / 3;
  return block(full, projection.part * width, (projection.part + 1) * width, 0, full.cols);
}

export interface ReferenceHead {
  value: number;
  output: number;
  score: number;
  /** ||b_Q^h W_K^h|| / sqrt(dh): the query bias's share of the logits' derivative in the key tokens. */
  queryBias: number;
}

/** The projection's bias (its third of a fused qkv layer's), or undefined. */
function projectionBias(model: OnnxModel, projection: Projection): Float64Array | undefined {
  if (!projection.linear.bias) return undefined;
  const full = constantValues(model, projection.linear.bias);
  if (projection.part === undefined) return full;
  const width = full.length / 3;
  return full.slice(projection.part * width, (projection.part + 1) * width);
}

export interface ReferenceBlockBounds {
  fc1: number;
  fc2: number;
  heads: ReferenceHead[];
  maxAbsGamma: { ln1: number; ln2: number };
}

export function referenceBounds(model: OnnxModel, structure: VitStructure): ReferenceBlockBounds[] {
  const d = structure.hiddenSize;
  return structure.blocks.map((vitBlock) => {
    const { heads, headDim } = vitBlock.attention;
    const fc2 = outInWeight(model, vitBlock.fc2);
    const query = projectionWeight(model, vitBlock.attention.query);
    const key = projectionWeight(model, vitBlock.attention.key);
    const value = projectionWeight(model, vitBlock.attention.value);
    const out = outInWeight(model, vitBlock.attention.outProjection);
    const queryBias = projectionBias(model, vitBlock.attention.query);
    const headBlocks = Array.from({ length: heads }, (_, h) => {
      const rows = (m: Matrix) => block(m, h * headDim, (h + 1) * headDim, 0, m.cols);
      const a = multiply(transpose(rows(query)), rows(key));
      a.data.forEach((entry, i) => (a.data[i] = entry / Math.sqrt(headDim)));
      const u = queryBias ? multiply({ rows: 1, cols: headDim, data: queryBias.slice(h * headDim, (h + 1) * headDim) }, rows(key)) : undefined;
      return {
        queryBias: u ? Math.sqrt(u.data.reduce((sum, x) => sum + x * x, 0)) / Math.sqrt(headDim) : 0,
        value: spectralNorm(rows(value)),
        output: spectralNorm(block(out, 0, out.rows, h * headDim, (h + 1) * headDim)),
        score: spectralNorm(a),
      };
    });
    const maxAbs = (layer: typeof vitBlock.ln1) => (layer.gamma ? Math.max(...Array.from(constantValues(model, layer.gamma), Math.abs)) : 1);
    return {
      // A gated FC1's layers stacked along their outputs: the map x -> [x W_gate, x W_value].
      fc1: spectralNorm(stackOutputs(vitBlock.fc1.map((linear) => outInWeight(model, linear)))),
      // FC2 on the zero-padded input sees only its first d input columns in (out, in) terms.
      fc2: spectralNorm(block(fc2, 0, fc2.rows, 0, d)),
      heads: headBlocks,
      maxAbsGamma: { ln1: maxAbs(vitBlock.ln1), ln2: maxAbs(vitBlock.ln2) },
    };
  });
}

/**
 * The MHA bound written out: Σ_h ||W_O^h|| ||W_V^h|| sqrt(3n + 3 r⁴ ||A_h||² + 12n r² (r ||A_h|| + ||u_h||)²),
 * the paper's Σ_h ||W_O^h|| ||W_V^h|| sqrt(3n + (12n+3) r⁴ ||A_h||²) for a query without bias (u_h = 0).
 */
export function referenceAttentionBound(heads: ReferenceHead[], tokens: number, radius: number): number {
  return heads.reduce(
    (sum, head) =>
      sum + head.output * head.value * Math.sqrt(3 * tokens + 3 * radius ** 4 * head.score ** 2 + 12 * tokens * radius ** 2 * (radius * head.score + head.queryBias) ** 2),
    0,
  );
}

/** r (RMS token norm) and s_min (smallest per-token std) of [count, tokens, d] embeddings, two-pass. */
export function referenceTokenStatistics(embeddings: Float32Array, d: number): { radius: number; minTokenStd: number } {
  const tokenCount = embeddings.length / d;
  let squaredNorms = 0;
  let minTokenStd = Infinity;
  for (let t = 0; t < tokenCount; t++) {
    const row = Array.from(embeddings.subarray(t * d, (t + 1) * d));
    squaredNorms += row.reduce((sum, x) => sum + x * x, 0);
    const mean = row.reduce((sum, x) => sum + x, 0) / d;
    minTokenStd = Math.min(minTokenStd, Math.sqrt(row.reduce((sum, x) => sum + (x - mean) ** 2, 0) / d));
  }
  return { radius: Math.sqrt(squaredNorms / tokenCount), minTokenStd };
}
