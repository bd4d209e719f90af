// One analysis from file to report, run inside the worker process: read, discover, prepare
// inputs, choose a provider, compile the embedder and probe, measure pairs in batches.
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { CancelledError, InputDataError, ModelFileError, UsageError } from '../core/errors';
import { IMAGENET_MEAN, IMAGENET_STD, openPairSource, PairSource, PairSpec, PreprocessOptions } from '../core/inputs/pairSource';
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
import { blockReportsFromStatistics, Statistics, summarize } from '../core/report/buildReport';
import { RunningStatistics } from '../core/report/runningStatistics';
import { MIN_SETTLED_PAIRS, SettledRule, SettledVerdict, settledVerdict } from '../core/report/settledRanking';
import {
  ExecutionProviderName,
  MeasureMode,
  PairRange,
  PlasticityBounds,
  PlasticityReport,
  ProviderAttempt,
  REPORT_SCHEMA_VERSION,
  StoppingReport,
  TokenStatistics,
} from '../core/report/reportSchema';
import { TOOL_VERSION } from '../core/toolVersion';
import { graphKindSummary, measuresAnotherPrecision } from '../core/graph/canonicalGraph';
import { discoverVit } from '../core/vit/discoverVit';
import { COMPONENTS, VitStructure } from '../core/vit/vitStructure';
import { describeGpuAdapter } from './gpuAdapter';
import {
  chooseExecutionProvider,
  createSession,
  describeOrtError,
  ONNXRUNTIME_VERSION,
  ort,
  PROVIDER_AGREEMENT,
  ProviderChoice,
  providerFailure,
  SessionOptions,
  worstRelativeDifference,
} from './onnxRuntime';
import { concatFloats, ImageEmbedder } from './imageEmbedder';
import { LoaderSetup, loadInThisThread, PairPrefetcher } from './pairPrefetcher';
import { AnalysisProgress, AnalysisRequest, BoundsRequest } from './workerProtocol';
import { isMultiTarget, runMultiTargetAnalysis } from './multiTargetRunner';

export interface AnalysisHooks {
  onProgress(progress: AnalysisProgress): void;
  /** Polled between batches; true stops the run with CancelledError. */
  isCancelled(): boolean;
}

/** Tells the host which phase the analysis is in (progress events). */
export type PhaseReporter = (phase: AnalysisProgress['phase'], message: string, extra?: Partial<AnalysisProgress>) => void;

/** Lets queued messages (a cancel) in between blocking native calls. */
const yieldToEvents = () => new Promise<void>((resolve) => setImmediate(resolve));

/** What every analysis does first: progress and cancel plumbing, the model read (and hashed once), its ViT found. */
export async function prepareAnalysis(request: AnalysisRequest, hooks: AnalysisHooks) {
  const started = performance.now();
  const checkCancelled = async () => {
    await yieldToEvents();
    if (hooks.isCancelled()) throw new CancelledError();
  };
  const report: PhaseReporter = (phase, message, extra = {}) => hooks.onProgress({ phase, message, pairsDone: 0, pairsTotal: 0, pairsPerSecond: 0, ...extra });

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
  const preprocess = preprocessOptions(request, structure, model);
  return { started, checkCancelled, report, model, loadMs, sha256, structure, discoverMs, preprocess };
}

/** What every report opens with: its schema, the tool that made it, and the model it measured. */
export function reportHeader(
  model: OnnxModel,
  sha256: string,
  structure: VitStructure,
  tokens: number,
  imageSize: [number, number],
): Pick<PlasticityReport, 'schemaVersion' | 'tool' | 'createdAt' | 'model'> {
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    tool: { name: 'plasticity-lens', version: TOOL_VERSION, onnxruntime: ONNXRUNTIME_VERSION },
    createdAt: new Date().toISOString(),
    model: { ...modelFacts(model, sha256), architecture: architectureOf(structure, tokens, imageSize) },
  };
}

