// Builds the small ONNX models the engine runs (embedding extractors, probe graphs).
// Weights of the user's model are referenced in place as external data, never copied; nodes of
// the user's model can be copied byte for byte, so no field they carry is lost.
import { Reader, Writer } from 'protobufjs/minimal';
import { NodeInfo, OnnxModel, readFileRange, TensorDataType, TensorInfo } from './onnxModel';

export type AttributeValue = number | string | number[] | { floats: number[] } | { float: number } | { tensor: InlineTensor } | { graph: OnnxGraphBuilder };

export interface InlineTensor {
  dataType: TensorDataType;
  dims: number[];
  /** Little-endian element bytes. */
  bytes: Uint8Array;
}

interface NodeSpec {
  opType: string;
  inputs: string[];
  outputs: string[];
  name: string;
  domain: string;
  attributes: [string, AttributeValue][];
}

type GraphEntry =
  | { kind: 'spec'; spec: NodeSpec }
  | { kind: 'verbatim'; node: NodeInfo; model: OnnxModel }
  | { kind: 'renamed'; node: NodeInfo; model: OnnxModel; rename: (tensor: string) => string };

type InitializerEntry =
  | { kind: 'inline'; name: string; tensor: InlineTensor }
  | { kind: 'external'; name: string; tensor: TensorInfo; location: string; offset: number; length: number }
  | { kind: 'verbatim'; tensor: TensorInfo; model: OnnxModel };

export interface GraphValue {
  name: string;
  elemType: TensorDataType;
  /** Undefined leaves the shape unstated (rank unknown). */
  shape?: (number | string)[];
}

// AttributeProto.AttributeType
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_STRING = 3;
const ATTR_TENSOR = 4;
const ATTR_GRAPH = 5;
const ATTR_FLOATS = 6;
const ATTR_INTS = 7;

const tag = (field: number, wireType: number) => (field << 3) | wireType;

/**
 * The most tensors (inputs and outputs together) one node built here may touch. WebGPU
 * guarantees only 8 storage buffers per shader stage and onnxruntime's WebGPU kernels bind one
 * buffer per tensor plus one for their uniforms, so a node within this limit runs on every
 * adapter; a wider Concat or Split fails only at run time, on adapters at the minimum.
 */
export const MAX_NODE_TENSORS = 7;

/** WebGPU's guaranteed maxStorageBufferBindingSize (128 MiB): the largest tensor a portable graph holds. */
export const MAX_TENSOR_BYTES = 128 * 2 ** 20;

export class OnnxGraphBuilder {
  private readonly entries: GraphEntry[] = [];
  private readonly initializers = new Map<string, InitializerEntry>();
  private readonly inputs: GraphValue[] = [];
  private readonly outputs: GraphValue[] = [];
  /** Names produced by this graph's nodes (initializers are in `initializers`). */
  private readonly nodeOutputs = new Set<string>();
  /** Shared with subgraphs: a name is fresh in every scope of the model. */
  private readonly counter: { next: number };

  /** `opsets`: the ONNX default-domain opset, or the full list of (domain, version) imports. */
  constructor(
    private readonly opsets: number | readonly { domain: string; version: number }[],
    counter?: { next: number },
  ) {
    this.counter = counter ?? { next: 0 };
  }

  /** A fresh tensor name with a readable prefix. */
  fresh(prefix: string): string {
    return `${prefix}__${this.counter.next++}`;
  }

  /**
   * A builder for a subgraph (a Loop or If body): its nodes may read this graph's tensors by
   * name, and its names never clash with this graph's. Pass it as a `{ graph }` attribute.
   */
  subgraph(): OnnxGraphBuilder {
    return new OnnxGraphBuilder(this.opsets, this.counter);
  }

  input(name: string, elemType: TensorDataType, shape: (number | string)[]): string {
    this.inputs.push({ name, elemType, shape });
    return name;
  }

  output(name: string, elemType: TensorDataType, shape?: (number | string)[]): void {
    this.outputs.push({ name, elemType, shape });
  }

