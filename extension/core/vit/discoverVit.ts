// Finds the Vision Transformer inside an ONNX graph by structure: attention softmaxes anchor the
// blocks; LayerNorms (fused or decomposed), linear layers (MatMul+Add or Gemm), residual adds and
// the MLP around each attention complete them. Names only label what structure found.
import * as path from 'node:path';
import { ModelFileError } from '../errors';
import { canonicalGraphOf } from '../graph/canonicalGraph';
import { GraphKind } from '../graph/graphKind';
import type { GraphNode as NodeInfo } from '../graph/graphRewrite';
import { ConstantTensor } from '../graph/constantTensor';
import { GraphIndex, LAYOUT_OPS } from '../graph/graphIndex';
import { NAMING_TEMPLATES, templateBlockModule, templateComponentModule } from './namingTemplates';
import { elementCount, OnnxModel } from '../onnx/onnxModel';
import { Activation, AttentionLayer, COMPONENTS, ComponentName, LayerNormLayer, LinearLayer, Naming, Projection, TransformerBlock, VitStructure } from './vitStructure';

export function discoverVit(model: OnnxModel): VitStructure {
  return new VitDiscovery(model).run();
}

class BlockResolutionError extends Error {}

class VitDiscovery {
  private readonly graph: GraphIndex;
  private readonly fileName: string;
  private readonly layerNormsByInput = new Map<string, LayerNormLayer[]>();
  private readonly layerNormsByOutput = new Map<string, LayerNormLayer>();
  private readonly linearsByOutput = new Map<string, LinearLayer>();
  private readonly linearsByInput = new Map<string, LinearLayer[]>();

  constructor(private readonly model: OnnxModel) {
    this.graph = new GraphIndex(canonicalGraphOf(model));
    this.fileName = path.basename(model.filePath);
  }

  run(): VitStructure {
    this.findLayerNorms();
    this.findLinears();
    const softmaxes = this.graph.nodes.filter((node) => node.opType === 'Softmax');
    const attentions: { attention: AttentionLayer; softmax: NodeInfo }[] = [];
    for (const softmax of softmaxes) {
      if (!this.isAttentionSoftmax(softmax)) continue;
      try {
        attentions.push({ attention: this.resolveAttention(softmax), softmax });
      } catch (error) {
        if (!(error instanceof BlockResolutionError)) throw error;
        throw new ModelFileError(`${this.fileName}: block ${attentions.length} could not be resolved: ${error.message}.`);
      }
    }
    if (attentions.length === 0) throw new ModelFileError(this.notAVitMessage());

    const blocks: TransformerBlock[] = [];
    for (const { attention, softmax } of attentions) {
      try {
        blocks.push(this.resolveBlock(blocks.length, attention));
      } catch (error) {
        if (!(error instanceof BlockResolutionError)) throw error;
        throw new ModelFileError(
          `${this.fileName}: block ${blocks.length} could not be resolved: found its attention (softmax '${softmax.name || softmax.outputs[0]}') but ${error.message}.`,
        );
      }
    }
    for (let i = 1; i < blocks.length; i++) {
      if (blocks[i].input !== blocks[i - 1].output) {
        throw new ModelFileError(
          `${this.fileName}: block ${i} does not take block ${i - 1}'s output as its input ('${blocks[i].input}' vs '${blocks[i - 1].output}'); the blocks do not form one chain, so this is not a plain ViT.`,
        );
      }
    }
    return this.describe(blocks);
  }

  private notAVitMessage(): string {
    const counts = new Map<string, number>();
    for (const node of this.model.nodes) counts.set(node.opType, (counts.get(node.opType) ?? 0) + 1);
    const found = [...counts.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5)
      .map(([op, count]) => `${count} ${op}`)
      .join(', ');
    const layerNorms = new Set(this.layerNormsByOutput.values()).size;
    return `${this.fileName} is not a Vision Transformer: found ${found} and ${layerNorms} LayerNorm(s) but no self-attention (Softmax over Q·Kᵀ); open an ONNX export of a ViT.`;
  }

  // ---------------------------------------------------------------- layer norms

  private findLayerNorms(): void {
    for (const node of this.graph.nodes) {
      const layerNorm = node.opType === 'LayerNormalization' ? this.fusedLayerNorm(node) : node.opType === 'ReduceMean' ? this.decomposedLayerNorm(node) : undefined;
      if (!layerNorm) continue;
      this.layerNormsByOutput.set(layerNorm.output, layerNorm);
      const list = this.layerNormsByInput.get(layerNorm.input) ?? [];
      list.push(layerNorm);
      this.layerNormsByInput.set(layerNorm.input, list);
    }
  }

