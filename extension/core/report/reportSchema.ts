// The JSON report (schemaVersion 1): the one contract every consumer reads (command line, panel,
// hints, exports). Add fields freely; change or remove one only with a new schemaVersion.
import { Activation, ComponentName, ExtraParameter, Naming, NormPlacement } from '../vocabulary';

export const REPORT_SCHEMA_VERSION = 1;

export type { ExecutionProviderName, ExecutionProviderRequest, MeasureMode } from '../vocabulary';
import type { ExecutionProviderName, ExecutionProviderRequest, MeasureMode } from '../vocabulary';

/** Which family discovery recognised, and what is measured for it (vit/familyDescription.ts). */
export interface FamilyDescription {
  /** e.g. "DINOv2 (LayerScale, 4 register tokens)", "plain ViT". */
  family: string;
  /** One sentence per thing measured differently from, or in addition to, the paper's plain ViT. */
  measured: string[];
}

export interface ComponentStatistics {
  /** Mean over pairs of ||f(X) - f(Y)||_F / ||X - Y||_F. */
  mean: number;
  /** Sample standard deviation over pairs (n - 1 in the denominator). */
  std: number;
  /** mean ± 1.96 std / sqrt(n). */
  ci95: [number, number];
  n: number;
  parameters: string[];
  parameterCount: number;
}

export interface BlockReport {
  index: number;
  /** The block's framework module name, e.g. "blocks.3". */
  module: string;
  /** Framework module name per component, e.g. "blocks.3.attn". */
  modules: Record<ComponentName, string>;
  components: Record<ComponentName, ComponentStatistics>;
}

export interface ComponentSummary {
  /** Mean over blocks of the per-block means. */
  mean: number;
  /** 1 = most plastic. */
  rank: number;
  /** Parameters of this component type across all blocks. */
  parameterCount: number;
}

/**
 * Pair indices [first, end) (end excluded) among all the inputs' pairs, in increasing order: the
 * pairs a report's statistics hold (a pair left out for a zero distance is not in them).
 */
export type PairRange = [number, number];

export interface ProviderAttempt {
  name: ExecutionProviderName;
  ok: boolean;
  /** Why it was not used (unavailable, failed, disagreed with cpu, slower than cpu), or that it ran. */
  reason: string;
  /** The GPU adapter this provider found, in words, where known (WebGPU on Linux: its Vulkan drivers). */
  adapter?: string;
  /** Seconds per pair measured on the same batch as cpu, when the choice was made by timing. */
  secondsPerPair?: number;
}

export interface PlasticityReport {
  schemaVersion: typeof REPORT_SCHEMA_VERSION;
  tool: { name: 'plasticity-lens'; version: string; onnxruntime: string };
  createdAt: string;
  model: {
    path: string;
    sha256: string;
    sizeBytes: number;
    opset: number;
    irVersion: number;
    producer: string;
    parameterCount: number;
    inputs: { name: string; shape: (number | string)[] }[];
    outputs: { name: string; shape: (number | string)[] }[];
    architecture: {
      blocks: number;
      hiddenSize: number;
      heads: number;
      mlpSize: number;
      tokens: number;
      imageSize: [number, number];
      patchSize: [number, number] | null;
      norm: NormPlacement;
      activation: Activation;
      naming: Naming;
      embeddingOutput: string;
      /** How the file stores the model and what the engine did about it (absent in reports before 0.2). */
      graph?: GraphKindReport;
      /** Parameters of no component (LayerScale γ, register tokens) and the rule freeze plans assign them by; absent when the model has none. */
      extraParameters?: { rule: string; parameters: ExtraParameter[] };
      /** The family discovery recognised and what is measured for it (absent in reports before 0.3). */
      family?: FamilyDescription;
    };
  };
  settings: {
    mode: MeasureMode;
    pairs: number;
    /** Which pairs were measured (`--pairs-from` and `--pairs` choose them); absent in reports made before it was recorded. */
    pairIndices?: PairRange[];
    seed: number;
    inputs: {
      kind: 'folders' | 'split-folder' | 'synthetic';
      reference: string | null;
      target: string | null;
      /** True when inputs are generated images: numbers then say little about real data. */
      synthetic: boolean;
      /** Every target folder of a multi-target run (`target` is the first); absent for one target. */
      targets?: string[];
      notes: string[];
    };
    preprocessing: { size: [number, number]; mean: [number, number, number]; std: [number, number, number] };
    executionProvider: { requested: ExecutionProviderRequest; used: ExecutionProviderName; tried: ProviderAttempt[] };
  };
  components: ComponentName[];
  blocks: BlockReport[];
  summary: Record<ComponentName, ComponentSummary>;
  /**
   * measureMs: the measuring phase (images, embedding, probe), without the bounds, which take
   * boundsMs after it (older reports counted the bounds in measureMs); inputsWaitMs: the
   * part of measureMs spent waiting for images to be decoded (decoding overlaps the probe);
   * measureCpuMs: processor time of the analysis process over measureMs, all its threads.
   */
  timing: { loadMs: number; discoverMs: number; measureMs: number; totalMs: number; pairsPerSecond: number; boundsMs?: number; inputsWaitMs?: number; measureCpuMs?: number };
  /** How many pairs the run measured and why it stopped there (absent in older reports and in merged reports). */
  stopping?: StoppingReport;
  warnings: string[];
  /** The paper's data-free upper bounds (weights only, plus token statistics): bounds, never plasticity. */
  bounds?: PlasticityBounds;
  /** Present when the report was merged from shards (`plasticity-lens merge`): each shard as it was given. */
  mergedFrom?: MergedShard[];
  /**
   * A multi-target run (`analyze --target A --target B ...`): every target measured against the
   * same reference pairs, in the order given. The top-level `blocks`, `summary`,
   * `settings.pairs`, `settings.pairIndices` and `settings.inputs.target` are those of the first
   * target, so readers of single-target reports read a multi-target one as its first target's.
   */
  targets?: TargetReport[];
}

