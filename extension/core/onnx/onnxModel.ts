// Reads the parts of an ONNX ModelProto the engine needs, straight from the file bytes.
// Weight bytes are never copied: each tensor records where its data lies (an offset into the
// model file, or into an external data file), so probe models can reference them in place.
// Nodes and initializers also keep the byte range of their own message, so they can be written
// into a probe model verbatim, with every field kept, including ones this reader does not know.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Reader } from 'protobufjs/minimal';
import { ModelFileError } from '../errors';

export enum TensorDataType {
  FLOAT = 1,
  UINT8 = 2,
  INT8 = 3,
  INT32 = 6,
  INT64 = 7,
  BOOL = 9,
  FLOAT16 = 10,
  DOUBLE = 11,
}

export interface ByteRange {
  offset: number;
  length: number;
}

/** Where a tensor's values are stored. Offsets are byte offsets in the named file. */
export type TensorDataLocation =
  // raw_data or packed float/double data; `location` is `file` relative to the model's dataFolder
  | { kind: 'raw'; file: string; location: string; offset: number; length: number }
  | { kind: 'varint'; field: number; range: ByteRange } // packed int32/int64 data: must be decoded
  | { kind: 'empty' };

export interface TensorInfo {
  name: string;
  dims: number[];
  dataType: number;
  data: TensorDataLocation;
  /** The TensorProto message itself inside the model file (for verbatim copies). */
  message: ByteRange;
  external: boolean;
}

export interface AttributeInfo {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: string;
  ints?: number[];
  floats?: number[];
  t?: TensorInfo;
}

export interface NodeInfo {
  index: number;
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Map<string, AttributeInfo>;
  message: ByteRange;
}

export interface TensorShapeDim {
  value?: number;
  param?: string;
}

export interface ValueInfo {
  name: string;
  elemType: number;
  shape: TensorShapeDim[] | undefined;
  message: ByteRange;
}

export interface OnnxModel {
  filePath: string;
  fileSize: number;
  /** The whole file; subarrays of it are views, never copies. */
  bytes: Uint8Array;
  /**
   * The folder that weight locations (TensorDataLocation.location) are relative to: give it to
   * onnxruntime as the external-data folder of models that reference these weights. It holds
   * the real (symlink-resolved) files, as onnxruntime refuses data paths that leave it.
   */
  dataFolder: string;
  irVersion: number;
  producerName: string;
  producerVersion: string;
  opsetImports: { domain: string; version: number }[];
  nodes: NodeInfo[];
  initializers: Map<string, TensorInfo>;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  valueInfo: Map<string, ValueInfo>;
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_BYTES = 2;
const WIRE_FIXED32 = 5;

/** Sub-reader over one length-delimited field; returns its byte range and advances `reader`. */
function enterMessage(reader: Reader): { sub: Reader; range: ByteRange } {
  const length = reader.uint32();
  const offset = reader.pos;
  reader.skip(length);
  const sub = new Reader(reader.buf.subarray(0, offset + length));
  sub.pos = offset;
  return { sub, range: { offset, length } };
}

function readString(reader: Reader): string {
  return reader.string();
}

function readInt64(reader: Reader): number {
  const value = reader.int64();
  return typeof value === 'number' ? value : Number(value.toString());
}

function readPackedOrSingleInts(reader: Reader, wireType: number, into: number[]): void {
  if (wireType === WIRE_BYTES) {
    const end = reader.uint32() + reader.pos;
    while (reader.pos < end) into.push(readInt64(reader));
  } else {
    into.push(readInt64(reader));
  }
}

function readTensor(reader: Reader, range: ByteRange, filePath: string): TensorInfo {
  const tensor: TensorInfo = { name: '', dims: [], dataType: 0, data: { kind: 'empty' }, message: range, external: false };
  const externalEntries = new Map<string, string>();
  const end = range.offset + range.length;
  while (reader.pos < end) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    const wireType = tag & 7;
    switch (field) {
      case 1:
        readPackedOrSingleInts(reader, wireType, tensor.dims);
        break;
      case 2:
        tensor.dataType = reader.int32();
        break;
      case 8:
        tensor.name = readString(reader);
        break;
      case 9: // raw_data
      case 4: // float_data, packed fixed32: the same little-endian bytes as raw_data
      case 10: { // double_data, packed fixed64
        if (wireType !== WIRE_BYTES) {
          reader.skipType(wireType);
          break;
        }
        const length = reader.uint32();
        tensor.data = { kind: 'raw', file: filePath, location: path.basename(filePath), offset: reader.pos, length };
        reader.skip(length);
        break;
      }
      case 5: // int32_data
      case 7: { // int64_data
        if (wireType !== WIRE_BYTES) {
          reader.skipType(wireType);
          break;
        }
        const length = reader.uint32();
        tensor.data = { kind: 'varint', field, range: { offset: reader.pos, length } };
        reader.skip(length);
        break;
      }
      case 13: {
        const { sub, range: entryRange } = enterMessage(reader);
        let key = '';
        let value = '';
        const entryEnd = entryRange.offset + entryRange.length;
        while (sub.pos < entryEnd) {
          const entryTag = sub.uint32();
          if (entryTag >>> 3 === 1) key = sub.string();
          else if (entryTag >>> 3 === 2) value = sub.string();
          else sub.skipType(entryTag & 7);
        }
        externalEntries.set(key, value);
        break;
      }
      case 14:
        tensor.external = reader.int32() === 1;
        break;
      default:
        reader.skipType(wireType);
    }
  }
  if (tensor.external) {
    const location = externalEntries.get('location');
    if (!location) {
      throw new ModelFileError(`${path.basename(filePath)}: tensor '${tensor.name}' is marked external but names no location.`);
    }
    tensor.data = {
      kind: 'raw',
      file: path.join(path.dirname(filePath), location),
      location,
      offset: Number(externalEntries.get('offset') ?? 0),
      length: externalEntries.has('length') ? Number(externalEntries.get('length')) : -1,
    };
  }
  return tensor;
}