/** The models a PairMeasurer opens sessions on (see PairMeasurer.buildModels). */
export interface MeasurerModels {
  modelName: string;
  externalDataFolder: string;
  embedderBytes: Uint8Array;
  /**
   * In-context mode: the model's own nodes from the image to the last block's output, run once
   * on the first reference image to check the probe's rebuilt forward pass.
   */
  blockCheckBytes?: Uint8Array;
  /** The probe per flavor: 'cpu' for cpu sessions, 'portable' for a GPU provider's. */
  probeModels: Partial<Record<ProbeFlavor, ProbeModel>>;
}

/**
 * From a read model to a measurer with open sessions, and the weights' part of the bounds. The
 * order is for memory: the probe is built while the file's bytes are at hand, the bytes are
 * dropped, and the bounds run before the probe's sessions load the weights. Run after measuring,
 * the bounds came on top of the heap the measuring had freed but the process kept: ViT-B/16
 * peaked at 2.2x the file.
 */
export async function prepareMeasuring(
  setup: {
    model: OnnxModel;
    structure: VitStructure;
    request: AnalysisRequest;
    imageSize: [number, number];
    provider: ProviderChoice;
    /** The run's pairs: in-context mode checks its rebuilt blocks on the first reference image. */
    pairs: { load(index: number): Promise<{ reference: Float32Array }> };
  },
  compilingMessage: string,
  report: PhaseReporter,
  checkCancelled: () => Promise<void>,
): Promise<{ measurer: PairMeasurer; weightBounds: WeightBoundValues; boundsMs: number }> {
  const { model, structure, request, imageSize, provider, pairs } = setup;
  const models = PairMeasurer.buildModels(model, structure, request, provider.used);
  report('bounds', 'Computing the data-free upper bounds');
  const boundsStarted = performance.now();
  const weightBounds = await weightBoundValues(model, structure);
  const boundsMs = performance.now() - boundsStarted;
  await checkCancelled();

  report('compiling', compilingMessage, { executionProvider: provider.used });
  // Before the probe's sessions open: loaded beside them, this second copy of the weights was
  // in-context mode's peak memory.
  const modelFinal = models.blockCheckBytes ? await modelOwnFinalOutput(models.blockCheckBytes, models, structure, imageSize, (await pairs.load(0)).reference) : undefined;
  await checkCancelled();
  const measurer = await PairMeasurer.open(models, structure, request, imageSize, provider.used, provider.tried, modelFinal);
  await checkCancelled();
  return { measurer, weightBounds, boundsMs };
}

export async function runAnalysis(request: AnalysisRequest, hooks: AnalysisHooks): Promise<PlasticityReport> {
  if (isMultiTarget(request)) return runMultiTargetAnalysis(request, hooks);
  const { started, checkCancelled, report, model, loadMs, sha256, structure, discoverMs, preprocess } = await prepareAnalysis(request, hooks);

  report('inputs', 'Opening input images');
  const pairSpec = pairSpecOf(request);
  const pairs = await openPairSource(pairSpec, preprocess);

  report('providers', 'Choosing an execution provider');
  const provider = await chooseExecutionProvider(request.executionProvider);
  await checkCancelled();

  const { measurer, weightBounds, boundsMs } = await prepareMeasuring(
    { model, structure, request, imageSize: preprocess.size, provider, pairs },
    `Preparing the probe on ${provider.used}`,
    report,
    checkCancelled,
  );

  const warnings: string[] = [];
  if (pairs.kind === 'synthetic') {
    warnings.push('Inputs are synthetic images: the numbers describe the model on generated patterns, not on your data. Give --reference and --target image folders.');
  }
  if (measuresAnotherPrecision(structure.kind)) {
    warnings.push(`The model stores ${graphKindSummary(structure.kind)}.`);
  }
  const measureStarted = performance.now();
  const cpuStarted = process.cpuUsage();
  const measured = await measurePairs(pairs, measurer, structure, request, { spec: pairSpec, preprocess }, report, checkCancelled);
  const measureMs = performance.now() - measureStarted;
  const measureCpu = process.cpuUsage(cpuStarted);
  warnings.push(...measured.warnings);
  await measurer.release();
  const tokens = measurer.tokenStatistics;
  const bounds = boundsOf(model, structure, weightBounds, tokens && { ...tokens, synthetic: pairs.kind === 'synthetic' });
  const blocks = blockReportsFromStatistics(structure, measured.statistics.all());
  const pairsCounted = measured.statistics.count;

  return {
    ...reportHeader(model, sha256, structure, measurer.tokens, preprocess.size),
    settings: {
      mode: request.mode,
      pairs: pairsCounted,
      pairIndices: measured.pairIndices,
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
      pairsPerSecond: round((measured.pairsMeasured / measureMs) * 1000, 3),
      boundsMs: round(boundsMs),
      inputsWaitMs: round(measured.inputsWaitMs),
      measureCpuMs: round((measureCpu.user + measureCpu.system) / 1000),
    },
    stopping: measured.stopping,
    warnings,
    bounds,
  };
}

