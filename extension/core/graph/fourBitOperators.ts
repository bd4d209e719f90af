// 4-bit models (the model_q4 / model_q4f16 / model_bnb4 files hubs ship), read as the float32
// model of their dequantized weights, as 8-bit ones are (onnxruntime contrib-operator specs):
// - com.microsoft MatMulNBits(A, B, scales, zero_points?, g_idx?, bias?): B is uint8
//   [N, blocks, block_size / 2], each byte two 4-bit values of one column, low nibble first;
//   scales [N * blocks]; zero_points uint8 [N * ceil(blocks / 2)], packed the same way (8 when
//   absent); W[k, n] = (q - zero) * scale of k's block in column n; Y = A W (+ bias);
// - com.microsoft MatMulBnb4(A, B, absmax): B packs the [N, K] weight row-major, two values a
//   byte, high nibble first; each value a 4-bit code into the FP4 or NF4 table, times the absmax
//   of its block of block_size consecutive values; Y = A Wᵀ.
// The canonical graph gets a MatMul by the dequantized [K, N] float32 constant.
import * as path from 'node:path';
import { ModelFileError } from '../errors';
import { NodeInfo, TensorDataType } from '../onnx/onnxModel';
import { constantValues, valuesConstant } from './constantTensor';
import { fileConstant, RewriteContext } from './graphRewrite';

const MS_DOMAIN = 'com.microsoft';
const FOUR_BIT_STORAGE = '4-bit';

/** bitsandbytes' code tables (quant_type 0 FP4, 1 NF4), as onnxruntime's kernels hold them. */
const BNB4_CODES: Readonly<Record<number, readonly number[]>> = {
  0: [0, 0.005208333333, 0.66666667, 1, 0.33333333, 0.5, 0.16666667, 0.25, -0, -0.005208333333, -0.66666667, -1, -0.33333333, -0.5, -0.16666667, -0.25].map(Math.fround),
  1: [
    -1, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0, 0.07958029955625534,
    0.16093020141124725, 0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1,
  ].map(Math.fround),
};

/** Rewrites a 4-bit MatMul into a MatMul by its dequantized weight; true when `node` is one. */
export function rewriteFourBit(context: RewriteContext, node: NodeInfo): boolean {
  if (node.domain !== MS_DOMAIN) return false;
  if (node.opType === 'MatMulNBits') matMulNBits(context, node);
  else if (node.opType === 'MatMulBnb4') matMulBnb4(context, node);
  else return false;
  return true;
}

function failer(context: RewriteContext, node: NodeInfo): (why: string) => never {
  return (why) => {
    throw new ModelFileError(
      `${path.basename(context.model.filePath)}: the 4-bit ${node.opType} '${node.name || node.outputs[0]}' ${why}; open the float32, float16 or 8-bit version of the model.`,
    );
  };
}

/** The values of a constant input, checked to be `dataType` (any float type when FLOAT) and `count` long. */
function inputValues(context: RewriteContext, node: NodeInfo, index: number, role: string, count: number, integer: boolean): Float64Array {
  const fail = failer(context, node);
  const constant = fileConstant(context, node.inputs[index]);
  if (!constant?.stored) fail(`has a ${role} that is not a constant`);
  const isUint8 = constant!.stored!.dataType === TensorDataType.UINT8;
  const isFloat = constant!.stored!.dataType === TensorDataType.FLOAT || constant!.stored!.dataType === TensorDataType.FLOAT16;
  if (integer ? !isUint8 : !isFloat) fail(`has a ${role} of a type its specification does not give (${integer ? 'want uint8' : 'want float32 or float16'})`);
  const values = constantValues(context.model, constant!);
  if (values.length !== count) fail(`has a ${role} of ${values.length} values where K, N and block_size give ${count}`);
  return values;
}

function integerAttribute(context: RewriteContext, node: NodeInfo, name: string, fallback?: number): number {
  const value = node.attributes.get(name)?.i ?? fallback;
  if (value === undefined) failer(context, node)(`has no '${name}' attribute`);
  return value!;
}

