// One analysis from file to report, run inside the worker process: read, discover, prepare
// inputs, choose a provider, compile the embedder and probe, measure pairs in batches.
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { CancelledError, InputDataError, ModelFileError, UsageError } from '../core/errors';
import { IMAGENET_MEAN, IMAGENET_STD, openPairSource, PairSource, PreprocessOptions } from '../core/inputs/pairSource';
import { OnnxModel, readOnnxModel, releaseFileBytes } from '../core/onnx/onnxModel';
import { architectureOf, modelFacts } from '../core/report/modelDescription';
import {
  buildEmbedderModel,
  buildInContextProbe,
  buildIsolatedProbe,
  PROBE_DENOMINATOR,
  PROBE_FINAL_OUTPUT,
  PROBE_INPUTS,
  PROBE_OUTPUT,
  ProbeModel,
} from '../core/probe/probeModels';
import { buildBoundsModel, DEFAULT_BOUNDS_STEPS } from '../core/bounds/boundsModel';
import { combineBounds, TOKEN_STATISTICS_PAIRS, tokenStatistics } from '../core/bounds/plasticityBounds';
import { blockReports, summarize } from '../core/report/buildReport';
import { rangesOfIndices } from '../core/report/pairRanges';
import { ExecutionProviderName, PlasticityBounds, PlasticityReport, REPORT_SCHEMA_VERSION, TokenStatistics } from '../core/report/reportSchema';
import { TOOL_VERSION } from '../core/toolVersion';
import { graphKindSummary, measuresAnotherPrecision } from '../core/graph/canonicalGraph';
import { discoverVit } from '../core/vit/discoverVit';
import { COMPONENTS, VitStructure } from '../core/vit/vitStructure';
import { chooseExecutionProvider, createSession, describeOrtError, ONNXRUNTIME_VERSION, ort, SessionOptions } from './onnxRuntime';
import { concatFloats, ImageEmbedder } from './imageEmbedder';
import { AnalysisProgress, AnalysisRequest, BoundsRequest } from './workerProtocol';

export interface AnalysisHooks {
  onProgress(progress: AnalysisProgress): void;
  /** Polled between batches; true stops the run with CancelledError. */
  isCancelled(): boolean;
}

