// The ONNX models one analysis runs:
// - the embedder: the user's own nodes from the image input to the tensor entering block 0
//   (copied verbatim), so X and Y are exactly what the model computes;
// - the isolated probe (the paper's measure): every component of every block fed the same
//   embedding outputs X and Y, reduced on the graph to one ratio per pair and (block, component);
// - the in-context probe: the blocks' real forward pass, each component's ratio taken against
//   its own input distance.
// Probes take X and Y as [pairs, tokens, d] and return `ratios` [pairs, blocks * 5] in
// block-major, COMPONENTS order. Built for K targets (several target datasets measured against
// the same reference pairs), they take Y as [K * pairs, tokens, d], target-major (target k's
// pairs are rows k*pairs .. (k+1)*pairs - 1), and return ratios and distances for those rows:
// X is run through every component once, not once per target.
import { OnnxModel, TensorDataType } from '../onnx/onnxModel';
import { AttributeValue, MAX_TENSOR_BYTES, OnnxGraphBuilder } from '../onnx/onnxWriter';
import { GraphNode } from '../graph/graphRewrite';
import { ConstantTensor, emitConstant } from '../graph/constantTensor';
import { COMPONENTS, ComponentName, LinearLayer, VitStructure } from '../vit/vitStructure';
import { FUSED_OPS_DOMAIN, PROBE_OPSET, ProbeOps, RotaryTableInput } from './probeOps';

export const PROBE_INPUTS = { reference: 'reference_embedding', target: 'target_embedding' } as const;
export const PROBE_OUTPUT = 'ratios';
export const PROBE_DENOMINATOR = 'input_distance';
export const PROBE_FINAL_OUTPUT = 'final_block_output';
export const EMBEDDER_OUTPUT = 'embedding';

/**
 * The user's nodes that compute `targets` from the image input, with `targets` exposed as
 * outputs (renamed through Identity so names never clash). Nodes are those of the canonical
 * graph: the file's own, copied byte for byte, except where a float16, quantized or fused form
 * was rewritten into plain float32 operators.
 */
export function buildEmbedderModel(model: OnnxModel, structure: VitStructure, extraTargets: string[] = []): Uint8Array {
  const graph = structure.graph;
  const targets = [structure.embeddingOutput, ...extraTargets];
  const nodes = graph.ancestors(targets);
  const builder = new OnnxGraphBuilder(embedderOpsets(model, nodes));
  builder.input(structure.inputName, TensorDataType.FLOAT, structure.inputShape);
  copyModelNodes(builder, model, structure, nodes);
  targets.forEach((target, index) => {
    const name = index === 0 ? EMBEDDER_OUTPUT : PROBE_FINAL_OUTPUT;
    builder.op('Identity', [target], {}, name);
    builder.output(name, TensorDataType.FLOAT);
  });
  return builder.encode();
}

/** The canonical graph's `nodes` (the file's own, or their float32 rewrites) with the constants they read. */
function copyModelNodes(builder: OnnxGraphBuilder, model: OnnxModel, structure: VitStructure, nodes: GraphNode[]): void {
  const graph = structure.graph;
  for (const node of nodes) {
    if (node.verbatim) builder.copyNode(model, node.verbatim);
    else builder.node(node.opType, node.inputs, node.outputs, writerAttributes(node), node.domain);
    for (const input of node.inputs) {
      if (!input || graph.producer.has(input)) continue;
      const constant = graph.constant(input);
      if (constant) emitConstant(builder, model, constant);
    }
  }
}

/**
 * The model without inputs computing the rotary tables the probe reads, with the model's own
 * nodes: discovery checked that they depend on the image input's shape only, so the image is
 * zeros of the analysis' size (HF's DINOv3 computes its tables from the patch grid at run time).
 */
