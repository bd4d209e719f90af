// A multi-target analysis: one model, one reference folder and several target folders, in one
// run. The reference image of each pair index is read, embedded and run through every component
// once; each target's images are measured against it (the probe takes Y as [K * pairs, ...]).
// Kept apart from runAnalysis's single-target loop; it shares its measurer, bounds and helpers.
import * as path from 'node:path';
import { UsageError } from '../core/errors';
import { LoadedTargets, MultiTargetSource, openMultiTargetSource } from '../core/inputs/pairSource';
import { graphKindSummary, measuresAnotherPrecision } from '../core/graph/canonicalGraph';
import { blockReports, describeSample, rankingOf, summarize } from '../core/report/buildReport';
import { rangesOfIndices } from '../core/report/pairRanges';
import { RunningStatistics } from '../core/report/runningStatistics';
import { everyTargetSettled, SettledRule, settledVerdict, SettledVerdict } from '../core/report/settledRanking';
import { MeasureMode, PlasticityReport, TargetReport } from '../core/report/reportSchema';
import { COMPONENTS, VitStructure } from '../core/vit/vitStructure';
import { uniqueLabels } from '../core/compare/reportComparison';
import {
  AnalysisHooks,
  boundsOf,
  defaultBatchPairs,
  pairRow,
  prepareAnalysis,
  prepareMeasuring,
  reportHeader,
  reportMeasured,
  round,
  stoppingReport,
  typeColumns,
} from './analysisRunner';
import { chooseExecutionProvider } from './onnxRuntime';
import { AnalysisRequest } from './workerProtocol';

/** True when the request names two or more target folders. */
export function isMultiTarget(request: Pick<AnalysisRequest, 'targets'>): boolean {
  return Array.isArray(request.targets) && request.targets.length > 1;
}

/** Names of the targets in reports and panels: their folders' names, numbered where two share one. */
export function targetNames(folders: string[]): string[] {
  return uniqueLabels(folders.map((folder) => path.basename(path.resolve(folder)) || folder));
}

/**
 * Pairs per probe run for K targets: the single-target default scaled so a run holds about the
 * same activations (it runs 1 + K images per pair index instead of 2).
 */
function multiTargetBatchPairs(structure: VitStructure, mode: MeasureMode, targets: number): number {
  return Math.max(1, Math.floor((defaultBatchPairs(structure, mode) * 2) / (targets + 1)));
}

export async function runMultiTargetAnalysis(request: AnalysisRequest, hooks: AnalysisHooks): Promise<PlasticityReport> {
  const folders = request.targets!;
  const targetCount = folders.length;
  if (!request.reference) throw new UsageError('Several targets are measured against one reference folder: give --reference DIR too.');
  const { started, checkCancelled, report, model, loadMs, sha256, structure, discoverMs, preprocess } = await prepareAnalysis(request, hooks);

  report('inputs', `Opening the reference and ${targetCount} target folders`);
  const pairs = await openMultiTargetSource({ reference: request.reference, targets: folders, pairs: request.pairs, first: request.pairsFrom, seed: request.seed }, preprocess);

  report('providers', 'Choosing an execution provider');
  const provider = await chooseExecutionProvider(request.executionProvider);
  await checkCancelled();

  const { measurer, weightBounds, boundsMs } = await prepareMeasuring(
    { model, structure, request, imageSize: preprocess.size, provider, pairs },
    `Preparing the probe for ${targetCount} targets on ${provider.used}`,
    report,
    checkCancelled,
  );

  const warnings: string[] = [];
  if (measuresAnotherPrecision(structure.kind)) warnings.push(`The model stores ${graphKindSummary(structure.kind)}.`);
  const measureStarted = performance.now();
  const columns = COMPONENTS.length * structure.blocks.length;
  // Per target, per pair index: its ratios and input distance, or the names of a pair left out.
  const measured = folders.map(() => new Map<number, { ratios: Float64Array; distance: number } | string>());
  const batchPairs = request.batchPairs ?? multiTargetBatchPairs(structure, request.mode, targetCount);
  const names = targetNames(folders);
  const rule: SettledRule | undefined = request.untilSettled ? { tolerance: request.tolerance } : undefined;
  let verdict: SettledVerdict = { settled: false };
  // Per target, the running statistics of its kept pairs' rows, for the until-settled verdict.
  let statistics = measured.map((perTarget) => statisticsOf(perTarget, structure.blocks.length));
  let done = 0;
  while (done < pairs.count) {
    const count = Math.min(batchPairs, pairs.count - done);
    const batch = await loadTargetBatch(pairs, done, count);
    await checkCancelled();
    const outcome = await measurer.measure(batch.reference, batch.targets, done, count, done + count < pairs.count);
    if (outcome.kind === 'restart') {
      for (const perTarget of measured) for (const index of [...perTarget.keys()]) if (index >= outcome.resumeAt) perTarget.delete(index);
      statistics = measured.map((perTarget) => statisticsOf(perTarget, structure.blocks.length));
      done = outcome.resumeAt;
      report('compiling', `Continuing on cpu from pair ${done}`, { pairsDone: done, pairsTotal: pairs.count, executionProvider: measurer.provider });
      continue;
    }
    const { ratios, distances } = outcome.measurement;
    for (let k = 0; k < targetCount; k++) {
      for (let i = 0; i < count; i++) {
        const row = k * count + i;
        if (distances[row] > 0) {
          const kept = { ratios: Float64Array.from(ratios.subarray(row * columns, (row + 1) * columns)), distance: distances[row] };
          measured[k].set(done + i, kept);
          addPair(statistics[k], kept.ratios, structure.blocks.length);
        } else {
          measured[k].set(done + i, batch.names[k][i]);
        }
      }
    }
    done += count;
    if (rule)
      verdict = everyTargetSettled(
        statistics.map((running, k) => ({ name: names[k], verdict: settledVerdict(typeColumns(running, columns), running.all().slice(0, columns), rule) })),
      );
    reportMeasured(report, {
      done,
      total: pairs.count,
      started: measureStarted,
      untilSettled: rule !== undefined,
      settled: verdict.settled,
      provider: measurer.provider,
      detail: `, ${targetCount} targets each`,
    });
    await checkCancelled();
    if (verdict.settled) break;
  }
  const measureMs = performance.now() - measureStarted;
  await measurer.release();

  const targets = measured.map((perTarget, k) => targetReport(structure, pairs, folders[k], names[k], perTarget));
  const empty = targets.find((target) => target.pairs === 0);
  if (empty) {
    throw new UsageError(
      `No pair of ${empty.folder} differs from its reference image, so plasticity cannot be measured for it; give target images that are not identical to the reference.`,
    );
  }
  for (const target of targets) warnings.push(...target.warnings.map((warning) => `${target.name}: ${warning}`));

  const tokens = measurer.tokenStatistics;
  const bounds = boundsOf(model, structure, weightBounds, tokens && { ...tokens, synthetic: false });
  const first = targets[0];

  return {
    ...reportHeader(model, sha256, structure, measurer.tokens, preprocess.size),
    settings: {
      mode: request.mode,
      pairs: first.pairs,
      pairIndices: first.pairIndices,
      seed: request.seed,
      inputs: {
        kind: 'folders',
        reference: pairs.reference,
        target: pairs.targets[0],
        synthetic: false,
        notes: [
          ...pairs.notes,
          `${targetCount} targets measured against the same reference pairs; the top-level blocks and summary are those of the first target, ${first.name} (every target's are in "targets").`,
        ],
        targets: pairs.targets,
      },
      preprocessing: { size: preprocess.size, mean: preprocess.mean, std: preprocess.std },
      executionProvider: { requested: request.executionProvider, used: measurer.provider, tried: measurer.tried },
    },
    components: [...COMPONENTS],
    blocks: first.blocks,
    summary: first.summary,
    timing: {
      loadMs: round(loadMs),
      discoverMs: round(discoverMs),
      measureMs: round(measureMs),
      totalMs: round(performance.now() - started),
      // Pair indices per second, each measured against every target.
      pairsPerSecond: round((done / measureMs) * 1000, 3),
      boundsMs: round(boundsMs),
    },
    stopping: stoppingReport(rule, verdict, done, pairs.count),
    warnings,
    bounds,
    targets,
  };
}