  private fusedLayerNorm(node: NodeInfo): LayerNormLayer | undefined {
    const gamma = this.graph.constant(node.inputs[1]);
    if (!gamma) return undefined;
    const beta = node.inputs[2] ? this.graph.constant(node.inputs[2]) : undefined;
    const axis = node.attributes.get('axis')?.i ?? -1;
    if (axis !== -1 && axis !== 2) return undefined;
    return {
      input: node.inputs[0],
      output: node.outputs[0],
      gamma,
      beta,
      epsilon: node.attributes.get('epsilon')?.f ?? 1e-5,
      width: elementCount(gamma.dims),
    };
  }

  /** mean -> Sub -> Pow 2 -> mean -> Add eps -> Sqrt -> Div [-> Mul gamma] [-> Add beta]. */
  private decomposedLayerNorm(meanNode: NodeInfo): LayerNormLayer | undefined {
    const x = meanNode.inputs[0];
    const sub = this.graph.consumersOf(meanNode.outputs[0]).find((node) => node.opType === 'Sub' && node.inputs[0] === x);
    if (!sub) return undefined;
    const centred = sub.outputs[0];
    const div = this.graph.consumersOf(centred).find((node) => node.opType === 'Div' && node.inputs[0] === centred);
    if (!div) return undefined;
    const sqrt = this.graph.producer.get(div.inputs[1]);
    if (sqrt?.opType !== 'Sqrt') return undefined;
    const addEps = this.graph.producer.get(sqrt.inputs[0]);
    if (addEps?.opType !== 'Add') return undefined;
    const epsilonIndex = addEps.inputs.findIndex((input) => this.graph.isConstant(input));
    if (epsilonIndex < 0) return undefined;
    const epsilon = this.graph.scalar(addEps.inputs[epsilonIndex]);
    const variance = this.graph.producer.get(addEps.inputs[1 - epsilonIndex]);
    if (variance?.opType !== 'ReduceMean' || epsilon === undefined) return undefined;
    const square = this.graph.producer.get(variance.inputs[0]);
    const isSquare =
      (square?.opType === 'Pow' && square.inputs[0] === centred && this.graph.scalar(square.inputs[1]) === 2) ||
      (square?.opType === 'Mul' && square.inputs[0] === centred && square.inputs[1] === centred);
    if (!isSquare) return undefined;

    let output = div.outputs[0];
    let gamma: ConstantTensor | undefined;
    let beta: ConstantTensor | undefined;
    const mul = this.singleConsumer(output, 'Mul');
    const gammaInput = mul?.inputs.find((input) => input !== output && this.graph.isConstant(input));
    if (mul && gammaInput) {
      gamma = this.graph.constant(gammaInput);
      output = mul.outputs[0];
    }
    const add = this.singleConsumer(output, 'Add');
    const betaInput = add?.inputs.find((input) => input !== output && this.graph.isConstant(input));
    if (add && betaInput) {
      beta = this.graph.constant(betaInput);
      output = add.outputs[0];
    }
    const width = gamma ? elementCount(gamma.dims) : beta ? elementCount(beta.dims) : 0;
    return { input: x, output, gamma, beta, epsilon, width };
  }

  private singleConsumer(tensor: string, opType: string): NodeInfo | undefined {
    const consumers = this.graph.dataConsumersOf(tensor);
    return consumers.length === 1 && consumers[0].opType === opType ? consumers[0] : undefined;
  }

  // ---------------------------------------------------------------- linear layers

  private findLinears(): void {
    for (const node of this.graph.nodes) {
      const linear = node.opType === 'MatMul' ? this.matMulLinear(node) : node.opType === 'Gemm' ? this.gemmLinear(node) : undefined;
      if (!linear) continue;
      this.linearsByOutput.set(linear.output, linear);
      const list = this.linearsByInput.get(linear.input) ?? [];
      list.push(linear);
      this.linearsByInput.set(linear.input, list);
    }
  }

  private matMulLinear(node: NodeInfo): LinearLayer | undefined {
    const weight = this.graph.constant(node.inputs[1]);
    if (!weight || weight.dims.length !== 2 || this.graph.isConstant(node.inputs[0])) return undefined;
    const [inFeatures, outFeatures] = weight.dims;
    const linear: LinearLayer = { input: node.inputs[0], output: node.outputs[0], weight, weightLayout: 'inOut', inFeatures, outFeatures, nodeName: node.name };
    const add = this.singleConsumer(node.outputs[0], 'Add');
    const biasInput = add?.inputs.find((input) => input !== node.outputs[0]);
    const bias = biasInput ? this.graph.constant(biasInput) : undefined;
    if (add && bias && elementCount(bias.dims) === outFeatures) {
      linear.bias = bias;
      linear.output = add.outputs[0];
    }
    return linear;
  }

