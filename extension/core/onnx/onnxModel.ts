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
import { checkExternalDataFiles, ExternalTensor, externalDataPlace, placeDataLocations } from './externalData';

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

/** Field numbers of the onnx.proto messages this reader reads; every other field is skipped. */
const MODEL_FIELD = { irVersion: 1, producerName: 2, producerVersion: 3, graph: 7, opsetImport: 8 } as const;
const OPSET_FIELD = { domain: 1, version: 2 } as const;
const GRAPH_FIELD = { node: 1, initializer: 5, input: 11, output: 12, valueInfo: 13, sparseInitializer: 15 } as const;
const NODE_FIELD = { input: 1, output: 2, name: 3, opType: 4, attribute: 5, domain: 7 } as const;
const ATTRIBUTE_FIELD = { name: 1, f: 2, i: 3, s: 4, t: 5, g: 6, floats: 7, ints: 8, tensors: 9, graphs: 10, type: 20, sparseTensor: 22, sparseTensors: 23 } as const;
const SPARSE_TENSOR_FIELD = { values: 1, indices: 2 } as const;
const TENSOR_FIELD = { dims: 1, dataType: 2, floatData: 4, int32Data: 5, int64Data: 7, name: 8, rawData: 9, doubleData: 10, externalData: 13, dataLocation: 14 } as const;
const STRING_ENTRY_FIELD = { key: 1, value: 2 } as const;
const VALUE_INFO_FIELD = { name: 1, type: 2 } as const;
const TYPE_FIELD = { tensorType: 1 } as const;
const TENSOR_TYPE_FIELD = { elemType: 1, shape: 2 } as const;
const SHAPE_FIELD = { dim: 1 } as const;
const DIMENSION_FIELD = { value: 1, param: 2 } as const;
const DATA_LOCATION_EXTERNAL = 1;

/**
 * Reads the fields of the message that ends at `end`: `read` consumes the fields it knows and
 * returns false for the others, which are skipped.
 */
function readFields(reader: Reader, end: number, read: (field: number, wireType: number) => boolean): void {
  while (reader.pos < end) {
    const tag = reader.uint32();
    const wireType = tag & 7;
    if (!read(tag >>> 3, wireType)) reader.skipType(wireType);
  }
}

/** Reads an embedded message field with `readMessage` (given a reader positioned on it and its range). */
function readMessageField<T>(reader: Reader, readMessage: (sub: Reader, range: ByteRange) => T): T {
  const { sub, range } = enterMessage(reader);
  return readMessage(sub, range);
}

function readTensor(reader: Reader, range: ByteRange, filePath: string): TensorInfo {
  const tensor: TensorInfo = { name: '', dims: [], dataType: 0, data: { kind: 'empty' }, message: range, external: false };
  const externalEntries = new Map<string, string>();
  readFields(reader, range.offset + range.length, (field, wireType) => {
    switch (field) {
      case TENSOR_FIELD.dims:
        readPackedOrSingleInts(reader, wireType, tensor.dims);
        return true;
      case TENSOR_FIELD.dataType:
        tensor.dataType = reader.int32();
        return true;
      case TENSOR_FIELD.name:
        tensor.name = readString(reader);
        return true;
      case TENSOR_FIELD.rawData:
      case TENSOR_FIELD.floatData: // packed fixed32: the same little-endian bytes as raw_data
      case TENSOR_FIELD.doubleData: {
        // packed fixed64
        if (wireType !== WIRE_BYTES) return false;
        const length = reader.uint32();
        tensor.data = { kind: 'raw', file: filePath, location: path.basename(filePath), offset: reader.pos, length };
        reader.skip(length);
        return true;
      }
      case TENSOR_FIELD.int32Data:
      case TENSOR_FIELD.int64Data: {
        if (wireType !== WIRE_BYTES) return false;
        const length = reader.uint32();
        tensor.data = { kind: 'varint', field, range: { offset: reader.pos, length } };
        reader.skip(length);
        return true;
      }
      case TENSOR_FIELD.externalData: {
        const [key, value] = readMessageField(reader, readStringEntry);
        externalEntries.set(key, value);
        return true;
      }
      case TENSOR_FIELD.dataLocation:
        tensor.external = reader.int32() === DATA_LOCATION_EXTERNAL;
        return true;
      default:
        return false;
    }
  });
  if (tensor.external) {
    const place = externalDataPlace(filePath, tensor.name, {
      location: externalEntries.get('location'),
      offset: externalEntries.get('offset'),
      length: externalEntries.get('length'),
    });
    tensor.data = { kind: 'raw', ...place };
  }
  return tensor;
}

