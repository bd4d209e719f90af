// PairMeasurer: the onnxruntime sessions of one analysis and its execution provider. A GPU
// provider's first batches are checked against cpu, and a GPU provider that fails or disagrees
// gives way to cpu (under auto) without losing the pairs already checked.
import { ModelFileError } from '../core/errors';
import { TOKEN_STATISTICS_PAIRS, tokenStatistics } from '../core/bounds/plasticityBounds';
import { PROBE_DENOMINATOR, PROBE_FINAL_OUTPUT, PROBE_INPUTS, PROBE_OUTPUT } from '../core/probe/probeModels';
import { ExecutionProviderName, ProviderAttempt, TokenStatistics } from '../core/report/reportSchema';
import { VitStructure } from '../core/vit/vitStructure';
import { describeGpuAdapter } from './gpuAdapter';
import { concatFloats, ImageEmbedder } from './imageEmbedder';
import { describeOrtError, ort, PROVIDER_AGREEMENT, providerFailure, worstRelativeDifference } from './onnxRuntime';
import { MeasurerModels, openSessions, releaseSessions, Sessions } from './probeSessions';
import { round } from './reportRounding';
import { AnalysisRequest } from './workerProtocol';

export interface Measurement {
  ratios: Float32Array;
  distances: Float32Array;
  /** The last block's output as the probe rebuilds it, reference rows [count, tokens, d]. */
  rebuiltFinal: Float32Array | undefined;
  /** The pairs' embeddings [count, tokens, d], for the token statistics. */
  embeddings: { reference: Float32Array; target: Float32Array };
}

/** What one batch gave: its measurement, or that the run moved to cpu and measures again from pair `resumeAt`. */
export type BatchOutcome = { kind: 'measured'; measurement: Measurement } | { kind: 'restart'; resumeAt: number };

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
