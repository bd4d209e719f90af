// The canonical graph: the model's nodes as plain float32 ONNX operators, whatever the file holds.
// Models in the wild are float16 conversions, 8-bit quantizations and onnxruntime-fused graphs of
// the same ViT; rewriting them here into one form (MatMul + Add linears, LayerNormalization,
// Softmax attention, residual Adds) lets discovery and the embedder see one kind of graph:
// - float16 weights and constants become float32 constants; Casts to float16 cast to float32;
// - 8-bit weights (DequantizeLinear of a constant, MatMulInteger/ConvInteger chains) become
//   dequantized float32 constants; activation quantization (QuantizeLinear -> DequantizeLinear,
//   DynamicQuantizeLinear) is dropped: the engine measures the dequantized weights in float32;
// - onnxruntime's fused operators (Attention, MultiHeadAttention, SkipLayerNormalization,
//   BiasGelu, FastGelu, Gelu, FusedMatMul) and the ONNX Attention op expand into the plain
//   operators they stand for.
// Nodes the rewrite leaves alone keep a reference to the file's node, so the embedder copies them
// byte for byte.
import * as path from 'node:path';
import { ModelFileError } from '../errors';
import { AttributeInfo, NodeInfo, OnnxModel, TensorDataType } from '../onnx/onnxModel';
import { ConstantTensor, plainConstant, storageOf } from './constantTensor';
import { FUSED_OPERATORS } from './fusedOperators';
import { rewriteQuantized } from './quantizedOperators';

/** A node of the canonical graph: a file's node without its place in the file, and that node when copied unchanged. */
export type GraphNode = Omit<NodeInfo, 'index' | 'message'> & {
  /** The file's node when this node is that node unchanged (copied byte for byte). */
  verbatim?: NodeInfo;
};

/** What the canonical graph had to rewrite: shown to the user, and in the report. */
export interface GraphKind {
  /** How the block weights are stored: 'float32', 'float16', 'int8', 'uint8' (several when mixed). */
  weightStorage: string[];
  /** Fused operators found and expanded (e.g. 'com.microsoft.Attention'). */
  fusedOperators: string[];
  /** Activation quantization found and not applied ('dynamic', 'static QDQ'). */
  activationQuantization: string[];
}

/**
 * One sentence saying what the engine measures for a graph of this kind, e.g. "float16 weights,
 * measured in float32 on the upcast weights".
 */
export function graphKindSummary(kind: GraphKind): string {
  const parts: string[] = [];
  const storage = kind.weightStorage.length > 0 ? kind.weightStorage.join(' and ') : 'float32';
  const quantized = kind.weightStorage.some((type) => type === 'int8' || type === 'uint8');
  if (quantized) parts.push(`${storage} weights, measured in float32 on the dequantized weights`);
  else if (storage !== 'float32') parts.push(`${storage} weights, measured in float32 on the upcast weights`);
  else parts.push('float32 weights');
  if (kind.activationQuantization.length > 0) parts.push(`activation quantization not applied (${kind.activationQuantization.join('; ')})`);
  if (kind.fusedOperators.length > 0) parts.push(`fused operators read as the plain operators they compute (${kind.fusedOperators.join(', ')})`);
  return parts.join('; ');
}

/** True when the measured function differs from the file's own beyond float32 rounding. */
export function measuresAnotherPrecision(kind: GraphKind): boolean {
  return kind.activationQuantization.length > 0 || kind.weightStorage.some((type) => type !== 'float32');
}

/** Attribute-building shorthand for rewritten nodes. */
export type AttributeSpec = Record<string, number | string | number[] | { float: number }>;

export class CanonicalGraph {
  readonly nodes: GraphNode[] = [];
  /** Values the rewrite made constant (float16 constants, dequantized weights, slices). */
  readonly constants = new Map<string, ConstantTensor>();
  readonly kind: GraphKind = { weightStorage: [], fusedOperators: [], activationQuantization: [] };
  private counter = 0;

  constructor(readonly model: OnnxModel) {
    const consumed = new Set<NodeInfo>();
    const producer = new Map<string, NodeInfo>();
    const consumers = new Map<string, NodeInfo[]>();
    for (const node of model.nodes) {
      for (const output of node.outputs) producer.set(output, node);
      for (const input of node.inputs) if (input) consumers.set(input, [...(consumers.get(input) ?? []), node]);
    }
    const context: RewriteContext = { graph: this, model, producer, consumers, consumed };
    for (const node of model.nodes) {
      if (consumed.has(node)) continue;
      if (rewriteQuantized(context, node)) continue;
      if (this.rewriteFloat16(node)) continue;
      const expand = FUSED_OPERATORS.get(operatorKey(node));
      if (expand) {
        this.noteFused(operatorKey(node));
        expand(context, node);
        continue;
      }
      this.nodes.push(verbatimNode(node));
    }
  }

  fresh(prefix: string): string {
    return `${prefix}::canonical_${this.counter++}`;
  }

  /** Adds a rewritten node; returns its first output. */
  add(opType: string, inputs: string[], outputs?: string[] | string, attributes: AttributeSpec = {}, domain = '', name?: string): string {
    const outputList = outputs === undefined ? [this.fresh(opType)] : typeof outputs === 'string' ? [outputs] : outputs;
    this.nodes.push({ name: name ?? outputList[0], opType, domain, inputs, outputs: outputList, attributes: attributeMap(attributes) });
    return outputList[0];
  }