/** A StringStringEntryProto: [key, value]. */
function readStringEntry(reader: Reader, range: ByteRange): [string, string] {
  let key = '';
  let value = '';
  readFields(reader, range.offset + range.length, (field) => {
    if (field === STRING_ENTRY_FIELD.key) key = reader.string();
    else if (field === STRING_ENTRY_FIELD.value) value = reader.string();
    else return false;
    return true;
  });
  return [key, value];
}

function readAttribute(reader: Reader, range: ByteRange, filePath: string): AttributeInfo {
  const attribute: AttributeInfo = { name: '', type: 0 };
  readFields(reader, range.offset + range.length, (field, wireType) => {
    switch (field) {
      case ATTRIBUTE_FIELD.name:
        attribute.name = readString(reader);
        return true;
      case ATTRIBUTE_FIELD.f:
        attribute.f = reader.float();
        return true;
      case ATTRIBUTE_FIELD.i:
        attribute.i = readInt64(reader);
        return true;
      case ATTRIBUTE_FIELD.s:
        attribute.s = readString(reader);
        return true;
      case ATTRIBUTE_FIELD.t:
        attribute.t = readMessageField(reader, (sub, tensorRange) => readTensor(sub, tensorRange, filePath));
        return true;
      case ATTRIBUTE_FIELD.floats: {
        attribute.floats ??= [];
        if (wireType === WIRE_BYTES) {
          const stop = reader.uint32() + reader.pos;
          while (reader.pos < stop) attribute.floats.push(reader.float());
        } else {
          attribute.floats.push(reader.float());
        }
        return true;
      }
      case ATTRIBUTE_FIELD.ints:
        attribute.ints ??= [];
        readPackedOrSingleInts(reader, wireType, attribute.ints);
        return true;
      case ATTRIBUTE_FIELD.type:
        attribute.type = reader.int32();
        return true;
      case ATTRIBUTE_FIELD.g:
      case ATTRIBUTE_FIELD.graphs:
        if (wireType !== WIRE_BYTES) return false;
        readMessageField(reader, (sub, graphRange) => refuseExternalDataInSubgraph(sub, graphRange, filePath));
        return true;
      case ATTRIBUTE_FIELD.tensors:
        if (wireType !== WIRE_BYTES) return false;
        refuseExternalTensorField(reader, filePath, `a tensor list of attribute '${attribute.name}'`);
        return true;
      case ATTRIBUTE_FIELD.sparseTensor:
      case ATTRIBUTE_FIELD.sparseTensors:
        if (wireType !== WIRE_BYTES) return false;
        readMessageField(reader, (sub, sparseRange) => refuseExternalDataInSparseTensor(sub, sparseRange, filePath, `the sparse tensor of attribute '${attribute.name}'`));
        return true;
      default:
        return false;
    }
  });
  return attribute;
}

/**
 * Tensors nested in subgraphs (Loop, If, Scan bodies) and sparse or listed attributes are not read
 * by the engine, but onnxruntime would open their external data: such data is refused, whatever
 * its location, so nothing the model names is read outside what the engine itself checks.
 */
function refuseExternalDataInSubgraph(reader: Reader, range: ByteRange, filePath: string): void {
  readFields(reader, range.offset + range.length, (field, wireType) => {
    if (wireType !== WIRE_BYTES) return false;
    if (field === GRAPH_FIELD.node) {
      const node = readMessageField(reader, (sub, nodeRange) => readNode(sub, nodeRange, -1, filePath));
      const external = [...node.attributes.values()].find((attribute) => attribute.t?.external);
      if (external)
        throw new ModelFileError(
          `${path.basename(filePath)}: node '${node.name || node.opType}' in a subgraph keeps a tensor in an external file, which Plasticity Lens does not read there; save the model with that tensor's data inside the file.`,
        );
    } else if (field === GRAPH_FIELD.initializer) {
      refuseExternalTensorField(reader, filePath, 'a subgraph');
    } else if (field === GRAPH_FIELD.sparseInitializer) {
      readMessageField(reader, (sub, sparseRange) => refuseExternalDataInSparseTensor(sub, sparseRange, filePath, 'a sparse initializer of a subgraph'));
    } else {
      return false;
    }
    return true;
  });
}