function buildRotaryTablesModel(model: OnnxModel, structure: VitStructure, tables: RotaryTableInput[], imageSize: [number, number] | undefined): Uint8Array {
  const graph = structure.graph;
  const nodes = graph.ancestors(tables.map((table) => table.tensor));
  const builder = new OnnxGraphBuilder(embedderOpsets(model, nodes));
  if (nodes.some((node) => node.inputs.includes(structure.inputName))) {
    const size = imageSize ?? structure.imageSize;
    if (!size) throw new Error('a rotary model whose image size the file leaves open needs the analysis image size to compute its tables');
    builder.op('Expand', [builder.floatConstant([0], [], 'zero_pixel'), builder.intConstant([1, structure.channels, size[0], size[1]])], {}, structure.inputName);
  }
  copyModelNodes(builder, model, structure, nodes);
  for (const table of tables) {
    // A table the exporter folded is a constant of the file; one computed is the copied nodes' output.
    const constant = graph.constant(table.tensor);
    const value = constant ? emitConstant(builder, model, constant) : table.tensor;
    builder.op('Reshape', [value, builder.intConstant(table.shape)], {}, table.name);
    builder.output(
      table.name,
      TensorDataType.FLOAT,
      table.shape.map((dim) => (dim === -1 ? 'rotary_rows' : dim)),
    );
  }
  return builder.encode();
}

/** The models a probe's weight-only inputs come from: the weight Grams (isolated), the rotary tables. */
function precomputeModels(model: OnnxModel, structure: VitStructure, ops: ProbeOps, imageSize: [number, number] | undefined, weightGrams?: Uint8Array): Uint8Array[] | undefined {
  const models = weightGrams ? [weightGrams] : [];
  if (ops.rotaryTables.length > 0) models.push(buildRotaryTablesModel(model, structure, ops.rotaryTables, imageSize));
  return models.length > 0 ? models : undefined;
}

/** The model's opset imports, plus onnxruntime's domain when rewritten nodes use it. */
function embedderOpsets(model: OnnxModel, nodes: GraphNode[]): { domain: string; version: number }[] {
  const opsets = [...model.opsetImports];
  if (nodes.some((node) => node.domain === 'com.microsoft') && !opsets.some((entry) => entry.domain === 'com.microsoft')) {
    opsets.push({ domain: 'com.microsoft', version: 1 });
  }
  return opsets;
}

/** A rewritten node's attributes in the writer's form. */
function writerAttributes(node: GraphNode): Record<string, AttributeValue> {
  const attributes: Record<string, AttributeValue> = {};
  for (const [name, attribute] of node.attributes) {
    if (attribute.ints) attributes[name] = attribute.ints;
    else if (attribute.floats) attributes[name] = { floats: attribute.floats };
    else if (attribute.f !== undefined) attributes[name] = { float: attribute.f };
    else if (attribute.i !== undefined) attributes[name] = attribute.i;
    else if (attribute.s !== undefined) attributes[name] = attribute.s;
    else throw new Error(`attribute '${name}' of rewritten node '${node.name}' (${node.opType}) has a kind the writer does not copy`);
  }
  return attributes;
}

export interface ProbeModel {
  bytes: Uint8Array;
  /** (block, component) of each column of `ratios`. */
  columns: { block: number; component: ComponentName }[];
  /**
   * Models with no inputs to run once per analysis; each of their outputs feeds the probe input
   * of the same name on every run (weight-only quantities and rotary tables, computed once).
   */
  precompute?: Uint8Array[];
}

/** One probe input of weight Gram columns: linears start .. start + count - 1, named `name`. */
interface WeightGramChunk {
  name: string;
  start: number;
  count: number;
}

/**
 * The weight Gram columns [d*d, 2L] in inputs of at most MAX_TENSOR_BYTES each (WebGPU's
 * guaranteed binding size): one input up to ViT-B (56 MB), several from ViT-L (201 MB).
 */
function weightGramChunks(d: number, linears: number): WeightGramChunk[] {
  const perChunk = Math.max(1, Math.floor(MAX_TENSOR_BYTES / (d * d * 4)));
  const chunks: WeightGramChunk[] = [];
  for (let start = 0; start < linears; start += perChunk) {
    chunks.push({ name: `weight_grams_${chunks.length}`, start, count: Math.min(perChunk, linears - start) });
  }
  return chunks;
}

