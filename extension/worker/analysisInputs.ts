// The images of a run: one target (two folders, one folder split in halves, or synthetic
// images) or several target folders against one reference folder. Either way the measuring
// loop reads batches of K targets, each target's images against the same reference images.
import * as path from 'node:path';
import { UsageError } from '../core/errors';
import { InputKind, LoadedTargets, MultiTargetSource, openMultiTargetSource, openPairSource, PairSource, PairSpec, PreprocessOptions } from '../core/inputs/pairSource';
import { uniqueLabels } from '../core/compare/reportComparison';
import { PhaseReporter } from './analysisPreparation';
import { PairPrefetcher } from './pairPrefetcher';
import { AnalysisRequest } from './workerProtocol';

export interface TargetsBatch {
  reference: Float32Array[];
  /** Target 0's `count` images, then target 1's, ... */
  targets: Float32Array[];
  /** Per target, per pair: "reference / target" file names. */
  names: string[][];
}

export interface BatchReader {
  /** Pairs start .. start + count - 1 of every target. */
  batch(start: number, count: number): Promise<TargetsBatch>;
  close(): Promise<void>;
  /** Milliseconds the measuring loop waited for batches. */
  readonly waitedMs: number;
}

export interface AnalysisInputs {
  kind: InputKind;
  /** Folder paths as given (both the one folder for 'split-folder'; null for synthetic). */
  reference: string | null;
  /** One per target, in the order given. */
  targets: (string | null)[];
  /** The targets' names in reports and messages (see targetNames). */
  names: string[];
  /** Index of the first pair produced among all the inputs' pairs. */
  first: number;
  /** Pairs per target. */
  count: number;
  notes: string[];
  /** The `index`-th pair's reference image (in-context mode checks its rebuilt blocks on the first). */
  load(index: number): Promise<{ reference: Float32Array }>;
  /** Reads batches of up to `batchPairs` pairs, in order. */
  batches(batchPairs: number): BatchReader;
}

/** True when the request names two or more target folders. */
export function isMultiTarget(request: Pick<AnalysisRequest, 'targets'>): boolean {
  return Array.isArray(request.targets) && request.targets.length > 1;
}

/** Names of the targets in reports and panels: their folders' names, numbered where two share one. */
export function targetNames(folders: string[]): string[] {
  return uniqueLabels(folders.map((folder) => path.basename(path.resolve(folder)) || folder));
}

/** The paper's number of pairs per model: --until-settled's maximum on synthetic inputs when --pairs is not given. */
export const UNTIL_SETTLED_SYNTHETIC_PAIRS = 12_800;

/** Opens the request's inputs (the 'inputs' phase). */
export async function openAnalysisInputs(request: AnalysisRequest, preprocess: PreprocessOptions, report: PhaseReporter): Promise<AnalysisInputs> {
  if (!isMultiTarget(request)) {
    report('inputs', 'Opening input images');
    const spec = pairSpecOf(request);
    return oneTarget(await openPairSource(spec, preprocess), spec, preprocess);
  }
  const folders = request.targets!;
  report('inputs', `Opening the reference and ${folders.length} target folders`);
  const pairs = await openMultiTargetSource({ reference: request.reference!, targets: folders, pairs: request.pairs, first: request.pairsFrom, seed: request.seed }, preprocess);
  return severalTargets(pairs);
}

/** Several targets are measured against one reference folder: a request without one is refused before the model is read. */
export function checkTargets(request: AnalysisRequest): void {
  if (isMultiTarget(request) && !request.reference) throw new UsageError('Several targets are measured against one reference folder: give --reference DIR too.');
}

/** Where the pairs come from; under --until-settled, synthetic inputs run up to the paper's number of pairs by default. */
function pairSpecOf(request: AnalysisRequest): PairSpec {
  const synthetic = request.reference === undefined && request.target === undefined;
  const pairs = request.pairs ?? (request.untilSettled && synthetic ? UNTIL_SETTLED_SYNTHETIC_PAIRS : undefined);
  return { reference: request.reference, target: request.target, pairs, first: request.pairsFrom, seed: request.seed };
}

/** One target: its batches decoded one ahead in a worker thread (PairPrefetcher). */
function oneTarget(pairs: PairSource, spec: PairSpec, preprocess: PreprocessOptions): AnalysisInputs {
  return inputsOf(pairs, [pairs.target], (batchPairs) => {
    const prefetcher = new PairPrefetcher(pairs, { spec, preprocess }, batchPairs);
    return {
      async batch(start, count) {
        const batch = await prefetcher.batch(start, count);
        return { reference: batch.reference, targets: batch.target, names: [batch.names] };
      },
      close: () => prefetcher.close(),
      get waitedMs() {
        return prefetcher.waitedMs;
      },
    };
  });
}

/** Several targets: each reference image read once for all of them, in this thread. */
function severalTargets(pairs: MultiTargetSource): AnalysisInputs {
  return inputsOf(pairs, pairs.targets, () => {
    let waitedMs = 0;
    return {
      async batch(start, count) {
        const started = performance.now();
        try {
          return await loadTargetBatch(pairs, start, count);
        } finally {
          waitedMs += performance.now() - started;
        }
      },
      close: async () => undefined,
      get waitedMs() {
        return waitedMs;
      },
    };
  });
}

function inputsOf(pairs: PairSource | MultiTargetSource, targets: (string | null)[], batches: AnalysisInputs['batches']): AnalysisInputs {
  return {
    kind: pairs.kind,
    reference: pairs.reference,
    targets,
    names: targetNames(targets.map((target) => target ?? pairs.kind)),
    first: pairs.first,
    count: pairs.count,
    notes: pairs.notes,
    load: (index) => pairs.load(index),
    batches,
  };
}

async function loadTargetBatch(pairs: MultiTargetSource, start: number, count: number): Promise<TargetsBatch> {
  const loaded: LoadedTargets[] = [];
  for (let i = start; i < start + count; i++) loaded.push(await pairs.load(i));
  const batch: TargetsBatch = { reference: loaded.map((pair) => pair.reference), targets: [], names: [] };
  for (let k = 0; k < pairs.targets.length; k++) {
    batch.targets.push(...loaded.map((pair) => pair.targets[k]));
    batch.names.push(loaded.map((pair) => `${pair.referenceName} / ${pair.targetNames[k]}`));
  }
  return batch;
}
