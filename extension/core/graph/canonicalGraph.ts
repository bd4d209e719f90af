// The canonical graph: the model's nodes as plain float32 ONNX operators, whatever the file holds.
// Models in the wild are float16 conversions, 8-bit quantizations and onnxruntime-fused graphs of
// the same ViT; rewriting them here into one form (MatMul + Add linears, LayerNormalization,
// Softmax attention, residual Adds) lets discovery and the embedder see one kind of graph:
// - float16 weights and constants become float32 constants; Casts to float16 cast to float32;
// - 8-bit weights (DequantizeLinear of a constant, MatMulInteger/ConvInteger chains) and 4-bit
//   ones (MatMulNBits, MatMulBnb4) become dequantized float32 constants; activation quantization (QuantizeLinear -> DequantizeLinear,
//   DynamicQuantizeLinear) is dropped: the engine measures the dequantized weights in float32;
// - onnxruntime's fused operators (Attention, MultiHeadAttention, SkipLayerNormalization,
//   BiasGelu, FastGelu, Gelu, FusedMatMul) and the ONNX Attention op expand into the plain
//   operators they stand for.
// Nodes the rewrite leaves alone keep a reference to the file's node, so the embedder copies them
// byte for byte.
import * as path from 'node:path';
import { ModelFileError } from '../errors';
import { NodeInfo, OnnxModel, TensorDataType } from '../onnx/onnxModel';
import { plainConstant } from './constantTensor';
import { rewriteFourBit } from './fourBitOperators';
import { FUSED_OPERATORS } from './fusedOperators';
import { GraphBuilder, operatorKey, RewriteContext, verbatimNode } from './graphRewrite';
import { rewriteQuantized } from './quantizedOperators';

export class CanonicalGraph extends GraphBuilder {
  constructor(model: OnnxModel) {
    super(model);
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
      if (rewriteQuantized(context, node) || rewriteFourBit(context, node)) continue;
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

const UNSUPPORTED_OPERATORS = new Map<string, string>([
  ['com.microsoft.QAttention', 'open the float32 or float16 version, or a model quantized with QDQ or dynamic MatMulInteger.'],
  ['com.microsoft.QOrderedAttention', 'open the float32 or float16 version of the model.'],
  ['com.microsoft.DynamicQuantizeMatMul', 'open the model as quantize_dynamic wrote it (MatMulInteger), not after onnxruntime fused it at level "all".'],
  ['com.microsoft.MatMulIntegerToFloat', 'open the model as quantize_dynamic wrote it (MatMulInteger), not after onnxruntime fused it at level "all".'],
  ['QLinearMatMul', 'open the QDQ (QuantizeLinear/DequantizeLinear) form of the quantized model instead of the QOperator form.'],
  ['QLinearConv', 'open the QDQ (QuantizeLinear/DequantizeLinear) form of the quantized model instead of the QOperator form.'],
  ['com.microsoft.QLinearAdd', 'open the QDQ (QuantizeLinear/DequantizeLinear) form of the quantized model instead of the QOperator form.'],
]);