function refuseExternalDataInSparseTensor(reader: Reader, range: ByteRange, filePath: string, where: string): void {
  readFields(reader, range.offset + range.length, (field, wireType) => {
    if (wireType !== WIRE_BYTES || (field !== SPARSE_TENSOR_FIELD.values && field !== SPARSE_TENSOR_FIELD.indices)) return false;
    refuseExternalTensorField(reader, filePath, where);
    return true;
  });
}

/** Reads the TensorProto field at the reader and refuses it if its data is external. */
function refuseExternalTensorField(reader: Reader, filePath: string, where: string): void {
  const tensor = readMessageField(reader, (sub, tensorRange) => readTensor(sub, tensorRange, filePath));
  if (tensor.external) {
    throw new ModelFileError(
      `${path.basename(filePath)}: tensor '${tensor.name}' in ${where} keeps its data in an external file, which Plasticity Lens does not read there; save the model with that tensor's data inside the file.`,
    );
  }
}

function readNode(reader: Reader, range: ByteRange, index: number, filePath: string): NodeInfo {
  const node: NodeInfo = { index, name: '', opType: '', domain: '', inputs: [], outputs: [], attributes: new Map(), message: range };
  readFields(reader, range.offset + range.length, (field) => {
    switch (field) {
      case NODE_FIELD.input:
        node.inputs.push(readString(reader));
        return true;
      case NODE_FIELD.output:
        node.outputs.push(readString(reader));
        return true;
      case NODE_FIELD.name:
        node.name = readString(reader);
        return true;
      case NODE_FIELD.opType:
        node.opType = readString(reader);
        return true;
      case NODE_FIELD.attribute: {
        const attribute = readMessageField(reader, (sub, attributeRange) => readAttribute(sub, attributeRange, filePath));
        node.attributes.set(attribute.name, attribute);
        return true;
      }
      case NODE_FIELD.domain:
        node.domain = readString(reader);
        return true;
      default:
        return false;
    }
  });
  return node;
}

/** ValueInfoProto -> TypeProto -> tensor_type -> elem_type, shape -> dim -> dim_value | dim_param. */
function readValueInfo(reader: Reader, range: ByteRange): ValueInfo {
  const info: ValueInfo = { name: '', elemType: 0, shape: undefined, message: range };
  const readDimension = (dimReader: Reader, dimRange: ByteRange): TensorShapeDim => {
    const dim: TensorShapeDim = {};
    readFields(dimReader, dimRange.offset + dimRange.length, (field) => {
      if (field === DIMENSION_FIELD.value) dim.value = readInt64(dimReader);
      else if (field === DIMENSION_FIELD.param) dim.param = dimReader.string();
      else return false;
      return true;
    });
    return dim;
  };
  const readShape = (shapeReader: Reader, shapeRange: ByteRange): TensorShapeDim[] => {
    const dims: TensorShapeDim[] = [];
    readFields(shapeReader, shapeRange.offset + shapeRange.length, (field) => {
      if (field !== SHAPE_FIELD.dim) return false;
      dims.push(readMessageField(shapeReader, readDimension));
      return true;
    });
    return dims;
  };
  const readTensorType = (tensorReader: Reader, tensorRange: ByteRange): void => {
    readFields(tensorReader, tensorRange.offset + tensorRange.length, (field) => {
      if (field === TENSOR_TYPE_FIELD.elemType) info.elemType = tensorReader.int32();
      else if (field === TENSOR_TYPE_FIELD.shape) info.shape = readMessageField(tensorReader, readShape);
      else return false;
      return true;
    });
  };
  const readType = (typeReader: Reader, typeRange: ByteRange): void => {
    readFields(typeReader, typeRange.offset + typeRange.length, (field) => {
      if (field !== TYPE_FIELD.tensorType) return false;
      readMessageField(typeReader, readTensorType);
      return true;
    });
  };
  readFields(reader, range.offset + range.length, (field) => {
    if (field === VALUE_INFO_FIELD.name) info.name = readString(reader);
    else if (field === VALUE_INFO_FIELD.type) readMessageField(reader, readType);
    else return false;
    return true;
  });
  return info;
}