export const round = (value: number, digits = 1) => Number(value.toFixed(digits));

export function preprocessOptions(request: Pick<AnalysisRequest, 'size' | 'mean' | 'std'>, structure: VitStructure, model: OnnxModel): PreprocessOptions {
  const size = structure.imageSize ?? request.size;
  if (!size) {
    throw new UsageError(`${path.basename(model.filePath)} has a symbolic image size (${structure.inputShape.join('x')}); give it with --size H,W.`);
  }
  if (structure.imageSize && request.size && (request.size[0] !== size[0] || request.size[1] !== size[1])) {
    throw new UsageError(`${path.basename(model.filePath)} takes ${size[0]}x${size[1]} images; --size ${request.size.join(',')} does not match.`);
  }
  return { size, channels: structure.channels, mean: request.mean ?? IMAGENET_MEAN, std: request.std ?? IMAGENET_STD };
}

/** Where the pairs come from; under --until-settled, synthetic inputs run up to the paper's number of pairs by default. */
function pairSpecOf(request: AnalysisRequest): PairSpec {
  const synthetic = request.reference === undefined && request.target === undefined;
  const pairs = request.pairs ?? (request.untilSettled && synthetic ? UNTIL_SETTLED_SYNTHETIC_PAIRS : undefined);
  return { reference: request.reference, target: request.target, pairs, first: request.pairsFrom, seed: request.seed };
}

/** The paper's number of pairs per model: --until-settled's maximum on synthetic inputs when --pairs is not given. */
export const UNTIL_SETTLED_SYNTHETIC_PAIRS = 12_800;

/** Names of left-out pairs kept for the warnings; beyond it they are counted only (memory stays constant). */
const LEFT_OUT_NAMED = 20;

interface MeasuredPairs {
  /** Running statistics per (block, component), block-major, then per component type (each pair's mean over blocks). */
  statistics: RunningStatistics;
  /** Pairs measured, left-out ones included. */
  pairsMeasured: number;
  /** Indices, among all the inputs' pairs, of the pairs counted in `statistics`. */
  pairIndices: PairRange[];
  stopping: StoppingReport;
  warnings: string[];
  inputsWaitMs: number;
}

/**
 * The measuring loop: batches of pairs (decoded one batch ahead, see PairPrefetcher) through the
 * measurer, folded into running statistics, so memory stays the same for any number of pairs.
 * Pairs a GPU provider measured without a check against cpu are held apart until checked, and
 * dropped when the run moves to cpu. Under --until-settled the loop stops once the ranking is
 * settled (settledVerdict).
 */
