// What every analysis does first: the progress and cancel plumbing, the model file read (and
// hashed once), its ViT found, and the preprocessing its images get.
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { CancelledError, UsageError } from '../core/errors';
import { IMAGENET_MEAN, IMAGENET_STD, PreprocessOptions } from '../core/inputs/pairSource';
import { OnnxModel, readOnnxModel, releaseFileBytes } from '../core/onnx/onnxModel';
import { discoverVit } from '../core/vit/discoverVit';
import { VitStructure } from '../core/vit/vitStructure';
import { AnalysisProgress, AnalysisRequest } from './workerProtocol';

export interface AnalysisHooks {
  onProgress(progress: AnalysisProgress): void;
  /** Polled between batches; true stops the run with CancelledError. */
  isCancelled(): boolean;
}

/** Tells the host which phase the analysis is in (progress events). */
export type PhaseReporter = (phase: AnalysisProgress['phase'], message: string, extra?: Partial<AnalysisProgress>) => void;

/** Lets queued messages (a cancel) in between blocking native calls. */
const yieldToEvents = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The model read and hashed, its ViT found, with the progress and cancel plumbing the rest of the run uses. */
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

/** Frees the worker's copy of the model file (the worker runs with --expose-gc, so it goes at once). */
export function dropFileBytes(model: OnnxModel): void {
  releaseFileBytes(model);
  (globalThis as { gc?: () => void }).gc?.();
}