  private gemmLinear(node: NodeInfo): LinearLayer | undefined {
    const weight = this.graph.constant(node.inputs[1]);
    if (!weight || weight.dims.length !== 2 || this.graph.isConstant(node.inputs[0])) return undefined;
    if ((node.attributes.get('transA')?.i ?? 0) !== 0) return undefined;
    if ((node.attributes.get('alpha')?.f ?? 1) !== 1 || (node.attributes.get('beta')?.f ?? 1) !== 1) return undefined;
    const transposed = (node.attributes.get('transB')?.i ?? 0) === 1;
    const [inFeatures, outFeatures] = transposed ? [weight.dims[1], weight.dims[0]] : weight.dims;
    const bias = node.inputs[2] ? this.graph.constant(node.inputs[2]) : undefined;
    if (node.inputs[2] && (!bias || elementCount(bias.dims) !== outFeatures)) return undefined;
    return {
      input: node.inputs[0],
      output: node.outputs[0],
      weight,
      weightLayout: transposed ? 'outIn' : 'inOut',
      bias,
      inFeatures,
      outFeatures,
      nodeName: node.name,
    };
  }

  // ---------------------------------------------------------------- attention

  /** The MatMul producing the softmax's scores, walking up through scaling and layout ops. */
  private scoreMatMul(softmax: NodeInfo): { matMul: NodeInfo; scale: number } | undefined {
    let tensor = softmax.inputs[0];
    let scale = 1;
    for (let step = 0; step < 12; step++) {
      const node = this.graph.producer.get(tensor);
      if (!node) return undefined;
      if (node.opType === 'MatMul') {
        return node.inputs.every((input) => !this.graph.isConstant(input)) ? { matMul: node, scale } : undefined;
      }
      const scaled = this.scaledInput(node);
      if (scaled) {
        scale *= scaled.factor;
        tensor = scaled.input;
      } else if (LAYOUT_OPS.has(node.opType)) {
        tensor = node.inputs[0];
      } else {
        return undefined;
      }
    }
    return undefined;
  }

  /** For Mul/Div by a scalar constant: the other input and the factor applied. */
  private scaledInput(node: NodeInfo): { input: string; factor: number } | undefined {
    if (node.opType !== 'Mul' && node.opType !== 'Div') return undefined;
    const constantIndex = node.inputs.findIndex((input) => this.graph.scalar(input) !== undefined);
    if (constantIndex < 0 || (node.opType === 'Div' && constantIndex !== 1)) return undefined;
    const value = this.graph.scalar(node.inputs[constantIndex])!;
    return { input: node.inputs[1 - constantIndex], factor: node.opType === 'Div' ? 1 / value : value };
  }

  private isAttentionSoftmax(softmax: NodeInfo): boolean {
    return this.scoreMatMul(softmax) !== undefined;
  }

  /** Walks up from a Q, K or V operand to the linear layer that made it. */
  private traceProjection(tensor: string, role: string): { projection: Projection; scale: number; headDim?: number } {
    let scale = 1;
    let headDim: number | undefined;
    let selector: { op: string; value: number } | undefined;
    let current = tensor;
    for (let step = 0; step < 24; step++) {
      const linear = this.linearsByOutput.get(current);
      if (linear) {
        const fused = linear.outFeatures === 3 * linear.inFeatures;
        let part: number | undefined;
        if (fused) {
          if (!selector) throw new BlockResolutionError(`the ${role} comes from a fused qkv layer but the slice taken from it was not found`);
          const third = linear.outFeatures / 3;
          part = selector.op === 'Slice' && selector.value >= 3 ? Math.round(selector.value / third) : selector.value;
          if (!(part >= 0 && part <= 2)) throw new BlockResolutionError(`the ${role}'s slice of the fused qkv layer is ${selector.op} ${selector.value}, not one of three parts`);
        }
        return { projection: { linear, part }, scale, headDim };
      }
      const node = this.graph.producer.get(current);
      if (!node) break;
      const scaled = this.scaledInput(node);
      if (scaled) {
        scale *= scaled.factor;
        current = scaled.input;
        continue;
      }
      switch (node.opType) {
        case 'Reshape': {
          headDim ??= this.lastShapeValue(node.inputs[1]);
          current = node.inputs[0];
          continue;
        }
        case 'Gather': {
          const index = this.graph.scalar(node.inputs[1]);
          if (index === undefined) break;
          selector ??= { op: 'Gather', value: index };
          current = node.inputs[0];
          continue;
        }
        case 'Split': {
          selector ??= { op: 'Split', value: node.outputs.indexOf(current) };
          current = node.inputs[0];
          continue;
        }
        case 'Slice': {
          const starts = this.graph.ints(node.inputs[1]);
          const position = starts?.length === 1 ? starts[0] : this.slicePosition(node);
          if (position === undefined) break;
          selector ??= { op: 'Slice', value: position };
          current = node.inputs[0];
          continue;
        }
        default:
          if (LAYOUT_OPS.has(node.opType)) {
            current = node.inputs[0];
            continue;
          }
      }
      throw new BlockResolutionError(`the ${role} path meets '${node.opType}' (${node.name || node.outputs[0]}) before reaching a linear layer`);
    }
    throw new BlockResolutionError(`no linear layer produces the ${role}`);
  }

