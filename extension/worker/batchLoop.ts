// The measuring loop: batches of pairs through the measurer, each target's pairs folded into
// running statistics, so memory stays the same for any number of pairs; under --until-settled
// it stops once the ranking is settled (settledVerdict).
import { Statistics } from '../core/report/buildReport';
import { RunningStatistics } from '../core/report/runningStatistics';
import { everyTargetSettled, MIN_SETTLED_PAIRS, SettledRule, SettledVerdict, settledVerdict } from '../core/report/settledRanking';
import { ExecutionProviderName, MeasureMode, StoppingReport } from '../core/report/reportSchema';
import { COMPONENTS, VitStructure } from '../core/vit/vitStructure';
import { PhaseReporter } from './analysisPreparation';
import { AnalysisInputs } from './analysisInputs';
import { PairMeasurer } from './pairMeasurer';
import { AnalysisRequest } from './workerProtocol';

/** Names of left-out pairs kept per target for the warnings; beyond it they are counted only (memory stays constant). */
const LEFT_OUT_NAMED = 20;

/** A target's pairs: running statistics of the kept ones, and the left-out ones (identical inputs). */
export interface TargetTally {
  /**
   * Per kept pair one row: its ratios per (block, component), block-major, then per component
   * type its mean over blocks, then the pair's input distance ||X - Y||.
   */
  statistics: RunningStatistics;
  /** Every left-out pair, as an offset from the inputs' first pair, ascending. */
  leftOut: number[];
  /** "reference / target" file names of the first LEFT_OUT_NAMED left-out pairs. */
  names: string[];
}

export interface MeasuredPairs {
  /** One tally per target, in the inputs' order. */
  targets: TargetTally[];
  /** Pair indices measured, left-out ones included. */
  pairsMeasured: number;
  stopping: StoppingReport;
  inputsWaitMs: number;
}

/** The column of a tally's rows that holds the pair's input distance. */
export const distanceColumn = (structure: VitStructure) => COMPONENTS.length * (structure.blocks.length + 1);

/**
 * Measures the inputs' pairs in batches (decoded ahead, see AnalysisInputs.batches). Pairs a
 * GPU provider measured without a check against cpu are held apart until checked, and dropped
 * when the run moves to cpu.
 */
export async function measurePairs(
  inputs: AnalysisInputs,
  measurer: PairMeasurer,
  structure: VitStructure,
  request: AnalysisRequest,
  report: PhaseReporter,
  checkCancelled: () => Promise<void>,
): Promise<MeasuredPairs> {
  const targetCount = inputs.targets.length;
  const batchPairs = request.batchPairs ?? defaultBatchPairs(structure, request.mode, targetCount);
  const columns = COMPONENTS.length * structure.blocks.length;
  const width = distanceColumn(structure) + 1;
  const newTallies = () => inputs.targets.map((): TargetTally => ({ statistics: new RunningStatistics(width), leftOut: [], names: [] }));
  // `counted`: pairs 0 .. countedUpTo - 1 (measured on cpu or checked against it); `unchecked`: the pairs after them.
  const counted = newTallies();
  let unchecked = newTallies();
  let countedUpTo = 0;
  const row = new Float64Array(width);
  const rule: SettledRule | undefined = request.untilSettled ? { tolerance: request.tolerance } : undefined;
  let verdict: SettledVerdict = { settled: false };
  const measureStarted = performance.now();
  const reader = inputs.batches(batchPairs);
  let done = 0;
  try {
    while (done < inputs.count) {
      const count = Math.min(batchPairs, inputs.count - done);
      const batch = await reader.batch(done, count);
      await checkCancelled();
      const outcome = await measurer.measure(batch.reference, batch.targets, done, count, done + count < inputs.count);
      if (outcome.kind === 'restart') {
        // The GPU provider failed under `auto`: the run continues on cpu from the last pair checked against it.
        if (outcome.resumeAt !== countedUpTo) throw new Error(`the run would resume at pair ${outcome.resumeAt}, but pairs up to ${countedUpTo} are counted`);
        unchecked = newTallies();
        done = outcome.resumeAt;
        report('compiling', `Continuing on cpu from pair ${done}`, { pairsDone: done, pairsTotal: inputs.count, executionProvider: measurer.provider });
        continue;
      }
      // Rows come target by target: target k's pair i is row k * count + i.
      const { ratios, distances } = outcome.measurement;
      for (let k = 0; k < targetCount; k++) {
        for (let i = 0; i < count; i++) {
          const pair = k * count + i;
          if (!(distances[pair] > 0)) {
            unchecked[k].leftOut.push(done + i);
            if (counted[k].names.length + unchecked[k].names.length < LEFT_OUT_NAMED) unchecked[k].names.push(batch.names[k][i]);
            continue;
          }
          pairRow(ratios, pair * columns, structure.blocks.length, row);
          row[width - 1] = distances[pair];
          unchecked[k].statistics.add(row);
        }
      }
      done += count;
      if (measurer.pairsChecked >= done) {
        counted.forEach((tally, k) => addTally(tally, unchecked[k]));
        unchecked = newTallies();
        countedUpTo = done;
      }
      if (rule) verdict = runVerdict(counted, unchecked, inputs.names, columns, rule);
      reportMeasured(report, {
        done,
        total: inputs.count,
        started: measureStarted,
        untilSettled: rule !== undefined,
        settled: verdict.settled,
        provider: measurer.provider,
        detail: targetCount > 1 ? `, ${targetCount} targets each` : undefined,
      });
      await checkCancelled();
      if (verdict.settled) break;
    }
  } finally {
    await reader.close();
  }
  counted.forEach((tally, k) => addTally(tally, unchecked[k]));
  return { targets: counted, pairsMeasured: done, stopping: stoppingReport(rule, verdict, done, inputs.count), inputsWaitMs: reader.waitedMs };
}

