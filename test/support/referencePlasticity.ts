// A deliberately plain float64 implementation of the paper's measure (and the in-context one),
// straight from PAPER.md: every component applied to X and to Y separately, no algebraic
// shortcut. Tests hold the engine's fast probe graphs against it on fresh random inputs.
import { OnnxModel } from '../../extension/core/onnx/onnxModel';
import { constantValues } from '../../extension/core/graph/constantTensor';
import { Activation, AttentionLayer, COMPONENTS, GatedHalf, LayerNormLayer, LinearLayer, Projection, TransformerBlock, VitStructure } from '../../extension/core/vit/vitStructure';

/** A [rows, cols] row-major matrix. */
interface Matrix {
  rows: number;
  cols: number;
  data: Float64Array<ArrayBufferLike>;
}

const matrix = (rows: number, cols: number, data: Float64Array<ArrayBufferLike> = new Float64Array(rows * cols)): Matrix => ({ rows, cols, data });

function multiply(a: Matrix, b: Matrix): Matrix {
  const out = matrix(a.rows, b.cols);
  for (let i = 0; i < a.rows; i++)
    for (let k = 0; k < a.cols; k++) {
      const value = a.data[i * a.cols + k];
      for (let j = 0; j < b.cols; j++) out.data[i * b.cols + j] += value * b.data[k * b.cols + j];
    }
  return out;
}

function addRow(a: Matrix, row: Float64Array | undefined): Matrix {
  if (!row) return a;
  const out = matrix(a.rows, a.cols, a.data.slice());
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) out.data[i * a.cols + j] += row[j];
  return out;
}

function add(a: Matrix, b: Matrix): Matrix {
  return matrix(
    a.rows,
    a.cols,
    a.data.map((value, i) => value + b.data[i]),
  );
}

/** Columns [start, end) of a matrix. */
function columns(a: Matrix, start: number, end: number): Matrix {
  const out = matrix(a.rows, end - start);
  for (let i = 0; i < a.rows; i++) out.data.set(a.data.subarray(i * a.cols + start, i * a.cols + end), i * out.cols);
  return out;
}

/** Matrices with the same rows, side by side. */
function sideBySide(parts: Matrix[]): Matrix {
  const cols = parts.reduce((sum, part) => sum + part.cols, 0);
  const out = matrix(parts[0].rows, cols);
  for (let i = 0; i < out.rows; i++) {
    let offset = 0;
    for (const part of parts) {
      out.data.set(part.data.subarray(i * part.cols, (i + 1) * part.cols), i * cols + offset);
      offset += part.cols;
    }
  }
  return out;
}

function distance(a: Matrix, b: Matrix): number {
  let sum = 0;
  for (let i = 0; i < a.data.length; i++) sum += (a.data[i] - b.data[i]) ** 2;
  return Math.sqrt(sum);
}

class ReferenceModel {
  constructor(private readonly model: OnnxModel) {}

  /** Weight as an [in, out] matrix. */
  weight(linear: LinearLayer): Matrix {
    const values = constantValues(this.model, linear.weight);
    if (linear.weightLayout === 'inOut') return matrix(linear.inFeatures, linear.outFeatures, values);
    const out = matrix(linear.inFeatures, linear.outFeatures);
    for (let o = 0; o < linear.outFeatures; o++) for (let i = 0; i < linear.inFeatures; i++) out.data[i * linear.outFeatures + o] = values[o * linear.inFeatures + i];
    return out;
  }

  bias(linear: LinearLayer): Float64Array | undefined {
    return linear.bias ? constantValues(this.model, linear.bias) : undefined;
  }

  linear(x: Matrix, linear: LinearLayer): Matrix {
    return addRow(multiply(x, this.weight(linear)), this.bias(linear));
  }

  projection(x: Matrix, projection: Projection): Matrix {
    const full = this.linear(x, projection.linear);
    if (projection.part === undefined) return full;
    const width = full.cols / 3;
    const out = matrix(full.rows, width);
    for (let i = 0; i < full.rows; i++) for (let j = 0; j < width; j++) out.data[i * width + j] = full.data[i * full.cols + projection.part * width + j];
    return out;
  }