  /**
   * Which of consecutive slices of one tensor this is, when the bounds are computed at run time
   * (as PyTorch exports chunk() of a dynamic shape): the first starts at constant 0, each next
   * one starts where the previous ends.
   */
  private slicePosition(slice: NodeInfo): number | undefined {
    const siblings = this.graph.consumersOf(slice.inputs[0]).filter((node) => node.opType === 'Slice');
    let current = siblings.find((node) => this.graph.ints(node.inputs[1])?.[0] === 0);
    for (let position = 0; current && position < siblings.length; position++) {
      if (current === slice) return position;
      const end = current.inputs[2];
      current = siblings.find((node) => node.inputs[1] === end);
    }
    return undefined;
  }

  /** The last entry of a Reshape's target shape (a head dimension), when the graph states it. */
  private lastShapeValue(shapeTensor: string): number | undefined {
    const values = this.graph.ints(shapeTensor);
    if (values) {
      const last = values[values.length - 1];
      return last > 0 ? last : undefined;
    }
    const concat = this.graph.producer.get(shapeTensor);
    if (concat?.opType === 'Concat') {
      const lastValues = this.graph.ints(concat.inputs[concat.inputs.length - 1]);
      const last = lastValues?.[lastValues.length - 1];
      return last !== undefined && last > 0 ? last : undefined;
    }
    return undefined;
  }

  private resolveAttention(softmax: NodeInfo): AttentionLayer {
    const { matMul: scores, scale: scoreScale } = this.scoreMatMul(softmax)!;
    const query = this.traceProjection(scores.inputs[0], 'query');
    const key = this.traceProjection(scores.inputs[1], 'key');

    let probabilities = softmax.outputs[0];
    let valueMatMul: NodeInfo | undefined;
    for (let step = 0; step < 6 && !valueMatMul; step++) {
      const consumers = this.graph.dataConsumersOf(probabilities);
      if (consumers.length !== 1) break;
      const node = consumers[0];
      if (node.opType === 'MatMul' && node.inputs[0] === probabilities) valueMatMul = node;
      else if (LAYOUT_OPS.has(node.opType)) probabilities = node.outputs[0];
      else break;
    }
    if (!valueMatMul) throw new BlockResolutionError('the attention probabilities are not multiplied by a value tensor');
    const value = this.traceProjection(valueMatMul.inputs[1], 'value');

    const next = this.graph.nextThroughLayout(valueMatMul.outputs[0]);
    const outProjection = next && this.linearsByOutput.get(next.node.opType === 'Gemm' ? next.node.outputs[0] : this.outputOfLinearNode(next.node));
    if (!outProjection) throw new BlockResolutionError('no output projection follows the attention');

    const inputs = [query, key, value].map((entry) => this.graph.sourceThroughLayout(entry.projection.linear.input));
    if (new Set(inputs).size !== 1) throw new BlockResolutionError('its query, key and value are computed from different tensors (not self-attention)');
    if (value.scale !== 1) throw new BlockResolutionError(`its value path is scaled by ${value.scale}, which plain attention does not do`);
    const qWidth = query.projection.part === undefined ? query.projection.linear.outFeatures : query.projection.linear.outFeatures / 3;
    const headDim = query.headDim ?? key.headDim ?? value.headDim ?? this.headDimFromScale(scoreScale * query.scale * key.scale);
    if (!headDim || qWidth % headDim !== 0) {
      throw new BlockResolutionError(`its number of heads could not be read from the graph (query width ${qWidth}, head size ${headDim ?? 'unknown'})`);
    }
    return {
      input: inputs[0],
      output: outProjection.output,
      query: query.projection,
      key: key.projection,
      value: value.projection,
      outProjection,
      heads: qWidth / headDim,
      headDim,
      scoreScale: scoreScale * query.scale * key.scale,
    };
  }

