// The report of a run from what it measured. With several targets the top level is the first
// target's, as a single-target report (schemaVersion 1 readers read it so), and every target's
// part is in `targets`; with one target there is no `targets`.
import { UsageError } from '../core/errors';
import { OnnxModel } from '../core/onnx/onnxModel';
import { blockReportsFromStatistics, rankingOf, Statistics, summarize } from '../core/report/buildReport';
import { graphKindSummary, measuresAnotherPrecision } from '../core/graph/graphKind';
import { architectureOf, modelFacts } from '../core/report/modelDescription';
import { rangesWithout } from '../core/report/pairRanges';
import {
  BlockReport,
  ExecutionProviderName,
  ExecutionProviderRequest,
  PairRange,
  PlasticityBounds,
  PlasticityReport,
  ProviderAttempt,
  REPORT_SCHEMA_VERSION,
  TargetReport,
} from '../core/report/reportSchema';
import { TOOL_VERSION } from '../core/toolVersion';
import { COMPONENTS, VitStructure } from '../core/vit/vitStructure';
import { PreprocessOptions } from '../core/inputs/pairSource';
import { AnalysisInputs } from './analysisInputs';
import { distanceColumn, MeasuredPairs, TargetTally } from './batchLoop';
import { ONNXRUNTIME_VERSION } from './onnxRuntime';
import { AnalysisRequest } from './workerProtocol';

/** What analysisReport() puts together; `timing` as the report writes it. */
export interface MeasuredRun {
  request: AnalysisRequest;
  model: OnnxModel;
  sha256: string;
  structure: VitStructure;
  preprocess: PreprocessOptions;
  inputs: AnalysisInputs;
  measured: MeasuredPairs;
  /** Tokens per image, as the measurer found them. */
  tokens: number;
  /** The provider asked for, the one the measurer ended on, and every attempt. */
  executionProvider: { requested: ExecutionProviderRequest; used: ExecutionProviderName; tried: ProviderAttempt[] };
  timing: PlasticityReport['timing'];
  bounds: PlasticityBounds;
}

/** What every report opens with: its schema, the tool that made it, and the model it measured. */
function reportHeader(
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
    model: { ...modelFacts(model, sha256, structure), architecture: architectureOf(structure, tokens, imageSize) },
  };
}

/** The report; a target without any pair that differs from its reference image stops the run with a one-line error. */
export function analysisReport(run: MeasuredRun): PlasticityReport {
  const { request, structure, preprocess, inputs, measured } = run;
  const several = inputs.targets.length > 1;
  const parts = measured.targets.map((tally, k) => measuredTarget(structure, inputs, tally, k, measured.pairsMeasured));
  const first = parts[0];
  const warnings: string[] = [];
  if (inputs.kind === 'synthetic') {
    warnings.push('Inputs are synthetic images: the numbers describe the model on generated patterns, not on your data. Give --reference and --target image folders.');
  }
  if (measuresAnotherPrecision(structure.kind)) warnings.push(`The model stores ${graphKindSummary(structure.kind)}.`);
  parts.forEach((part, k) => warnings.push(...part.warnings.map((warning) => (several ? `${inputs.names[k]}: ${warning}` : warning))));
  const notes = several
    ? [
        ...inputs.notes,
        `${inputs.targets.length} targets measured against the same reference pairs; the top-level blocks and summary are those of the first target, ${inputs.names[0]} (every target's are in "targets").`,
      ]
    : inputs.notes;
  return {
    ...reportHeader(run.model, run.sha256, structure, run.tokens, preprocess.size),
    settings: {
      mode: request.mode,
      pairs: first.pairs,
      pairIndices: first.pairIndices,
      seed: request.seed,
      inputs: {
        kind: inputs.kind,
        reference: inputs.reference,
        target: inputs.targets[0],
        synthetic: inputs.kind === 'synthetic',
        notes,
        ...(several ? { targets: inputs.targets as string[] } : {}),
      },
      preprocessing: { size: preprocess.size, mean: preprocess.mean, std: preprocess.std },
      executionProvider: run.executionProvider,
    },
    components: [...COMPONENTS],
    blocks: first.blocks,
    summary: first.summary,
    timing: run.timing,
    stopping: measured.stopping,
    warnings,
    bounds: run.bounds,
    ...(several ? { targets: parts.map((part, k) => targetReport(inputs, part, k)) } : {}),
  };
}

/** What a target's tally gives the report (the top level's part for the first target). */
interface MeasuredTarget {
  pairs: number;
  pairIndices: PairRange[];
  blocks: BlockReport[];
  summary: TargetReport['summary'];
  /** Its left-out pairs. */
  warnings: string[];
  distance: Statistics;
}

function measuredTarget(structure: VitStructure, inputs: AnalysisInputs, tally: TargetTally, k: number, pairsMeasured: number): MeasuredTarget {
  const { statistics, leftOut, names } = tally;
  if (statistics.count === 0) {
    throw new UsageError(
      inputs.targets.length > 1
        ? `No pair of ${inputs.targets[k]} differs from its reference image, so plasticity cannot be measured for it; give target images that are not identical to the reference.`
        : 'No pair of inputs differs, so plasticity cannot be measured; give reference and target images that are not identical.',
    );
  }
  const warnings = names.map((name, i) => `Pair ${inputs.first + leftOut[i]} (${name}) was left out: its two inputs give the same embedding, so no ratio exists.`);
  if (leftOut.length > names.length) warnings.push(`${leftOut.length - names.length} more pairs were left out for the same reason.`);
  const blocks = blockReportsFromStatistics(structure, statistics.all());
  return {
    pairs: statistics.count,
    pairIndices: rangesWithout(inputs.first, pairsMeasured, leftOut),
    blocks,
    summary: summarize(blocks),
    warnings,
    distance: statistics.column(distanceColumn(structure)),
  };
}

/** A target's section of a several-target report. */
function targetReport(inputs: AnalysisInputs, part: MeasuredTarget, k: number): TargetReport {
  return {
    name: inputs.names[k],
    folder: inputs.targets[k]!,
    pairs: part.pairs,
    pairIndices: part.pairIndices,
    blocks: part.blocks,
    summary: part.summary,
    ranking: rankingOf(part.summary),
    meanInputDistance: part.distance.mean,
    inputDistanceStd: part.distance.std,
    warnings: part.warnings,
  };
}