function readAttribute(reader: Reader, range: ByteRange, filePath: string): AttributeInfo {
  const attribute: AttributeInfo = { name: '', type: 0 };
  const end = range.offset + range.length;
  while (reader.pos < end) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    const wireType = tag & 7;
    switch (field) {
      case 1:
        attribute.name = readString(reader);
        break;
      case 2:
        attribute.f = reader.float();
        break;
      case 3:
        attribute.i = readInt64(reader);
        break;
      case 4:
        attribute.s = readString(reader);
        break;
      case 5: {
        const { sub, range: tensorRange } = enterMessage(reader);
        attribute.t = readTensor(sub, tensorRange, filePath);
        break;
      }
      case 7: {
        attribute.floats ??= [];
        if (wireType === WIRE_BYTES) {
          const stop = reader.uint32() + reader.pos;
          while (reader.pos < stop) attribute.floats.push(reader.float());
        } else {
          attribute.floats.push(reader.float());
        }
        break;
      }
      case 8:
        attribute.ints ??= [];
        readPackedOrSingleInts(reader, wireType, attribute.ints);
        break;
      case 20:
        attribute.type = reader.int32();
        break;
      default:
        reader.skipType(wireType);
    }
  }
  return attribute;
}

function readNode(reader: Reader, range: ByteRange, index: number, filePath: string): NodeInfo {
  const node: NodeInfo = { index, name: '', opType: '', domain: '', inputs: [], outputs: [], attributes: new Map(), message: range };
  const end = range.offset + range.length;
  while (reader.pos < end) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    switch (field) {
      case 1:
        node.inputs.push(readString(reader));
        break;
      case 2:
        node.outputs.push(readString(reader));
        break;
      case 3:
        node.name = readString(reader);
        break;
      case 4:
        node.opType = readString(reader);
        break;
      case 5: {
        const { sub, range: attributeRange } = enterMessage(reader);
        const attribute = readAttribute(sub, attributeRange, filePath);
        node.attributes.set(attribute.name, attribute);
        break;
      }
      case 7:
        node.domain = readString(reader);
        break;
      default:
        reader.skipType(tag & 7);
    }
  }
  return node;
}

