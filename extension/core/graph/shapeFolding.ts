// Shape computations that are constant for the model's static sizes. Hand-written ViTs take their
// attention scale from the traced shape (`q.shape[-1] ** -0.5`), which the exporter writes as
// Shape -> Gather -> Cast -> Pow; the head size is static (only the batch may be dynamic), so the
// scale is a number, and discovery should see it as one. StaticShapes infers the dims a tensor has
// (a number where static, undefined where dynamic) and evaluates the small integer and scalar
// tensors computed from them; GraphIndex.constant() turns a float result into a constant.
import { elementCount, OnnxModel, TensorDataType } from '../onnx/onnxModel';
import { ConstantTensor, constantValues } from './constantTensor';
import type { GraphNode } from './graphRewrite';

/** A tensor's dims: a number where static, undefined where dynamic (the batch). */
export type StaticDims = (number | undefined)[];

/** A small tensor's values (entries undefined where they depend on a dynamic dim), with its dims and type. */
export interface FoldedValue {
  data: (number | undefined)[];
  dims: number[];
  float: boolean;
}

/** Values evaluated at most this many elements: shape vectors and scalars, never activations. */
const MAX_FOLDED_ELEMENTS = 64;

const FLOAT_TYPES = new Set<number>([TensorDataType.FLOAT, TensorDataType.FLOAT16, TensorDataType.DOUBLE]);

/** Ops whose output has their first input's shape. */
const SAME_SHAPE_OPS = new Set([
  'Identity',
  'Cast',
  'Dropout',
  'Relu',
  'Erf',
  'Sqrt',
  'Neg',
  'Sigmoid',
  'Tanh',
  'Gelu',
  'Softmax',
  'LayerNormalization',
  'Reciprocal',
  'Abs',
  'Exp',
  'Log',
]);
/** Elementwise ops with broadcasting. */
const BROADCAST_OPS = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Where', 'Equal', 'Max', 'Min']);

function normalisedAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

function broadcast(shapes: StaticDims[]): StaticDims {
  const rank = Math.max(...shapes.map((shape) => shape.length));
  const result: StaticDims = [];
  for (let axis = 0; axis < rank; axis++) {
    const sizes = shapes.map((shape) => (axis < rank - shape.length ? 1 : shape[axis - (rank - shape.length)]));
    const other = sizes.filter((size) => size !== 1);
    result.push(other.length === 0 ? 1 : other.every((size) => size !== undefined && size === other[0]) ? other[0] : undefined);
  }
  return result;
}

export class StaticShapes {
  private readonly dimsCache = new Map<string, StaticDims | null>();
  private readonly valueCache = new Map<string, FoldedValue | null>();

  constructor(
    private readonly model: OnnxModel,
    private readonly producer: Map<string, GraphNode>,
    /** The graph's plain constants (initializers, Constant nodes), not folded ones. */
    private readonly constantOf: (name: string) => ConstantTensor | undefined,
  ) {}

  /** The dims `tensor` has, or undefined where its rank cannot be inferred. */
  dims(tensor: string): StaticDims | undefined {
    const cached = this.dimsCache.get(tensor);
    if (cached !== undefined) return cached ?? undefined;
    this.dimsCache.set(tensor, null); // a cycle (none in a valid graph) reads as unknown
    const dims = this.inferDims(tensor);
    this.dimsCache.set(tensor, dims ?? null);
    return dims;
  }

  /** The values of `tensor` when they follow from constants and static dims (small tensors only). */
  value(tensor: string): FoldedValue | undefined {
    const cached = this.valueCache.get(tensor);
    if (cached !== undefined) return cached ?? undefined;
    this.valueCache.set(tensor, null);
    const value = this.evaluate(tensor);
    this.valueCache.set(tensor, value && value.data.length <= MAX_FOLDED_ELEMENTS ? value : null);
    return this.valueCache.get(tensor) ?? undefined;
  }

  private declaredDims(tensor: string): StaticDims | undefined {
    const info = this.model.valueInfo.get(tensor) ?? this.model.inputs.find((input) => input.name === tensor) ?? this.model.outputs.find((output) => output.name === tensor);
    return info?.shape?.map((dim) => dim.value);
  }

