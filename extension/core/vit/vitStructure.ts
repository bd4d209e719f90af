// What discovery finds in a ViT: the typed boundary between the model reader and the probes.
import { ConstantTensor } from '../graph/constantTensor';
import { GraphKind } from '../graph/graphKind';
import { GraphIndex } from '../graph/graphIndex';

import { Activation, ComponentName, ExtraParameter, Naming, NormPlacement } from '../vocabulary';

export { COMPONENTS } from '../vocabulary';
export type { Activation, ComponentName, ExtraParameter, Naming, NormPlacement } from '../vocabulary';

export interface LayerNormLayer {
  input: string;
  output: string;
  /** Undefined when the norm has no affine scale (gamma = 1). */
  gamma?: ConstantTensor;
  beta?: ConstantTensor;
  epsilon: number;
  width: number;
}

export interface LinearLayer {
  input: string;
  output: string;
  weight: ConstantTensor;
  /** 'inOut': weight is [in, out] (MatMul); 'outIn': weight is [out, in] (Gemm transB=1). */
  weightLayout: 'inOut' | 'outIn';
  bias?: ConstantTensor;
  inFeatures: number;
  outFeatures: number;
  /** Scope name of the exporter's node, e.g. "/blocks.0/attn/qkv/MatMul". */
  nodeName: string;
}

/** A query, key or value projection: a linear layer, or one third of a fused qkv layer. */
export interface Projection {
  linear: LinearLayer;
  /** 0, 1 or 2: which third of a fused qkv output; undefined when not fused. */
  part?: number;
}

export interface AttentionLayer {
  /** The tensor the attention module receives (before any layout transposes). */
  input: string;
  /** The module's output (after the output projection and its bias). */
  output: string;
  query: Projection;
  key: Projection;
  value: Projection;
  outProjection: LinearLayer;
  heads: number;
  headDim: number;
  /** Factor the model applies to Q K^T before the softmax (1/sqrt(headDim) for the usual ViT). */
  scoreScale: number;
  /** A constant added to the logits (BEiT's relative position bias, gathered from its table). */
  scoreBias?: ScoreBias;
  /** The rotary position embedding applied to q and k (DINOv3, EVA-02), part of the attention module. */
  rotary?: RotaryEmbedding;
}

/** logits = scoreScale · Q Kᵀ + factor · values, values laid out as [heads, tokens, tokens]. */
export interface ScoreBias {
  values: ConstantTensor;
  factor: number;
  /** The model's head count, or 1 when one bias is shared by every head. */
  heads: number;
  tokens: number;
}

/**
 * Rotary position embedding (RoPE) of q and k, per head: x' = x ⊙ cos + rotate_half(x) ⊙ sin, with
 * rotate_half(x) = [-x₂, x₁] for the two halves of the head dimension, each token by its row of the
 * tables: an orthogonal rotation of every token's q and k.
 */
export interface RotaryEmbedding {
  /**
   * The graph's tensors holding the tables, broadcast over batch and heads: constants, or computed
   * from the image input's shape (not its values), as PyTorch exports HF's DINOv3 with a dynamic batch.
   */
  cos: string;
  sin: string;
  /** Where the tokens are: 'heads-first' q/k [batch, heads, tokens, dh]; 'tokens-first' [batch, tokens, heads, dh]. */
  layout: 'heads-first' | 'tokens-first';
  /** True when the tokens before the tables' rows (class and register tokens) are left unrotated. */
  prefixUnrotated: boolean;
}

/** One half of a gated MLP's first layer: a linear layer of its own, or a half of a packed fc1 [d, 2h]. */
export interface GatedHalf {
  linear: LinearLayer;
  /** 0: the first h outputs of a packed fc1, 1: the last h; undefined when the linear is this half alone. */
  half?: 0 | 1;
}

/**
 * A SwiGLU MLP, fc2(norm?(silu(gate) ⊙ value)): timm's SwiGLU (EVA-02: `fc1_g`, `fc1_x`) or its
 * packed GluMlp / SwiGLUPacked (one `fc1` [d, 2h], split in the graph).
 */
export interface GatedMlp {
  gate: GatedHalf;
  value: GatedHalf;
  /** LayerNorm over the hidden width before FC2 (timm `mlp.norm`, EVA-02 `ffn_ln`): no component's. */
  norm?: LayerNormLayer;
}

export interface TransformerBlock {
  index: number;
  input: string;
  output: string;
  ln1: LayerNormLayer;
  attention: AttentionLayer;
  ln2: LayerNormLayer;
  /**
   * FC1's linear layers, measured as one linear map: one layer, or a gated MLP's gate and value
   * layers (x -> [x W_gate + b_gate, x W_value + b_value], their outputs side by side).
   */
  fc1: LinearLayer[];
  fc2: LinearLayer;
  activation: Activation;
  /** Set for a SwiGLU MLP: how FC1's outputs are gated before FC2. */
  gatedMlp?: GatedMlp;
  /** LayerScale: γ multiplying a branch's output before its residual Add (DINOv2, BEiT, CaiT). */
  layerScale: { attention?: ConstantTensor; mlp?: ConstantTensor };
  /** Framework module name per component (e.g. "blocks.3.attn"). */
  modules: Record<ComponentName, string>;
  /** Framework parameter names per component. */
  parameters: Record<ComponentName, string[]>;
  parameterCounts: Record<ComponentName, number>;
  /** The block's own module name (e.g. "blocks.3"). */
  module: string;
}

export interface VitStructure {
  inputName: string;
  /** Model input shape; strings for symbolic dims. */
  inputShape: (number | string)[];
  /** True when the batch dimension is symbolic, so several images can run at once. */
  dynamicBatch: boolean;
  /** The tensor entering block 0 (X in the paper). */
  embeddingOutput: string;
  blocks: TransformerBlock[];
  hiddenSize: number;
  heads: number;
  /** The MLP's hidden width h (FC2's input width; FC1's output is 2h wide in a gated MLP). */
  mlpSize: number;
  /** Tokens per image, when the graph states it (position embedding); else found at run time. */
  tokens?: number;
  imageSize?: [number, number];
  patchSize?: [number, number];
  channels: number;
  norm: NormPlacement;
  activation: Activation;
  naming: Naming;
  /** Parameters of no component: the blocks' LayerScale γ and MLP norms, the embedding's register tokens, a pooling head. */
  extraParameters: ExtraParameter[];
  /** The canonical graph discovery read (the embedder copies its nodes). */
  graph: GraphIndex;
  /** How the file stores the model: float16 or 8-bit weights, fused operators, activation quantization. */
  kind: GraphKind;
}