  layerNorm(x: Matrix, layer: LayerNormLayer): Matrix {
    const gamma = layer.gamma ? constantValues(this.model, layer.gamma) : new Float64Array(x.cols).fill(1);
    const beta = layer.beta ? constantValues(this.model, layer.beta) : new Float64Array(x.cols);
    const out = matrix(x.rows, x.cols);
    for (let i = 0; i < x.rows; i++) {
      const row = x.data.subarray(i * x.cols, (i + 1) * x.cols);
      const mean = row.reduce((sum, value) => sum + value, 0) / x.cols;
      const variance = row.reduce((sum, value) => sum + (value - mean) ** 2, 0) / x.cols;
      for (let j = 0; j < x.cols; j++) out.data[i * x.cols + j] = ((row[j] - mean) / Math.sqrt(variance + layer.epsilon)) * gamma[j] + beta[j];
    }
    return out;
  }

  attention(x: Matrix, attention: AttentionLayer): Matrix {
    const q = this.projection(x, attention.query);
    const k = this.projection(x, attention.key);
    const v = this.projection(x, attention.value);
    const { heads, headDim, scoreBias } = attention;
    const n = x.rows;
    const context = matrix(n, heads * headDim);
    // A constant on the logits (a relative position bias), [heads or 1, n, n].
    const bias = scoreBias ? constantValues(this.model, scoreBias.values) : undefined;
    const biasAt = (h: number, i: number, j: number) => (bias && scoreBias ? scoreBias.factor * bias[((scoreBias.heads === 1 ? 0 : h) * n + i) * n + j] : 0);
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < n; i++) {
        const scores = new Float64Array(n);
        for (let j = 0; j < n; j++) {
          let dot = 0;
          for (let c = 0; c < headDim; c++) dot += q.data[i * q.cols + h * headDim + c] * k.data[j * k.cols + h * headDim + c];
          scores[j] = dot * attention.scoreScale + biasAt(h, i, j);
        }
        const max = Math.max(...scores);
        const weights = scores.map((score) => Math.exp(score - max));
        const total = weights.reduce((sum, value) => sum + value, 0);
        for (let c = 0; c < headDim; c++) {
          let value = 0;
          for (let j = 0; j < n; j++) value += (weights[j] / total) * v.data[j * v.cols + h * headDim + c];
          context.data[i * context.cols + h * headDim + c] = value;
        }
      }
    }
    return this.linear(context, attention.outProjection);
  }

  activation(x: Matrix, activation: Activation): Matrix {
    const f = {
      gelu: (z: number) => 0.5 * z * (1 + erf(z / Math.SQRT2)),
      gelu_tanh: (z: number) => 0.5 * z * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (z + 0.044715 * z ** 3))),
      quick_gelu: (z: number) => z / (1 + Math.exp(-1.702 * z)),
      silu: (z: number) => z / (1 + Math.exp(-z)),
      relu: (z: number) => Math.max(0, z),
    }[activation];
    return matrix(x.rows, x.cols, x.data.map(f));
  }

  /** FC1 as one linear map: its layers' outputs side by side (a gated MLP's gate and value). */
  fc1(x: Matrix, block: TransformerBlock): Matrix {
    return sideBySide(block.fc1.map((linear) => this.linear(x, linear)));
  }

  /** What FC2 receives from FC1's output: the activation, or silu(gate) ⊙ value through the MLP's norm. */
  hidden(fc1: Matrix, block: TransformerBlock): Matrix {
    const gated = block.gatedMlp;
    if (!gated) return this.activation(fc1, block.activation);
    const h = block.fc2.inFeatures;
    // Separate layers sit side by side in block.fc1's order; a packed fc1's halves in place.
    const half = ({ linear, half }: GatedHalf) => (half === undefined ? block.fc1.indexOf(linear) : half);
    const gate = this.activation(columns(fc1, half(gated.gate) * h, (half(gated.gate) + 1) * h), 'silu');
    const value = columns(fc1, half(gated.value) * h, (half(gated.value) + 1) * h);
    const product = matrix(
      gate.rows,
      gate.cols,
      gate.data.map((entry, i) => entry * value.data[i]),
    );
    return gated.norm ? this.layerNorm(product, gated.norm) : product;
  }

  /** LayerScale: the branch times γ (unchanged without one). */
  scaled(branch: Matrix, gamma: TransformerBlock['layerScale']['attention']): Matrix {
    if (!gamma) return branch;
    const values = constantValues(this.model, gamma);
    return matrix(
      branch.rows,
      branch.cols,
      branch.data.map((value, i) => value * values[i % branch.cols]),
    );
  }

  /** FC2 on X zero-padded to the hidden width, exactly as the paper feeds it. */
  paddedFc2(x: Matrix, fc2: LinearLayer): Matrix {
    const padded = matrix(x.rows, fc2.inFeatures);
    for (let i = 0; i < x.rows; i++) padded.data.set(x.data.subarray(i * x.cols, (i + 1) * x.cols), i * fc2.inFeatures);
    return this.linear(padded, fc2);
  }
}

