// Graph fragments shared by the probe models: weights in a common layout, attention, norms,
// activations and per-pair distances. Weight preparation (slicing a fused qkv, folding the
// score scale, transposing) is written as graph nodes over the original initializers, so
// onnxruntime folds it once at session creation and no weight is copied through JavaScript.
import { OnnxModel, TensorDataType } from '../onnx/onnxModel';
import { OnnxGraphBuilder } from '../onnx/onnxWriter';
import { constantValues, emitConstant } from '../graph/constantTensor';
import { Activation, AttentionLayer, GatedHalf, LayerNormLayer, LinearLayer, Projection, RotaryEmbedding, TransformerBlock } from '../vit/vitStructure';

export const PROBE_OPSET = 17;

/** onnxruntime's contrib operators (the cpu probe's fused attention). */
export const FUSED_OPS_DOMAIN = 'com.microsoft';

/**
 * A rotary table the probe takes as an input: the model's tensor (computed once by the model's
 * own nodes, see buildRotaryTablesModel) reshaped to [rows, dh] ('heads-first') or [rows, 1, dh].
 */
export interface RotaryTableInput {
  name: string;
  tensor: string;
  shape: number[];
}

const INT64_MAX = Number.MAX_SAFE_INTEGER;

export class ProbeOps {
  /** The rotary tables the built nodes read, by the model's tensor name. */
  private readonly rotaryTableInputs = new Map<string, RotaryTableInput>();

  constructor(
    readonly builder: OnnxGraphBuilder,
    readonly model: OnnxModel,
  ) {}

  /** The rotary tables the probe takes as inputs (empty for a model without rotary attention). */
  get rotaryTables(): RotaryTableInput[] {
    return [...this.rotaryTableInputs.values()];
  }

  /** The layer's weight as [in, out]. */
  weightInOut(linear: LinearLayer): string {
    const weight = emitConstant(this.builder, this.model, linear.weight);
    return linear.weightLayout === 'inOut' ? weight : this.builder.op('Transpose', [weight], { perm: [1, 0] });
  }

  /** Columns [start, end) of an [in, out] weight, or entries of a bias. */
  private sliceLast(tensor: string, start: number, end: number, axis: number): string {
    return this.builder.op('Slice', [tensor, this.builder.intConstant([start]), this.builder.intConstant([end]), this.builder.intConstant([axis])]);
  }

  /** The projection's [d, width] weight and [width] bias (zeros when the layer has none). */
  private projection(projection: Projection): { weight: string; bias: string } {
    const { linear, part } = projection;
    const width = part === undefined ? linear.outFeatures : linear.outFeatures / 3;
    let weight = this.weightInOut(linear);
    let bias = linear.bias
      ? emitConstant(this.builder, this.model, linear.bias)
      : this.builder.floatConstant(new Float32Array(linear.outFeatures), [linear.outFeatures], 'zero_bias');
    if (part !== undefined) {
      weight = this.sliceLast(weight, part * width, (part + 1) * width, 1);
      bias = this.sliceLast(bias, part * width, (part + 1) * width, 0);
    }
    return { weight, bias };
  }

  /**
   * Q, K and V of `input` ([batch, tokens, d] each). A fused qkv layer in its own order is
   * used as it is (one product, no copy of its weight); separate layers run one product each.
   */
  private queryKeyValue(input: string, attention: AttentionLayer): [string, string, string] {
    const b = this.builder;
    const { query, key, value } = attention;
    const fused = query.linear === key.linear && key.linear === value.linear && query.part === 0 && key.part === 1 && value.part === 2;
    if (fused) {
      const [q, k, v] = b.node('Split', [this.linear(input, query.linear)], [b.fresh('q'), b.fresh('k'), b.fresh('v')], { axis: 2 });
      return [q, k, v];
    }
    const project = (projection: Projection) => {
      const { weight, bias } = this.projection(projection);
      return b.op('Add', [b.op('MatMul', [input, weight]), bias]);
    };
    return [project(query), project(key), project(value)];
  }

