// A constant of the canonical graph: a float32 (or integer) value the engine may use as a weight,
// however the file stores it. Models in the wild store weights in float16, or as 8-bit integers
// with a scale and zero point, or pack several projections into one tensor; the probes and the
// bounds always want float32 values. A ConstantTensor says where the stored values lie and how
// they become that float32 value, so that graphs reference the file's bytes in place and let
// onnxruntime do the conversion once, at session creation.
import { elementCount, OnnxModel, readFileRange, TensorDataType, TensorInfo } from '../onnx/onnxModel';
import { OnnxGraphBuilder } from '../onnx/onnxWriter';
import { readFloats, readInts } from '../onnx/tensorValues';

export interface Dequantization {
  scale: ConstantTensor;
  zeroPoint?: ConstantTensor;
  /** Axis of the stored tensor the scale runs along (per channel); undefined: one scale. */
  axis?: number;
}

export interface ConstantTensor {
  /** The name the canonical graph's nodes use for this value. */
  name: string;
  /** Shape of the value (after any slice). */
  dims: number[];
  /** The file's tensor holding the values: an initializer, or a Constant node's tensor. */
  stored?: TensorInfo;
  /** Whether `stored` is an initializer of the file (referenced in place) or a node attribute. */
  storedIn?: 'initializer' | 'attribute';
  /** Values the canonical graph made itself (shapes and scales of expanded fused operators). */
  values?: { dataType: TensorDataType.FLOAT | TensorDataType.INT64; data: ArrayLike<number> };
  /** How the file stores `values` when the canonical graph decoded them itself ('4-bit' blocks). */
  storage?: string;
  /** 8-bit storage: value = (stored - zeroPoint) * scale. */
  dequantize?: Dequantization;
  /** Part of a packed tensor (a fused q/k/v bias): elements [start, end) along `axis`. */
  slice?: { axis: number; start: number; end: number };
}

const FLOAT_STORAGE = new Set<number>([TensorDataType.FLOAT, TensorDataType.FLOAT16, TensorDataType.DOUBLE]);

/** What the file stores this constant as: 'float32', 'float16', 'int8', 'uint8', ... */
export function storageOf(constant: ConstantTensor): string {
  if (constant.storage) return constant.storage;
  const dataType = constant.stored?.dataType ?? constant.values?.dataType ?? 0;
  return TENSOR_TYPE_NAMES[dataType] ?? `type ${dataType}`;
}

/** A constant made by the canonical graph from values. */
export function valuesConstant(name: string, dataType: TensorDataType.FLOAT | TensorDataType.INT64, data: ArrayLike<number>, dims = [data.length]): ConstantTensor {
  return { name, dims, values: { dataType, data } };
}

export const TENSOR_TYPE_NAMES: Record<number, string> = {
  [TensorDataType.FLOAT]: 'float32',
  [TensorDataType.UINT8]: 'uint8',
  [TensorDataType.INT8]: 'int8',
  [TensorDataType.INT32]: 'int32',
  [TensorDataType.INT64]: 'int64',
  [TensorDataType.FLOAT16]: 'float16',
  [TensorDataType.DOUBLE]: 'float64',
};

/** A constant that is the stored tensor itself, unchanged. */
export function plainConstant(stored: TensorInfo, storedIn: ConstantTensor['storedIn'], name = stored.name): ConstantTensor {
  return { name, dims: [...stored.dims], stored, storedIn };
}

/** True when the value is the file's initializer as it is (float32 or integer), usable by name. */
function isStoredAsUsed(constant: ConstantTensor): constant is ConstantTensor & { stored: TensorInfo } {
  const { stored } = constant;
  return (
    stored !== undefined &&
    constant.storedIn === 'initializer' &&
    constant.name === stored.name &&
    !constant.dequantize &&
    !constant.slice &&
    stored.dataType !== TensorDataType.FLOAT16 &&
    stored.dataType !== TensorDataType.DOUBLE
  );
}

/** Stored integer values (int8, uint8, int32, int64), as numbers. */
function readStoredIntegers(model: OnnxModel, tensor: TensorInfo): number[] {
  if ((tensor.dataType === TensorDataType.INT8 || tensor.dataType === TensorDataType.UINT8) && tensor.data.kind === 'raw') {
    const bytes = readFileRange(model, tensor.data.offset, tensor.data.length, tensor.data.file);
    return tensor.dataType === TensorDataType.UINT8 ? Array.from(bytes) : Array.from(new Int8Array(bytes.buffer, bytes.byteOffset, bytes.length));
  }
  return readInts(model, tensor);
}