  private inferDims(tensor: string): StaticDims | undefined {
    const constant = this.constantOf(tensor);
    if (constant) return constant.dims;
    const node = this.producer.get(tensor);
    if (!node) return this.declaredDims(tensor);
    const input = (index: number) => (node.inputs[index] ? this.dims(node.inputs[index]) : undefined);
    const ints = (name: string) => node.attributes.get(name)?.ints;
    const int = (name: string, fallback: number) => node.attributes.get(name)?.i ?? fallback;
    const op = node.domain === '' || node.domain === 'ai.onnx' ? node.opType : `${node.domain}.${node.opType}`;
    const inferred = ((): StaticDims | undefined => {
      if (SAME_SHAPE_OPS.has(op)) return input(0);
      if (BROADCAST_OPS.has(op)) {
        const shapes = node.inputs.map((name) => this.dims(name));
        return shapes.every((shape) => shape !== undefined) ? broadcast(shapes as StaticDims[]) : undefined;
      }
      const x = input(0);
      switch (op) {
        case 'Shape':
          return x && [x.length];
        case 'Size':
          return [];
        case 'MatMul': {
          const b = input(1);
          if (!x || !b || x.length < 2 || b.length < 2) return undefined;
          return [...broadcast([x.slice(0, -2), b.slice(0, -2)]), x[x.length - 2], b[b.length - 1]];
        }
        case 'Gemm': {
          const b = input(1);
          if (!x || !b) return undefined;
          return [int('transA', 0) ? x[1] : x[0], int('transB', 0) ? b[0] : b[1]];
        }
        case 'Conv': {
          const w = input(1);
          if (!x || !w || x.length < 3) return undefined;
          const spatial = x.length - 2;
          const strides = ints('strides') ?? new Array<number>(spatial).fill(1);
          const dilations = ints('dilations') ?? new Array<number>(spatial).fill(1);
          const pads = ints('pads') ?? new Array<number>(2 * spatial).fill(0);
          if ((node.attributes.get('auto_pad')?.s ?? 'NOTSET') !== 'NOTSET') return undefined;
          const out: StaticDims = [x[0], w[0]];
          for (let axis = 0; axis < spatial; axis++) {
            const size = x[axis + 2];
            const kernel = w[axis + 2];
            out.push(
              size === undefined || kernel === undefined
                ? undefined
                : Math.floor((size + pads[axis] + pads[axis + spatial] - dilations[axis] * (kernel - 1) - 1) / strides[axis]) + 1,
            );
          }
          return out;
        }
        case 'Transpose': {
          if (!x) return undefined;
          const perm = ints('perm') ?? x.map((_, axis) => x.length - 1 - axis);
          return perm.map((axis) => x[axis]);
        }
        case 'Reshape':
          return this.reshaped(x, node.inputs[1]);
        case 'Expand': {
          const shape = this.value(node.inputs[1]);
          return x && shape ? broadcast([x, shape.data]) : undefined;
        }
        case 'ConstantOfShape': {
          const shape = this.value(node.inputs[0]);
          return shape?.data;
        }
        case 'Flatten': {
          if (!x) return undefined;
          const axis = normalisedAxis(int('axis', 1), x.length);
          const product = (dims: StaticDims) => dims.reduce<number | undefined>((total, size) => (total === undefined || size === undefined ? undefined : total * size), 1);
          return [product(x.slice(0, axis)), product(x.slice(axis))];
        }
        case 'Unsqueeze': {
          const axes = node.inputs[1] ? this.definedInts(node.inputs[1]) : ints('axes');
          if (!x || !axes) return undefined;
          const rank = x.length + axes.length;
          const positions = new Set(axes.map((axis) => normalisedAxis(axis, rank)));
          const out: StaticDims = [];
          let next = 0;
          for (let axis = 0; axis < rank; axis++) out.push(positions.has(axis) ? 1 : x[next++]);
          return out;
        }
        case 'Squeeze': {
          const axes = node.inputs[1] ? this.definedInts(node.inputs[1]) : ints('axes');
          if (!x) return undefined;
          if (!axes) return x.every((size) => size !== undefined) ? x.filter((size) => size !== 1) : undefined;
          const positions = new Set(axes.map((axis) => normalisedAxis(axis, x.length)));
          return x.filter((_, axis) => !positions.has(axis));
        }
        case 'Concat': {
          const shapes = node.inputs.map((name) => this.dims(name));
          if (shapes.some((shape) => !shape) || shapes.length === 0) return undefined;
          const axis = normalisedAxis(int('axis', 0), shapes[0]!.length);
          const out = [...shapes[0]!];
          out[axis] = shapes.reduce<number | undefined>((total, shape) => (total === undefined || shape![axis] === undefined ? undefined : total + shape![axis]!), 0);
          return out;
        }
        case 'Split': {
          if (!x) return undefined;
          const axis = normalisedAxis(int('axis', 0), x.length);
          const sizes = node.inputs[1] ? this.definedInts(node.inputs[1]) : ints('split');
          const index = node.outputs.indexOf(tensor);
          const out = [...x];
          if (sizes) out[axis] = sizes[index];
          else out[axis] = x[axis] === undefined || x[axis]! % node.outputs.length !== 0 ? undefined : x[axis]! / node.outputs.length;
          return out;
        }
        case 'Gather': {
          const indices = input(1);
          if (!x || !indices) return undefined;
          const axis = normalisedAxis(int('axis', 0), x.length);
          return [...x.slice(0, axis), ...indices, ...x.slice(axis + 1)];
        }
        default:
          return undefined;
      }
    })();
    return inferred ?? this.declaredDims(tensor);
  }