/**
 * Which form of the probe: `portable` keeps to standard operators within WebGPU's limits (any
 * provider); `cpu` computes the same function with onnxruntime's fused cpu attention kernel.
 */
export type ProbeFlavor = 'portable' | 'cpu';

/** How a probe is built: its flavor, and how many targets each reference row is paired with. */
export interface ProbeOptions {
  flavor?: ProbeFlavor;
  targets?: number;
  /** The size images are embedded at, when the file leaves it open (a rotary model's tables depend on it). */
  imageSize?: [number, number];
}

function probeBuilder(structure: VitStructure, { flavor = 'portable', targets = 1 }: ProbeOptions = {}): { builder: OnnxGraphBuilder; x: string; y: string } {
  const builder = new OnnxGraphBuilder(
    flavor === 'cpu'
      ? [
          { domain: '', version: PROBE_OPSET },
          { domain: FUSED_OPS_DOMAIN, version: 1 },
        ]
      : PROBE_OPSET,
  );
  const shape = ['pairs', 'tokens', structure.hiddenSize];
  const x = builder.input(PROBE_INPUTS.reference, TensorDataType.FLOAT, shape);
  const y = builder.input(PROBE_INPUTS.target, TensorDataType.FLOAT, targets === 1 ? shape : ['target_rows', 'tokens', structure.hiddenSize]);
  return { builder, x, y };
}

/**
 * How the probe pairs reference rows with target rows. One target: Y's row i with X's row i, as
 * it always was (the graph is unchanged). K targets: Y holds K * pairs rows, target-major, and
 * row k * pairs + i is paired with X's row i, so every quantity of X is computed once and
 * repeated K times (Tile) only where it meets Y's.
 */
export class TargetLayout {
  private pairCount: string | undefined;

  constructor(
    private readonly builder: OnnxGraphBuilder,
    private readonly ops: ProbeOps,
    /** The reference input X [pairs, tokens, d]. */
    private readonly x: string,
    readonly targets: number,
  ) {
    if (!(Number.isInteger(targets) && targets >= 1)) throw new Error(`a probe measures at least 1 target, got ${targets}`);
  }

  /** A reference-side tensor [pairs, ...] (rank 3) repeated to face Y's rows [K * pairs, ...]. */
  repeated(reference: string): string {
    return this.targets === 1 ? reference : this.builder.op('Tile', [reference, this.builder.intConstant([this.targets, 1, 1], [3], 'target_repeats')]);
  }

  /** f(X) - f(Y) for every target row, from `stacked` = f of Concat(X, Y) along axis 0. */
  stackedDifference(stacked: string): string {
    if (this.targets === 1) return this.ops.pairDifference(stacked);
    const b = this.builder;
    this.pairCount ??= b.op('Shape', [this.x], { start: 0, end: 1 });
    const start = b.intConstant([0], [1], 'rows_start');
    const end = b.intConstant([Number.MAX_SAFE_INTEGER], [1], 'rows_end');
    const axis = b.intConstant([0], [1], 'rows_axis');
    const reference = b.op('Slice', [stacked, start, this.pairCount, axis]);
    const target = b.op('Slice', [stacked, this.pairCount, end, axis]);
    return b.op('Sub', [this.repeated(reference), target]);
  }

  /** The reference rows of `stacked` (Concat(X, Y) through the blocks). */
  referenceRows(stacked: string): string {
    const b = this.builder;
    if (this.targets === 1) return b.node('Split', [stacked], [b.fresh('ref'), b.fresh('tgt')], { axis: 0 })[0];
    this.pairCount ??= b.op('Shape', [this.x], { start: 0, end: 1 });
    return b.op('Slice', [stacked, b.intConstant([0], [1], 'rows_start'), this.pairCount, b.intConstant([0], [1], 'rows_axis')]);
  }
}

function blockMajorColumns(structure: VitStructure) {
  return structure.blocks.flatMap((block) => COMPONENTS.map((component) => ({ block: block.index, component })));
}

