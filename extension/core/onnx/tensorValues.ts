// Reads the values of small constant tensors (LayerNorm gammas, shapes, scales, epsilons).
// Large weights are never read here: probe models reference them in place.
import { Reader } from 'protobufjs/minimal';
import { elementCount, OnnxModel, readFileRange, TensorDataType, TensorInfo } from './onnxModel';

function readRawBytes(model: OnnxModel, tensor: TensorInfo): Uint8Array {
  if (tensor.data.kind !== 'raw') throw new Error(`tensor '${tensor.name}' has no raw bytes (${tensor.data.kind})`);
  const { file, offset, length } = tensor.data;
  return readFileRange(model, offset, length, file);
}

function aligned(bytes: Uint8Array, alignment: number): Uint8Array {
  // Buffer.prototype.slice is a view, so copy through Uint8Array.
  return bytes.byteOffset % alignment === 0 ? bytes : new Uint8Array(bytes);
}

/** Values of a float32, float64 or float16 tensor, as float64 numbers. */
export function readFloats(model: OnnxModel, tensor: TensorInfo): Float64Array {
  const count = elementCount(tensor.dims);
  if (tensor.data.kind === 'empty') {
    if (count === 0) return new Float64Array(0);
    throw new Error(`tensor '${tensor.name}' stores no data`);
  }
  if (tensor.data.kind === 'varint') throw new Error(`tensor '${tensor.name}' is an integer tensor`);
  const bytes = readRawBytes(model, tensor);
  switch (tensor.dataType) {
    case TensorDataType.FLOAT: {
      const view = aligned(bytes, 4);
      return Float64Array.from(new Float32Array(view.buffer, view.byteOffset, bytes.length / 4));
    }
    case TensorDataType.DOUBLE: {
      const view = aligned(bytes, 8);
      return new Float64Array(view.buffer.slice(view.byteOffset, view.byteOffset + bytes.length));
    }
    case TensorDataType.FLOAT16: {
      const values = new Float64Array(bytes.length / 2);
      const data = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
      for (let i = 0; i < values.length; i++) values[i] = halfToFloat(data.getUint16(2 * i, true));
      return values;
    }
    default:
      throw new Error(`tensor '${tensor.name}' has data type ${tensor.dataType}, not a float type`);
  }
}

/** Values of an int32 or int64 tensor (raw or varint-packed). */
export function readInts(model: OnnxModel, tensor: TensorInfo): number[] {
  if (tensor.data.kind === 'empty') return [];
  if (tensor.data.kind === 'varint') {
    const { offset, length } = tensor.data.range;
    const reader = new Reader(readFileRange(model, offset, length));
    const values: number[] = [];
    while (reader.pos < reader.len) {
      const value = reader.int64();
      values.push(typeof value === 'number' ? value : Number(value.toString()));
    }
    return values;
  }
  const bytes = readRawBytes(model, tensor);
  const data = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  switch (tensor.dataType) {
    case TensorDataType.INT64:
      return Array.from({ length: bytes.length / 8 }, (_, i) => Number(data.getBigInt64(8 * i, true)));
    case TensorDataType.INT32:
      return Array.from({ length: bytes.length / 4 }, (_, i) => data.getInt32(4 * i, true));
    default:
      return Array.from(readFloats(model, tensor));
  }
}

function halfToFloat(half: number): number {
  const sign = half & 0x8000 ? -1 : 1;
  const exponent = (half >> 10) & 0x1f;
  const fraction = half & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}
