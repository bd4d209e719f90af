// One analysis from file to report, run inside the worker process: read, discover, prepare
// inputs, choose a provider, compile the embedder and probe, measure pairs in batches.
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { CancelledError, ModelFileError, UsageError } from '../core/errors';
import { IMAGENET_MEAN, IMAGENET_STD, openPairSource, PairSource, PreprocessOptions } from '../core/inputs/pairSource';
import { OnnxModel, readOnnxModel, releaseFileBytes } from '../core/onnx/onnxModel';
import { architectureOf, modelFacts } from '../core/report/modelDescription';
import {
  buildEmbedderModel,
  buildInContextProbe,
  buildIsolatedProbe,
  EMBEDDER_OUTPUT,
  PROBE_DENOMINATOR,
  PROBE_FINAL_OUTPUT,
  PROBE_INPUTS,
  PROBE_OUTPUT,
  ProbeModel,
} from '../core/probe/probeModels';
import { buildBoundsModel, DEFAULT_BOUNDS_ITERATIONS } from '../core/bounds/boundsModel';
import { combineBounds, tokenStatistics } from '../core/bounds/plasticityBounds';
import { blockReports, summarize } from '../core/report/buildReport';
import { ExecutionProviderName, PlasticityBounds, PlasticityReport, REPORT_SCHEMA_VERSION, TokenStatistics } from '../core/report/reportSchema';
import { TOOL_VERSION } from '../core/toolVersion';
import { discoverVit } from '../core/vit/discoverVit';
import { COMPONENTS, VitStructure } from '../core/vit/vitStructure';
import { chooseExecutionProvider, createSession, describeOrtError, ONNXRUNTIME_VERSION, ort, SessionOptions } from './onnxRuntime';
import { AnalysisProgress, AnalysisRequest } from './workerProtocol';

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
  const pairs = await openPairSource({ reference: request.reference, target: request.target, pairs: request.pairs, seed: request.seed }, preprocess);

  report('providers', 'Choosing an execution provider');
  const provider = await chooseExecutionProvider(request.executionProvider);
  await checkCancelled();

  report('compiling', `Preparing the probe on ${provider.used}`, { executionProvider: provider.used });
  const measurer = await PairMeasurer.create(model, structure, request, provider.used);
  await checkCancelled();

  const warnings: string[] = [];
  if (pairs.kind === 'synthetic') {
    warnings.push('Inputs are synthetic images: the numbers describe the model on generated patterns, not on your data. Give --reference and --target image folders.');
  }
  const measureStarted = performance.now();
  const perPair: Float64Array[] = [];
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
        warnings.push(`Pair ${done + i} (${batch.names[i]}) was left out: its two inputs give the same embedding, so no ratio exists.`);
        continue;
      }
      perPair.push(Float64Array.from(ratios.subarray(i * columns, (i + 1) * columns)));
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
  const bounds = await dataFreeBounds(model, structure, measurer.tokenStatistics ?? null);
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

function preprocessOptions(request: AnalysisRequest, structure: VitStructure, model: OnnxModel): PreprocessOptions {
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
}

/** Owns the onnxruntime sessions of one analysis. */
class PairMeasurer {
  /** Embedding layout: true when the model keeps tokens first ([tokens, batch, d], as OpenAI CLIP). */
  private tokensFirst: boolean | undefined;
  tokens = 0;
  tokenStatistics: TokenStatistics | undefined;
  private checked = false;

  private constructor(
    private readonly modelName: string,
    private readonly structure: VitStructure,
    private readonly request: AnalysisRequest,
    private readonly embedderBytes: Uint8Array,
    private readonly probeModel: ProbeModel,
    private readonly externalDataFolder: string,
    private sessions: Sessions,
  ) {}

  get provider(): ExecutionProviderName {
    return this.sessions.provider;
  }

  static async create(model: OnnxModel, structure: VitStructure, request: AnalysisRequest, provider: ExecutionProviderName): Promise<PairMeasurer> {
    const folder = model.dataFolder;
    const inContext = request.mode === 'in-context';
    const probeModel = inContext ? buildInContextProbe(model, structure) : buildIsolatedProbe(model, structure);
    // In-context mode rebuilds the blocks' forward pass, so it checks it against the model's own.
    const embedderBytes = buildEmbedderModel(model, structure, inContext ? [structure.blocks[structure.blocks.length - 1].output] : []);
    const name = path.basename(model.filePath);
    // Both models are built: the weights now live only in onnxruntime (peak memory stays near the file size).
    releaseFileBytes(model);
    (globalThis as { gc?: () => void }).gc?.();
    const measurer = new PairMeasurer(name, structure, request, embedderBytes, probeModel, folder, undefined as unknown as Sessions);
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
    const x = await this.embed(sessions.embedder, reference, checkBlocks);
    const y = await this.embed(sessions.embedder, target, false);
    // n, r and s_min for the data-free bounds, from the first pairs' embeddings.
    this.tokenStatistics ??= tokenStatistics(concat([x.embedding, y.embedding]), 2 * count, this.tokens, this.structure.hiddenSize);
    const shape = [count, this.tokens, this.structure.hiddenSize];
    const outputs = await sessions.probe.run({
      ...sessions.constants,
      [PROBE_INPUTS.reference]: new ort.Tensor('float32', x.embedding, shape),
      [PROBE_INPUTS.target]: new ort.Tensor('float32', y.embedding, shape),
    });
    if (x.final) this.checkRebuiltBlocks(x.final, outputs[PROBE_FINAL_OUTPUT].data as Float32Array);
    return { ratios: outputs[PROBE_OUTPUT].data as Float32Array, distances: outputs[PROBE_DENOMINATOR].data as Float32Array };
  }

