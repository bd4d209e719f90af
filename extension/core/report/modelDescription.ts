// What a model file is, independent of any measurement: the `model` part of a report, and the
// overview the model editor shows before (or without) an analysis.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModelFileError } from '../errors';
import { defaultOpset, elementCount, OnnxModel, onnxFileSha256, TensorDataType, TensorInfo, ValueInfo } from '../onnx/onnxModel';
import { graphKindSummary } from '../graph/graphKind';
import { QUANTIZED_WEIGHT_INPUT } from '../graph/quantizedOperators';
import { discoverVit } from '../vit/discoverVit';
import { describeFamily } from '../vit/familyDescription';
import { foldedParameterCorrection } from '../vit/moduleNames';
import { VitStructure } from '../vit/vitStructure';
import { EXTRA_PARAMETER_RULE } from '../vocabulary';
import { Architecture, ModelFacts, ModelOverview } from './reportSchema';

export type { ModelOverview } from './reportSchema';

function shapeOf(info: ValueInfo): (number | string)[] {
  return (info.shape ?? []).map((dim) => dim.value ?? dim.param ?? '?');
}

/**
 * Facts of a parsed model file. `sha256` covers the .onnx file itself (not external data). With
 * the model's `structure`, parameters the exporter folded into other constants are counted as the
 * framework counts them.
 */
export function modelFacts(model: OnnxModel, sha256 = onnxFileSha256(model), structure?: VitStructure): ModelFacts {
  let parameterCount = 0;
  const isParameter = (tensor: TensorInfo | undefined) =>
    tensor !== undefined && (tensor.dataType === TensorDataType.FLOAT || tensor.dataType === TensorDataType.FLOAT16 || tensor.dataType === TensorDataType.DOUBLE);
  for (const tensor of model.initializers.values()) if (isParameter(tensor)) parameterCount += elementCount(tensor.dims);
  const countedQuantized = new Set<TensorInfo>();
  // A parameter the exporter deduplicated is read through an Identity named after it: count it once per name, as PyTorch does.
  for (const node of model.nodes) {
    const source = node.opType === 'Identity' ? model.initializers.get(node.inputs[0]) : undefined;
    if (source && isParameter(source) && !model.initializers.has(node.outputs[0])) parameterCount += elementCount(source.dims);
    // 8-bit weights are parameters too (their scales and zero points are not).
    const quantizedWeight = QUANTIZED_WEIGHT_INPUT[node.opType];
    const weight = quantizedWeight === undefined ? undefined : model.initializers.get(node.inputs[quantizedWeight]);
    if (weight && (weight.dataType === TensorDataType.INT8 || weight.dataType === TensorDataType.UINT8) && !countedQuantized.has(weight)) {
      countedQuantized.add(weight);
      parameterCount += elementCount(weight.dims);
    }
  }
  if (structure) parameterCount += foldedParameterCorrection(structure.blocks, structure.naming, structure.extraParameters);
  return {
    path: path.resolve(model.filePath),
    sha256,
    sizeBytes: model.fileSize,
    opset: defaultOpset(model),
    irVersion: model.irVersion,
    producer: [model.producerName, model.producerVersion].filter(Boolean).join(' '),
    parameterCount,
    inputs: model.inputs.filter((input) => !model.initializers.has(input.name)).map((input) => ({ name: input.name, shape: shapeOf(input) })),
    outputs: model.outputs.map((output) => ({ name: output.name, shape: shapeOf(output) })),
  };
}

export function architectureOf(structure: VitStructure, tokens: number, imageSize: [number, number]): Architecture {
  return {
    blocks: structure.blocks.length,
    hiddenSize: structure.hiddenSize,
    heads: structure.heads,
    mlpSize: structure.mlpSize,
    tokens,
    imageSize,
    patchSize: structure.patchSize ?? null,
    norm: structure.norm,
    activation: structure.activation,
    naming: structure.naming,
    embeddingOutput: structure.embeddingOutput,
    graph: { ...structure.kind, summary: graphKindSummary(structure.kind) },
    family: describeFamily(structure),
    ...(structure.extraParameters.length > 0 ? { extraParameters: { rule: EXTRA_PARAMETER_RULE, parameters: structure.extraParameters } } : {}),
  };
}

/** sha256 of a file, read in chunks (the caller's event loop keeps turning). */
export function sha256OfFile(filePath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    fs.createReadStream(filePath)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', (error) => reject(new ModelFileError(`${filePath} cannot be read (${(error as NodeJS.ErrnoException).code ?? error.message}).`)))
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/**
 * Describes a model already read (in `readMs`); a non-ViT is described with the reason. Its
 * sha256 is left null: hashing a ViT-B file alone takes about a second, so it is asked apart.
 */
export function describeModel(model: OnnxModel, readMs: number): ModelOverview {
  const facts: ModelOverview['model'] = { ...modelFacts(model, ''), sha256: null };
  const discoverStarted = performance.now();
  try {
    const structure = discoverVit(model);
    return {
      model: { ...facts, parameterCount: facts.parameterCount + foldedParameterCorrection(structure.blocks, structure.naming, structure.extraParameters) },
      architecture: {
        ...architectureOf(structure, structure.tokens ?? 0, structure.imageSize ?? [0, 0]),
        tokens: structure.tokens ?? null,
        imageSize: structure.imageSize ?? null,
      },
      timing: { readMs, discoverMs: performance.now() - discoverStarted },
    };
  } catch (error) {
    if (!(error instanceof ModelFileError)) throw error;
    return { model: facts, architecture: null, notVitReason: error.message, timing: { readMs, discoverMs: performance.now() - discoverStarted } };
  }
}