  /** Adds a node with one output and returns the output's name. */
  op(opType: string, inputs: string[], attributes: Record<string, AttributeValue> = {}, outputName?: string): string {
    const output = outputName ?? this.fresh(opType);
    this.node(opType, inputs, [output], attributes);
    return output;
  }

  node(opType: string, inputs: string[], outputs: string[], attributes: Record<string, AttributeValue> = {}, domain = ''): string[] {
    for (const output of outputs) this.nodeOutputs.add(output);
    this.entries.push({
      kind: 'spec',
      spec: { opType, inputs, outputs, name: outputs[0] ?? this.fresh(opType), domain, attributes: Object.entries(attributes) },
    });
    return outputs;
  }

  /**
   * Concat of any number of tensors along `axis`, as a tree of Concats each within
   * MAX_NODE_TENSORS (see there); one tensor passes through Identity.
   */
  concat(inputs: string[], axis: number, outputName?: string): string {
    if (inputs.length === 0) throw new Error('concat needs at least one input');
    const width = MAX_NODE_TENSORS - 1;
    let level = inputs;
    while (level.length > width) {
      const next: string[] = [];
      for (let start = 0; start < level.length; start += width) {
        const group = level.slice(start, start + width);
        next.push(group.length === 1 ? group[0] : this.op('Concat', group, { axis }));
      }
      level = next;
    }
    return level.length === 1 ? this.op('Identity', level, {}, outputName) : this.op('Concat', level, { axis }, outputName);
  }

  /** Copies a node of the source model unchanged (same tensor names). */
  copyNode(model: OnnxModel, node: NodeInfo): void {
    for (const output of node.outputs) this.nodeOutputs.add(output);
    this.entries.push({ kind: 'verbatim', node, model });
  }

  /**
   * Copies a node of the source model with its tensor names (and its own name) mapped through
   * `rename`; every other field (attributes, domain) is kept byte for byte.
   */
  copyNodeRenamed(model: OnnxModel, node: NodeInfo, rename: (tensor: string) => string): void {
    this.entries.push({ kind: 'renamed', node, model, rename });
  }

  floatConstant(values: ArrayLike<number>, dims: number[], prefix = 'const'): string {
    const data = Float32Array.from(values);
    return this.inline(prefix, { dataType: TensorDataType.FLOAT, dims, bytes: new Uint8Array(data.buffer) });
  }

  intConstant(values: ArrayLike<number>, dims = [values.length], prefix = 'shape'): string {
    const data = BigInt64Array.from(Array.from(values, (value) => BigInt(value)));
    return this.inline(prefix, { dataType: TensorDataType.INT64, dims, bytes: new Uint8Array(data.buffer) });
  }

  /** A float32 initializer with a given name. */
  floatConstantNamed(name: string, values: ArrayLike<number>, dims: number[]): string {
    const data = Float32Array.from(values);
    this.initializers.set(name, { kind: 'inline', name, tensor: { dataType: TensorDataType.FLOAT, dims, bytes: new Uint8Array(data.buffer) } });
    return name;
  }

  /** An int64 initializer with a given name. */
  intConstantNamed(name: string, values: ArrayLike<number>, dims = [values.length]): string {
    const data = BigInt64Array.from(Array.from(values, (value) => BigInt(value)));
    this.initializers.set(name, { kind: 'inline', name, tensor: { dataType: TensorDataType.INT64, dims, bytes: new Uint8Array(data.buffer) } });
    return name;
  }

  private inline(prefix: string, tensor: InlineTensor): string {
    const name = this.fresh(prefix);
    this.initializers.set(name, { kind: 'inline', name, tensor });
    return name;
  }

  /** True when a node output or an initializer already has this name. */
  hasValue(name: string): boolean {
    return this.nodeOutputs.has(name) || this.initializers.has(name);
  }

  /**
   * An initializer of the source model made available under another name (its stored bytes are
   * then converted by nodes to the value the original name stands for).
   */
  useInitializerAs(model: OnnxModel, tensor: TensorInfo, name: string): string {
    if (this.initializers.has(name)) return name;
    const data = tensor.data;
    if (data.kind !== 'raw') throw new Error(`tensor '${tensor.name}' has no raw bytes to reference as '${name}' (${data.kind})`);
    this.initializers.set(name, { kind: 'external', name, tensor, location: data.location, offset: data.offset, length: data.length });
    return name;
  }

