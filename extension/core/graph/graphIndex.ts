// Navigation over the canonical graph: who produces and who consumes each tensor, and what
// constant a tensor really is once exporter indirections (Identity or Cast of an initializer,
// Constant nodes, dequantized or float16 weights) are looked through.
import { elementCount, OnnxModel, TensorDataType } from '../onnx/onnxModel';
import { CanonicalGraph } from './canonicalGraph';
import { GraphNode } from './graphRewrite';
import { ConstantTensor, constantValues, plainConstant, valuesConstant } from './constantTensor';
import { StaticShapes } from './shapeFolding';

/** Ops that move or reshape data without changing values: looked through when tracing paths. */
export const LAYOUT_OPS = new Set(['Reshape', 'Transpose', 'Squeeze', 'Unsqueeze', 'Identity', 'Cast', 'Flatten', 'Dropout', 'Contiguous']);

const INTEGER_TYPES = new Set<number>([TensorDataType.INT64, TensorDataType.INT32]);

/** Ops whose float result may be a shape computation constant for the static sizes (an attention scale). */
const FOLDED_SCALAR_OPS = new Set(['Pow', 'Sqrt', 'Reciprocal', 'Div', 'Mul', 'Cast']);

export class GraphIndex {
  readonly producer = new Map<string, GraphNode>();
  readonly consumers = new Map<string, GraphNode[]>();
  readonly model: OnnxModel;
  private readonly constantCache = new Map<string, ConstantTensor | null>();
  /** Dims and shape values computed from the static sizes (shapeFolding.ts). */
  readonly shapes: StaticShapes;

  constructor(readonly graph: CanonicalGraph) {
    this.model = graph.model;
    for (const node of graph.nodes) {
      for (const output of node.outputs) this.producer.set(output, node);
      for (const input of node.inputs) {
        if (!input) continue;
        const list = this.consumers.get(input);
        if (list) list.push(node);
        else this.consumers.set(input, [node]);
      }
    }
    this.shapes = new StaticShapes(this.model, this.producer, (name) => this.storedConstant(name));
  }

  get nodes(): GraphNode[] {
    return this.graph.nodes;
  }

  consumersOf(tensor: string): GraphNode[] {
    return this.consumers.get(tensor) ?? [];
  }

  /** Consumers that read the tensor's values, not only its shape (dynamic-shape exports add Shape nodes everywhere). */
  dataConsumersOf(tensor: string): GraphNode[] {
    return this.consumersOf(tensor).filter((node) => node.opType !== 'Shape' && node.opType !== 'Size');
  }

  /**
   * The constant behind `name` (initializer, Identity or Cast of one, Constant node, rewritten
   * weight), or a float computed from the model's static sizes alone (`q.shape[-1] ** -0.5`).
   */
  constant(name: string): ConstantTensor | undefined {
    const cached = this.constantCache.get(name);
    if (cached !== undefined) return cached ?? undefined;
    let result = this.storedConstant(name);
    if (!result && FOLDED_SCALAR_OPS.has(this.producer.get(name)?.opType ?? '')) {
      const folded = this.shapes.value(name);
      if (folded?.float && folded.data.every((entry) => entry !== undefined)) result = valuesConstant(name, TensorDataType.FLOAT, folded.data as number[], folded.dims);
    }
    this.constantCache.set(name, result ?? null);
    return result;
  }

  /** The constant the file stores behind `name`, looked through exporter indirections. */
  private storedConstant(name: string): ConstantTensor | undefined {
    let result = this.graph.constants.get(name);
    const initializer = this.model.initializers.get(name);
    if (!result && initializer) result = plainConstant(initializer, 'initializer');
    if (!result) {
      const node = this.producer.get(name);
      if (node?.opType === 'Identity') {
        // Exporters deduplicate equal parameters into one initializer read through Identity nodes
        // named after each parameter: the Identity's name is this parameter's own.
        const source = this.storedConstant(node.inputs[0]);
        if (source) result = { ...source, name };
      } else if (node?.opType === 'Cast' && node.attributes.get('to')?.i === TensorDataType.FLOAT) {
        // A float weight cast to float32 (float16 models keep some in their own type): the same values.
        const source = this.storedConstant(node.inputs[0]);
        if (source && !INTEGER_TYPES.has(source.stored?.dataType ?? source.values?.dataType ?? 0)) result = source;
      } else if (node?.opType === 'Constant') {
        const tensor = node.attributes.get('value')?.t;
        if (tensor) result = plainConstant(tensor, 'attribute', name);
      }
    }
    return result;
  }

  isConstant(name: string): boolean {
    return this.constant(name) !== undefined;
  }

  floats(name: string): Float64Array | undefined {
    const constant = this.constant(name);
    return constant ? constantValues(this.model, constant) : undefined;
  }

  ints(name: string): number[] | undefined {
    const constant = this.constant(name);
    return constant ? Array.from(constantValues(this.model, constant)) : undefined;
  }

  /** A scalar constant (any float or int type, one element), or undefined. */
  scalar(name: string): number | undefined {
    const constant = this.constant(name);
    if (!constant || elementCount(constant.dims) !== 1) return undefined;
    return constantValues(this.model, constant)[0];
  }

  /** The single consumer of `tensor`, looking through layout-only ops, or undefined. */
  nextThroughLayout(tensor: string): { node: GraphNode; via: GraphNode[] } | undefined {
    const via: GraphNode[] = [];
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
    return this.sourceThrough(tensor, LAYOUT_OPS);
  }

  /** Follows `tensor` upstream through ops of `ops` (each read on its first input), at most `steps` of them. */
  sourceThrough(tensor: string, ops: ReadonlySet<string>, steps = 16): string {
    let current = tensor;
    for (let step = 0; step < steps; step++) {
      const node = this.producer.get(current);
      if (!node || !ops.has(node.opType)) return current;
      current = node.inputs[0];
    }
    return current;
  }

  /** Every node needed to compute `targets` from the graph inputs, in graph order. */
  ancestors(targets: string[]): GraphNode[] {
    const needed = new Set<GraphNode>();
    const stack = [...targets];
    while (stack.length > 0) {
      const tensor = stack.pop()!;
      const node = this.producer.get(tensor);
      if (!node || needed.has(node)) continue;
      needed.add(node);
      for (const input of node.inputs) if (input) stack.push(input);
    }
    return this.graph.nodes.filter((node) => needed.has(node));
  }
}