  /**
   * Attention up to the concatenated head outputs (before the output projection):
   * softmax(Q K^T * scale) V per head. `input` is [batch, tokens, d].
   */
  attentionHeads(input: string, attention: AttentionLayer): string {
    const { heads, headDim } = attention;
    const b = this.builder;
    const [q, k, v] = this.queryKeyValue(input, attention);
    const headShape = b.intConstant([0, 0, heads, headDim]);
    const perHead = (tensor: string, perm: number[]) => b.op('Transpose', [b.op('Reshape', [tensor, headShape])], { perm });
    const queryHeads = attention.rotary ? this.rotatedHeads(q, attention, attention.rotary) : perHead(q, [0, 2, 1, 3]);
    const keyHeads = attention.rotary ? b.op('Transpose', [this.rotatedHeads(k, attention, attention.rotary)], { perm: [0, 1, 3, 2] }) : perHead(k, [0, 2, 3, 1]);
    const scaled = b.op('Mul', [b.op('MatMul', [queryHeads, keyHeads]), b.floatConstant([attention.scoreScale], [], 'score_scale')]);
    const bias = this.scoreBias(attention);
    const scores = bias ? b.op('Add', [scaled, bias]) : scaled;
    const probabilities = b.op('Softmax', [scores], { axis: -1 });
    const context = b.op('MatMul', [probabilities, perHead(v, [0, 2, 1, 3])]);
    return b.op('Reshape', [b.op('Transpose', [context], { perm: [0, 2, 1, 3] }), b.intConstant([0, 0, heads * headDim])]);
  }

  /** q or k [batch, tokens, d] as heads [batch, heads, tokens, dh], rotated in the layout the model rotates them in. */
  private rotatedHeads(tensor: string, attention: AttentionLayer, rotary: RotaryEmbedding): string {
    const b = this.builder;
    const split = b.op('Reshape', [tensor, b.intConstant([0, 0, attention.heads, attention.headDim])]);
    if (rotary.layout === 'tokens-first') return b.op('Transpose', [this.rotate(split, rotary, 1, attention.headDim)], { perm: [0, 2, 1, 3] });
    return this.rotate(b.op('Transpose', [split], { perm: [0, 2, 1, 3] }), rotary, 2, attention.headDim);
  }

  /**
   * x ⊙ cos + rotate_half(x) ⊙ sin, in the model's order of operations, on the tokens the tables
   * have rows for: the last ones, the prefix before them (class, registers) left as it is.
   */
  private rotate(x: string, rotary: RotaryEmbedding, tokenAxis: number, headDim: number): string {
    const b = this.builder;
    const cos = this.rotaryTable(rotary.cos, rotary.layout, headDim);
    const sin = this.rotaryTable(rotary.sin, rotary.layout, headDim);
    const slice = (tensor: string, start: string, end: string, axis: number) => b.op('Slice', [tensor, start, end, b.intConstant([axis])]);
    let prefix: string | undefined;
    let rotated = x;
    if (rotary.prefixUnrotated) {
      const prefixTokens = b.op('Sub', [b.op('Shape', [x], { start: tokenAxis, end: tokenAxis + 1 }), b.op('Shape', [cos], { start: 0, end: 1 })]);
      prefix = slice(x, b.intConstant([0]), prefixTokens, tokenAxis);
      rotated = slice(x, prefixTokens, b.intConstant([INT64_MAX]), tokenAxis);
    }
    const half = headDim / 2;
    const halves = [slice(rotated, b.intConstant([0]), b.intConstant([half]), -1), slice(rotated, b.intConstant([half]), b.intConstant([INT64_MAX]), -1)];
    const rotatedHalf = b.op('Concat', [b.op('Neg', [halves[1]]), halves[0]], { axis: -1 });
    const result = b.op('Add', [b.op('Mul', [rotated, cos]), b.op('Mul', [rotatedHalf, sin])]);
    return prefix ? b.op('Concat', [prefix, result], { axis: tokenAxis }) : result;
  }

