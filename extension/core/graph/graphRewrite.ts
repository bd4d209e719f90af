// What the graph rewrites share: the canonical graph's node type, the builder they append to and
// the context they read the file's graph through. canonicalGraph.ts runs the rewrites; the rewrite
// modules (fusedOperators, quantizedOperators) import only this, so the imports point one way.
import { AttributeInfo, NodeInfo, OnnxModel, TensorInfo } from '../onnx/onnxModel';
import { ConstantTensor, plainConstant, storageOf } from './constantTensor';
import { GraphKind } from './graphKind';

/** A node of the canonical graph: a file's node without its place in the file, and that node when copied unchanged. */
export type GraphNode = Omit<NodeInfo, 'index' | 'message'> & {
  /** The file's node when this node is that node unchanged (copied byte for byte). */
  verbatim?: NodeInfo;
};

/** Attribute-building shorthand for rewritten nodes. */
export type AttributeSpec = Record<string, number | string | number[] | { float: number }>;

export interface RewriteContext {
  graph: GraphBuilder;
  model: OnnxModel;
  producer: Map<string, NodeInfo>;
  consumers: Map<string, NodeInfo[]>;
  /** File nodes a rewrite has already replaced (skipped when met later). */
  consumed: Set<NodeInfo>;
}

/**
 * The constant tensor behind `name` among the file's own nodes (the canonical graph's index does
 * not exist yet while it is being built): an initializer, or one read through Identity or Constant.
 */
export function fileTensor(context: RewriteContext, name: string | undefined): TensorInfo | undefined {
  if (!name) return undefined;
  const direct = context.model.initializers.get(name);
  if (direct) return direct;
  const node = context.producer.get(name);
  if (node?.opType === 'Identity') return fileTensor(context, node.inputs[0]);
  if (node?.opType === 'Constant') return node.attributes.get('value')?.t;
  return undefined;
}

/** `fileTensor` as a constant of the canonical graph, under the name `name`. */
export function fileConstant(context: RewriteContext, name: string | undefined): ConstantTensor | undefined {
  const tensor = fileTensor(context, name);
  if (!tensor) return undefined;
  return plainConstant(tensor, context.model.initializers.has(tensor.name) && tensor.name ? 'initializer' : 'attribute', name);
}

export function operatorKey(node: Pick<NodeInfo, 'domain' | 'opType'>): string {
  return node.domain && node.domain !== 'ai.onnx' ? `${node.domain}.${node.opType}` : node.opType;
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

/** The nodes and constants of a graph being rewritten, and what the rewrite found. */
export class GraphBuilder {
  readonly nodes: GraphNode[] = [];
  /** Values the rewrite made constant (float16 constants, dequantized weights, slices). */
  readonly constants = new Map<string, ConstantTensor>();
  readonly kind: GraphKind = { weightStorage: [], fusedOperators: [], activationQuantization: [] };
  private counter = 0;

  constructor(readonly model: OnnxModel) {}

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
}

export function verbatimNode(node: NodeInfo): GraphNode {
  return { name: node.name, opType: node.opType, domain: node.domain, inputs: node.inputs, outputs: node.outputs, attributes: node.attributes, verbatim: node };
}