/** Lets queued messages (a cancel) in between blocking native calls. */
const yieldToEvents = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function runAnalysis(request: AnalysisRequest, hooks: AnalysisHooks): Promise<PlasticityReport> {
  const started = performance.now();
  const checkCancelled = async () => {
    await yieldToEvents();
    if (hooks.isCancelled()) throw new CancelledError();
  };
  const report = (phase: AnalysisProgress['phase'], message: string, extra: Partial<AnalysisProgress> = {}) =>
    hooks.onProgress({ phase, message, pairsDone: 0, pairsTotal: 0, pairsPerSecond: 0, ...extra });

  report('loading', `Reading ${path.basename(request.modelPath)}`);
  const model = readOnnxModel(request.modelPath);
  const loadMs = performance.now() - started;
  const sha256 = createHash('sha256').update(model.bytes).digest('hex');
  await checkCancelled();

  report('discovering', 'Finding transformer blocks');
  const discoverStarted = performance.now();
  const structure = discoverVit(model);
  const discoverMs = performance.now() - discoverStarted;
  await checkCancelled();

  report('inputs', 'Opening input images');
  const preprocess = preprocessOptions(request, structure, model);
  const pairs = await openPairSource({ reference: request.reference, target: request.target, pairs: request.pairs, first: request.pairsFrom, seed: request.seed }, preprocess);

  report('providers', 'Choosing an execution provider');
  const provider = await chooseExecutionProvider(request.executionProvider);
  await checkCancelled();

  report('compiling', `Preparing the probe on ${provider.used}`, { executionProvider: provider.used });
  const measurer = await PairMeasurer.create(model, structure, request, preprocess.size, provider.used);
  await checkCancelled();

  const warnings: string[] = [];
  if (pairs.kind === 'synthetic') {
    warnings.push('Inputs are synthetic images: the numbers describe the model on generated patterns, not on your data. Give --reference and --target image folders.');
  }
  if (measuresAnotherPrecision(structure.kind)) {
    warnings.push(`The model stores ${graphKindSummary(structure.kind)}.`);
  }
  const measureStarted = performance.now();
  const perPair: Float64Array[] = [];
  /** Index among all the inputs' pairs of each entry of perPair, so shards of one run can be merged. */
  const measuredPairs: number[] = [];
  const batchPairs = request.batchPairs ?? defaultBatchPairs(structure);
  let done = 0;
  while (done < pairs.count) {
    const count = Math.min(batchPairs, pairs.count - done);
    const batch = await loadBatch(pairs, done, count);
    await checkCancelled();
    const { ratios, distances } = await measurer.measure(batch.reference, batch.target, count, warnings);
    const columns = COMPONENTS.length * structure.blocks.length;
    for (let i = 0; i < count; i++) {
      if (!(distances[i] > 0)) {
        warnings.push(`Pair ${pairs.first + done + i} (${batch.names[i]}) was left out: its two inputs give the same embedding, so no ratio exists.`);
        continue;
      }
      perPair.push(Float64Array.from(ratios.subarray(i * columns, (i + 1) * columns)));
      measuredPairs.push(pairs.first + done + i);
    }
    done += count;
    const seconds = (performance.now() - measureStarted) / 1000;
    const rate = done / seconds;
    report('measuring', `Measured ${done} of ${pairs.count} pairs`, {
      pairsDone: done,
      pairsTotal: pairs.count,
      pairsPerSecond: rate,
      etaSeconds: (pairs.count - done) / rate,
      executionProvider: measurer.provider,
    });
    await checkCancelled();
  }
  if (perPair.length === 0) {
    throw new UsageError('No pair of inputs differs, so plasticity cannot be measured; give reference and target images that are not identical.');
  }
  await measurer.release();
  report('bounds', 'Computing the data-free upper bounds', { pairsDone: done, pairsTotal: pairs.count, executionProvider: measurer.provider });
  const boundsStarted = performance.now();
  const tokens = measurer.tokenStatistics;
  const bounds = await dataFreeBounds(model, structure, tokens && { ...tokens, synthetic: pairs.kind === 'synthetic' });
  const boundsMs = performance.now() - boundsStarted;
  if (measurer.provider !== provider.used) {
    provider.tried.push({ name: 'cpu', ok: true, reason: `used instead of ${provider.used}, which disagreed with cpu on the first pairs` });
  }
  const measureMs = performance.now() - measureStarted;
  const blocks = blockReports(structure, perPair);

  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    tool: { name: 'plasticity-lens', version: TOOL_VERSION, onnxruntime: ONNXRUNTIME_VERSION },
    createdAt: new Date().toISOString(),
    model: { ...modelFacts(model, sha256), architecture: architectureOf(structure, measurer.tokens, preprocess.size) },
    settings: {
      mode: request.mode,
      pairs: perPair.length,
      pairIndices: rangesOfIndices(measuredPairs),
      seed: request.seed,
      inputs: { kind: pairs.kind, reference: pairs.reference, target: pairs.target, synthetic: pairs.kind === 'synthetic', notes: pairs.notes },
      preprocessing: { size: preprocess.size, mean: preprocess.mean, std: preprocess.std },
      executionProvider: { requested: request.executionProvider, used: measurer.provider, tried: provider.tried },
    },
    components: [...COMPONENTS],
    blocks,
    summary: summarize(blocks),
    timing: {
      loadMs: round(loadMs),
      discoverMs: round(discoverMs),
      measureMs: round(measureMs),
      totalMs: round(performance.now() - started),
      pairsPerSecond: round((perPair.length / measureMs) * 1000, 3),
      boundsMs: round(boundsMs),
    },
    warnings,
    bounds,
  };
}

const round = (value: number, digits = 1) => Number(value.toFixed(digits));

function preprocessOptions(request: Pick<AnalysisRequest, 'size' | 'mean' | 'std'>, structure: VitStructure, model: OnnxModel): PreprocessOptions {
  const size = structure.imageSize ?? request.size;
  if (!size) {
    throw new UsageError(`${path.basename(model.filePath)} has a symbolic image size (${structure.inputShape.join('x')}); give it with --size H,W.`);
  }
  if (structure.imageSize && request.size && (request.size[0] !== size[0] || request.size[1] !== size[1])) {
    throw new UsageError(`${path.basename(model.filePath)} takes ${size[0]}x${size[1]} images; --size ${request.size.join(',')} does not match.`);
  }
  return { size, channels: structure.channels, mean: request.mean ?? IMAGENET_MEAN, std: request.std ?? IMAGENET_STD };
}

/**
 * Pairs per probe run. About 36 MB of per-pair activations (attention scores and projections)
 * per run: measured on ViT-B/16 that is 4 pairs, as fast per pair as 7 and 150 MB lighter.
 */
function defaultBatchPairs(structure: VitStructure): number {
  const tokens = structure.tokens ?? 197;
  const perPair = 2 * (structure.heads * tokens * tokens + 4 * tokens * structure.hiddenSize) * 4;
  return Math.max(1, Math.min(16, Math.floor((36 * 2 ** 20) / perPair)));
}

interface Batch {
  reference: Float32Array[];
  target: Float32Array[];
  names: string[];
}