/**
 * The paper's isolated measure, using its exact identities: one difference D = X - Y shared by
 * every component; FC1/FC2 norms as sum(DᵀD ⊙ W Wᵀ) (Gram matrices folded once at session
 * creation); LayerNorm numerators from the normalised difference and gamma²; attention run on
 * X and Y together, its output projection applied once to the difference of head outputs
 * (on cpu, `flavor` 'cpu', the heads come from onnxruntime's fused attention kernel: measured on
 * ViT-B/16, a sixth less processor time per pair than the unfused graph).
 */
export function buildIsolatedProbe(model: OnnxModel, structure: VitStructure, options: ProbeOptions = {}): ProbeModel {
  const { flavor = 'portable', targets = 1 } = options;
  const { builder: b, x, y } = probeBuilder(structure, options);
  const ops = new ProbeOps(b, model);
  const layout = new TargetLayout(b, ops, x, targets);
  const d = structure.hiddenSize;
  // Squared numerators as [pairs, n] tensors, with the "block:component" key of each column.
  const numerators: { tensor: string; keys: string[] }[] = [];

  const difference = b.op('Sub', [layout.repeated(x), y]);
  const squaredDenominator = b.op('ReduceSumSquare', [difference], { axes: [1, 2], keepdims: 1 }); // [pairs, 1, 1]

  // LayerNorms: ||gamma ⊙ (x̂ - ŷ)||² = Σ_f (Σ_tokens (x̂ - ŷ)²)_f gamma_f², grouped by epsilon.
  const layerNorms = structure.blocks.flatMap((block) => [
    { key: `${block.index}:LN1`, layer: block.ln1 },
    { key: `${block.index}:LN2`, layer: block.ln2 },
  ]);
  for (const epsilon of new Set(layerNorms.map((entry) => entry.layer.epsilon))) {
    const group = layerNorms.filter((entry) => entry.layer.epsilon === epsilon);
    const normalizedDifference = b.op('Sub', [layout.repeated(ops.normalize(x, epsilon, d)), ops.normalize(y, epsilon, d)]);
    const perFeature = b.op('ReduceSumSquare', [normalizedDifference], { axes: [1], keepdims: 0 }); // [pairs, d]
    const gammaSquared = new Float32Array(d * group.length);
    group.forEach((entry, j) => ops.gammaValues(entry.layer).forEach((gamma, f) => (gammaSquared[f * group.length + j] = gamma * gamma)));
    numerators.push({ tensor: b.op('MatMul', [perFeature, b.floatConstant(gammaSquared, [d, group.length], 'gamma_squared')]), keys: group.map((entry) => entry.key) });
  }

  // FC1 and FC2 (its first d input rows): ||D W||² = Σ (DᵀD) ⊙ (W Wᵀ). The Gram matrices come
  // from a separate model run once, so the probe never holds the FC weights themselves. A gated
  // FC1 [W_gate W_value] has the Gram W_gate W_gateᵀ + W_value W_valueᵀ.
  const linears = structure.blocks.flatMap((block) => [
    { key: `${block.index}:FC1`, layers: block.fc1, firstRows: false },
    { key: `${block.index}:FC2`, layers: [block.fc2], firstRows: true },
  ]);
  const differenceGram = b.op('MatMul', [b.op('Transpose', [difference], { perm: [0, 2, 1] }), difference]); // [pairs, d, d]
  const flatGram = b.op('Reshape', [differenceGram, b.intConstant([-1, d * d])]);
  const gramChunks = weightGramChunks(d, linears.length);
  for (const chunk of gramChunks) {
    const weightGrams = b.input(chunk.name, TensorDataType.FLOAT, [d * d, chunk.count]);
    numerators.push({ tensor: b.op('MatMul', [flatGram, weightGrams]), keys: linears.slice(chunk.start, chunk.start + chunk.count).map((entry) => entry.key) });
  }

  // Attention: non-linear up to the heads, linear after.
  const stacked = b.op('Concat', [x, y], { axis: 0 });
  for (const block of structure.blocks) {
    const heads = flavor === 'cpu' ? ops.fusedAttentionHeads(stacked, block.attention) : ops.attentionHeads(stacked, block.attention);
    const projected = ops.outProjection(layout.stackedDifference(heads), block.attention, false);
    const squared = b.op('Unsqueeze', [b.op('ReduceSumSquare', [projected], { axes: [1, 2], keepdims: 0 }), b.intConstant([1])]); // [pairs, 1]
    numerators.push({ tensor: squared, keys: [`${block.index}:MHA`] });
  }

  // One Gather puts the columns in block-major order (no Split: its width grows with depth).
  const columns = blockMajorColumns(structure);
  const keys = numerators.flatMap((entry) => entry.keys);
  const order = columns.map(({ block, component }) => keys.indexOf(`${block}:${component}`));
  const allNumerators = b.concat(
    numerators.map((entry) => entry.tensor),
    1,
  );
  const ordered = b.op('Gather', [allNumerators, b.intConstant(order, [order.length], 'column_order')], { axis: 1 });
  const squaredRatios = b.op('Div', [ordered, b.op('Reshape', [squaredDenominator, b.intConstant([-1, 1])])]);
  b.op('Sqrt', [squaredRatios], {}, PROBE_OUTPUT);
  b.output(PROBE_OUTPUT, TensorDataType.FLOAT, ['pairs', columns.length]);
  b.op('Sqrt', [b.op('Reshape', [squaredDenominator, b.intConstant([-1])])], {}, PROBE_DENOMINATOR);
  b.output(PROBE_DENOMINATOR, TensorDataType.FLOAT, ['pairs']);
  return { bytes: b.encode(), columns, precompute: precomputeModels(model, structure, ops, options.imageSize, buildWeightGrams(model, structure, linears, gramChunks)) };
}