async function measurePairs(
  pairs: PairSource,
  measurer: PairMeasurer,
  structure: VitStructure,
  request: AnalysisRequest,
  loader: LoaderSetup,
  report: PhaseReporter,
  checkCancelled: () => Promise<void>,
): Promise<MeasuredPairs> {
  const batchPairs = request.batchPairs ?? defaultBatchPairs(structure, request.mode);
  const columns = COMPONENTS.length * structure.blocks.length;
  const width = columns + COMPONENTS.length;
  // Left-out pairs (identical inputs): every index (the report's pairIndices are exact), names of the first only.
  const newTally = () => ({ statistics: new RunningStatistics(width), leftOut: [] as number[], names: [] as string[] });
  // `counted`: pairs 0 .. countedUpTo - 1 (measured on cpu or checked against it); `unchecked`: the pairs after them.
  const counted = newTally();
  let unchecked = newTally();
  let countedUpTo = 0;
  const row = new Float64Array(width);
  const rule: SettledRule | undefined = request.untilSettled ? { tolerance: request.tolerance } : undefined;
  let verdict: SettledVerdict = { settled: false };
  const measureStarted = performance.now();
  const prefetcher = new PairPrefetcher(pairs, loader, batchPairs);
  let done = 0;
  try {
    while (done < pairs.count) {
      const count = Math.min(batchPairs, pairs.count - done);
      const batch = await prefetcher.batch(done, count);
      await checkCancelled();
      const outcome = await measurer.measure(batch.reference, batch.target, done, count, done + count < pairs.count);
      if (outcome.kind === 'restart') {
        // The GPU provider failed under `auto`: the run continues on cpu from the last pair checked against it.
        if (outcome.resumeAt !== countedUpTo) throw new Error(`the run would resume at pair ${outcome.resumeAt}, but pairs up to ${countedUpTo} are counted`);
        unchecked = newTally();
        done = outcome.resumeAt;
        report('compiling', `Continuing on cpu from pair ${done}`, { pairsDone: done, pairsTotal: pairs.count, executionProvider: measurer.provider });
        continue;
      }
      const { ratios, distances } = outcome.measurement;
      for (let i = 0; i < count; i++) {
        if (!(distances[i] > 0)) {
          unchecked.leftOut.push(done + i);
          if (counted.names.length + unchecked.names.length < LEFT_OUT_NAMED) unchecked.names.push(batch.names[i]);
          continue;
        }
        pairRow(ratios, i * columns, structure.blocks.length, row);
        unchecked.statistics.add(row);
      }
      done += count;
      if (measurer.pairsChecked >= done) {
        counted.statistics.merge(unchecked.statistics);
        counted.leftOut.push(...unchecked.leftOut);
        counted.names.push(...unchecked.names);
        unchecked = newTally();
        countedUpTo = done;
      }
      const all = counted.statistics.copy();
      all.merge(unchecked.statistics);
      if (rule) verdict = settledVerdict(typeColumns(all, columns), all.all().slice(0, columns), rule);
      reportMeasured(report, { done, total: pairs.count, started: measureStarted, untilSettled: rule !== undefined, settled: verdict.settled, provider: measurer.provider });
      await checkCancelled();
      if (verdict.settled) break;
    }
  } finally {
    await prefetcher.close();
  }

  const statistics = counted.statistics;
  statistics.merge(unchecked.statistics);
  const leftOut = [...counted.leftOut, ...unchecked.leftOut];
  const names = [...counted.names, ...unchecked.names];
  if (statistics.count === 0) {
    throw new UsageError('No pair of inputs differs, so plasticity cannot be measured; give reference and target images that are not identical.');
  }
  const warnings = names.map((name, i) => `Pair ${pairs.first + leftOut[i]} (${name}) was left out: its two inputs give the same embedding, so no ratio exists.`);
  if (leftOut.length > names.length) warnings.push(`${leftOut.length - names.length} more pairs were left out for the same reason.`);
  return {
    statistics,
    pairsMeasured: done,
    pairIndices: rangesWithout(pairs.first, done, leftOut),
    stopping: stoppingReport(rule, verdict, done, pairs.count),
    warnings,
    inputsWaitMs: prefetcher.waitedMs,
  };
}