/** erf by Abramowitz-Stegun 7.1.26 is too coarse (1e-7); use a series/continued fraction to 1e-15. */
function erf(x: number): number {
  const sign = Math.sign(x);
  const z = Math.abs(x);
  if (z < 3) {
    let term = z;
    let sum = z;
    for (let n = 1; n < 200; n++) {
      term *= (-z * z) / n;
      const next = term / (2 * n + 1);
      sum += next;
      if (Math.abs(next) < 1e-17) break;
    }
    return (sign * 2 * sum) / Math.sqrt(Math.PI);
  }
  // Continued fraction for erfc at larger |x|.
  let fraction = 0;
  for (let n = 60; n >= 1; n--) fraction = n / 2 / (z + fraction);
  return sign * (1 - Math.exp(-z * z) / Math.sqrt(Math.PI) / (z + fraction));
}

/** Ratios [blocks][5] in COMPONENTS order for one pair of [tokens, d] embeddings. */
export function referenceRatios(model: OnnxModel, structure: VitStructure, xData: Float64Array, yData: Float64Array, mode: 'isolated' | 'in-context'): number[][] {
  const reference = new ReferenceModel(model);
  const d = structure.hiddenSize;
  const x = matrix(xData.length / d, d, xData);
  const y = matrix(yData.length / d, d, yData);
  if (mode === 'isolated') {
    const inputDistance = distance(x, y);
    return structure.blocks.map((block) => {
      const apply: Record<string, (input: Matrix) => Matrix> = {
        LN1: (input) => reference.layerNorm(input, block.ln1),
        MHA: (input) => reference.attention(input, block.attention),
        LN2: (input) => reference.layerNorm(input, block.ln2),
        FC1: (input) => reference.fc1(input, block),
        FC2: (input) => reference.paddedFc2(input, block.fc2),
      };
      return COMPONENTS.map((component) => distance(apply[component](x), apply[component](y)) / inputDistance);
    });
  }
  let hx = x;
  let hy = y;
  return structure.blocks.map((block: TransformerBlock) => {
    const ratios: Record<string, number> = {};
    const measure = (name: string, f: (input: Matrix) => Matrix, inputX: Matrix, inputY: Matrix) => {
      const outX = f(inputX);
      const outY = f(inputY);
      ratios[name] = distance(outX, outY) / distance(inputX, inputY);
      return [outX, outY] as const;
    };
    const mlp = (inX: Matrix, inY: Matrix) => {
      const [f1x, f1y] = measure('FC1', (input) => reference.fc1(input, block), inX, inY);
      const [gx, gy] = [reference.hidden(f1x, block), reference.hidden(f1y, block)];
      return measure('FC2', (input) => reference.linear(input, block.fc2), gx, gy);
    };
    if (structure.norm === 'pre') {
      const [ax, ay] = measure('LN1', (input) => reference.layerNorm(input, block.ln1), hx, hy);
      const [mx, my] = measure('MHA', (input) => reference.attention(input, block.attention), ax, ay);
      const { attention, mlp: mlpScale } = block.layerScale;
      const [h1x, h1y] = [add(hx, reference.scaled(mx, attention)), add(hy, reference.scaled(my, attention))];
      const [cx, cy] = measure('LN2', (input) => reference.layerNorm(input, block.ln2), h1x, h1y);
      const [fx, fy] = mlp(cx, cy);
      [hx, hy] = [add(h1x, reference.scaled(fx, mlpScale)), add(h1y, reference.scaled(fy, mlpScale))];
    } else {
      const { attention, mlp: mlpScale } = block.layerScale;
      const [mx, my] = measure('MHA', (input) => reference.attention(input, block.attention), hx, hy);
      const [ax, ay] = measure('LN1', (input) => reference.layerNorm(input, block.ln1), add(hx, reference.scaled(mx, attention)), add(hy, reference.scaled(my, attention)));
      const [fx, fy] = mlp(ax, ay);
      [hx, hy] = measure('LN2', (input) => reference.layerNorm(input, block.ln2), add(ax, reference.scaled(fx, mlpScale)), add(ay, reference.scaled(fy, mlpScale)));
    }
    return COMPONENTS.map((component) => ratios[component]);
  });
}
