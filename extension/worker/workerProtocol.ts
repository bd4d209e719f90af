// Messages between a host (the extension host or the command line) and the analysis worker
// process. One request at a time per worker; every request is answered by `result` or `error`.
import { ExecutionProviderRequest, MeasureMode, PlasticityBounds, PlasticityReport } from '../core/report/reportSchema';
import { UserErrorKind } from '../core/errors';
import { MeasuredModuleParameters } from '../core/recommend/measuredModel';
import { ModelOverview } from '../core/report/reportSchema';

export interface AnalysisRequest {
  modelPath: string;
  mode: MeasureMode;
  executionProvider: ExecutionProviderRequest;
  /** Folder of reference images (the pretraining distribution); absent with target: synthetic. */
  reference?: string;
  /** Folder of target images (the downstream data). */
  target?: string;
  /**
   * Two or more target folders measured against the same reference pairs in one run (a
   * multi-target report; needs `reference`, and `target` is then not read).
   */
  targets?: string[];
  /** Limit on pairs; default: all pairs found, or 32 synthetic pairs. */
  pairs?: number;
  /** Pairs to skip before measuring (one shard of a run spread over machines); default 0. */
  pairsFrom?: number;
  seed: number;
  mean?: [number, number, number];
  std?: [number, number, number];
  /** Image size when the model's input size is symbolic. */
  size?: [number, number];
  /**
   * Stop once the ranking of component types is settled (or every mean is within `tolerance`),
   * measuring at most `pairs` pairs (synthetic inputs: UNTIL_SETTLED_SYNTHETIC_PAIRS by default).
   */
  untilSettled?: boolean;
  /** With untilSettled: relative 95% half-interval on each (block, component) mean that also stops the run. */
  tolerance?: number;
  /** Pairs per probe run (memory against speed); default chosen from the model size. */
  batchPairs?: number;
}

/** The bounds before any measurement: the model, and the inputs an analysis of it would use (for the token statistics). */
export type BoundsRequest = Pick<AnalysisRequest, 'modelPath' | 'reference' | 'target' | 'pairs' | 'seed' | 'mean' | 'std' | 'size'>;

export type AnalysisPhase = 'loading' | 'discovering' | 'inputs' | 'providers' | 'compiling' | 'measuring' | 'bounds' | 'done';

export interface AnalysisProgress {
  phase: AnalysisPhase;
  message: string;
  pairsDone: number;
  pairsTotal: number;
  pairsPerSecond: number;
  /** Seconds left, when measuring has started (under untilSettled: until the maximum, at most). */
  etaSeconds?: number;
  /** The run stops once the ranking is settled: pairsTotal is a maximum. */
  untilSettled?: boolean;
  executionProvider?: string;
}

/** What the worker can be asked, each method with its parameters and its result. */
export interface WorkerMethods {
  analyze: { params: { request: AnalysisRequest }; result: PlasticityReport };
  /** The model and what discovery finds in it (a non-ViT resolves with the reason); no sha256. */
  describe: { params: { modelPath: string }; result: ModelOverview };
  /** sha256 of a file. */
  hash: { params: { modelPath: string }; result: string };
  /** The data-free upper bounds before any measurement. */
  bounds: { params: { request: BoundsRequest }; result: PlasticityBounds };
  /** The parameters of these modules (e.g. the head and final norm) and the .onnx file's sha256; no onnxruntime. */
  moduleParameters: { params: { modelPath: string; modules: string[] }; result: MeasuredModuleParameters };
}

export type WorkerMethod = keyof WorkerMethods;
export type WorkerParams<M extends WorkerMethod> = WorkerMethods[M]['params'];
export type WorkerResult<M extends WorkerMethod> = WorkerMethods[M]['result'];

/** A request for one method; `id` pairs it with its reply. */
export type WorkerRequest = { [M in WorkerMethod]: { type: 'request'; id: number; method: M; params: WorkerParams<M> } }[WorkerMethod];

export type HostToWorker = WorkerRequest | { type: 'cancel'; id: number };

export interface WorkerErrorPayload {
  kind: UserErrorKind | 'InternalError';
  message: string;
  stack?: string;
}

/** Replies: progress while a request runs, then exactly one `result` (of the request's method) or `error`. */
export type WorkerToHost =
  | { type: 'ready' }
  | { type: 'progress'; id: number; progress: AnalysisProgress }
  | { type: 'result'; id: number; value: WorkerResult<WorkerMethod> }
  | { type: 'error'; id: number; error: WorkerErrorPayload };