  /** The probe input holding the model's rotary table `tensor` (declared on first use). */
  private rotaryTable(tensor: string, layout: RotaryEmbedding['layout'], headDim: number): string {
    let table = this.rotaryTableInputs.get(tensor);
    if (!table) {
      const shape = layout === 'heads-first' ? [-1, headDim] : [-1, 1, headDim];
      table = { name: `rotary_table_${this.rotaryTableInputs.size}`, tensor, shape };
      this.rotaryTableInputs.set(tensor, table);
      this.builder.input(
        table.name,
        TensorDataType.FLOAT,
        shape.map((dim) => (dim === -1 ? 'rotary_rows' : dim)),
      );
    }
    return table.name;
  }

  /** The constant the model adds to the logits as [1, heads or 1, N, N] (scaled as it is), if any. */
  private scoreBias(attention: AttentionLayer): string | undefined {
    const bias = attention.scoreBias;
    if (!bias) return undefined;
    const b = this.builder;
    const shaped = b.op('Reshape', [emitConstant(b, this.model, bias.values), b.intConstant([1, bias.heads, bias.tokens, bias.tokens])]);
    return bias.factor === 1 ? shaped : b.op('Mul', [shaped, b.floatConstant([bias.factor], [], 'bias_factor')]);
  }

  /**
   * The same as attentionHeads, as onnxruntime's fused cpu operator (com.microsoft Attention):
   * the q, k and v products, heads, scores, softmax and context in one multi-threaded kernel that
   * never writes the projections or scores out as graph tensors. cpu only (not a portable op).
   */
  fusedAttentionHeads(input: string, attention: AttentionLayer): string {
    // The operator projects q, k and v itself, leaving no place to rotate q and k between the
    // projections and Q·Kᵀ: rotary attention takes the portable heads, on cpu too.
    if (attention.rotary) return this.attentionHeads(input, attention);
    const b = this.builder;
    const { query, key, value } = attention;
    let weight: string;
    let bias: string;
    if (query.linear === key.linear && key.linear === value.linear && query.part === 0 && key.part === 1 && value.part === 2) {
      // A fused qkv layer in its own order is already the operator's packed [d, 3d] weight.
      weight = this.weightInOut(query.linear);
      bias = query.linear.bias
        ? emitConstant(b, this.model, query.linear.bias)
        : b.floatConstant(new Float32Array(query.linear.outFeatures), [query.linear.outFeatures], 'zero_bias');
    } else {
      const parts = [query, key, value].map((projection) => this.projection(projection));
      weight = b.op(
        'Concat',
        parts.map((part) => part.weight),
        { axis: 1 },
      );
      bias = b.op(
        'Concat',
        parts.map((part) => part.bias),
        { axis: 0 },
      );
    }
    const attributes = { num_heads: attention.heads, scale: { float: attention.scoreScale } };
    // A bias on the logits (BEiT's relative positions) is the operator's attention_bias input
    // (input 5, [1, heads or 1, N, N], added after the scale); mask and past stay absent.
    const scoreBias = this.scoreBias(attention);
    const inputs = scoreBias ? [input, weight, bias, '', '', scoreBias] : [input, weight, bias];
    return b.node('Attention', inputs, [b.fresh('attention')], attributes, FUSED_OPS_DOMAIN)[0];
  }

  /** The output projection applied to `heads` (with its bias unless `withBias` is false). */
  outProjection(heads: string, attention: AttentionLayer, withBias: boolean): string {
    const linear = attention.outProjection;
    const product = this.builder.op('MatMul', [heads, this.weightInOut(linear)]);
    return withBias && linear.bias ? this.builder.op('Add', [product, emitConstant(this.builder, this.model, linear.bias)]) : product;
  }

  linear(input: string, linear: LinearLayer): string {
    const product = this.builder.op('MatMul', [input, this.weightInOut(linear)]);
    return linear.bias ? this.builder.op('Add', [product, emitConstant(this.builder, this.model, linear.bias)]) : product;
  }

