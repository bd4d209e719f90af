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
  ProbeFlavor,
  ProbeModel,
} from '../core/probe/probeModels';
import { buildBoundsModel, DEFAULT_BOUNDS_STEPS } from '../core/bounds/boundsModel';
import { combineBounds, TOKEN_STATISTICS_PAIRS, tokenStatistics } from '../core/bounds/plasticityBounds';
import { blockReports, summarize } from '../core/report/buildReport';
import { rangesOfIndices } from '../core/report/pairRanges';
import { ExecutionProviderName, PlasticityBounds, PlasticityReport, ProviderAttempt, REPORT_SCHEMA_VERSION, TokenStatistics } from '../core/report/reportSchema';
import { TOOL_VERSION } from '../core/toolVersion';
import { graphKindSummary, measuresAnotherPrecision } from '../core/graph/canonicalGraph';
import { discoverVit } from '../core/vit/discoverVit';
import { COMPONENTS, VitStructure } from '../core/vit/vitStructure';
import { describeGpuAdapter } from './gpuAdapter';
import { chooseExecutionProvider, createSession, describeOrtError, ONNXRUNTIME_VERSION, ort, PROVIDER_AGREEMENT, providerFailure, SessionOptions, worstRelativeDifference } from './onnxRuntime';
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
  const measurer = await PairMeasurer.create(model, structure, request, preprocess.size, provider.used, provider.tried);
  await checkCancelled();

  const warnings: string[] = [];
  if (pairs.kind === 'synthetic') {
    warnings.push('Inputs are synthetic images: the numbers describe the model on generated patterns, not on your data. Give --reference and --target image folders.');
  }
  if (measuresAnotherPrecision(structure.kind)) {
    warnings.push(`The model stores ${graphKindSummary(structure.kind)}.`);
  }
  const measureStarted = performance.now();
  // Per pair index (from the first pair of this run): its ratios, or the name of a pair left out (no ratio exists).
  const measured = new Map<number, Float64Array | string>();
  const batchPairs = request.batchPairs ?? defaultBatchPairs(structure);
  const columns = COMPONENTS.length * structure.blocks.length;
  let done = 0;
  while (done < pairs.count) {
    const count = Math.min(batchPairs, pairs.count - done);
    const batch = await loadBatch(pairs, done, count);
    await checkCancelled();
    const outcome = await measurer.measure(batch.reference, batch.target, done, count, done + count < pairs.count);
    if (outcome.kind === 'restart') {
      // The GPU provider failed under `auto`: the run continues on cpu from the last pair checked against it.
      for (const index of [...measured.keys()]) if (index >= outcome.resumeAt) measured.delete(index);
      done = outcome.resumeAt;
      report('compiling', `Continuing on cpu from pair ${done}`, { pairsDone: done, pairsTotal: pairs.count, executionProvider: measurer.provider });
      continue;
    }
    const { ratios, distances } = outcome.measurement;
    for (let i = 0; i < count; i++) {
      measured.set(done + i, distances[i] > 0 ? Float64Array.from(ratios.subarray(i * columns, (i + 1) * columns)) : batch.names[i]);
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
  const perPair: Float64Array[] = [];
  /** Index among all the inputs' pairs of each entry of perPair, so shards of one run can be merged. */
  const measuredPairs: number[] = [];
  for (const [index, value] of [...measured].sort(([a], [b]) => a - b)) {
    if (typeof value === 'string') {
      warnings.push(`Pair ${pairs.first + index} (${value}) was left out: its two inputs give the same embedding, so no ratio exists.`);
    } else {
      perPair.push(value);
      measuredPairs.push(pairs.first + index);
    }
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
      executionProvider: { requested: request.executionProvider, used: measurer.provider, tried: measurer.tried },
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

/** What one batch gave: its measurement, or that the run moved to cpu and measures again from pair `resumeAt`. */
type BatchOutcome = { kind: 'measured'; measurement: Measurement } | { kind: 'restart'; resumeAt: number };

/**
 * Owns the onnxruntime sessions of one analysis and the choice of provider. A GPU provider's
 * first batches are also run on cpu: the first (explicit --ep) or first two (auto) must agree
 * with cpu; under auto the last of them is timed on both and the faster provider measures the
 * rest (so a software adapter, correct but slow, is not kept). Under auto, any failure of the
 * GPU provider moves the run to cpu, keeping only pairs that were checked against cpu; under an
 * explicit provider it is a one-line error.
 */
class PairMeasurer {
  /** Embeddings of the first pairs, per batch, until there are enough for token statistics. */
  private statisticsBatches: { start: number; count: number; reference: Float32Array; target: Float32Array }[] = [];
  /** Pairs 0 .. checkedPairs - 1 were measured on cpu or checked against it. */
  private checkedPairs = 0;
  /** Batches still to check against cpu before the GPU provider runs alone. */
  private checksLeft: number;
  private cpuSessions: Sessions | undefined;

  private constructor(
    private readonly modelName: string,
    private readonly structure: VitStructure,
    private readonly request: AnalysisRequest,
    private readonly embedder: ImageEmbedder,
    private readonly embedderBytes: Uint8Array,
    /** The probe per flavor: 'cpu' for cpu sessions, 'portable' for a GPU provider's. */
    private readonly probeModels: Partial<Record<ProbeFlavor, ProbeModel>>,
    private readonly externalDataFolder: string,
    private sessions: Sessions,
    /** The report's `tried`: every provider attempt, in order, the one in use last. */
    readonly tried: ProviderAttempt[],
  ) {
    this.checksLeft = request.executionProvider === 'auto' ? 2 : 1;
  }

  get provider(): ExecutionProviderName {
    return this.sessions.provider;
  }

  /** Tokens per image, known after the first batch. */
  get tokens(): number {
    return this.embedder.tokens;
  }

  static async create(model: OnnxModel, structure: VitStructure, request: AnalysisRequest, imageSize: [number, number], provider: ExecutionProviderName, tried: ProviderAttempt[]): Promise<PairMeasurer> {
    const folder = model.dataFolder;
    const inContext = request.mode === 'in-context';
    // cpu always (it checks a GPU provider, and is where a failing one falls back to).
    const buildProbe = (flavor: ProbeFlavor) => (inContext ? buildInContextProbe(model, structure, flavor) : buildIsolatedProbe(model, structure, flavor));
    const probeModels: Partial<Record<ProbeFlavor, ProbeModel>> = { cpu: buildProbe('cpu') };
    if (provider !== 'cpu') probeModels.portable = buildProbe('portable');
    // In-context mode rebuilds the blocks' forward pass, so it checks it against the model's own.
    const embedderBytes = buildEmbedderModel(model, structure, inContext ? [structure.blocks[structure.blocks.length - 1].output] : []);
    const name = path.basename(model.filePath);
    // Both models are built: the weights now live only in onnxruntime (peak memory stays near the file size).
    dropFileBytes(model);
    const measurer = new PairMeasurer(name, structure, request, new ImageEmbedder(name, structure, imageSize), embedderBytes, probeModels, folder, undefined as unknown as Sessions, [...tried]);
    try {
      measurer.sessions = await measurer.openSessions(provider);
    } catch (error) {
      if (provider === 'cpu') throw new ModelFileError(`${name} could not be prepared for onnxruntime on cpu: ${describeOrtError(error)}`);
      await measurer.abandonGpu(provider, `could not prepare the probe: ${describeOrtError(error)}`);
    }
    return measurer;
  }

  private async openSessions(provider: ExecutionProviderName): Promise<Sessions> {
    const options = { provider, externalDataFolder: this.externalDataFolder };
    const embedder = await createSession(this.embedderBytes, options);
    try {
      const probeModel = this.probeModels[provider === 'cpu' ? 'cpu' : 'portable']!;
      const constants = probeModel.precompute ? await runOnce(probeModel.precompute, options) : {};
      const probe = await createSession(probeModel.bytes, options);
      return { provider, embedder, probe, constants };
    } catch (error) {
      await embedder.release();
      throw error;
    }
  }

  async release(): Promise<void> {
    await releaseSessions(this.sessions);
    if (this.cpuSessions) await releaseSessions(this.cpuSessions);
    this.cpuSessions = undefined;
  }

  /**
   * Ratios [count, blocks * 5] and input distances [count] for pairs start .. start + count - 1
   * (`more`: pairs follow this batch), or where to start again after moving to cpu.
   */
  async measure(reference: Float32Array[], target: Float32Array[], start: number, count: number, more: boolean): Promise<BatchOutcome> {
    const provider = this.sessions.provider;
    const checkBlocks = start === 0 && this.request.mode === 'in-context';
    let result: Measurement;
    const started = performance.now();
    try {
      result = await this.measureOn(this.sessions, reference, target, count, checkBlocks);
    } catch (error) {
      if (provider === 'cpu' || error instanceof ModelFileError) throw error;
      return { kind: 'restart', resumeAt: await this.abandonGpu(provider, `failed on pairs ${start}-${start + count - 1}: ${describeOrtError(error)}`) };
    }
    const seconds = (performance.now() - started) / 1000;
    if (provider !== 'cpu' && this.checksLeft > 0) {
      const outcome = await this.checkAgainstCpu(provider, result, seconds, reference, target, start, count, more);
      if (outcome.kind === 'restart') return outcome;
      result = outcome.measurement;
    }
    // cpu is the reference: what it measures counts as checked (also after a move to cpu).
    if (this.sessions.provider === 'cpu') this.checkedPairs = start + count;
    this.gatherTokenStatistics(result.embeddings.reference, result.embeddings.target, start, count);
    return { kind: 'measured', measurement: result };
  }

  /** Runs the batch on cpu too; under auto, the last check also decides by time which provider goes on. */
  private async checkAgainstCpu(
    provider: ExecutionProviderName,
    result: Measurement,
    seconds: number,
    reference: Float32Array[],
    target: Float32Array[],
    start: number,
    count: number,
    more: boolean,
  ): Promise<BatchOutcome> {
    this.cpuSessions ??= await this.openSessions('cpu');
    const cpuStarted = performance.now();
    const cpuResult = await this.measureOn(this.cpuSessions, reference, target, count, false);
    const cpuSeconds = (performance.now() - cpuStarted) / 1000;
    const worst = worstRelativeDifference(result.ratios, cpuResult.ratios);
    if (!(worst < PROVIDER_AGREEMENT)) {
      return { kind: 'restart', resumeAt: await this.abandonGpu(provider, `disagreed with cpu on pairs ${start}-${start + count - 1} (relative difference ${worst.toExponential(1)})`) };
    }
    this.checkedPairs = start + count;
    this.checksLeft--;
    const agreed = `agreed with cpu on pairs 0-${start + count - 1} (relative difference ${worst.toExponential(1)})`;
    if (this.request.executionProvider !== 'auto') {
      this.updateAttempt(provider, { ok: true, reason: `requested; ${agreed}` });
      await this.releaseCpuCheck();
      return { kind: 'measured', measurement: result };
    }
    if (this.checksLeft > 0 && more) return { kind: 'measured', measurement: result };

    // The choice, by time on the same pairs (the first batch's includes compiling the GPU's shaders).
    const timing = `${(seconds / count).toFixed(4)} s per pair against cpu's ${(cpuSeconds / count).toFixed(4)} s on pairs ${start}-${start + count - 1}${start === 0 ? ', its first run' : ''}`;
    const software = describeGpuAdapter()?.software === true && provider === 'webgpu' ? ' (a software renderer)' : '';
    if (seconds <= cpuSeconds) {
      this.updateAttempt(provider, { ok: true, reason: `${agreed} and was faster: ${timing}`, secondsPerPair: round(seconds / count, 5) });
      await this.releaseCpuCheck();
      return { kind: 'measured', measurement: result };
    }
    this.updateAttempt(provider, { ok: false, reason: `${agreed} but was slower${software}: ${timing}; not used`, secondsPerPair: round(seconds / count, 5) });
    this.tried.push({ name: 'cpu', ok: true, reason: `faster than ${provider} on the same pairs`, secondsPerPair: round(cpuSeconds / count, 5) });
    await releaseSessions(this.sessions);
    this.sessions = this.cpuSessions!;
    this.cpuSessions = undefined;
    return { kind: 'measured', measurement: cpuResult };
  }

  /**
   * A GPU provider failed: under auto, the run goes on with cpu (the attempt recorded with
   * `why`) and resumes at the first pair not checked against cpu; otherwise a one-line error.
   */
  private async abandonGpu(provider: ExecutionProviderName, why: string): Promise<number> {
    if (this.request.executionProvider !== 'auto') throw providerFailure(provider, `${this.modelName} ${why}`);
    this.updateAttempt(provider, { ok: false, reason: why });
    this.tried.push({ name: 'cpu', ok: true, reason: `fallback: ${provider} failed; ${this.checkedPairs > 0 ? `pairs 0-${this.checkedPairs - 1} (checked against cpu) kept, the rest measured on cpu` : 'every pair measured on cpu'}` });
    if (this.sessions) await releaseSessions(this.sessions).catch(() => undefined);
    this.sessions = this.cpuSessions ?? (await this.openSessions('cpu'));
    this.cpuSessions = undefined;
    this.checksLeft = 0;
    const keep = this.checkedPairs;
    this.statisticsBatches = this.statisticsBatches.filter((entry) => entry.start < keep);
    return keep;
  }

  /** Rewrites the last attempt of `provider` (the one chooseExecutionProvider kept). */
  private updateAttempt(provider: ExecutionProviderName, change: Partial<ProviderAttempt>): void {
    const index = this.tried.map((attempt) => attempt.name).lastIndexOf(provider);
    if (index >= 0) this.tried[index] = { ...this.tried[index], ...change };
    else this.tried.push({ name: provider, ok: false, reason: '', ...change });
  }

  private async releaseCpuCheck(): Promise<void> {
    if (this.cpuSessions) await releaseSessions(this.cpuSessions);
    this.cpuSessions = undefined;
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
  private gatherTokenStatistics(reference: Float32Array, target: Float32Array, start: number, count: number): void {
    const gathered = this.statisticsBatches.reduce((sum, entry) => sum + entry.count, 0);
    const take = Math.min(count, TOKEN_STATISTICS_PAIRS - gathered);
    if (take <= 0) return;
    const pairLength = this.tokens * this.structure.hiddenSize;
    this.statisticsBatches.push({ start, count: take, reference: reference.slice(0, take * pairLength), target: target.slice(0, take * pairLength) });
  }

  /** n, r and s_min for the data-free bounds, from the first pairs' embeddings (as the model overview takes them). */
  get tokenStatistics(): TokenStatistics | null {
    const batches = this.statisticsBatches;
    const count = batches.reduce((sum, entry) => sum + entry.count, 0);
    if (count === 0) return null;
    return tokenStatistics(concatFloats([...batches.map((entry) => entry.reference), ...batches.map((entry) => entry.target)]), 2 * count, this.tokens, this.structure.hiddenSize);
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

/** Why the bounds run on cpu whatever the provider of the measurement (the report says so). */
const BOUNDS_ON_CPU =
  "the bounds' Lanczos steps are an ONNX Loop, which onnxruntime runs on cpu (a GPU provider would copy every step's vectors between devices), and they are matrix-vector products run once, bound by memory, not by arithmetic";

/**
 * The paper's upper bounds, on cpu (BOUNDS_ON_CPU): the weights are read once, without the
 * probe's, and not prepacked (a copy of every weight at session creation, for matrix-vector
 * products that gain nothing from it).
 */
async function dataFreeBounds(model: OnnxModel, structure: VitStructure, tokens: TokenStatistics | null): Promise<PlasticityBounds> {
  const steps = DEFAULT_BOUNDS_STEPS;
  const bytes = buildBoundsModel(model, structure, { steps });
  const outputs = await runOnce(bytes, { provider: 'cpu', externalDataFolder: model.dataFolder, prepackWeights: false });
  const values = Object.fromEntries(Object.entries(outputs).map(([name, tensor]) => [name, tensor.data as Float32Array]));
  return { ...combineBounds(structure, model, values, tokens, steps), executionProvider: { used: 'cpu', reason: BOUNDS_ON_CPU } };
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
