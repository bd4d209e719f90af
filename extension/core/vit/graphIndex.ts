// Navigation over an ONNX graph: who produces and who consumes each tensor, and what constant a
// tensor really is once exporter indirections (Identity of an initializer, Constant nodes) are
// looked through.
import { elementCount, NodeInfo, OnnxModel, TensorInfo } from '../onnx/onnxModel';
import { readFloats, readInts } from '../onnx/tensorValues';

/** Ops that move or reshape data without changing values: looked through when tracing paths. */
export const LAYOUT_OPS = new Set(['Reshape', 'Transpose', 'Squeeze', 'Unsqueeze', 'Identity', 'Cast', 'Flatten', 'Dropout', 'Contiguous']);

export class GraphIndex {
  readonly producer = new Map<string, NodeInfo>();
  readonly consumers = new Map<string, NodeInfo[]>();
  private readonly constantCache = new Map<string, TensorInfo | null>();

  constructor(readonly model: OnnxModel) {
    for (const node of model.nodes) {
      for (const output of node.outputs) this.producer.set(output, node);
      for (const input of node.inputs) {
        if (!input) continue;
        const list = this.consumers.get(input);
        if (list) list.push(node);
        else this.consumers.set(input, [node]);
      }
    }
  }

  consumersOf(tensor: string): NodeInfo[] {
    return this.consumers.get(tensor) ?? [];
  }

  /** Consumers that read the tensor's values, not only its shape (dynamic-shape exports add Shape nodes everywhere). */
  dataConsumersOf(tensor: string): NodeInfo[] {
    return this.consumersOf(tensor).filter((node) => node.opType !== 'Shape' && node.opType !== 'Size');
  }

  /** The constant tensor behind `name` (initializer, Identity of one, or Constant node), if any. */
  constant(name: string): TensorInfo | undefined {
    const cached = this.constantCache.get(name);
    if (cached !== undefined) return cached ?? undefined;
    let result: TensorInfo | undefined = this.model.initializers.get(name);
    if (!result) {
      const node = this.producer.get(name);
      if (node?.opType === 'Identity') result = this.constant(node.inputs[0]);
      else if (node?.opType === 'Constant') result = node.attributes.get('value')?.t;
    }
    this.constantCache.set(name, result ?? null);
    return result;
  }

  /** The initializer name to reference for a constant (its own name, or the Identity's source). */
  isConstant(name: string): boolean {
    return this.constant(name) !== undefined;
  }

  floats(name: string): Float64Array | undefined {
    const tensor = this.constant(name);
    return tensor ? readFloats(this.model, tensor) : undefined;
  }

  ints(name: string): number[] | undefined {
    const tensor = this.constant(name);
    return tensor ? readInts(this.model, tensor) : undefined;
  }

  /** A scalar constant (any float or int type, one element), or undefined. */
  scalar(name: string): number | undefined {
    const tensor = this.constant(name);
    if (!tensor || elementCount(tensor.dims) !== 1) return undefined;
    return tensor.dataType === 7 || tensor.dataType === 6 ? readInts(this.model, tensor)[0] : readFloats(this.model, tensor)[0];
  }

  /** The single consumer of `tensor`, looking through layout-only ops, or undefined. */
  nextThroughLayout(tensor: string): { node: NodeInfo; via: NodeInfo[] } | undefined {
    const via: NodeInfo[] = [];
    let current = tensor;
    for (let step = 0; step < 16; step++) {
      const consumers = this.dataConsumersOf(current);
      if (consumers.length !== 1) return undefined;
      const node = consumers[0];
      if (!LAYOUT_OPS.has(node.opType)) return { node, via };
      via.push(node);
      current = node.outputs[0];
    }
    return undefined;
  }

  /** Follows `tensor` upstream through layout-only ops to the tensor they start from. */
  sourceThroughLayout(tensor: string): string {
    let current = tensor;
    for (let step = 0; step < 16; step++) {
      const node = this.producer.get(current);
      if (!node || !LAYOUT_OPS.has(node.opType)) return current;
      current = node.inputs[0];
    }
    return current;
  }

  /** Every node needed to compute `targets` from the graph inputs, in graph order. */
  ancestors(targets: string[]): NodeInfo[] {
    const needed = new Set<NodeInfo>();
    const stack = [...targets];
    while (stack.length > 0) {
      const tensor = stack.pop()!;
      const node = this.producer.get(tensor);
      if (!node || needed.has(node)) continue;
      needed.add(node);
      for (const input of node.inputs) if (input) stack.push(input);
    }
    return this.model.nodes.filter((node) => needed.has(node));
  }
}