  /**
   * An MLP up to FC2's input: `fc1`, FC1's output as measured (a gated MLP's gate and value
   * outputs side by side, before the gate), and `hidden`, what FC2 receives (the activation, or
   * silu(gate) ⊙ value through the MLP's own norm).
   */
  mlpFirstLayer(input: string, block: Pick<TransformerBlock, 'fc1' | 'activation' | 'gatedMlp'>): { fc1: string; hidden: string } {
    const b = this.builder;
    const gated = block.gatedMlp;
    if (!gated) {
      const fc1 = this.linear(input, block.fc1[0]);
      return { fc1, hidden: this.activation(fc1, block.activation) };
    }
    const outputs = block.fc1.map((linear) => this.linear(input, linear));
    const fc1 = outputs.length === 1 ? outputs[0] : b.op('Concat', outputs, { axis: 2 });
    // A packed fc1 [d, 2h] holds both halves; each half of its own is one of `outputs`.
    const halves = gated.gate.half === undefined ? undefined : b.node('Split', [outputs[0]], [b.fresh('first_half'), b.fresh('second_half')], { axis: 2 });
    const halfOutput = (half: GatedHalf) => (half.half === undefined ? outputs[block.fc1.indexOf(half.linear)] : halves![half.half]);
    const product = b.op('Mul', [this.activation(halfOutput(gated.gate), 'silu'), halfOutput(gated.value)]);
    return { fc1, hidden: gated.norm ? this.layerNorm(product, gated.norm) : product };
  }

  /** Gamma of a LayerNorm as numbers (ones when it has no affine scale). */
  gammaValues(layerNorm: LayerNormLayer): Float64Array {
    return layerNorm.gamma ? constantValues(this.model, layerNorm.gamma) : new Float64Array(layerNorm.width).fill(1);
  }

  /** (x - mean) / sqrt(var + eps) over the last axis, without gamma and beta. */
  normalize(input: string, epsilon: number, width: number): string {
    const ones = this.builder.floatConstant(new Float32Array(width).fill(1), [width], 'ones');
    return this.builder.op('LayerNormalization', [input, ones], { axis: -1, epsilon: { float: epsilon } });
  }

  /** The full LayerNorm with its own gamma and beta. */
  layerNorm(input: string, layerNorm: LayerNormLayer): string {
    const b = this.builder;
    const gamma = layerNorm.gamma ? emitConstant(b, this.model, layerNorm.gamma) : b.floatConstant(new Float32Array(layerNorm.width).fill(1), [layerNorm.width], 'ones');
    const inputs = [input, gamma];
    if (layerNorm.beta) inputs.push(emitConstant(b, this.model, layerNorm.beta));
    return b.op('LayerNormalization', inputs, { axis: -1, epsilon: { float: layerNorm.epsilon } });
  }

  activation(input: string, activation: Activation): string {
    const b = this.builder;
    const scalar = (value: number) => b.floatConstant([value], [], 'act');
    switch (activation) {
      case 'gelu': {
        const erf = b.op('Erf', [b.op('Mul', [input, scalar(Math.SQRT1_2)])]);
        return b.op('Mul', [b.op('Mul', [input, scalar(0.5)]), b.op('Add', [erf, scalar(1)])]);
      }
      case 'gelu_tanh': {
        const cube = b.op('Mul', [b.op('Mul', [input, input]), input]);
        const inner = b.op('Mul', [b.op('Add', [input, b.op('Mul', [cube, scalar(0.044715)])]), scalar(Math.sqrt(2 / Math.PI))]);
        return b.op('Mul', [b.op('Mul', [input, scalar(0.5)]), b.op('Add', [b.op('Tanh', [inner]), scalar(1)])]);
      }
      case 'quick_gelu':
        return b.op('Mul', [input, b.op('Sigmoid', [b.op('Mul', [input, scalar(1.702)])])]);
      case 'silu':
        return b.op('Mul', [input, b.op('Sigmoid', [input])]);
      case 'relu':
        return b.op('Relu', [input]);
    }
  }

  /** Squared Frobenius norm per pair of a [batch, tokens, features] tensor: [batch]. */
  squaredNorm(tensor: string): string {
    return this.builder.op('ReduceSumSquare', [tensor], { axes: [1, 2], keepdims: 0 });
  }

  /** Splits a [2B, ...] tensor holding reference rows then target rows; returns their difference. */
  pairDifference(stacked: string): string {
    const [reference, target] = this.builder.node('Split', [stacked], [this.builder.fresh('ref'), this.builder.fresh('tgt')], { axis: 0 });
    return this.builder.op('Sub', [reference, target]);
  }
}