  /**
   * Makes an initializer of the source model available under its own name. Tensors stored as
   * raw bytes in a file (the model's own, or an external data file) become external references
   * to that file, relative to the model's dataFolder; small inline ones are copied verbatim.
   */
  useInitializer(model: OnnxModel, tensor: TensorInfo): string {
    if (this.initializers.has(tensor.name)) return tensor.name;
    const data = tensor.data;
    if (data.kind === 'raw' && (tensor.external || data.length >= 1024)) {
      this.initializers.set(tensor.name, { kind: 'external', name: tensor.name, tensor, location: data.location, offset: data.offset, length: data.length });
    } else {
      this.initializers.set(tensor.name, { kind: 'verbatim', tensor, model });
    }
    return tensor.name;
  }

  /** An initializer whose bytes lie at `offset` in the file `location` (relative to the model's folder). */
  externalInitializer(tensor: TensorInfo, location: string, offset: number, length: number): string {
    this.initializers.set(tensor.name, { kind: 'external', name: tensor.name, tensor, location, offset, length });
    return tensor.name;
  }

  hasInitializer(name: string): boolean {
    return this.initializers.has(name);
  }

  encode(): Uint8Array {
    const writer = Writer.create();
    writer.uint32(tag(1, 0)).int64(8); // ir_version 8: understood by every onnxruntime since 1.10
    writer.uint32(tag(2, 2)).string('plasticity-lens');
    writer.uint32(tag(7, 2)).fork();
    this.writeGraph(writer);
    writer.ldelim();
    const opsets = typeof this.opsets === 'number' ? [{ domain: '', version: this.opsets }] : this.opsets;
    for (const { domain, version } of opsets) {
      writer.uint32(tag(8, 2)).fork().uint32(tag(1, 2)).string(domain).uint32(tag(2, 0)).int64(version).ldelim();
    }
    return writer.finish();
  }

  /** The GraphProto's fields (nodes, name, initializers, inputs, outputs). */
  writeGraph(writer: Writer): void {
    for (const entry of this.entries) {
      if (entry.kind === 'verbatim') {
        const { offset, length } = entry.node.message;
        writer.uint32(tag(1, 2)).bytes(readFileRange(entry.model, offset, length));
      } else if (entry.kind === 'renamed') {
        const { offset, length } = entry.node.message;
        writer.uint32(tag(1, 2)).bytes(renamedNodeBytes(entry.node, readFileRange(entry.model, offset, length), entry.rename));
      } else {
        writer.uint32(tag(1, 2)).fork();
        writeNode(writer, entry.spec);
        writer.ldelim();
      }
    }
    writer.uint32(tag(2, 2)).string('probe');
    for (const entry of this.initializers.values()) {
      if (entry.kind === 'verbatim') {
        const { offset, length } = entry.tensor.message;
        writer.uint32(tag(5, 2)).bytes(readFileRange(entry.model, offset, length));
        continue;
      }
      writer.uint32(tag(5, 2)).fork();
      if (entry.kind === 'inline') {
        writeInlineTensor(writer, entry.name, entry.tensor);
      } else {
        for (const dim of entry.tensor.dims) writer.uint32(tag(1, 0)).int64(dim);
        writer.uint32(tag(2, 0)).int32(entry.tensor.dataType);
        writer.uint32(tag(8, 2)).string(entry.name);
        for (const [key, value] of [
          ['location', entry.location],
          ['offset', String(entry.offset)],
          ['length', String(entry.length)],
        ]) {
          writer.uint32(tag(13, 2)).fork().uint32(tag(1, 2)).string(key).uint32(tag(2, 2)).string(value).ldelim();
        }
        writer.uint32(tag(14, 0)).int32(1);
      }
      writer.ldelim();
    }
    for (const value of this.inputs) writeValueInfo(writer.uint32(tag(11, 2)).fork(), value).ldelim();
    for (const value of this.outputs) writeValueInfo(writer.uint32(tag(12, 2)).fork(), value).ldelim();
  }
}