/** Appends MatMul(A, W) (+ bias) ending at the node's output, W the dequantized [K, N] weight. */
function emitProduct(context: RewriteContext, node: NodeInfo, weight: Float32Array, K: number, N: number, bias?: string): void {
  const weightName = context.graph.addConstant({
    ...valuesConstant(`${node.inputs[1]}::dequantized`, TensorDataType.FLOAT, weight, [K, N]),
    storage: FOUR_BIT_STORAGE,
  });
  if (!bias) {
    context.graph.add('MatMul', [node.inputs[0], weightName], node.outputs[0], {}, '', node.name);
    return;
  }
  const product = context.graph.add('MatMul', [node.inputs[0], weightName], undefined, {}, '', node.name);
  context.graph.add('Add', [product, bias], node.outputs[0]);
}

function matMulNBits(context: RewriteContext, node: NodeInfo): void {
  const fail = failer(context, node);
  const K = integerAttribute(context, node, 'K');
  const N = integerAttribute(context, node, 'N');
  const bits = integerAttribute(context, node, 'bits', 4);
  const blockSize = integerAttribute(context, node, 'block_size');
  if (bits !== 4) fail(`stores ${bits}-bit weights; Plasticity Lens reads 4-bit ones`);
  if (blockSize < 16 || (blockSize & (blockSize - 1)) !== 0) fail(`has block_size ${blockSize}, not a power of 2 from 16`);
  const [, , , zeroPointName, groupIndex, bias] = node.inputs;
  if (groupIndex) fail('has a g_idx input (act-order blocks)');
  const blocks = Math.ceil(K / blockSize);
  const blobBytes = blockSize / 2;
  const packed = inputValues(context, node, 1, 'weight', N * blocks * blobBytes, true);
  const scales = inputValues(context, node, 2, 'scale', N * blocks, false);
  const zeroPointBytes = Math.ceil(blocks / 2);
  const zeroPoints = zeroPointName ? inputValues(context, node, 3, 'packed uint8 zero point', N * zeroPointBytes, true) : undefined;
  const weight = new Float32Array(K * N);
  for (let n = 0; n < N; n++) {
    for (let block = 0; block < blocks; block++) {
      const scale = scales[n * blocks + block];
      const zero = zeroPoints ? (zeroPoints[n * zeroPointBytes + (block >> 1)] >> ((block & 1) * 4)) & 0xf : 8;
      const blob = (n * blocks + block) * blobBytes;
      for (let j = 0; j < blockSize && block * blockSize + j < K; j++) {
        const code = (packed[blob + (j >> 1)] >> ((j & 1) * 4)) & 0xf;
        weight[(block * blockSize + j) * N + n] = (code - zero) * scale;
      }
    }
  }
  emitProduct(context, node, weight, K, N, bias || undefined);
}

function matMulBnb4(context: RewriteContext, node: NodeInfo): void {
  const fail = failer(context, node);
  const K = integerAttribute(context, node, 'K');
  const N = integerAttribute(context, node, 'N');
  const blockSize = integerAttribute(context, node, 'block_size');
  const codes = BNB4_CODES[integerAttribute(context, node, 'quant_type')];
  if (!codes) fail('has a quant_type other than 0 (FP4) or 1 (NF4)');
  if (integerAttribute(context, node, 'transB', 1) !== 1) fail('has transB 0, which onnxruntime does not compute');
  const count = N * K;
  const packed = inputValues(context, node, 1, 'weight', Math.ceil(count / 2), true);
  const absmax = inputValues(context, node, 2, 'absmax', Math.ceil(count / blockSize), false);
  const weight = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const byte = packed[i >> 1];
    const code = i & 1 ? byte & 0xf : byte >> 4;
    // Element i of the row-major [N, K] weight is W[k, n] of the MatMul.
    weight[(i % K) * N + Math.floor(i / K)] = Math.fround(codes[code] * absmax[Math.floor(i / blockSize)]);
  }
  emitProduct(context, node, weight, K, N);
}