  addConstant(constant: ConstantTensor): string {
    this.constants.set(constant.name, constant);
    return constant.name;
  }

  noteFused(operator: string): void {
    if (!this.kind.fusedOperators.includes(operator)) this.kind.fusedOperators.push(operator);
  }

  noteActivationQuantization(kind: string): void {
    if (!this.kind.activationQuantization.includes(kind)) this.kind.activationQuantization.push(kind);
  }

  /** Records how a block weight is stored (called by discovery for the weights it uses). */
  noteWeightStorage(constant: ConstantTensor): void {
    const storage = storageOf(constant);
    if (!this.kind.weightStorage.includes(storage)) this.kind.weightStorage.push(storage);
  }

  /** float16 Constant nodes become float32 constants; Casts to float16 cast to float32. */
  private rewriteFloat16(node: NodeInfo): boolean {
    if (node.opType === 'Constant' && node.domain === '') {
      const value = node.attributes.get('value')?.t;
      if (value?.dataType !== TensorDataType.FLOAT16) return false;
      this.addConstant(plainConstant(value, 'attribute', node.outputs[0]));
      return true;
    }
    if (node.opType === 'Cast' && node.attributes.get('to')?.i === TensorDataType.FLOAT16) {
      this.add('Cast', node.inputs, node.outputs, { to: TensorDataType.FLOAT }, '', node.name);
      return true;
    }
    return false;
  }
}

export interface RewriteContext {
  graph: CanonicalGraph;
  model: OnnxModel;
  producer: Map<string, NodeInfo>;
  consumers: Map<string, NodeInfo[]>;
  /** File nodes a rewrite has already replaced (skipped when met later). */
  consumed: Set<NodeInfo>;
}

export function operatorKey(node: Pick<NodeInfo, 'domain' | 'opType'>): string {
  return node.domain && node.domain !== 'ai.onnx' ? `${node.domain}.${node.opType}` : node.opType;
}

function verbatimNode(node: NodeInfo): GraphNode {
  return { name: node.name, opType: node.opType, domain: node.domain, inputs: node.inputs, outputs: node.outputs, attributes: node.attributes, verbatim: node };
}

const ATTRIBUTE_TYPES = { float: 1, int: 2, string: 3, ints: 7 } as const;

function attributeMap(spec: AttributeSpec): Map<string, AttributeInfo> {
  const map = new Map<string, AttributeInfo>();
  for (const [name, value] of Object.entries(spec)) {
    if (typeof value === 'number') map.set(name, { name, type: ATTRIBUTE_TYPES.int, i: value });
    else if (typeof value === 'string') map.set(name, { name, type: ATTRIBUTE_TYPES.string, s: value });
    else if (Array.isArray(value)) map.set(name, { name, type: ATTRIBUTE_TYPES.ints, ints: value });
    else map.set(name, { name, type: ATTRIBUTE_TYPES.float, f: value.float });
  }
  return map;
}

/** A model's canonical graph; a one-line error for operators the engine cannot read. */
export function canonicalGraphOf(model: OnnxModel): CanonicalGraph {
  const graph = new CanonicalGraph(model);
  const unsupported = new Set(graph.nodes.filter((node) => UNSUPPORTED_OPERATORS.has(operatorKey(node))).map(operatorKey));
  if (unsupported.size > 0) {
    const [operator] = [...unsupported];
    throw new ModelFileError(`${path.basename(model.filePath)} uses ${[...unsupported].join(', ')}, which Plasticity Lens cannot read yet: ${UNSUPPORTED_OPERATORS.get(operator)}`);
  }
  return graph;
}

const FOUR_BIT = 'its 4-bit weights have no float32 reading here; open the float32, float16 or 8-bit version of the model.';
const UNSUPPORTED_OPERATORS = new Map<string, string>([
  ['com.microsoft.MatMulNBits', FOUR_BIT],
  ['com.microsoft.MatMulBnb4', FOUR_BIT],
  ['com.microsoft.QAttention', 'open the float32 or float16 version, or a model quantized with QDQ or dynamic MatMulInteger.'],
  ['com.microsoft.QOrderedAttention', 'open the float32 or float16 version of the model.'],
  ['com.microsoft.DynamicQuantizeMatMul', 'open the model as quantize_dynamic wrote it (MatMulInteger), not after onnxruntime fused it at level "all".'],
  ['com.microsoft.MatMulIntegerToFloat', 'open the model as quantize_dynamic wrote it (MatMulInteger), not after onnxruntime fused it at level "all".'],
  ['QLinearMatMul', 'open the QDQ (QuantizeLinear/DequantizeLinear) form of the quantized model instead of the QOperator form.'],
  ['QLinearConv', 'open the QDQ (QuantizeLinear/DequantizeLinear) form of the quantized model instead of the QOperator form.'],
  ['com.microsoft.QLinearAdd', 'open the QDQ (QuantizeLinear/DequantizeLinear) form of the quantized model instead of the QOperator form.'],
]);