  /**
   * Reshape's output dims: 0 copies the input's dim; -1 takes what is left, also past a dynamic
   * batch when the input has one dynamic dim and the rest of the output has one (the same batch).
   */
  private reshaped(input: StaticDims | undefined, shapeTensor: string): StaticDims | undefined {
    const shape = this.value(shapeTensor);
    if (!shape) return undefined;
    const out: StaticDims = shape.data.map((size, axis) => (size === 0 ? input?.[axis] : size));
    const inferredAxis = out.indexOf(-1);
    if (inferredAxis < 0) return out;
    out[inferredAxis] = undefined;
    if (!input) return out;
    const known = (dims: StaticDims) => dims.filter((size): size is number => size !== undefined);
    const product = (dims: number[]) => dims.reduce((total, size) => total * size, 1);
    const rest = out.filter((_, axis) => axis !== inferredAxis);
    const dynamicIn = input.length - known(input).length;
    const dynamicOut = rest.length - known(rest).length;
    if (dynamicIn === dynamicOut && dynamicIn <= 1 && product(known(rest)) > 0) out[inferredAxis] = product(known(input)) / product(known(rest));
    return out;
  }

  private definedInts(tensor: string): number[] | undefined {
    const value = this.value(tensor);
    return value && value.data.every((entry) => entry !== undefined) ? (value.data as number[]) : undefined;
  }

