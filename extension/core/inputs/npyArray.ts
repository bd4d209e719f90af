// Reads .npy files holding already-preprocessed model inputs. Only what the probe needs is
// supported: little-endian float32, C order, shape [C,H,W] or [1,C,H,W].
import { InputDataError } from '../errors';

export interface NpyHeader {
  descr: string;
  fortranOrder: boolean;
  shape: number[];
  /** Byte offset where the array data starts. */
  dataOffset: number;
}

const NPY_MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Parses the header of a .npy file; `file` only names the file in error messages. */
export function parseNpyHeader(bytes: Uint8Array, file: string): NpyHeader {
  if (bytes.length < 10 || !NPY_MAGIC.equals(bytes.subarray(0, 6))) {
    throw new InputDataError(`${file} is not a NumPy .npy file (it does not start with the NUMPY signature): save it with numpy.save, or remove it.`);
  }
  const major = bytes[6];
  const lengthFieldSize = major === 1 ? 2 : major === 2 || major === 3 ? 4 : 0;
  if (lengthFieldSize === 0) {
    throw new InputDataError(`${file} uses .npy format version ${major}.${bytes[7]}; versions 1.0, 2.0 and 3.0 are read: save it again with numpy.save.`);
  }
  const headerStart = 8 + lengthFieldSize;
  if (bytes.length < headerStart) throw truncatedError(file, 'its header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const headerLength = lengthFieldSize === 2 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataOffset = headerStart + headerLength;
  if (bytes.length < dataOffset) throw truncatedError(file, 'its header');
  // Version 3 allows UTF-8 field names; 1 and 2 are Latin-1. Both read the same for our keys.
  const header = Buffer.from(bytes.buffer, bytes.byteOffset + headerStart, headerLength).toString(major === 3 ? 'utf8' : 'latin1');

  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(header)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined) {
    throw new InputDataError(`${file} holds a structured or unreadable dtype; expected a plain float32 ('<f4') array: save it with arr.astype('<f4').`);
  }
  if (fortran === undefined || shapeText === undefined) {
    throw new InputDataError(`${file} has a malformed .npy header (no fortran_order or shape): save it again with numpy.save.`);
  }
  const shape: number[] = [];
  for (const part of shapeText.split(',')) {
    const trimmed = part.trim();
    if (trimmed === '') continue;
    // Python 2 wrote long integers with an L suffix.
    const match = /^(\d+)L?$/.exec(trimmed);
    if (!match) throw new InputDataError(`${file} has a malformed shape (${shapeText.trim()}) in its .npy header: save it again with numpy.save.`);
    shape.push(Number(match[1]));
  }
  return { descr, fortranOrder: fortran === 'True', shape, dataOffset };
}

/**
 * The float32 values of a .npy model input, bit for bit. `expectedShape` is [C,H,W];
 * [1,C,H,W] is accepted too.
 */
export function decodeNpyInput(bytes: Uint8Array, file: string, expectedShape: [number, number, number]): Float32Array {
  const header = parseNpyHeader(bytes, file);
  if (header.descr !== '<f4') {
    throw new InputDataError(`${file} holds ${describeDtype(header.descr)} values; expected float32 ('<f4'): save it with arr.astype('<f4').`);
  }
  if (header.fortranOrder) {
    throw new InputDataError(`${file} is stored in Fortran order; expected C order: save it with numpy.ascontiguousarray(arr).`);
  }
  const shape = header.shape;
  const matches = (candidate: number[]) => candidate.length === expectedShape.length && candidate.every((side, i) => side === expectedShape[i]);
  const shapeOk = matches(shape) || (shape.length === 4 && shape[0] === 1 && matches(shape.slice(1)));
  if (!shapeOk) {
    const expected = `[${expectedShape.join(', ')}]`;
    throw new InputDataError(
      `${file} has shape [${shape.join(', ')}]; expected ${expected} (or [1, ${expectedShape.join(', ')}]) for this model: preprocess it to the model's channels and size.`,
    );
  }
  const count = expectedShape[0] * expectedShape[1] * expectedShape[2];
  const byteCount = count * 4;
  if (bytes.length < header.dataOffset + byteCount) {
    throw truncatedError(file, `its data (${bytes.length - header.dataOffset} of ${byteCount} bytes present)`);
  }
  const values = new Float32Array(count);
  const data = bytes.subarray(header.dataOffset, header.dataOffset + byteCount);
  if (HOST_IS_LITTLE_ENDIAN) {
    // A byte copy keeps every bit (NaN payloads, -0) and avoids alignment limits on views.
    new Uint8Array(values.buffer).set(data);
  } else {
    const view = new DataView(data.buffer, data.byteOffset, data.length);
    for (let i = 0; i < count; i++) values[i] = view.getFloat32(4 * i, true);
  }
  for (let i = 0; i < count; i++) {
    // NaN or infinity would silently poison every ratio downstream.
    if (!Number.isFinite(values[i])) {
      throw new InputDataError(`${file} contains a non-finite value (${values[i]}) at flat index ${i}: replace NaN and infinite values before saving it.`);
    }
  }
  return values;
}

function truncatedError(file: string, what: string): InputDataError {
  return new InputDataError(`${file} is truncated (missing part of ${what}): save it again or remove it.`);
}

function describeDtype(descr: string): string {
  const names: Record<string, string> = {
    '<f8': "float64 ('<f8')",
    '<f2': "float16 ('<f2')",
    '>f4': "big-endian float32 ('>f4')",
    '|u1': "uint8 ('|u1')",
    '<i4': "int32 ('<i4')",
    '<i8': "int64 ('<i8')",
  };
  return names[descr] ?? `dtype '${descr}'`;
}