async function loadBatch(pairs: PairSource, start: number, count: number): Promise<Batch> {
  const batch: Batch = { reference: [], target: [], names: [] };
  for (let i = start; i < start + count; i++) {
    const pair = await pairs.load(i);
    batch.reference.push(pair.reference);
    batch.target.push(pair.target);
    batch.names.push(`${pair.referenceName} / ${pair.targetName}`);
  }
  return batch;
}

interface Sessions {
  provider: ExecutionProviderName;
  embedder: ort.InferenceSession;
  probe: ort.InferenceSession;
  /** Weight-only probe inputs, computed once (see ProbeModel.precompute). */
  constants: Record<string, ort.Tensor>;
}

interface Measurement {
  ratios: Float32Array;
  distances: Float32Array;
  /** The pairs' embeddings [count, tokens, d], for the token statistics. */
  embeddings: { reference: Float32Array; target: Float32Array };
}

/** Owns the onnxruntime sessions of one analysis. */
class PairMeasurer {
  /** Embeddings [pairs, tokens, d] of the first pairs, until there are enough for token statistics. */
  private readonly statisticsPairs: { reference: Float32Array[]; target: Float32Array[]; count: number } = { reference: [], target: [], count: 0 };
  private checked = false;

  private constructor(
    private readonly modelName: string,
    private readonly structure: VitStructure,
    private readonly request: AnalysisRequest,
    private readonly embedder: ImageEmbedder,
    private readonly embedderBytes: Uint8Array,
    private readonly probeModel: ProbeModel,
    private readonly externalDataFolder: string,
    private sessions: Sessions,
  ) {}

  get provider(): ExecutionProviderName {
    return this.sessions.provider;
  }

  /** Tokens per image, known after the first batch. */
  get tokens(): number {
    return this.embedder.tokens;
  }

  static async create(model: OnnxModel, structure: VitStructure, request: AnalysisRequest, imageSize: [number, number], provider: ExecutionProviderName): Promise<PairMeasurer> {
    const folder = model.dataFolder;
    const inContext = request.mode === 'in-context';
    const probeModel = inContext ? buildInContextProbe(model, structure) : buildIsolatedProbe(model, structure);
    // In-context mode rebuilds the blocks' forward pass, so it checks it against the model's own.
    const embedderBytes = buildEmbedderModel(model, structure, inContext ? [structure.blocks[structure.blocks.length - 1].output] : []);
    const name = path.basename(model.filePath);
    // Both models are built: the weights now live only in onnxruntime (peak memory stays near the file size).
    dropFileBytes(model);
    const measurer = new PairMeasurer(name, structure, request, new ImageEmbedder(name, structure, imageSize), embedderBytes, probeModel, folder, undefined as unknown as Sessions);
    measurer.sessions = await measurer.openSessions(provider);
    return measurer;
  }

  private async openSessions(provider: ExecutionProviderName): Promise<Sessions> {
    try {
      const options = { provider, externalDataFolder: this.externalDataFolder };
      const embedder = await createSession(this.embedderBytes, options);
      const constants = this.probeModel.precompute ? await runOnce(this.probeModel.precompute, options) : {};
      const probe = await createSession(this.probeModel.bytes, options);
      return { provider, embedder, probe, constants };
    } catch (error) {
      throw new ModelFileError(`${this.modelName} could not be prepared for onnxruntime on ${provider}: ${describeOrtError(error)}`);
    }
  }

  async release(): Promise<void> {
    await releaseSessions(this.sessions);
  }

  /**
   * Ratios [count, blocks * 5] and input distances [count] for `count` pairs. The first batch
   * is also checked: a GPU run against cpu, an in-context run against the model's own blocks.
   */
  async measure(reference: Float32Array[], target: Float32Array[], count: number, warnings: string[]): Promise<Measurement> {
    const measurement = await this.measureChecked(reference, target, count, warnings);
    this.gatherTokenStatistics(measurement.embeddings.reference, measurement.embeddings.target, count);
    return measurement;
  }

  private async measureChecked(reference: Float32Array[], target: Float32Array[], count: number, warnings: string[]): Promise<Measurement> {
    const firstBatch = !this.checked;
    this.checked = true;
    const result = await this.measureOn(this.sessions, reference, target, count, firstBatch && this.request.mode === 'in-context');
    if (!firstBatch || this.sessions.provider === 'cpu') return result;

    const cpu = await this.openSessions('cpu');
    const cpuResult = await this.measureOn(cpu, reference, target, count, false);
    let worst = 0;
    for (let i = 0; i < result.ratios.length; i++) {
      worst = Math.max(worst, Math.abs(result.ratios[i] - cpuResult.ratios[i]) / Math.max(Math.abs(cpuResult.ratios[i]), 1e-6));
    }
    if (worst < 1e-3) {
      await releaseSessions(cpu);
      return result;
    }
    warnings.push(`${this.sessions.provider} disagreed with cpu on the first pairs (relative difference ${worst.toExponential(1)}); measured on cpu instead.`);
    await releaseSessions(this.sessions);
    this.sessions = cpu;
    return cpuResult;
  }