  private evaluate(tensor: string): FoldedValue | undefined {
    const constant = this.constantOf(tensor);
    if (constant) {
      if (elementCount(constant.dims) > MAX_FOLDED_ELEMENTS) return undefined;
      const dataType = constant.stored?.dataType ?? constant.values?.dataType ?? TensorDataType.FLOAT;
      return { data: Array.from(constantValues(this.model, constant)), dims: constant.dims, float: FLOAT_TYPES.has(dataType) && !constant.dequantize };
    }
    const node = this.producer.get(tensor);
    if (!node || (node.domain !== '' && node.domain !== 'ai.onnx')) return undefined;
    const operand = (index: number) => (node.inputs[index] ? this.value(node.inputs[index]) : undefined);
    const x = operand(0);
    switch (node.opType) {
      case 'Shape': {
        const dims = this.dims(node.inputs[0]);
        if (!dims) return undefined;
        const start = normalisedAxis(node.attributes.get('start')?.i ?? 0, dims.length);
        const end = normalisedAxis(node.attributes.get('end')?.i ?? dims.length, dims.length);
        const data = dims.slice(start, end);
        return { data, dims: [data.length], float: false };
      }
      case 'Identity':
        return x;
      case 'Reshape': {
        const dims = this.dims(tensor);
        return x && dims && dims.every((size) => size !== undefined) ? { data: x.data, dims: dims as number[], float: x.float } : undefined;
      }
      case 'ConstantOfShape': {
        const shape = operand(0);
        if (!shape || shape.data.some((size) => size === undefined)) return undefined;
        const dims = shape.data as number[];
        const fill = node.attributes.get('value')?.t;
        const fillValue = fill ? constantValues(this.model, { name: tensor, dims: fill.dims, stored: fill, storedIn: 'attribute' })[0] : 0;
        return { data: new Array<number>(elementCount(dims)).fill(fillValue), dims, float: fill ? FLOAT_TYPES.has(fill.dataType) : true };
      }
      case 'Slice': {
        const [starts, ends, axes, steps] = [1, 2, 3, 4].map((index) => (node.inputs[index] ? this.definedInts(node.inputs[index]) : undefined));
        if (!x || x.dims.length !== 1 || !starts || !ends || (axes && normalisedAxis(axes[0], 1) !== 0)) return undefined;
        const step = steps?.[0] ?? 1;
        if (step !== 1) return undefined;
        const length = x.data.length;
        const clamp = (index: number) => Math.min(Math.max(index < 0 ? index + length : index, 0), length);
        const data = x.data.slice(clamp(starts[0]), clamp(ends[0]));
        return { data, dims: [data.length], float: x.float };
      }
      case 'Equal':
      case 'Where': {
        const operands = node.inputs.map((name) => this.value(name));
        if (operands.some((value) => !value)) return undefined;
        const length = Math.max(...operands.map((value) => value!.data.length));
        if (operands.some((value) => value!.data.length !== 1 && value!.data.length !== length)) return undefined;
        const at = (value: FoldedValue, index: number) => value.data[value.data.length === 1 ? 0 : index];
        const data: (number | undefined)[] = [];
        for (let index = 0; index < length; index++) {
          const entries = operands.map((value) => at(value!, index));
          if (node.opType === 'Equal') data.push(entries[0] === undefined || entries[1] === undefined ? undefined : Number(entries[0] === entries[1]));
          else data.push(entries[0] === undefined ? (entries[1] === entries[2] ? entries[1] : undefined) : entries[0] ? entries[1] : entries[2]);
        }
        const widest = operands.find((value) => value!.data.length === length)!;
        return { data, dims: widest.dims, float: node.opType === 'Where' ? operands[1]!.float : false };
      }
      case 'Cast': {
        if (!x) return undefined;
        const to = node.attributes.get('to')?.i ?? TensorDataType.FLOAT;
        const float = FLOAT_TYPES.has(to);
        return { data: x.data.map((entry) => (entry === undefined || float ? entry : Math.trunc(entry))), dims: x.dims, float };
      }
      case 'Gather': {
        const indices = operand(1);
        if (!x || !indices || x.dims.length !== 1 || (node.attributes.get('axis')?.i ?? 0) !== 0) return undefined;
        return { data: indices.data.map((index) => (index === undefined ? undefined : x.data[normalisedAxis(index, x.data.length)])), dims: indices.dims, float: x.float };
      }
      case 'Unsqueeze':
      case 'Squeeze': {
        const dims = this.dims(tensor);
        return x && dims && dims.every((size) => size !== undefined) ? { data: x.data, dims: dims as number[], float: x.float } : undefined;
      }
      case 'Concat': {
        const parts = node.inputs.map((name) => this.value(name));
        if (parts.some((part) => !part || part.dims.length > 1)) return undefined;
        const data = parts.flatMap((part) => part!.data);
        return { data, dims: [data.length], float: parts[0]!.float };
      }
      case 'Sqrt':
      case 'Reciprocal':
      case 'Neg':
        if (!x) return undefined;
        return {
          data: x.data.map((entry) => (entry === undefined ? undefined : Math.fround(node.opType === 'Sqrt' ? Math.sqrt(entry) : node.opType === 'Neg' ? -entry : 1 / entry))),
          dims: x.dims,
          float: x.float,
        };
      case 'Add':
      case 'Sub':
      case 'Mul':
      case 'Div':
      case 'Pow': {
        const y = operand(1);
        if (!x || !y) return undefined;
        const length = Math.max(x.data.length, y.data.length);
        if ((x.data.length !== 1 && x.data.length !== length) || (y.data.length !== 1 && y.data.length !== length)) return undefined;
        const at = (value: FoldedValue, index: number) => value.data[value.data.length === 1 ? 0 : index];
        const data: (number | undefined)[] = [];
        for (let index = 0; index < length; index++) {
          const a = at(x, index);
          const b = at(y, index);
          if (a === undefined || b === undefined) {
            data.push(undefined);
            continue;
          }
          const result = node.opType === 'Add' ? a + b : node.opType === 'Sub' ? a - b : node.opType === 'Mul' ? a * b : node.opType === 'Pow' ? a ** b : a / b;
          // Integer division truncates (ONNX Div on integers); float results are float32, as the model computes them.
          data.push(!x.float ? (node.opType === 'Div' ? Math.trunc(result) : result) : Math.fround(result));
        }
        return { data, dims: x.data.length >= y.data.length ? x.dims : y.dims, float: x.float };
      }
      default:
        return undefined;
    }
  }
}