/**
 * The progress event after a batch: pairs done of the most there will be, the rate, and the time
 * left (none once the ranking is settled). `detail` ends the message.
 */
export function reportMeasured(
  report: PhaseReporter,
  progress: { done: number; total: number; started: number; untilSettled: boolean; settled: boolean; provider: ExecutionProviderName; detail?: string },
): void {
  const { done, total } = progress;
  const rate = done / ((performance.now() - progress.started) / 1000);
  report('measuring', `Measured ${done} of ${progress.untilSettled ? 'at most ' : ''}${total} pairs${progress.detail ?? ''}`, {
    pairsDone: done,
    pairsTotal: total,
    pairsPerSecond: rate,
    etaSeconds: progress.settled ? 0 : (total - done) / rate,
    executionProvider: progress.provider,
    ...(progress.untilSettled ? { untilSettled: true } : {}),
  });
}

/** One pair's row: its ratios (block-major), then per component type the mean over blocks. */
export function pairRow(ratios: ArrayLike<number>, offset: number, blocks: number, row: Float64Array): void {
  const types = COMPONENTS.length;
  const columns = blocks * types;
  row.fill(0, columns);
  for (let c = 0; c < columns; c++) {
    const value = ratios[offset + c];
    row[c] = value;
    row[columns + (c % types)] += value / blocks;
  }
}

export function typeColumns(statistics: RunningStatistics, columns: number): Statistics[] {
  return COMPONENTS.map((_, index) => statistics.column(columns + index));
}

export function stoppingReport(rule: SettledRule | undefined, verdict: SettledVerdict, measured: number, maxPairs: number): StoppingReport {
  if (!rule) return { rule: 'all-pairs', reason: 'all-pairs', pairsMeasured: measured, maxPairs, message: `measured all ${measured} pairs asked for` };
  const settings = { ...(rule.tolerance !== undefined ? { tolerance: rule.tolerance } : {}), minPairs: rule.minPairs ?? MIN_SETTLED_PAIRS };
  if (verdict.settled) return { rule: 'until-settled', reason: verdict.reason, pairsMeasured: measured, maxPairs, message: verdict.message, ...settings };
  return {
    rule: 'until-settled',
    reason: 'max-pairs',
    pairsMeasured: measured,
    maxPairs,
    message: `not settled within the maximum of ${maxPairs} pairs: the 95% intervals of some component types still overlap${rule.tolerance !== undefined ? ` and some means are not yet within ${rule.tolerance * 100}%` : ''}`,
    ...settings,
  };
}

/** Pair indices first .. first + count - 1 without the left-out ones (offsets from first, ascending), as half-open ranges. */
function rangesWithout(first: number, count: number, leftOut: number[]): PairRange[] {
  const ranges: PairRange[] = [];
  let start = 0;
  for (const skipped of [...leftOut, count]) {
    if (skipped > start) ranges.push([first + start, first + skipped]);
    start = skipped + 1;
  }
  return ranges;
}

/**
 * Pairs per probe run: about 36 MB of activations per run. Isolated mode holds one block's
 * attention scores and projections for the pair's two images: on ViT-B/16 that is 4 pairs, as
 * fast per pair as 7 and 150 MB lighter. In-context mode runs the blocks one after another, each
 * followed by its ratios, so it holds one block's scores and MLP activations with the
 * differences and norms around them, about 8 times their size: on ViT-B/16 each pair more in a
 * run added 65 to 75 MB (578, 653, 784 MiB while measuring at 1, 2 and 4 pairs, equally fast per
 * pair), so it runs one pair.
 */