/**
 * The model computing the weight Gram inputs: column l is W_l W_lᵀ flattened, W_l the [in, out]
 * weight of FC1 (its layers side by side: the sum of their Grams), or of FC2's first d input
 * rows. Gemm's transpose flags avoid copying the weights.
 */
function buildWeightGrams(model: OnnxModel, structure: VitStructure, linears: { layers: LinearLayer[]; firstRows: boolean }[], chunks: WeightGramChunk[]): Uint8Array {
  const b = new OnnxGraphBuilder(PROBE_OPSET);
  const d = structure.hiddenSize;
  const inputGram = (linear: LinearLayer, firstRows: boolean) => {
    let weight = emitConstant(b, model, linear.weight);
    const inputAxis = linear.weightLayout === 'inOut' ? 0 : 1;
    if (firstRows) weight = b.op('Slice', [weight, b.intConstant([0]), b.intConstant([d]), b.intConstant([inputAxis])]);
    // [in, out]: W Wᵀ; [out, in]: Wᵀ W. Both are the [in, in] Gram of the input side.
    return b.op('Gemm', [weight, weight], linear.weightLayout === 'inOut' ? { transB: 1 } : { transA: 1 });
  };
  const columns = linears.map(({ layers, firstRows }) => {
    const grams = layers.map((linear) => inputGram(linear, firstRows));
    const gram = grams.length === 1 ? grams[0] : b.op('Sum', grams);
    return b.op('Reshape', [gram, b.intConstant([d * d, 1])]);
  });
  for (const chunk of chunks) {
    b.concat(columns.slice(chunk.start, chunk.start + chunk.count), 1, chunk.name);
    b.output(chunk.name, TensorDataType.FLOAT, [d * d, chunk.count]);
  }
  return b.encode();
}

/**
 * The in-context measure: the blocks' forward pass on X and Y stacked, each component's output
 * distance over its own input distance. Also returns the last block's output (reference rows)
 * so the caller can check the rebuilt blocks against the model's own.
 */
