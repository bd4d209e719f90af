// The paper's data-free upper bounds of plasticity: from the weights alone (their eigenvalues,
// by Lanczos steps in an ONNX model run on cpu), with the attention bound's token statistics
// from the first pairs of the inputs.
import * as path from 'node:path';
import { InputDataError, ModelFileError, UsageError } from '../core/errors';
import { buildBoundsModel, DEFAULT_BOUNDS_STEPS } from '../core/bounds/boundsModel';
import { combineBounds, TOKEN_STATISTICS_PAIRS, tokenStatistics } from '../core/bounds/plasticityBounds';
import { openPairSource } from '../core/inputs/pairSource';
import { OnnxModel, readOnnxModel } from '../core/onnx/onnxModel';
import { buildEmbedderModel } from '../core/probe/probeModels';
import { PlasticityBounds, TokenStatistics } from '../core/report/reportSchema';
import { discoverVit } from '../core/vit/discoverVit';
import { VitStructure } from '../core/vit/vitStructure';
import { dropFileBytes, preprocessOptions } from './analysisPreparation';
import { concatFloats, ImageEmbedder } from './imageEmbedder';
import { createSession, describeOrtError } from './onnxRuntime';
import { loadInThisThread } from './pairPrefetcher';
import { runOnce } from './probeSessions';
import { BoundsRequest } from './workerProtocol';

/**
 * The data-free bounds before any measurement, for the model overview: the weights' bounds, and
 * the attention bound with token statistics from the first pairs of the inputs an analysis
 * would use. When those inputs cannot be read, the weights' bounds come alone, with the reason.
 * `alreadyRead`: the model file, when the caller has just read it.
 */
export async function dataFreeBoundsBeforeMeasuring(request: BoundsRequest, alreadyRead?: OnnxModel): Promise<PlasticityBounds> {
  const model = alreadyRead ?? readOnnxModel(request.modelPath);
  const structure = discoverVit(model);
  let tokens: TokenStatistics | null = null;
  let tokensUnavailable: string | undefined;
  try {
    tokens = await tokenStatisticsOfInputs(model, structure, request);
  } catch (error) {
    if (!(error instanceof UsageError || error instanceof InputDataError || error instanceof ModelFileError)) throw error;
    tokensUnavailable = error.message;
  }
  // onnxruntime reads the weights itself: the file's bytes need not stay beside them.
  dropFileBytes(model);
  const bounds = await dataFreeBounds(model, structure, tokens);
  return tokensUnavailable ? { ...bounds, tokensUnavailable } : bounds;
}

/** n, r and s_min from the embeddings of the inputs' first pairs, on cpu (the embedding is a small part of the model). */
async function tokenStatisticsOfInputs(model: OnnxModel, structure: VitStructure, request: BoundsRequest): Promise<TokenStatistics> {
  const preprocess = preprocessOptions(request, structure, model);
  const pairs = await openPairSource({ reference: request.reference, target: request.target, pairs: request.pairs, seed: request.seed }, preprocess);
  const batch = await loadInThisThread(pairs, 0, Math.min(TOKEN_STATISTICS_PAIRS, pairs.count));
  const name = path.basename(model.filePath);
  const embedder = new ImageEmbedder(name, structure, preprocess.size);
  const session = await createSession(buildEmbedderModel(model, structure, []), {
    provider: 'cpu',
    externalDataFolder: model.dataFolder,
    graphOptimizationLevel: 'disabled',
  }).catch((error: unknown) => {
    throw new ModelFileError(`${name}: its embedding could not be prepared for onnxruntime: ${describeOrtError(error)}`);
  });
  try {
    const reference = await embedder.embed(session, batch.reference, false);
    const target = await embedder.embed(session, batch.target, false);
    const count = batch.reference.length;
    return { ...tokenStatistics(concatFloats([reference.embedding, target.embedding]), 2 * count, embedder.tokens, structure.hiddenSize), synthetic: pairs.kind === 'synthetic' };
  } finally {
    await session.release();
  }
}

/** Why the bounds run on cpu whatever the provider of the measurement (the report says so). */
const BOUNDS_ON_CPU =
  "the bounds' Lanczos steps are an ONNX Loop, which onnxruntime runs on cpu (a GPU provider would copy every step's vectors between devices), and they are matrix-vector products run once, bound by memory, not by arithmetic";

/**
 * The paper's upper bounds, on cpu (BOUNDS_ON_CPU): the weights are read once, without the
 * probe's, and not prepacked (a copy of every weight at session creation, for matrix-vector
 * products that gain nothing from it).
 */
export async function dataFreeBounds(model: OnnxModel, structure: VitStructure, tokens: TokenStatistics | null): Promise<PlasticityBounds> {
  return boundsOf(model, structure, await weightBoundValues(model, structure), tokens);
}

/** The bounds model's outputs (the weights' eigenvalues): the part of the bounds that needs no input. */
export type WeightBoundValues = Record<string, Float32Array>;

export async function weightBoundValues(model: OnnxModel, structure: VitStructure): Promise<WeightBoundValues> {
  const bytes = buildBoundsModel(model, structure, { steps: DEFAULT_BOUNDS_STEPS });
  const outputs = await runOnce(bytes, { provider: 'cpu', externalDataFolder: model.dataFolder, prepackWeights: false });
  return Object.fromEntries(Object.entries(outputs).map(([name, tensor]) => [name, tensor.data as Float32Array]));
}

/** The bounds from the weights' eigenvalues and, where there are inputs, their token statistics. */
export function boundsOf(model: OnnxModel, structure: VitStructure, values: WeightBoundValues, tokens: TokenStatistics | null): PlasticityBounds {
  return { ...combineBounds(structure, model, values, tokens, DEFAULT_BOUNDS_STEPS), executionProvider: { used: 'cpu', reason: BOUNDS_ON_CPU } };
}