  /** Runs the images through the model's own embedding; returns [count, tokens, d] (and the last block's outputs when asked). */
  private async embed(embedder: ort.InferenceSession, images: Float32Array[], withFinal: boolean): Promise<{ embedding: Float32Array; final?: Float32Array }> {
    const d = this.structure.hiddenSize;
    const [height, width] = this.imageSize();
    const channels = this.structure.channels;
    const imageLength = channels * height * width;
    const embeddings: Float32Array[] = [];
    const finals: Float32Array[] = [];
    for (let start = 0; start < images.length; ) {
      // The first image runs alone to learn the layout; fixed-batch models always run one by one.
      const perRun = this.structure.dynamicBatch && this.tokensFirst !== undefined ? images.length - start : 1;
      const group = images.slice(start, start + perRun);
      const input = new Float32Array(group.length * imageLength);
      group.forEach((image, i) => input.set(image, i * imageLength));
      const outputs = await embedder.run({ [this.structure.inputName]: new ort.Tensor('float32', input, [group.length, channels, height, width]) });
      const embedding = outputs[EMBEDDER_OUTPUT];
      this.learnLayout(embedding.dims, group.length);
      embeddings.push(this.toPairsFirst(embedding.data as Float32Array, group.length, d));
      if (withFinal) finals.push(this.toPairsFirst(outputs[PROBE_FINAL_OUTPUT].data as Float32Array, group.length, d));
      start += group.length;
    }
    return { embedding: concat(embeddings), final: withFinal ? concat(finals) : undefined };
  }

  private imageSize(): [number, number] {
    const shape = this.structure.inputShape;
    return typeof shape[2] === 'number' && typeof shape[3] === 'number' ? [shape[2], shape[3]] : this.request.size!;
  }

  private learnLayout(dims: readonly number[], batch: number): void {
    if (this.tokensFirst !== undefined) return;
    const d = this.structure.hiddenSize;
    if (dims.length === 2 && batch === 1 && dims[1] === d) {
      this.tokensFirst = false;
      this.tokens = dims[0];
    } else if (dims.length === 3 && dims[2] === d && batch === 1 && (dims[0] === 1 || dims[1] === 1)) {
      this.tokensFirst = dims[0] !== 1;
      this.tokens = this.tokensFirst ? dims[0] : dims[1];
    } else {
      throw new ModelFileError(`${this.modelName}: the tensor entering block 0 has shape [${dims.join(', ')}], not [batch, tokens, ${d}]; this layout is not supported.`);
    }
  }

  private toPairsFirst(data: Float32Array, batch: number, d: number): Float32Array {
    if (!this.tokensFirst || batch === 1) return data;
    const tokens = this.tokens;
    const out = new Float32Array(data.length);
    for (let t = 0; t < tokens; t++) for (let b = 0; b < batch; b++) out.set(data.subarray((t * batch + b) * d, (t * batch + b + 1) * d), (b * tokens + t) * d);
    return out;
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

/** The bounds the weights alone give, before any measurement (no token statistics: no MHA bound). */
export async function dataFreeBoundsOfFile(modelPath: string): Promise<PlasticityBounds> {
  const model = readOnnxModel(modelPath);
  return dataFreeBounds(model, discoverVit(model), null);
}

/** The paper's weight-only upper bounds (on cpu: the weights are read once, without the probe's). */
async function dataFreeBounds(model: OnnxModel, structure: VitStructure, tokens: TokenStatistics | null): Promise<PlasticityBounds> {
  const iterations = DEFAULT_BOUNDS_ITERATIONS;
  const { bytes } = buildBoundsModel(model, structure, { iterations });
  const outputs = await runOnce(bytes, { provider: 'cpu', externalDataFolder: model.dataFolder });
  const spectral = Object.fromEntries(Object.entries(outputs).map(([name, tensor]) => [name, tensor.data as Float32Array]));
  return combineBounds(structure, model, spectral, tokens, iterations);
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

function concat(parts: Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0];
  const out = new Float32Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