  private outputOfLinearNode(node: NodeInfo): string {
    if (node.opType !== 'MatMul') return node.outputs[0];
    const add = this.singleConsumer(node.outputs[0], 'Add');
    return add && this.linearsByOutput.has(add.outputs[0]) ? add.outputs[0] : node.outputs[0];
  }

  private headDimFromScale(scale: number): number | undefined {
    const headDim = Math.round(1 / (scale * scale));
    return Math.abs(1 / Math.sqrt(headDim) - scale) < 1e-4 * scale ? headDim : undefined;
  }

  // ---------------------------------------------------------------- blocks

  /** The residual Add that `branchOutput` (through layout ops) feeds, and its other operand. */
  private residualAdd(branchOutput: string, what: string): { add: NodeInfo; skip: string } {
    const consumers = this.graph.dataConsumersOf(branchOutput);
    const next = LAYOUT_OPS.has(consumers[0]?.opType ?? '') ? this.graph.nextThroughLayout(branchOutput) : consumers.length === 1 ? { node: consumers[0], via: [] } : undefined;
    if (!next || next.node.opType !== 'Add') throw new BlockResolutionError(`the ${what} output does not feed a residual Add`);
    const fed = next.via.length > 0 ? next.via[next.via.length - 1].outputs[0] : branchOutput;
    const skip = next.node.inputs[0] === fed ? next.node.inputs[1] : next.node.inputs[0];
    return { add: next.node, skip };
  }

  private linearConsuming(tensor: string): LinearLayer | undefined {
    const direct = this.linearsByInput.get(tensor);
    if (direct?.length === 1) return direct[0];
    const next = this.graph.nextThroughLayout(tensor);
    if (!next) return undefined;
    const input = next.via.length > 0 ? next.via[next.via.length - 1].outputs[0] : tensor;
    const list = this.linearsByInput.get(input);
    return list?.length === 1 ? list[0] : undefined;
  }

  /** The second MLP linear after fc1, and the activation between them. */
  private mlpAfter(fc1: LinearLayer): { fc2: LinearLayer; activation: Activation } {
    const seen = new Set<string>();
    const ops = new Set<string>();
    let frontier = [fc1.output];
    for (let depth = 0; depth < 12; depth++) {
      const nextFrontier: string[] = [];
      for (const tensor of frontier) {
        for (const node of this.graph.consumersOf(tensor)) {
          const linear =
            node.opType === 'MatMul' || node.opType === 'Gemm' ? this.linearsByInput.get(node.inputs[0])?.find((candidate) => candidate.input === node.inputs[0]) : undefined;
          if (linear && linear !== fc1) return { fc2: linear, activation: this.classifyActivation(ops, fc1.output) };
          if (seen.has(node.outputs[0])) continue;
          seen.add(node.outputs[0]);
          ops.add(node.opType);
          nextFrontier.push(...node.outputs);
        }
      }
      frontier = nextFrontier;
    }
    throw new BlockResolutionError('no second MLP linear layer (FC2) follows FC1');
  }

  private classifyActivation(ops: Set<string>, fc1Output: string): Activation {
    if (ops.has('Gelu')) {
      const gelu = this.graph.consumersOf(fc1Output).find((node) => node.opType === 'Gelu');
      return gelu?.attributes.get('approximate')?.s === 'tanh' ? 'gelu_tanh' : 'gelu';
    }
    if (ops.has('FastGelu')) return 'gelu_tanh';
    if (ops.has('Erf')) return 'gelu';
    if (ops.has('Tanh')) return 'gelu_tanh';
    if (ops.has('Sigmoid')) {
      const sigmoidInput = this.graph.consumersOf(fc1Output).find((node) => node.opType === 'Mul');
      const factor = sigmoidInput ? sigmoidInput.inputs.map((input) => this.graph.scalar(input)).find((value) => value !== undefined) : undefined;
      return factor !== undefined && Math.abs(factor - 1.702) < 1e-3 ? 'quick_gelu' : 'silu';
    }
    if (ops.has('Relu')) return 'relu';
    throw new BlockResolutionError(`the activation between FC1 and FC2 (${[...ops].join(', ')}) is not one of GELU, tanh-GELU, quick-GELU, SiLU or ReLU`);
  }