function addTally(into: TargetTally, from: TargetTally): void {
  into.statistics.merge(from.statistics);
  into.leftOut.push(...from.leftOut);
  into.names.push(...from.names);
}

/** The stopping rule over every pair so far, checked or not: one target's verdict, or every target settled. */
function runVerdict(counted: TargetTally[], unchecked: TargetTally[], names: string[], columns: number, rule: SettledRule): SettledVerdict {
  const verdicts = counted.map((tally, k) => {
    const all = tally.statistics.copy();
    all.merge(unchecked[k].statistics);
    return { name: names[k], verdict: settledVerdict(typeColumns(all, columns), all.all().slice(0, columns), rule) };
  });
  return verdicts.length === 1 ? verdicts[0].verdict : everyTargetSettled(verdicts);
}

/**
 * The progress event after a batch: pairs done of the most there will be, the rate, and the time
 * left (none once the ranking is settled). `detail` ends the message.
 */
function reportMeasured(
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
function pairRow(ratios: ArrayLike<number>, offset: number, blocks: number, row: Float64Array): void {
  const types = COMPONENTS.length;
  const columns = blocks * types;
  row.fill(0, columns);
  for (let c = 0; c < columns; c++) {
    const value = ratios[offset + c];
    row[c] = value;
    row[columns + (c % types)] += value / blocks;
  }
}

function typeColumns(statistics: RunningStatistics, columns: number): Statistics[] {
  return COMPONENTS.map((_, index) => statistics.column(columns + index));
}

function stoppingReport(rule: SettledRule | undefined, verdict: SettledVerdict, measured: number, maxPairs: number): StoppingReport {
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

/**
 * Pairs per probe run: about 36 MB of activations per run. Isolated mode holds one block's
 * attention scores and projections for the pair's two images: on ViT-B/16 that is 4 pairs, as
 * fast per pair as 7 and 150 MB lighter. In-context mode runs the blocks one after another, each
 * followed by its ratios, so it holds one block's scores and MLP activations with the
 * differences and norms around them, about 8 times their size: on ViT-B/16 each pair more in a
 * run added 65 to 75 MB (578, 653, 784 MiB while measuring at 1, 2 and 4 pairs, equally fast per
 * pair), so it runs one pair. K targets run 1 + K images per pair instead of 2: the number is
 * scaled so a run holds about the same activations.
 */
export function defaultBatchPairs(structure: VitStructure, mode: MeasureMode, targets: number): number {
  const tokens = structure.tokens ?? 197;
  const scores = structure.heads * tokens * tokens;
  // FC1's output width: the hidden width, twice it for a gated MLP's gate and value.
  const fc1Width = structure.blocks[0]?.fc1.reduce((sum, linear) => sum + linear.outFeatures, 0) ?? structure.mlpSize;
  const perPair = mode === 'in-context' ? 2 * 8 * (scores + tokens * fc1Width) * 4 : 2 * (scores + 4 * tokens * structure.hiddenSize) * 4;
  const oneTarget = Math.max(1, Math.min(16, Math.floor((36 * 2 ** 20) / perPair)));
  return Math.max(1, Math.floor((oneTarget * 2) / (targets + 1)));
}
