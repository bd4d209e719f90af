// Finds the Vision Transformer inside an ONNX graph by structure: attention softmaxes anchor the
// blocks; LayerNorms (fused or decomposed), linear layers (MatMul+Add or Gemm), residual adds and
// the MLP around each attention complete them. Names only label what structure found. Each
// pattern is a module of patterns/; this file runs them in order and describes the whole model.
import * as path from 'node:path';
import { ModelFileError } from '../errors';
import { canonicalGraphOf } from '../graph/canonicalGraph';
import { GraphKind } from '../graph/graphKind';
import { GraphIndex } from '../graph/graphIndex';
import type { GraphNode } from '../graph/graphRewrite';
import { OnnxModel, ValueInfo } from '../onnx/onnxModel';
import { applyTemplateNames, blockNames, detectNaming, layerScaleParameters, mlpNormParameters, registerTokenParameters } from './moduleNames';
import { isAttentionSoftmax, resolveAttention } from './patterns/attention';
import { resolveBlock } from './patterns/block';
import { DiscoveryContext } from './patterns/discoveryContext';
import { BlockResolutionError } from './patterns/nodeMatching';
import { LayerNormIndex } from './patterns/layerNorms';
import { LinearIndex } from './patterns/linears';
import { isPoolingHeadAttention, poolingHeadParameter } from './patterns/poolingHead';
import { AttentionLayer, ExtraParameter, TransformerBlock, VitStructure } from './vitStructure';

export function discoverVit(model: OnnxModel): VitStructure {
  const graph = new GraphIndex(canonicalGraphOf(model));
  const context: DiscoveryContext = { graph, layerNorms: new LayerNormIndex(graph), linears: new LinearIndex(graph) };
  const fileName = path.basename(model.filePath);
  const imageInput = imageInputOf(model);

  const grid = gridLayerNorm(context);
  if (grid && graph.nodes.some((node) => node.opType === 'Softmax')) {
    throw new ModelFileError(
      `${fileName} is not a Vision Transformer Plasticity Lens reads: its LayerNorms work on a grid of tokens ${grid}, as Swin's windowed attention and patch merging do; ` +
        `hierarchical models are not read yet (the README's model table lists the families that are).`,
    );
  }
  const attentions: { attention: AttentionLayer; softmax: GraphNode }[] = [];
  const poolingHeads: ExtraParameter[] = [];
  for (const softmax of graph.nodes.filter((node) => node.opType === 'Softmax')) {
    if (!isAttentionSoftmax(context, softmax)) continue;
    if (isPoolingHeadAttention(context, softmax, imageInput.name)) {
      const head = poolingHeadParameter(model, softmax);
      if (head) poolingHeads.push(head);
      continue;
    }
    try {
      attentions.push({ attention: resolveAttention(context, softmax), softmax });
    } catch (error) {
      if (!(error instanceof BlockResolutionError)) throw error;
      throw new ModelFileError(`${fileName}: block ${attentions.length} could not be resolved: ${error.message}.`);
    }
  }
  if (attentions.length === 0) throw new ModelFileError(notAVitMessage(model, context));

  const blocks: TransformerBlock[] = [];
  for (const { attention, softmax } of attentions) {
    try {
      const parts = resolveBlock(context, attention);
      blocks.push({ index: blocks.length, ...parts, ...blockNames(parts) });
    } catch (error) {
      if (!(error instanceof BlockResolutionError)) throw error;
      throw new ModelFileError(
        `${fileName}: block ${blocks.length} could not be resolved: found its attention (softmax '${softmax.name || softmax.outputs[0]}') but ${error.message}.`,
      );
    }
  }
  for (let i = 1; i < blocks.length; i++) {
    if (blocks[i].input !== blocks[i - 1].output) {
      throw new ModelFileError(
        `${fileName}: block ${i} does not take block ${i - 1}'s output as its input ('${blocks[i].input}' vs '${blocks[i - 1].output}'); the blocks do not form one chain, so this is not a plain ViT.`,
      );
    }
  }
  return describe(model, context, blocks, imageInput, poolingHeads);
}

function imageInputOf(model: OnnxModel) {
  const imageInput = model.inputs.find((input) => !model.initializers.has(input.name));
  if (!imageInput) throw new ModelFileError(`${path.basename(model.filePath)} has no image input; export the model with its pixel input.`);
  return imageInput;
}

/**
 * The shape, as "[batch, H, W, C]", of a LayerNorm's input whose tokens lie on a grid (rank 4,
 * normalised over its last axis): Swin's blocks; a ViT's tokens are a sequence (rank 3).
 */
function gridLayerNorm(context: DiscoveryContext): string | undefined {
  for (const layerNorm of context.layerNorms.byOutput.values()) {
    const dims = context.graph.shapes.dims(layerNorm.input);
    if (dims?.length === 4 && dims[3] === layerNorm.width && dims[1] !== undefined && dims[1] > 1 && dims[2] !== undefined && dims[2] > 1) {
      return `[${dims.map((size) => size ?? 'batch').join(', ')}]`;
    }
  }
  return undefined;
}