/** One target of a multi-target report: its statistics, as a single-target report would hold them. */
export interface TargetReport {
  /** Short and unique among the targets: the folder's name (numbered when two share one). */
  name: string;
  /** The folder as given. */
  folder: string;
  /** Pairs measured (a pair whose two embeddings are equal is left out, for this target only). */
  pairs: number;
  pairIndices: PairRange[];
  blocks: BlockReport[];
  summary: Record<ComponentName, ComponentSummary>;
  /** Component types, most plastic first (the order of summary's ranks). */
  ranking: ComponentName[];
  /** Mean over the measured pairs of ||X - Y||_F, X and Y the two images' embeddings: how far this target lies from the reference. */
  meanInputDistance: number;
  /** Sample standard deviation of ||X - Y||_F over the same pairs. */
  inputDistanceStd: number;
  /** Pairs left out for this target, and why. */
  warnings: string[];
}

/**
 * Why measuring stopped: every pair asked for was measured (`all-pairs`), or, under
 * `--until-settled`, the ranking of component types was settled (`ranking-separated`), every
 * mean reached the tolerance (`tolerance-reached`), or the maximum number of pairs was reached
 * first (`max-pairs`).
 */
export type StopReason = 'all-pairs' | 'ranking-separated' | 'tolerance-reached' | 'max-pairs';

export interface StoppingReport {
  rule: 'all-pairs' | 'until-settled';
  reason: StopReason;
  /** Pairs measured, those left out (identical inputs) included. */
  pairsMeasured: number;
  /** The most pairs the run would have measured. */
  maxPairs: number;
  /** The sentence the command line and the panel show. */
  message: string;
  /** Under until-settled: the relative tolerance on each mean, when one was given. */
  tolerance?: number;
  /** Under until-settled: the fewest pairs before a settled ranking may stop the run. */
  minPairs?: number;
}

export interface MergedShard {
  file: string;
  /** sha256 of the shard report's file. */
  sha256: string;
  createdAt: string;
  pairIndices: PairRange[];
  executionProvider: ExecutionProviderName;
}

export interface TokenStatistics {
  /** n: tokens per image. */
  tokens: number;
  /** r: RMS token norm, sqrt of the mean over all tokens of ||x_i||². */
  radius: number;
  /** s_min: the smallest per-token standard deviation over features (LayerNorm's biased one). */
  minTokenStd: number;
  images: number;
  /** True when the images were synthetic (no input folders given). */
  synthetic?: boolean;
}

export interface ComponentBound {
  bound: number;
  detail: Record<string, number>;
}

export interface PlasticityBounds {
  method: string;
  /** Lanczos steps on the widest matrices (d wide; a narrower matrix takes at most its width). */
  iterations: number;
  /**
   * Largest relative change of any eigenvalue estimate (λ = σ²) over the last step (Lanczos:
   * matrices no wider than the step count are spanned whole and count 0).
   */
  lastStepChange: number;
  tokens: TokenStatistics | null;
  /** Why there are no token statistics (no MHA bound) when inputs were asked for but could not be read. */
  tokensUnavailable?: string;
  blocks: { index: number; LN1: ComponentBound; MHA: ComponentBound | null; LN2: ComponentBound; FC1: ComponentBound; FC2: ComponentBound }[];
  /** Where the bounds model ran (always cpu), and why. */
  executionProvider?: { used: 'cpu'; reason: string };
}

export type ModelFacts = Omit<PlasticityReport['model'], 'architecture'>;
/** What kind of graph the model file is: plain float32, float16, 8-bit, fused. */
export interface GraphKindReport {
  /** Storage of the block weights: 'float32', 'float16', 'int8', 'uint8'. */
  weightStorage: string[];
  /** onnxruntime or ONNX fused operators found and read as the plain operators they stand for. */
  fusedOperators: string[];
  /** Activation quantization found and not applied ('dynamic ...', 'static ...'). */
  activationQuantization: string[];
  /** One sentence for people: what was measured. */
  summary: string;
}

export type Architecture = PlasticityReport['model']['architecture'];

/** What a model file is and what discovery found, before (or without) any measurement. */
export interface ModelOverview {
  /** sha256 is null when the overview was made without hashing (hashing a large file takes seconds). */
  model: Omit<ModelFacts, 'sha256'> & { sha256: string | null };
  /** What discovery found; null when the model is not a usable ViT. */
  architecture: (Omit<Architecture, 'tokens' | 'imageSize'> & { tokens: number | null; imageSize: [number, number] | null }) | null;
  /** Why the model is not a usable ViT (discovery's message). */
  notVitReason?: string;
  timing: { readMs: number; discoverMs: number };
}
