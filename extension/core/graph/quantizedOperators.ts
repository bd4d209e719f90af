// 8-bit models, read as the float32 model of their dequantized weights (ONNX operator specs of
// DequantizeLinear, QuantizeLinear, DynamicQuantizeLinear, MatMulInteger and ConvInteger):
// - static QDQ (onnxruntime quantize_static, Olive): DequantizeLinear of a constant is the
//   dequantized weight; QuantizeLinear -> DequantizeLinear on an activation is dropped;
// - dynamic (quantize_dynamic): DynamicQuantizeLinear(x) -> MatMulInteger / ConvInteger(x_q, W_q)
//   -> Cast -> Mul(x_scale * W_scale) is MatMul / Conv of x by the dequantized W.
import * as path from 'node:path';
import { ModelFileError } from '../errors';
import { NodeInfo, TensorDataType } from '../onnx/onnxModel';
import { AttributeSpec, fileConstant as constantOf, fileTensor as initializer, RewriteContext } from './graphRewrite';

/** Which input of a quantized operator is its 8-bit weight (when that input is a constant). */
export const QUANTIZED_WEIGHT_INPUT: Readonly<Record<string, number>> = { DequantizeLinear: 0, MatMulInteger: 1, ConvInteger: 1 };

const STATIC_QDQ = 'static (QuantizeLinear/DequantizeLinear on activations)';
const DYNAMIC = 'dynamic (DynamicQuantizeLinear on activations)';

/** Rewrites `node` when it is part of a quantized pattern; true when it was handled. */
export function rewriteQuantized(context: RewriteContext, node: NodeInfo): boolean {
  if (node.domain !== '' && node.domain !== 'ai.onnx') return false;
  switch (node.opType) {
    case 'DequantizeLinear':
      return dequantizeLinear(context, node);
    case 'QuantizeLinear':
      // Only read by the DequantizeLinear it pairs with, which bypasses it.
      return (context.consumers.get(node.outputs[0]) ?? []).every((consumer) => consumer.opType === 'DequantizeLinear');
    case 'DynamicQuantizeLinear':
      context.graph.noteActivationQuantization(DYNAMIC);
      return true;
    case 'MatMulInteger':
    case 'ConvInteger':
      integerProduct(context, node);
      return true;
    default:
      return false;
  }
}

/** The axis a scale of `scaleCount` values runs along in a tensor of `dims`; undefined for one scale. */
function scaleAxis(dims: number[], scaleCount: number, axis: number | undefined, fallback: number): number | undefined {
  if (scaleCount <= 1) return undefined;
  const chosen = axis ?? fallback;
  return chosen < 0 ? chosen + dims.length : chosen;
}

function dequantizeLinear(context: RewriteContext, node: NodeInfo): boolean {
  const [input, scaleName, zeroPointName] = node.inputs;
  const stored = initializer(context, node.inputs[QUANTIZED_WEIGHT_INPUT.DequantizeLinear]);
  const scale = constantOf(context, scaleName);
  if (stored && scale) {
    const zeroPoint = constantOf(context, zeroPointName);
    const axis = scaleAxis(
      stored.dims,
      scale.dims.reduce((a, b) => a * b, 1),
      node.attributes.get('axis')?.i,
      1,
    );
    context.graph.addConstant({
      name: node.outputs[0],
      dims: [...stored.dims],
      stored,
      storedIn: context.model.initializers.has(stored.name) ? 'initializer' : 'attribute',
      dequantize: { scale, zeroPoint, axis },
    });
    return true;
  }
  const quantize = context.producer.get(input);
  if (quantize?.opType === 'QuantizeLinear') {
    context.graph.noteActivationQuantization(STATIC_QDQ);
    context.graph.add('Identity', [quantize.inputs[0]], node.outputs[0], {}, '', node.name);
    return true;
  }
  return false;
}

/** The single consumer of `tensor` with op `opType`, or undefined. */
function onlyConsumer(context: RewriteContext, tensor: string, opType: string): NodeInfo | undefined {
  const consumers = context.consumers.get(tensor) ?? [];
  return consumers.length === 1 && consumers[0].opType === opType ? consumers[0] : undefined;
}