function notAVitMessage(model: OnnxModel, context: DiscoveryContext): string {
  const counts = new Map<string, number>();
  for (const node of model.nodes) counts.set(node.opType, (counts.get(node.opType) ?? 0) + 1);
  const found = [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5)
    .map(([op, count]) => `${count} ${op}`)
    .join(', ');
  const softmaxes = context.graph.nodes.filter((node) => node.opType === 'Softmax').length;
  if (softmaxes > 0) {
    // Attention is there, in a form discovery does not trace: say so rather than "no attention".
    return (
      `${path.basename(model.filePath)} is not a Vision Transformer Plasticity Lens reads: its ${softmaxes} Softmax node(s) are not an attention it traces ` +
      `(Q·Kᵀ, scaled, plus at most one constant bias, then ·V). Windowed attention (Swin: window partition, shifted-window mask, relative position bias, patch merging) ` +
      `and other forms are not read yet; the README's model table lists the families that are.`
    );
  }
  return `${path.basename(model.filePath)} is not a Vision Transformer: found ${found} and ${context.layerNorms.count} LayerNorm(s) but no self-attention (Softmax over Q·Kᵀ); open an ONNX export of a ViT.`;
}

function describe(model: OnnxModel, context: DiscoveryContext, blocks: TransformerBlock[], imageInput: ValueInfo, poolingHeads: ExtraParameter[]): VitStructure {
  const { graph } = context;
  const inputShape = (imageInput.shape ?? []).map((dim) => dim.value ?? dim.param ?? '?');
  const hiddenSize = blocks[0].attention.outProjection.outFeatures;
  const embeddingNodes = graph.ancestors([blocks[0].input]);
  const conv = embeddingNodes.find((node) => node.opType === 'Conv');
  const kernel = conv?.attributes.get('kernel_shape')?.ints;
  const patchSize = kernel && kernel.length === 2 ? ([kernel[0], kernel[1]] as [number, number]) : undefined;
  const imageSize =
    inputShape.length === 4 && typeof inputShape[2] === 'number' && typeof inputShape[3] === 'number' ? ([inputShape[2], inputShape[3]] as [number, number]) : undefined;
  const channels = typeof inputShape[1] === 'number' ? inputShape[1] : 3;
  const naming = detectNaming(blocks);
  const patchGrid = imageSize && patchSize ? ([imageSize[0] / patchSize[0], imageSize[1] / patchSize[1]] as [number, number]) : undefined;
  const sharedTables = applyTemplateNames(blocks, naming, patchGrid);
  const registerTokens = registerTokenParameters(
    embeddingNodes.flatMap((node) => node.inputs.map((input) => (input ? graph.constant(input) : undefined)).filter((constant) => constant !== undefined)),
  );
  return {
    inputName: imageInput.name,
    inputShape,
    dynamicBatch: typeof inputShape[0] !== 'number',
    embeddingOutput: blocks[0].input,
    blocks,
    hiddenSize,
    heads: blocks[0].attention.heads,
    mlpSize: blocks[0].fc2.inFeatures,
    tokens: embeddedTokens(graph, blocks[0].input, hiddenSize) ?? tokenCount(graph, embeddingNodes, hiddenSize, new Set(registerTokens.map((parameter) => parameter.name))),
    imageSize,
    patchSize,
    channels,
    norm: context.layerNorms.byOutput.get(blocks[0].attention.input) ? 'pre' : 'post',
    activation: blocks[0].activation,
    naming,
    extraParameters: [...registerTokens, ...blocks.flatMap(layerScaleParameters), ...blocks.flatMap(mlpNormParameters), ...sharedTables, ...poolingHeads],
    graph,
    kind: graphKind(graph, blocks),
  };
}

/** The canonical graph's account of the file, with the storage of the block weights measured. */
function graphKind(graph: GraphIndex, blocks: TransformerBlock[]): GraphKind {
  const canonical = graph.graph;
  for (const block of blocks) {
    const linears = [block.attention.query.linear, block.attention.outProjection, ...block.fc1, block.fc2];
    for (const linear of linears) canonical.noteWeightStorage(linear.weight);
  }
  return canonical.kind;
}

/**
 * Tokens per image from the static shape of what enters block 0 ([batch, n, d], or [n, batch, d]
 * inside CLIP's LND layout): class, distillation and register tokens included. Undefined when the
 * shape cannot be inferred or is ambiguous (a static batch other than 1 beside n).
 */
function embeddedTokens(graph: GraphIndex, embeddingOutput: string, hiddenSize: number): number | undefined {
  const dims = graph.shapes.dims(embeddingOutput);
  if (!dims || dims.length !== 3 || dims[2] !== hiddenSize) return undefined;
  const candidates = dims.slice(0, 2).filter((size): size is number => size !== undefined && size !== 1);
  return candidates.length === 1 ? candidates[0] : undefined;
}

/**
 * Tokens per image, read from the position embedding's shape ([1, n, d] or [n, d]); register
 * tokens ([1, 4, d]) are not a position table (DINOv3 has none: then found at run time).
 */
function tokenCount(graph: GraphIndex, embeddingNodes: GraphNode[], hiddenSize: number, registerTokens: Set<string>): number | undefined {
  let best: number | undefined;
  for (const node of embeddingNodes) {
    for (const input of node.inputs) {
      const tensor = input ? graph.constant(input) : undefined;
      if (!tensor || registerTokens.has(input)) continue;
      const dims = tensor.dims;
      if (dims.length >= 2 && dims[dims.length - 1] === hiddenSize && dims.slice(0, -2).every((dim) => dim === 1) && dims[dims.length - 2] > 1) {
        best = Math.max(best ?? 0, dims[dims.length - 2]);
      }
    }
  }
  return best;
}