/** The constant's values as float64 numbers (small tensors: gammas, scales, shapes). */
export function constantValues(model: OnnxModel, constant: ConstantTensor): Float64Array {
  const { stored } = constant;
  if (!stored) return Float64Array.from(constant.values?.data ?? []);
  let values = FLOAT_STORAGE.has(stored.dataType) ? readFloats(model, stored) : Float64Array.from(readStoredIntegers(model, stored));
  if (constant.dequantize) values = dequantized(model, values, stored.dims, constant.dequantize);
  if (constant.slice) values = sliced(values, stored.dims, constant.slice);
  return values;
}

function dequantized(model: OnnxModel, values: Float64Array, dims: number[], { scale, zeroPoint, axis }: Dequantization): Float64Array {
  const scales = constantValues(model, scale);
  const zeros = zeroPoint ? constantValues(model, zeroPoint) : new Float64Array(scales.length);
  const inner = axis === undefined ? values.length : elementCount(dims.slice(axis + 1));
  const channels = axis === undefined ? 1 : dims[axis];
  return values.map((value, i) => {
    const channel = axis === undefined ? 0 : Math.floor(i / inner) % channels;
    return (value - zeros[channel]) * scales[channel];
  });
}

function sliced(values: Float64Array, dims: number[], { axis, start, end }: NonNullable<ConstantTensor['slice']>): Float64Array {
  const inner = elementCount(dims.slice(axis + 1));
  const outer = elementCount(dims.slice(0, axis));
  const out = new Float64Array(outer * (end - start) * inner);
  let position = 0;
  for (let o = 0; o < outer; o++) {
    const base = o * dims[axis] * inner;
    out.set(values.subarray(base + start * inner, base + end * inner), position);
    position += (end - start) * inner;
  }
  return out;
}

/** Small stored tensors are converted to float32 in JavaScript; large ones by graph nodes. */
const INLINE_LIMIT_BYTES = 1024;

/**
 * Makes `constant` available in `builder` under `constant.name`, as float32 (integers stay
 * integers when not dequantized) and returns the name. The stored bytes are referenced in place
 * (external data); the conversion (Cast, dequantization, slice) is written as nodes over them,
 * which onnxruntime folds once at session creation.
 */
export function emitConstant(builder: OnnxGraphBuilder, model: OnnxModel, constant: ConstantTensor): string {
  if (isStoredAsUsed(constant)) return builder.useInitializer(model, constant.stored);
  if (builder.hasValue(constant.name)) return constant.name;
  const original = { ...constant, name: constant.stored?.name ?? '' };
  if (constant.stored && isStoredAsUsed(original)) {
    // Another name for an initializer (a deduplicated parameter read through Identity).
    return builder.op('Identity', [builder.useInitializer(model, constant.stored)], {}, constant.name);
  }
  const { stored } = constant;
  if (!stored) {
    const data = constant.values?.data ?? [];
    return constant.values?.dataType === TensorDataType.INT64
      ? builder.intConstantNamed(constant.name, data, constant.dims)
      : builder.floatConstantNamed(constant.name, data, constant.dims);
  }
  const isFloat = FLOAT_STORAGE.has(stored.dataType);
  if ((stored.data.kind !== 'raw' || stored.data.length <= INLINE_LIMIT_BYTES || constant.storedIn === 'attribute') && (isFloat || constant.dequantize)) {
    builder.floatConstantNamed(constant.name, constantValues(model, constant), constant.dims);
    return constant.name;
  }
  if (!isFloat && !constant.dequantize) throw new Error(`constant '${constant.name}' is an integer tensor stored in a node attribute; it has no name to reference`);
  const storedName = `${constant.name}::stored`;
  let value = builder.useInitializerAs(model, stored, storedName);
  if (isFloat || constant.dequantize) value = builder.op('Cast', [value], { to: TensorDataType.FLOAT });
  if (constant.dequantize) {
    const { scale, zeroPoint, axis } = constant.dequantize;
    // Scales and zero points along `axis` are reshaped so they broadcast over that axis only.
    const perAxis = (name: string) => (axis === undefined ? name : builder.op('Reshape', [name, builder.intConstant(stored.dims.map((dim, i) => (i === axis ? dim : 1)))]));
    if (zeroPoint) value = builder.op('Sub', [value, perAxis(builder.op('Cast', [emitConstant(builder, model, zeroPoint)], { to: TensorDataType.FLOAT }))]);
    value = builder.op('Mul', [value, perAxis(emitConstant(builder, model, scale))]);
  }
  if (constant.slice) {
    const { axis, start, end } = constant.slice;
    value = builder.op('Slice', [value, builder.intConstant([start]), builder.intConstant([end]), builder.intConstant([axis])]);
  }
  builder.op('Identity', [value], {}, constant.name);
  return constant.name;
}
