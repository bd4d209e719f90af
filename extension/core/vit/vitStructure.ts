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
}

/** logits = scoreScale · Q Kᵀ + factor · values, values laid out as [heads, tokens, tokens]. */
export interface ScoreBias {
  values: ConstantTensor;
  factor: number;
  /** The model's head count, or 1 when one bias is shared by every head. */
  heads: number;
  tokens: number;
}

export interface TransformerBlock {
  index: number;
  input: string;
  output: string;
  ln1: LayerNormLayer;
  attention: AttentionLayer;
  ln2: LayerNormLayer;
  fc1: LinearLayer;
  fc2: LinearLayer;
  activation: Activation;
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
  mlpSize: number;
  /** Tokens per image, when the graph states it (position embedding); else found at run time. */
  tokens?: number;
  imageSize?: [number, number];
  patchSize?: [number, number];
  channels: number;
  norm: NormPlacement;
  activation: Activation;
  naming: Naming;
  /** Parameters of no component: the blocks' LayerScale γ and the embedding's register tokens. */
  extraParameters: ExtraParameter[];
  /** The canonical graph discovery read (the embedder copies its nodes). */
  graph: GraphIndex;
  /** How the file stores the model: float16 or 8-bit weights, fused operators, activation quantization. */
  kind: GraphKind;
}