/** Through Reshape/Unsqueeze/Identity (a per-channel scale reshaped to broadcast over NCHW). */
function throughReshapes(context: RewriteContext, tensor: string, visited: NodeInfo[]): string {
  let current = tensor;
  for (let step = 0; step < 4; step++) {
    const node = context.producer.get(current);
    if (!node || !['Reshape', 'Unsqueeze', 'Identity'].includes(node.opType)) return current;
    visited.push(node);
    current = node.inputs[0];
  }
  return current;
}

/**
 * MatMulInteger / ConvInteger with a DynamicQuantizeLinear input and a constant 8-bit weight,
 * followed by Cast to float and a Mul by x_scale * W_scale: rewritten as the float product of x
 * and the dequantized weight, ending at the Mul's output.
 */
function integerProduct(context: RewriteContext, node: NodeInfo): void {
  const fail = (why: string): never => {
    throw new ModelFileError(
      `${path.basename(context.model.filePath)}: the quantized ${node.opType} '${node.name || node.outputs[0]}' is not in the form quantize_dynamic writes (${why}); open the float32 or float16 version of the model, or a QDQ quantization.`,
    );
  };
  const [quantizedInput, , , weightZeroPointName] = node.inputs;
  const weightName = node.inputs[QUANTIZED_WEIGHT_INPUT[node.opType]];
  const dynamicQuantize = context.producer.get(quantizedInput);
  if (dynamicQuantize?.opType !== 'DynamicQuantizeLinear' || dynamicQuantize.outputs[0] !== quantizedInput) fail('its input is not made by DynamicQuantizeLinear');
  const stored = initializer(context, weightName);
  if (!stored || (stored.dataType !== TensorDataType.INT8 && stored.dataType !== TensorDataType.UINT8)) fail('its weight is not a constant 8-bit tensor');
  const cast = onlyConsumer(context, node.outputs[0], 'Cast');
  if (!cast) fail('its int32 result is not cast to float');
  const rescale = onlyConsumer(context, cast!.outputs[0], 'Mul');
  if (!rescale) fail('its result is not multiplied by the scales');
  const covered: NodeInfo[] = [cast!, rescale!];
  // The factor is x_scale * W_scale, possibly reshaped to broadcast per output channel.
  const factorName = throughReshapes(
    context,
    rescale!.inputs.find((input) => input !== cast!.outputs[0])!,
    covered,
  );
  const factor = context.producer.get(factorName);
  if (factor?.opType !== 'Mul') fail('the rescaling factor is not x_scale * W_scale');
  covered.push(factor!);
  const weightScaleName = factor!.inputs.find((input) => input !== dynamicQuantize!.outputs[1]);
  const scale = constantOf(context, weightScaleName);
  if (!scale || !factor!.inputs.includes(dynamicQuantize!.outputs[1])) fail('the rescaling factor is not x_scale * W_scale');
  const scaleCount = scale!.dims.reduce((a, b) => a * b, 1);
  // MatMulInteger's weight is [K, N], one scale per output column; ConvInteger's [M, C, kh, kw], per output channel.
  const axis = scaleAxis(stored!.dims, scaleCount, undefined, node.opType === 'MatMulInteger' ? stored!.dims.length - 1 : 0);
  const zeroPoint = constantOf(context, weightZeroPointName);
  for (const coveredNode of covered) context.consumed.add(coveredNode);
  context.graph.noteActivationQuantization(DYNAMIC);
  const weight = context.graph.addConstant({
    name: `${weightName}::dequantized`,
    dims: [...stored!.dims],
    stored: stored!,
    storedIn: context.model.initializers.has(stored!.name) ? 'initializer' : 'attribute',
    dequantize: { scale: scale!, zeroPoint, axis },
  });
  const floatInput = dynamicQuantize!.inputs[0];
  if (node.opType === 'MatMulInteger') {
    context.graph.add('MatMul', [floatInput, weight], rescale!.outputs[0], {}, '', node.name);
  } else {
    const attributes: AttributeSpec = {};
    for (const [name, attribute] of node.attributes) {
      if (attribute.ints) attributes[name] = attribute.ints;
      else if (attribute.i !== undefined) attributes[name] = attribute.i;
      else if (attribute.s !== undefined) attributes[name] = attribute.s;
    }
    context.graph.add('Conv', [floatInput, weight], rescale!.outputs[0], attributes, '', node.name);
  }
}