function writeInlineTensor(writer: Writer, name: string, tensor: InlineTensor): void {
  for (const dim of tensor.dims) writer.uint32(tag(1, 0)).int64(dim);
  writer.uint32(tag(2, 0)).int32(tensor.dataType);
  writer.uint32(tag(8, 2)).string(name);
  writer.uint32(tag(9, 2)).bytes(tensor.bytes);
}

function writeNode(writer: Writer, spec: NodeSpec): void {
  for (const input of spec.inputs) writer.uint32(tag(1, 2)).string(input);
  for (const output of spec.outputs) writer.uint32(tag(2, 2)).string(output);
  writer.uint32(tag(3, 2)).string(spec.name);
  writer.uint32(tag(4, 2)).string(spec.opType);
  for (const [name, value] of spec.attributes) {
    writer.uint32(tag(5, 2)).fork();
    writer.uint32(tag(1, 2)).string(name);
    if (typeof value === 'number') {
      writer.uint32(tag(3, 0)).int64(value).uint32(tag(20, 0)).int32(ATTR_INT);
    } else if (typeof value === 'string') {
      writer.uint32(tag(4, 2)).string(value).uint32(tag(20, 0)).int32(ATTR_STRING);
    } else if (Array.isArray(value)) {
      writer.uint32(tag(8, 2)).fork();
      for (const item of value) writer.int64(item);
      writer.ldelim().uint32(tag(20, 0)).int32(ATTR_INTS);
    } else if ('floats' in value) {
      writer.uint32(tag(7, 2)).fork();
      for (const item of value.floats) writer.float(item);
      writer.ldelim().uint32(tag(20, 0)).int32(ATTR_FLOATS);
    } else if ('float' in value) {
      writer.uint32(tag(2, 5)).float(value.float).uint32(tag(20, 0)).int32(ATTR_FLOAT);
    } else if ('graph' in value) {
      writer.uint32(tag(6, 2)).fork();
      value.graph.writeGraph(writer);
      writer.ldelim().uint32(tag(20, 0)).int32(ATTR_GRAPH);
    } else {
      writer.uint32(tag(5, 2)).fork();
      writeInlineTensor(writer, '', value.tensor);
      writer.ldelim().uint32(tag(20, 0)).int32(ATTR_TENSOR);
    }
    writer.ldelim();
  }
  if (spec.domain) writer.uint32(tag(7, 2)).string(spec.domain);
}

/** The NodeProto `message` with new input (1), output (2) and name (3) fields; its other fields are kept as they are. */
function renamedNodeBytes(node: NodeInfo, message: Uint8Array, rename: (tensor: string) => string): Uint8Array {
  const names = Writer.create();
  for (const input of node.inputs) names.uint32(tag(1, 2)).string(input ? rename(input) : '');
  for (const output of node.outputs) names.uint32(tag(2, 2)).string(output ? rename(output) : '');
  names.uint32(tag(3, 2)).string(rename(node.name || node.outputs[0] || node.opType));
  const kept: Uint8Array[] = [names.finish()];
  const reader = new Reader(message);
  while (reader.pos < reader.len) {
    const start = reader.pos;
    const key = reader.uint32();
    reader.skipType(key & 7);
    if (key >>> 3 > 3) kept.push(message.subarray(start, reader.pos));
  }
  return Buffer.concat(kept);
}

function writeValueInfo(writer: Writer, value: GraphValue): Writer {
  writer.uint32(tag(1, 2)).string(value.name);
  writer.uint32(tag(2, 2)).fork(); // TypeProto
  writer.uint32(tag(1, 2)).fork(); // tensor_type
  writer.uint32(tag(1, 0)).int32(value.elemType);
  if (value.shape) {
    writer.uint32(tag(2, 2)).fork(); // shape
    for (const dim of value.shape) {
      writer.uint32(tag(1, 2)).fork();
      if (typeof dim === 'number') writer.uint32(tag(1, 0)).int64(dim);
      else writer.uint32(tag(2, 2)).string(dim);
      writer.ldelim();
    }
    writer.ldelim();
  }
  writer.ldelim().ldelim();
  return writer;
}