function readValueInfo(reader: Reader, range: ByteRange): ValueInfo {
  const info: ValueInfo = { name: '', elemType: 0, shape: undefined, message: range };
  const end = range.offset + range.length;
  while (reader.pos < end) {
    const tag = reader.uint32();
    if (tag >>> 3 === 1) {
      info.name = readString(reader);
    } else if (tag >>> 3 === 2) {
      // TypeProto -> tensor_type(1) -> elem_type(1), shape(2) -> dim(1) -> dim_value(1) | dim_param(2)
      const { sub: typeReader, range: typeRange } = enterMessage(reader);
      while (typeReader.pos < typeRange.offset + typeRange.length) {
        const typeTag = typeReader.uint32();
        if (typeTag >>> 3 !== 1) {
          typeReader.skipType(typeTag & 7);
          continue;
        }
        const { sub: tensorReader, range: tensorRange } = enterMessage(typeReader);
        while (tensorReader.pos < tensorRange.offset + tensorRange.length) {
          const tensorTag = tensorReader.uint32();
          if (tensorTag >>> 3 === 1) {
            info.elemType = tensorReader.int32();
          } else if (tensorTag >>> 3 === 2) {
            info.shape = [];
            const { sub: shapeReader, range: shapeRange } = enterMessage(tensorReader);
            while (shapeReader.pos < shapeRange.offset + shapeRange.length) {
              const shapeTag = shapeReader.uint32();
              if (shapeTag >>> 3 !== 1) {
                shapeReader.skipType(shapeTag & 7);
                continue;
              }
              const { sub: dimReader, range: dimRange } = enterMessage(shapeReader);
              const dim: TensorShapeDim = {};
              while (dimReader.pos < dimRange.offset + dimRange.length) {
                const dimTag = dimReader.uint32();
                if (dimTag >>> 3 === 1) dim.value = readInt64(dimReader);
                else if (dimTag >>> 3 === 2) dim.param = dimReader.string();
                else dimReader.skipType(dimTag & 7);
              }
              info.shape.push(dim);
            }
          } else {
            tensorReader.skipType(tensorTag & 7);
          }
        }
      }
    } else {
      reader.skipType(tag & 7);
    }
  }
  return info;
}

function readGraph(reader: Reader, range: ByteRange, model: OnnxModel): void {
  const end = range.offset + range.length;
  while (reader.pos < end) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    if ((tag & 7) !== WIRE_BYTES || ![1, 5, 11, 12, 13].includes(field)) {
      reader.skipType(tag & 7);
      continue;
    }
    const { sub, range: childRange } = enterMessage(reader);
    switch (field) {
      case 1:
        model.nodes.push(readNode(sub, childRange, model.nodes.length, model.filePath));
        break;
      case 5: {
        const tensor = readTensor(sub, childRange, model.filePath);
        model.initializers.set(tensor.name, tensor);
        break;
      }
      case 11:
        model.inputs.push(readValueInfo(sub, childRange));
        break;
      case 12:
        model.outputs.push(readValueInfo(sub, childRange));
        break;
      case 13: {
        const info = readValueInfo(sub, childRange);
        model.valueInfo.set(info.name, info);
        break;
      }
    }
  }
}

/** Parses ONNX bytes already in memory. `filePath` names where they came from (for external data and messages). */
export function parseOnnxModel(bytes: Uint8Array, filePath: string): OnnxModel {
  const model: OnnxModel = {
    filePath,
    fileSize: bytes.length,
    bytes,
    dataFolder: path.dirname(filePath),
    irVersion: 0,
    producerName: '',
    producerVersion: '',
    opsetImports: [],
    nodes: [],
    initializers: new Map(),
    inputs: [],
    outputs: [],
    valueInfo: new Map(),
  };
  const name = path.basename(filePath);
  let sawGraph = false;
  try {
    const reader = new Reader(bytes);
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      const field = tag >>> 3;
      const wireType = tag & 7;
      if (field === 0 || wireType > 5 || wireType === 3 || wireType === 4) {
        throw new ModelFileError(`${name} is not an ONNX model (unexpected bytes at offset ${reader.pos}); check that the file is a complete .onnx export.`);
      }
      switch (field) {
        case 1:
          model.irVersion = readInt64(reader);
          break;
        case 2:
          model.producerName = reader.string();
          break;
        case 3:
          model.producerVersion = reader.string();
          break;
        case 7: {
          const { sub, range } = enterMessage(reader);
          readGraph(sub, range, model);
          sawGraph = true;
          break;
        }
        case 8: {
          const { sub, range } = enterMessage(reader);
          let domain = '';
          let version = 0;
          while (sub.pos < range.offset + range.length) {
            const opsetTag = sub.uint32();
            if (opsetTag >>> 3 === 1) domain = sub.string();
            else if (opsetTag >>> 3 === 2) version = readInt64(sub);
            else sub.skipType(opsetTag & 7);
          }
          model.opsetImports.push({ domain, version });
          break;
        }
        default:
          reader.skipType(wireType);
      }
    }
  } catch (error) {
    if (error instanceof ModelFileError) throw error;
    // protobufjs throws RangeError ("index out of range") on a message cut short.
    throw new ModelFileError(`${name} is truncated or corrupt (${(error as Error).message}); export or download it again.`);
  }
  if (!sawGraph || model.nodes.length === 0) {
    throw new ModelFileError(`${name} holds no ONNX graph; check that it is an .onnx model file.`);
  }
  return model;
}