  private layerNormOn(tensor: string, what: string): LayerNormLayer {
    const list = this.layerNormsByInput.get(tensor);
    if (!list || list.length !== 1) throw new BlockResolutionError(`no single LayerNorm (${what}) reads '${tensor}'`);
    return list[0];
  }

  private resolveBlock(index: number, attention: AttentionLayer): TransformerBlock {
    const preNormLn1 = this.layerNormsByOutput.get(attention.input);
    let ln1: LayerNormLayer;
    let ln2: LayerNormLayer;
    let fc1: LinearLayer;
    let fc2: LinearLayer;
    let activation: Activation;
    let input: string;
    let output: string;
    if (preNormLn1) {
      ln1 = preNormLn1;
      input = ln1.input;
      const attentionResidual = this.residualAdd(attention.output, 'attention');
      if (this.graph.sourceThroughLayout(attentionResidual.skip) !== input && attentionResidual.skip !== input) {
        throw new BlockResolutionError('the attention residual does not add the block input');
      }
      const mid = attentionResidual.add.outputs[0];
      ln2 = this.layerNormOn(mid, 'LN2');
      fc1 = this.requireLinear(ln2.output, 'FC1 after LN2');
      ({ fc2, activation } = this.mlpAfter(fc1));
      const mlpResidual = this.residualAdd(fc2.output, 'MLP');
      if (mlpResidual.skip !== mid) throw new BlockResolutionError('the MLP residual does not add the attention residual');
      output = mlpResidual.add.outputs[0];
    } else {
      input = attention.input;
      const attentionResidual = this.residualAdd(attention.output, 'attention');
      ln1 = this.layerNormOn(attentionResidual.add.outputs[0], 'LN1 after attention (post-norm)');
      fc1 = this.requireLinear(ln1.output, 'FC1 after LN1');
      ({ fc2, activation } = this.mlpAfter(fc1));
      const mlpResidual = this.residualAdd(fc2.output, 'MLP');
      ln2 = this.layerNormOn(mlpResidual.add.outputs[0], 'LN2 after the MLP (post-norm)');
      output = ln2.output;
    }
    const width = attention.outProjection.outFeatures;
    if (ln1.width !== width || ln2.width !== width || fc1.inFeatures !== width || fc2.outFeatures !== width || fc2.inFeatures !== fc1.outFeatures) {
      throw new BlockResolutionError(
        `its widths disagree (LN1 ${ln1.width}, attention ${width}, LN2 ${ln2.width}, FC1 ${fc1.inFeatures}->${fc1.outFeatures}, FC2 ${fc2.inFeatures}->${fc2.outFeatures})`,
      );
    }
    const naming = this.blockNames({ ln1, attention, ln2, fc1, fc2 });
    return { index, input, output, ln1, attention, ln2, fc1, fc2, activation, ...naming };
  }

  private requireLinear(tensor: string, what: string): LinearLayer {
    const linear = this.linearConsuming(tensor);
    if (!linear) throw new BlockResolutionError(`no linear layer (${what}) reads '${tensor}'`);
    return linear;
  }

  // ---------------------------------------------------------------- names

  private blockNames(parts: { ln1: LayerNormLayer; attention: AttentionLayer; ln2: LayerNormLayer; fc1: LinearLayer; fc2: LinearLayer }) {
    const attentionLinears = uniqueLinears(parts.attention);
    const parameters: Record<ComponentName, string[]> = {
      LN1: layerNormParameters(parts.ln1),
      MHA: attentionLinears.flatMap(linearParameters),
      LN2: layerNormParameters(parts.ln2),
      FC1: linearParameters(parts.fc1),
      FC2: linearParameters(parts.fc2),
    };
    const parameterCounts: Record<ComponentName, number> = {
      LN1: layerNormTensors(parts.ln1).reduce((sum, tensor) => sum + elementCount(tensor.dims), 0),
      MHA: attentionLinears.reduce((sum, linear) => sum + linearTensors(linear).reduce((total, tensor) => total + elementCount(tensor.dims), 0), 0),
      LN2: layerNormTensors(parts.ln2).reduce((sum, tensor) => sum + elementCount(tensor.dims), 0),
      FC1: linearTensors(parts.fc1).reduce((sum, tensor) => sum + elementCount(tensor.dims), 0),
      FC2: linearTensors(parts.fc2).reduce((sum, tensor) => sum + elementCount(tensor.dims), 0),
    };
    const modules = {} as Record<ComponentName, string>;
    for (const component of COMPONENTS) modules[component] = commonModule(parameters[component].map(moduleOfParameter));
    const module = commonModule(COMPONENTS.map((component) => modules[component]));
    return { modules, parameters, parameterCounts, module };
  }