export function defaultBatchPairs(structure: VitStructure, mode: MeasureMode): number {
  const tokens = structure.tokens ?? 197;
  const scores = structure.heads * tokens * tokens;
  const perPair = mode === 'in-context' ? 2 * 8 * (scores + tokens * structure.mlpSize) * 4 : 2 * (scores + 4 * tokens * structure.hiddenSize) * 4;
  return Math.max(1, Math.min(16, Math.floor((36 * 2 ** 20) / perPair)));
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
  /** The last block's output as the probe rebuilds it, reference rows [count, tokens, d]. */
  rebuiltFinal: Float32Array | undefined;
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
export class PairMeasurer {
  /** Embeddings of the first pairs, per batch, until there are enough for token statistics. */
  private statisticsBatches: { start: number; count: number; reference: Float32Array; target: Float32Array }[] = [];
  /** Pairs 0 .. checkedPairs - 1 were measured on cpu or checked against it. */
  private checkedPairs = 0;
  /** Batches still to check against cpu before the GPU provider runs alone. */
  private checksLeft: number;
  private cpuSessions: Sessions | undefined;

  private constructor(
    private readonly models: MeasurerModels,
    private readonly structure: VitStructure,
    private readonly request: AnalysisRequest,
    private readonly embedder: ImageEmbedder,
    private sessions: Sessions,
    /** The report's `tried`: every provider attempt, in order, the one in use last. */
    readonly tried: ProviderAttempt[],
    /** In-context mode: the model's own last-block output for the first reference image [tokens, d]. */
    private readonly modelFinal: Float32Array | undefined,
  ) {
    this.checksLeft = request.executionProvider === 'auto' ? 2 : 1;
  }

  get provider(): ExecutionProviderName {
    return this.sessions.provider;
  }

  /** Pairs 0 .. pairsChecked - 1 were measured on cpu or checked against it (a move to cpu keeps them). */
  get pairsChecked(): number {
    return this.checkedPairs;
  }

  /** Tokens per image, known after the first batch. */
  get tokens(): number {
    return this.embedder.tokens;
  }

  /**
   * The embedder and probe models for `provider` (their weights referenced in the model's file),
   * built while the file's bytes are at hand; those bytes are then dropped: from here on the
   * weights live only in onnxruntime.
   */
  static buildModels(model: OnnxModel, structure: VitStructure, request: AnalysisRequest, provider: ExecutionProviderName): MeasurerModels {
    const inContext = request.mode === 'in-context';
    const targets = isMultiTarget(request) ? request.targets!.length : 1;
    // cpu always (it checks a GPU provider, and is where a failing one falls back to).
    const buildProbe = (flavor: ProbeFlavor) =>
      inContext ? buildInContextProbe(model, structure, { flavor, targets }) : buildIsolatedProbe(model, structure, { flavor, targets });
    const probeModels: Partial<Record<ProbeFlavor, ProbeModel>> = { cpu: buildProbe('cpu') };
    if (provider !== 'cpu') probeModels.portable = buildProbe('portable');
    const embedderBytes = buildEmbedderModel(model, structure, []);
    // In-context mode rebuilds the blocks' forward pass, so it checks it against the model's own.
    const blockCheckBytes = inContext ? buildEmbedderModel(model, structure, [structure.blocks[structure.blocks.length - 1].output]) : undefined;
    dropFileBytes(model);
    return { modelName: path.basename(model.filePath), externalDataFolder: model.dataFolder, embedderBytes, blockCheckBytes, probeModels };
  }

  /** Opens the sessions of built models on `provider`, or on cpu when a GPU provider cannot take them. */
  static async open(
    models: MeasurerModels,
    structure: VitStructure,
    request: AnalysisRequest,
    imageSize: [number, number],
    provider: ExecutionProviderName,
    tried: ProviderAttempt[],
    modelFinal?: Float32Array,
  ): Promise<PairMeasurer> {
    const name = models.modelName;
    const embedder = new ImageEmbedder(name, structure, imageSize);
    let sessions: Sessions;
    try {
      sessions = await openSessions(models, provider);
    } catch (error) {
      if (provider === 'cpu') throw new ModelFileError(`${name} could not be prepared for onnxruntime on cpu: ${describeOrtError(error)}`);
      const why = `could not prepare the probe: ${describeOrtError(error)}`;
      if (request.executionProvider !== 'auto') throw providerFailure(provider, `${name} ${why}`);
      const measurer = new PairMeasurer(models, structure, request, embedder, await openSessions(models, 'cpu'), [...tried], modelFinal);
      measurer.recordFallback(provider, why);
      return measurer;
    }
    return new PairMeasurer(models, structure, request, embedder, sessions, [...tried], modelFinal);
  }

  async release(): Promise<void> {
    await releaseSessions(this.sessions);
    if (this.cpuSessions) await releaseSessions(this.cpuSessions);
    this.cpuSessions = undefined;
  }

  /**
   * Ratios [count, blocks * 5] and input distances [count] for pairs start .. start + count - 1
   * (`more`: pairs follow this batch), or where to start again after moving to cpu. A
   * multi-target measurer takes K * count target images (each target's count in turn) and
   * returns K * count rows in the same order.
   */
  async measure(reference: Float32Array[], target: Float32Array[], start: number, count: number, more: boolean): Promise<BatchOutcome> {
    const provider = this.sessions.provider;
    const checkBlocks = start === 0 && this.request.mode === 'in-context';
    let result: Measurement;
    const started = performance.now();
    try {
      result = await this.measureOn(this.sessions, reference, target, count);
    } catch (error) {
      if (provider === 'cpu' || error instanceof ModelFileError) throw error;
      return { kind: 'restart', resumeAt: await this.abandonGpu(provider, `failed on pairs ${start}-${start + count - 1}: ${describeOrtError(error)}`) };
    }
    const seconds = (performance.now() - started) / 1000;
    if (checkBlocks) this.checkRebuiltBlocks(result.rebuiltFinal);
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
    this.cpuSessions ??= await openSessions(this.models, 'cpu');
    const cpuStarted = performance.now();
    const cpuResult = await this.measureOn(this.cpuSessions, reference, target, count);
    const cpuSeconds = (performance.now() - cpuStarted) / 1000;
    const worst = worstRelativeDifference(result.ratios, cpuResult.ratios);
    if (!(worst < PROVIDER_AGREEMENT)) {
      return {
        kind: 'restart',
        resumeAt: await this.abandonGpu(provider, `disagreed with cpu on pairs ${start}-${start + count - 1} (relative difference ${worst.toExponential(1)})`),
      };
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
    if (this.request.executionProvider !== 'auto') throw providerFailure(provider, `${this.models.modelName} ${why}`);
    this.recordFallback(provider, why);
    await releaseSessions(this.sessions).catch(() => undefined);
    this.sessions = this.cpuSessions ?? (await openSessions(this.models, 'cpu'));
    this.cpuSessions = undefined;
    this.checksLeft = 0;
    const keep = this.checkedPairs;
    this.statisticsBatches = this.statisticsBatches.filter((entry) => entry.start < keep);
    return keep;
  }

  /** `tried` says that `provider` failed (`why`) and that the run goes on on cpu. */
  private recordFallback(provider: ExecutionProviderName, why: string): void {
    this.updateAttempt(provider, { ok: false, reason: why });
    this.tried.push({
      name: 'cpu',
      ok: true,
      reason: `fallback: ${provider} failed; ${this.checkedPairs > 0 ? `pairs 0-${this.checkedPairs - 1} (checked against cpu) kept, the rest measured on cpu` : 'every pair measured on cpu'}`,
    });
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

  private async measureOn(sessions: Sessions, reference: Float32Array[], target: Float32Array[], count: number): Promise<Measurement> {
    const x = await this.embedder.embed(sessions.embedder, reference, false);
    const y = await this.embedder.embed(sessions.embedder, target, false);
    const shape = [count, this.tokens, this.structure.hiddenSize];
    // Several targets: `target` holds each target's `count` images in turn, all against `reference`.
    const targetShape = [target.length, this.tokens, this.structure.hiddenSize];
    const outputs = await sessions.probe.run({
      ...sessions.constants,
      [PROBE_INPUTS.reference]: new ort.Tensor('float32', x.embedding, shape),
      [PROBE_INPUTS.target]: new ort.Tensor('float32', y.embedding, targetShape),
    });
    return {
      ratios: outputs[PROBE_OUTPUT].data as Float32Array,
      distances: outputs[PROBE_DENOMINATOR].data as Float32Array,
      rebuiltFinal: outputs[PROBE_FINAL_OUTPUT]?.data as Float32Array | undefined,
      embeddings: { reference: x.embedding, target: y.embedding },
    };
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

  /** Compares the probe's rebuilt last-block output for the first reference image with the model's own. */
  private checkRebuiltBlocks(rebuilt: Float32Array | undefined): void {
    const modelOutput = this.modelFinal;
    if (!modelOutput || !rebuilt) throw new Error("in-context mode: the model's own output or the rebuilt one is missing");
    let scale = 0;
    let worst = 0;
    for (let i = 0; i < modelOutput.length; i++) {
      scale = Math.max(scale, Math.abs(modelOutput[i]));
      worst = Math.max(worst, Math.abs(modelOutput[i] - rebuilt[i]));
    }
    if (worst > 1e-3 * Math.max(scale, 1)) {
      throw new ModelFileError(
        `${this.models.modelName}: in-context mode rebuilds the blocks' forward pass, but it differs from the model's own output (max difference ${worst.toExponential(2)}); the blocks hold parts it does not model (layer scale, extra norms). Use --mode isolated.`,
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

/** Frees the worker's copy of the model file (the worker runs with --expose-gc, so it goes at once). */
function dropFileBytes(model: OnnxModel): void {
  releaseFileBytes(model);
  (globalThis as { gc?: () => void }).gc?.();
}

/** Runs a model without inputs once and returns its outputs (the session is released at once). */
async function runOnce(bytes: Uint8Array, options: SessionOptions): Promise<Record<string, ort.Tensor>> {
  const session = await createSession(bytes, { ...options, graphOptimizationLevel: 'disabled', memoryArena: false });
  try {
    return await session.run({});
  } finally {
    await session.release();
  }
}

/**
 * In-context mode: the model's own last-block output [tokens, d] for one image, from its own
 * nodes run on cpu in a session opened for this once (graph unoptimised, no arena: it runs once).
 */
async function modelOwnFinalOutput(
  blockCheckBytes: Uint8Array,
  models: MeasurerModels,
  structure: VitStructure,
  imageSize: [number, number],
  image: Float32Array,
): Promise<Float32Array> {
  const session = await createSession(blockCheckBytes, {
    provider: 'cpu',
    externalDataFolder: models.externalDataFolder,
    graphOptimizationLevel: 'disabled',
    prepackWeights: false,
    memoryArena: false,
  });
  try {
    return (await new ImageEmbedder(models.modelName, structure, imageSize).embed(session, [image], true)).final!;
  } finally {
    await session.release();
  }
}

/** The embedder and probe sessions of built models on `provider` (and the probe's weight-only inputs). */
async function openSessions(models: MeasurerModels, provider: ExecutionProviderName): Promise<Sessions> {
  const options = { provider, externalDataFolder: models.externalDataFolder };
  const embedder = await createSession(models.embedderBytes, options);
  try {
    const probeModel = models.probeModels[provider === 'cpu' ? 'cpu' : 'portable']!;
    const constants = probeModel.precompute ? await runOnce(probeModel.precompute, options) : {};
    const probe = await createSession(probeModel.bytes, options);
    return { provider, embedder, probe, constants };
  } catch (error) {
    await embedder.release();
    throw error;
  }
}

async function releaseSessions(sessions: Sessions): Promise<void> {
  await sessions.embedder.release();
  await sessions.probe.release();
}