/** Reads and parses an ONNX file. The file is read once; weights stay views into that buffer. */
export function readOnnxModel(filePath: string): OnnxModel {
  const name = path.basename(filePath);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(filePath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ModelFileError(`${filePath} does not exist; check the path.`);
    if (code === 'EISDIR') throw new ModelFileError(`${filePath} is a folder; give the path of an .onnx file.`);
    if (code === 'ERR_FS_FILE_TOO_LARGE' || code === 'ENOMEM') {
      throw new ModelFileError(`${name} is too large to read into memory; save its weights as external data (onnx.save(..., save_as_external_data=True)) and try again.`);
    }
    throw new ModelFileError(`${filePath} cannot be read (${code ?? (error as Error).message}); check its permissions.`);
  }
  const model = parseOnnxModel(bytes, filePath);
  checkExternalData(model);
  placeDataLocations(model);
  return model;
}

/**
 * sha256 of the .onnx file itself (its bytes as read, not its external data): what a report
 * records as model.sha256 and what tells whether a file is the model a report measured.
 */
export function onnxFileSha256(model: Pick<OnnxModel, 'bytes'>): string {
  return createHash('sha256').update(model.bytes).digest('hex');
}

/**
 * Points weight locations at the real files behind any symlinks (a Hugging Face cache links
 * snapshots to blobs), relative to their closest common folder: onnxruntime resolves links and
 * rejects external data outside the folder it is given.
 */
function placeDataLocations(model: OnnxModel): void {
  const realPaths = new Map<string, string>();
  const real = (file: string) => {
    let resolved = realPaths.get(file);
    if (resolved === undefined) {
      resolved = fs.realpathSync(file);
      realPaths.set(file, resolved);
    }
    return resolved;
  };
  real(model.filePath);
  for (const tensor of model.initializers.values()) if (tensor.data.kind === 'raw') real(tensor.data.file);
  let folder = path.dirname(real(model.filePath));
  for (const resolved of realPaths.values()) {
    while (path.relative(folder, resolved).startsWith('..')) folder = path.dirname(folder);
  }
  model.dataFolder = folder;
  for (const tensor of model.initializers.values()) {
    if (tensor.data.kind === 'raw') tensor.data.location = path.relative(folder, real(tensor.data.file)).split(path.sep).join('/');
  }
}

function checkExternalData(model: OnnxModel): void {
  const sizes = new Map<string, number>();
  for (const tensor of model.initializers.values()) {
    if (!tensor.external || tensor.data.kind !== 'raw') continue;
    const file = tensor.data.file;
    let size = sizes.get(file);
    if (size === undefined) {
      try {
        size = fs.statSync(file).size;
      } catch {
        throw new ModelFileError(
          `${path.basename(model.filePath)} keeps its weights in '${path.basename(file)}', which is missing; put that file next to the model.`,
        );
      }
      sizes.set(file, size);
    }
    if (tensor.data.length < 0) tensor.data.length = size - tensor.data.offset;
    if (tensor.data.offset + tensor.data.length > size) {
      throw new ModelFileError(
        `${path.basename(file)} is shorter than ${path.basename(model.filePath)} expects (tensor '${tensor.name}'); copy the weights file again.`,
      );
    }
  }
}

/**
 * Lets go of the file bytes, so the worker does not hold a second copy of the weights beside
 * onnxruntime's. Everything keeps working: byte ranges are then read from disk (readFileRange).
 */
export function releaseFileBytes(model: OnnxModel): void {
  model.bytes = new Uint8Array(0);
}

/**
 * Bytes [offset, offset + length) of `file`, the model's own file or one of its external data
 * files: from the model's bytes while it holds them, else from disk.
 */
export function readFileRange(model: OnnxModel, offset: number, length: number, file = model.filePath): Uint8Array {
  if (file === model.filePath && model.bytes.length >= offset + length) return model.bytes.subarray(offset, offset + length);
  const bytes = Buffer.alloc(length);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, bytes, 0, length, offset);
  } finally {
    fs.closeSync(fd);
  }
  return bytes;
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((product, dim) => product * dim, 1);
}

/** Opset of the default ONNX domain. */
export function defaultOpset(model: OnnxModel): number {
  return model.opsetImports.find((entry) => entry.domain === '' || entry.domain === 'ai.onnx')?.version ?? 0;
}

export { WIRE_BYTES, WIRE_FIXED32, WIRE_FIXED64, WIRE_VARINT };