  private async measureOn(sessions: Sessions, reference: Float32Array[], target: Float32Array[], count: number, checkBlocks: boolean): Promise<Measurement> {
    const x = await this.embedder.embed(sessions.embedder, reference, checkBlocks);
    const y = await this.embedder.embed(sessions.embedder, target, false);
    const shape = [count, this.tokens, this.structure.hiddenSize];
    const outputs = await sessions.probe.run({
      ...sessions.constants,
      [PROBE_INPUTS.reference]: new ort.Tensor('float32', x.embedding, shape),
      [PROBE_INPUTS.target]: new ort.Tensor('float32', y.embedding, shape),
    });
    if (x.final) this.checkRebuiltBlocks(x.final, outputs[PROBE_FINAL_OUTPUT].data as Float32Array);
    return { ratios: outputs[PROBE_OUTPUT].data as Float32Array, distances: outputs[PROBE_DENOMINATOR].data as Float32Array, embeddings: { reference: x.embedding, target: y.embedding } };
  }

  /** Keeps the embeddings of the first pairs measured, up to those token statistics take. */
  private gatherTokenStatistics(reference: Float32Array, target: Float32Array, count: number): void {
    const gathered = this.statisticsPairs;
    const take = Math.min(count, TOKEN_STATISTICS_PAIRS - gathered.count);
    if (take <= 0) return;
    const pairLength = this.tokens * this.structure.hiddenSize;
    gathered.reference.push(reference.slice(0, take * pairLength));
    gathered.target.push(target.slice(0, take * pairLength));
    gathered.count += take;
  }

  /** n, r and s_min for the data-free bounds, from the first pairs' embeddings (as the model overview takes them). */
  get tokenStatistics(): TokenStatistics | null {
    const gathered = this.statisticsPairs;
    if (gathered.count === 0) return null;
    return tokenStatistics(concatFloats([...gathered.reference, ...gathered.target]), 2 * gathered.count, this.tokens, this.structure.hiddenSize);
  }

  private checkRebuiltBlocks(modelOutput: Float32Array, rebuilt: Float32Array): void {
    let scale = 0;
    let worst = 0;
    for (let i = 0; i < modelOutput.length; i++) {
      scale = Math.max(scale, Math.abs(modelOutput[i]));
      worst = Math.max(worst, Math.abs(modelOutput[i] - rebuilt[i]));
    }
    if (worst > 1e-3 * Math.max(scale, 1)) {
      throw new ModelFileError(
        `${this.modelName}: in-context mode rebuilds the blocks' forward pass, but it differs from the model's own output (max difference ${worst.toExponential(2)}); the blocks hold parts it does not model (layer scale, extra norms). Use --mode isolated.`,
      );
    }
  }
}

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
  const batch = await loadBatch(pairs, 0, Math.min(TOKEN_STATISTICS_PAIRS, pairs.count));
  const name = path.basename(model.filePath);
  const embedder = new ImageEmbedder(name, structure, preprocess.size);
  const session = await createSession(buildEmbedderModel(model, structure, []), { provider: 'cpu', externalDataFolder: model.dataFolder, graphOptimizationLevel: 'disabled' }).catch((error: unknown) => {
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

/**
 * The paper's upper bounds, on cpu: the weights are read once, without the probe's, and not
 * prepacked (a copy of every weight at session creation, for matrix-vector products that gain
 * nothing from it).
 */
async function dataFreeBounds(model: OnnxModel, structure: VitStructure, tokens: TokenStatistics | null): Promise<PlasticityBounds> {
  const steps = DEFAULT_BOUNDS_STEPS;
  const bytes = buildBoundsModel(model, structure, { steps });
  const outputs = await runOnce(bytes, { provider: 'cpu', externalDataFolder: model.dataFolder, prepackWeights: false });
  const values = Object.fromEntries(Object.entries(outputs).map(([name, tensor]) => [name, tensor.data as Float32Array]));
  return combineBounds(structure, model, values, tokens, steps);
}

/** Frees the worker's copy of the model file (the worker runs with --expose-gc, so it goes at once). */
function dropFileBytes(model: OnnxModel): void {
  releaseFileBytes(model);
  (globalThis as { gc?: () => void }).gc?.();
}

/** Runs a model without inputs once and returns its outputs (the session is released at once). */
async function runOnce(bytes: Uint8Array, options: SessionOptions): Promise<Record<string, ort.Tensor>> {
  const session = await createSession(bytes, { ...options, graphOptimizationLevel: 'disabled' });
  try {
    return await session.run({});
  } finally {
    await session.release();
  }
}

async function releaseSessions(sessions: Sessions): Promise<void> {
  await sessions.embedder.release();
  await sessions.probe.release();
}