  // ---------------------------------------------------------------- whole model

  private describe(blocks: TransformerBlock[]): VitStructure {
    const initializerNames = new Set(this.model.initializers.keys());
    const imageInput = this.model.inputs.find((input) => !initializerNames.has(input.name));
    if (!imageInput) throw new ModelFileError(`${this.fileName} has no image input; export the model with its pixel input.`);
    const inputShape = (imageInput.shape ?? []).map((dim) => dim.value ?? dim.param ?? '?');
    const hiddenSize = blocks[0].attention.outProjection.outFeatures;
    const embeddingNodes = this.graph.ancestors([blocks[0].input]);
    const conv = embeddingNodes.find((node) => node.opType === 'Conv');
    const kernel = conv?.attributes.get('kernel_shape')?.ints;
    const patchSize = kernel && kernel.length === 2 ? ([kernel[0], kernel[1]] as [number, number]) : undefined;
    const imageSize =
      inputShape.length === 4 && typeof inputShape[2] === 'number' && typeof inputShape[3] === 'number' ? ([inputShape[2], inputShape[3]] as [number, number]) : undefined;
    const channels = typeof inputShape[1] === 'number' ? inputShape[1] : 3;
    const naming = detectNaming(blocks);
    applyTemplateNames(blocks, naming);
    return {
      inputName: imageInput.name,
      inputShape,
      dynamicBatch: typeof inputShape[0] !== 'number',
      embeddingOutput: blocks[0].input,
      blocks,
      hiddenSize,
      heads: blocks[0].attention.heads,
      mlpSize: blocks[0].fc1.outFeatures,
      tokens: this.tokenCount(embeddingNodes, hiddenSize),
      imageSize,
      patchSize,
      channels,
      norm: this.layerNormsByOutput.get(blocks[0].attention.input) ? 'pre' : 'post',
      activation: blocks[0].activation,
      naming,
      graph: this.graph,
      kind: this.graphKind(blocks),
    };
  }

  /** The canonical graph's account of the file, with the storage of the block weights measured. */
  private graphKind(blocks: TransformerBlock[]): GraphKind {
    const canonical = this.graph.graph;
    for (const block of blocks) {
      const linears = [block.attention.query.linear, block.attention.outProjection, block.fc1, block.fc2];
      for (const linear of linears) canonical.noteWeightStorage(linear.weight);
    }
    return canonical.kind;
  }

  /** Tokens per image, read from the position embedding's shape ([1, n, d] or [n, d]). */
  private tokenCount(embeddingNodes: NodeInfo[], hiddenSize: number): number | undefined {
    let best: number | undefined;
    for (const node of embeddingNodes) {
      for (const input of node.inputs) {
        const tensor = input ? this.graph.constant(input) : undefined;
        if (!tensor) continue;
        const dims = tensor.dims;
        if (dims.length >= 2 && dims[dims.length - 1] === hiddenSize && dims.slice(0, -2).every((dim) => dim === 1) && dims[dims.length - 2] > 1) {
          best = Math.max(best ?? 0, dims[dims.length - 2]);
        }
      }
    }
    return best;
  }
}

function uniqueLinears(attention: AttentionLayer): LinearLayer[] {
  return [...new Set([attention.query.linear, attention.key.linear, attention.value.linear, attention.outProjection])];
}

function layerNormTensors(layerNorm: LayerNormLayer): ConstantTensor[] {
  return [layerNorm.gamma, layerNorm.beta].filter((tensor): tensor is ConstantTensor => tensor !== undefined);
}

function linearTensors(linear: LinearLayer): ConstantTensor[] {
  return [linear.weight, linear.bias].filter((tensor): tensor is ConstantTensor => tensor !== undefined);
}

const PARAMETER_SUFFIX = /\.(weight|bias|in_proj_weight|in_proj_bias)$/;

/** True for names that are a framework's parameter names (not exporter-made ones like onnx::MatMul_12). */
function isFrameworkName(name: string): boolean {
  return PARAMETER_SUFFIX.test(name) && !name.includes('::') && !name.startsWith('/');
}

/** "/blocks.0/attn/qkv/MatMul" -> "blocks.0.attn.qkv" */
function moduleOfNodeName(nodeName: string): string | undefined {
  if (!nodeName.startsWith('/')) return undefined;
  const parts = nodeName.split('/').filter(Boolean);
  parts.pop();
  return parts.length > 0 ? parts.join('.') : undefined;
}

/**
 * The file's name for a constant's values: its initializer's name, less the suffix quantization
 * tools add ("onnx::MatMul_12_quantized"); a rewritten constant keeps its canonical name.
 */