export function buildInContextProbe(model: OnnxModel, structure: VitStructure, options: ProbeOptions = {}): ProbeModel {
  const { flavor = 'portable', targets = 1 } = options;
  const { builder: b, x, y } = probeBuilder(structure, options);
  const ops = new ProbeOps(b, model);
  const layout = new TargetLayout(b, ops, x, targets);
  // onnxruntime runs the nodes in depth-first order from the graph's last leaf, taking each
  // node's highest-numbered input first. One Concat of all ratios would lead it through block
  // N-1's ratios, so the whole forward pass, before any ratio: every block's activations alive
  // at once (0.4 GB per ViT-B pair). So the ratios are collected block by block, each Concat
  // written after the next block's nodes: it is then the input taken first, and the blocks run
  // in order, each followed by its ratios, which free its activations. Same values, same order.
  let collected: string | undefined; // the ratios of the blocks before the last one built
  let lastBlock: string[] = [];
  const withLastBlock = (outputName?: string) => b.op('Concat', collected ? [collected, ...lastBlock] : lastBlock, { axis: 1 }, outputName);
  const ratio = (input: string, output: string) => {
    const numerator = ops.squaredNorm(layout.stackedDifference(output));
    const denominator = ops.squaredNorm(layout.stackedDifference(input));
    return b.op('Unsqueeze', [b.op('Sqrt', [b.op('Div', [numerator, denominator])]), b.intConstant([1])]);
  };
  let hidden = b.op('Concat', [x, y], { axis: 0 });
  for (const block of structure.blocks) {
    const measured = new Map<ComponentName, string>();
    const mlp = (input: string) => {
      const { fc1, hidden } = ops.mlpFirstLayer(input, block);
      const fc2 = ops.linear(hidden, block.fc2);
      measured.set('FC1', ratio(input, fc1));
      measured.set('FC2', ratio(hidden, fc2));
      return fc2;
    };
    const attention = (input: string) => {
      const heads = flavor === 'cpu' ? ops.fusedAttentionHeads(input, block.attention) : ops.attentionHeads(input, block.attention);
      const output = ops.outProjection(heads, block.attention, true);
      measured.set('MHA', ratio(input, output));
      return output;
    };
    const norm = (input: string, which: 'LN1' | 'LN2') => {
      const output = ops.layerNorm(input, which === 'LN1' ? block.ln1 : block.ln2);
      measured.set(which, ratio(input, output));
      return output;
    };
    // LayerScale γ scales a branch after its component is measured: it is in the forward pass, not in the component.
    const scaled = (branch: string, gamma: ConstantTensor | undefined) => (gamma ? b.op('Mul', [branch, emitConstant(b, model, gamma)]) : branch);
    if (structure.norm === 'pre') {
      const afterAttention = b.op('Add', [hidden, scaled(attention(norm(hidden, 'LN1')), block.layerScale.attention)]);
      hidden = b.op('Add', [afterAttention, scaled(mlp(norm(afterAttention, 'LN2')), block.layerScale.mlp)]);
    } else {
      const normed = norm(b.op('Add', [hidden, scaled(attention(hidden), block.layerScale.attention)]), 'LN1');
      hidden = norm(b.op('Add', [normed, scaled(mlp(normed), block.layerScale.mlp)]), 'LN2');
    }
    if (lastBlock.length > 0) collected = withLastBlock();
    lastBlock = COMPONENTS.map((component) => measured.get(component)!);
  }
  b.op('Identity', [layout.referenceRows(hidden)], {}, PROBE_FINAL_OUTPUT);
  b.output(PROBE_FINAL_OUTPUT, TensorDataType.FLOAT, ['pairs', 'tokens', structure.hiddenSize]);
  b.op('Sqrt', [ops.squaredNorm(b.op('Sub', [layout.repeated(x), y]))], {}, PROBE_DENOMINATOR);
  b.output(PROBE_DENOMINATOR, TensorDataType.FLOAT, ['pairs']);
  // Last, so that it is the leaf onnxruntime starts from.
  withLastBlock(PROBE_OUTPUT);
  b.output(PROBE_OUTPUT, TensorDataType.FLOAT, ['pairs', structure.blocks.length * COMPONENTS.length]);
  return { bytes: b.encode(), columns: blockMajorColumns(structure), precompute: precomputeModels(model, structure, ops, options.imageSize) };
}