/** The running statistics of a target's kept pairs (pairs left out skipped): its rows as the single-target runner keeps them. */
function statisticsOf(perTarget: Map<number, { ratios: Float64Array; distance: number } | string>, blocks: number): RunningStatistics {
  const statistics = new RunningStatistics(COMPONENTS.length * (blocks + 1));
  for (const value of perTarget.values()) if (typeof value !== 'string') addPair(statistics, value.ratios, blocks);
  return statistics;
}

function addPair(statistics: RunningStatistics, ratios: Float64Array, blocks: number): void {
  const row = new Float64Array(COMPONENTS.length * (blocks + 1));
  pairRow(ratios, 0, blocks, row);
  statistics.add(row);
}

function targetReport(
  structure: VitStructure,
  pairs: MultiTargetSource,
  folder: string,
  name: string,
  perTarget: Map<number, { ratios: Float64Array; distance: number } | string>,
): TargetReport {
  const perPair: Float64Array[] = [];
  const distances: number[] = [];
  const indices: number[] = [];
  const warnings: string[] = [];
  for (const [index, value] of [...perTarget].sort(([a], [b]) => a - b)) {
    if (typeof value === 'string') {
      warnings.push(`Pair ${pairs.first + index} (${value}) was left out: its two inputs give the same embedding, so no ratio exists.`);
    } else {
      perPair.push(value.ratios);
      distances.push(value.distance);
      indices.push(pairs.first + index);
    }
  }
  const blocks = perPair.length > 0 ? blockReports(structure, perPair) : [];
  const summary = perPair.length > 0 ? summarize(blocks) : ({} as TargetReport['summary']);
  const distance = describeSample(distances);
  return {
    name,
    folder,
    pairs: perPair.length,
    pairIndices: rangesOfIndices(indices),
    blocks,
    summary,
    ranking: perPair.length > 0 ? rankingOf(summary) : [],
    meanInputDistance: distance.mean,
    inputDistanceStd: distance.std,
    warnings,
  };
}

interface TargetBatch {
  reference: Float32Array[];
  /** Target 0's `count` images, then target 1's, ... */
  targets: Float32Array[];
  /** Per target, per pair: "reference / target" file names. */
  names: string[][];
}

async function loadTargetBatch(pairs: MultiTargetSource, start: number, count: number): Promise<TargetBatch> {
  const loaded: LoadedTargets[] = [];
  for (let i = start; i < start + count; i++) loaded.push(await pairs.load(i));
  const targetCount = pairs.targets.length;
  const batch: TargetBatch = { reference: loaded.map((pair) => pair.reference), targets: [], names: [] };
  for (let k = 0; k < targetCount; k++) {
    batch.targets.push(...loaded.map((pair) => pair.targets[k]));
    batch.names.push(loaded.map((pair) => `${pair.referenceName} / ${pair.targetNames[k]}`));
  }
  return batch;
}