function parameterName(constant: ConstantTensor): string {
  if (isFrameworkName(constant.name)) return constant.name;
  if (constant.stored && constant.storedIn === 'initializer' && constant.stored.name) return constant.stored.name.replace(/_quantized$/, '');
  return constant.name;
}

function layerNormParameters(layerNorm: LayerNormLayer): string[] {
  return layerNormTensors(layerNorm).map(parameterName);
}

function linearParameters(linear: LinearLayer): string[] {
  const names: string[] = [];
  const biasName = linear.bias && isFrameworkName(parameterName(linear.bias)) ? parameterName(linear.bias) : undefined;
  const weightName = parameterName(linear.weight);
  if (isFrameworkName(weightName)) names.push(weightName);
  else if (biasName) names.push(biasName.replace(/bias$/, 'weight'));
  else {
    const module = moduleOfNodeName(linear.nodeName);
    names.push(module ? `${module}.weight` : weightName);
  }
  if (linear.bias) names.push(biasName ?? parameterName(linear.bias));
  return names;
}

function moduleOfParameter(name: string): string {
  return PARAMETER_SUFFIX.test(name) ? name.replace(PARAMETER_SUFFIX, '') : name;
}

function commonModule(modules: string[]): string {
  const split = modules.map((module) => module.split('.'));
  const first = split[0] ?? [];
  let length = first.length;
  for (const parts of split) {
    let shared = 0;
    while (shared < Math.min(length, parts.length) && parts[shared] === first[shared]) shared++;
    length = shared;
  }
  return first.slice(0, length).join('.');
}

/** Module paths that show each framework's naming (any block, any component). */
const NAMING_PATTERNS: [Naming, RegExp][] = [
  ['timm', /(^|\.)blocks\.\d+\.(norm1|norm2|attn|mlp)(\.|$)/],
  ['hf', /(^|\.)encoder\.layer\.\d+\.(attention|layernorm_before|layernorm_after|intermediate|output)(\.|$)/],
  ['torchvision', /(^|\.)encoder_layer_\d+\.(ln_1|ln_2|self_attention|mlp)(\.|$)/],
  ['clip', /(^|\.)resblocks\.\d+\.(ln_1|ln_2|attn|mlp)(\.|$)/],
  ['hf-clip', /(^|\.)layers\.\d+\.(self_attn|layer_norm1|layer_norm2|mlp)(\.|$)/],
];

/** The naming most of the blocks' module names follow (a fused or renamed module does not outvote the rest). */
function detectNaming(blocks: TransformerBlock[]): Naming {
  const votes = new Map<Naming, number>();
  for (const block of blocks) {
    for (const component of COMPONENTS) {
      const naming = NAMING_PATTERNS.find(([, pattern]) => pattern.test(block.modules[component]))?.[0];
      if (naming) votes.set(naming, (votes.get(naming) ?? 0) + 1);
    }
  }
  const [best] = [...votes.entries()].sort((a, b) => b[1] - a[1]);
  return best?.[0] ?? 'generic';
}

/**
 * Names from the framework's template where the file's own do not name the module: a fused
 * attention's packed weights, a parameter the exporter deduplicated into another module's. The
 * prefix in front of the template (e.g. 'vision_model.') is the one the well-named modules show.
 */
function applyTemplateNames(blocks: TransformerBlock[], naming: Naming): void {
  if (naming === 'generic') return;
  const template = NAMING_TEMPLATES[naming];
  let root: string | undefined;
  for (const block of blocks) {
    for (const component of COMPONENTS) {
      const relative = templateComponentModule(template, '', block.index, component);
      const module = block.modules[component];
      if (root === undefined && (module === relative || module.endsWith(`.${relative}`))) root = module.slice(0, module.length - relative.length);
    }
  }
  if (root === undefined) return;
  for (const block of blocks) {
    const hasBias: Record<ComponentName, boolean> = {
      LN1: block.ln1.beta !== undefined,
      MHA: block.attention.query.linear.bias !== undefined,
      LN2: block.ln2.beta !== undefined,
      FC1: block.fc1.bias !== undefined,
      FC2: block.fc2.bias !== undefined,
    };
    for (const component of COMPONENTS) {
      const expected = templateComponentModule(template, root, block.index, component);
      if (block.modules[component] === expected) continue;
      block.modules[component] = expected;
      block.parameters[component] = template.parameters[component].filter((name) => hasBias[component] || !/(^|[._])bias$/.test(name)).map((name) => `${expected}.${name}`);
    }
    block.module = templateBlockModule(template, root, block.index);
  }
}