function readGraph(reader: Reader, range: ByteRange, model: OnnxModel): void {
  readFields(reader, range.offset + range.length, (field, wireType) => {
    if (wireType !== WIRE_BYTES) return false;
    switch (field) {
      case GRAPH_FIELD.node:
        model.nodes.push(readMessageField(reader, (sub, nodeRange) => readNode(sub, nodeRange, model.nodes.length, model.filePath)));
        return true;
      case GRAPH_FIELD.initializer: {
        const tensor = readMessageField(reader, (sub, tensorRange) => readTensor(sub, tensorRange, model.filePath));
        model.initializers.set(tensor.name, tensor);
        return true;
      }
      case GRAPH_FIELD.input:
        model.inputs.push(readMessageField(reader, readValueInfo));
        return true;
      case GRAPH_FIELD.output:
        model.outputs.push(readMessageField(reader, readValueInfo));
        return true;
      case GRAPH_FIELD.valueInfo: {
        const info = readMessageField(reader, readValueInfo);
        model.valueInfo.set(info.name, info);
        return true;
      }
      case GRAPH_FIELD.sparseInitializer:
        readMessageField(reader, (sub, sparseRange) => refuseExternalDataInSparseTensor(sub, sparseRange, model.filePath, 'a sparse initializer'));
        return true;
      default:
        return false;
    }
  });
}

function readOpsetImport(reader: Reader, range: ByteRange): { domain: string; version: number } {
  let domain = '';
  let version = 0;
  readFields(reader, range.offset + range.length, (field) => {
    if (field === OPSET_FIELD.domain) domain = reader.string();
    else if (field === OPSET_FIELD.version) version = readInt64(reader);
    else return false;
    return true;
  });
  return { domain, version };
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
    readFields(reader, reader.len, (field, wireType) => {
      if (field === 0 || wireType > 5 || wireType === 3 || wireType === 4) {
        throw new ModelFileError(`${name} is not an ONNX model (unexpected bytes at offset ${reader.pos}); check that the file is a complete .onnx export.`);
      }
      switch (field) {
        case MODEL_FIELD.irVersion:
          model.irVersion = readInt64(reader);
          return true;
        case MODEL_FIELD.producerName:
          model.producerName = reader.string();
          return true;
        case MODEL_FIELD.producerVersion:
          model.producerVersion = reader.string();
          return true;
        case MODEL_FIELD.graph:
          readMessageField(reader, (sub, range) => readGraph(sub, range, model));
          sawGraph = true;
          return true;
        case MODEL_FIELD.opsetImport:
          model.opsetImports.push(readMessageField(reader, readOpsetImport));
          return true;
        default:
          return false;
      }
    });
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
  return model;
}

/**
 * sha256 of the .onnx file itself (its bytes as read, not its external data): what a report
 * records as model.sha256 and what tells whether a file is the model a report measured.
 */
export function onnxFileSha256(model: Pick<OnnxModel, 'bytes'>): string {
  return createHash('sha256').update(model.bytes).digest('hex');
}

/** Initializers and the tensors of node attributes (a Constant's value): every tensor the engine may read. */
function storedTensors(model: OnnxModel): TensorInfo[] {
  const tensors = [...model.initializers.values()];
  for (const node of model.nodes) for (const attribute of node.attributes.values()) if (attribute.t) tensors.push(attribute.t);
  return tensors;
}

function checkExternalData(model: OnnxModel): void {
  const tensors = storedTensors(model);
  const external: ExternalTensor[] = [];
  for (const tensor of tensors) if (tensor.external && tensor.data.kind === 'raw') external.push({ name: tensor.name, place: tensor.data });
  checkExternalDataFiles(model.filePath, external);
  model.dataFolder = placeDataLocations(
    model.filePath,
    tensors.flatMap((tensor) => (tensor.data.kind === 'raw' ? [tensor.data] : [])),
  );
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
