// Shards of one run (same model, same settings, disjoint pairs, e.g. run on several machines with
// --pairs-from N --pairs M) combined into the report a single run over all their pairs makes:
// per cell mean, std and n exactly from each shard's (the parallel variance formula), the
// intervals, summary and ranking recomputed by the code that builds every report. Shards of a
// multi-target run merge target by target.
import * as path from 'node:path';
import { UsageError } from '../errors';
import { TOOL_VERSION } from '../toolVersion';
import { combineStatistics, rankingOf, summarize } from './buildReport';
import { describeRanges, firstSharedPair, unionOfRanges } from './pairRanges';
import { firstDifference, SHARD_FIELDS } from './reportFields';
import { ComponentName } from '../vocabulary';
import { BlockReport, ComponentStatistics, MergedShard, PlasticityReport, REPORT_SCHEMA_VERSION, TargetReport } from './reportSchema';

export interface ReportShard {
  report: PlasticityReport;
  /** The file it was read from, as given (named in messages and in mergedFrom). */
  file: string;
  /** sha256 of the file's text. */
  sha256: string;
}

/** Throws a one-line UsageError when the shards cannot be merged: which field differs, or which pair two shards share. */
export function checkMergeable(shards: ReportShard[]): void {
  if (shards.length < 2) throw new UsageError(`merge takes at least two shard reports, got ${shards.length}.`);
  const [first, ...others] = shards;
  const name = (shard: ReportShard) => path.basename(shard.file);
  for (const shard of shards) {
    if (!shard.report.settings.pairIndices) {
      throw new UsageError(`${name(shard)} does not record which pairs it measured (settings.pairIndices; made by an older version); rerun that shard with this version.`);
    }
  }
  for (const other of others) {
    const difference = firstDifference(first.report, other.report, SHARD_FIELDS);
    if (difference) {
      throw new UsageError(
        `${name(other)} differs from ${name(first)} in ${difference.field} (${difference.other} vs ${difference.first}); merge takes shards of one model run with the same settings.`,
      );
    }
  }
  for (let i = 0; i < shards.length; i++) {
    for (let j = i + 1; j < shards.length; j++) {
      const shared = firstSharedPair(shards[i].report.settings.pairIndices!, shards[j].report.settings.pairIndices!);
      if (shared !== null) {
        throw new UsageError(`${name(shards[i])} and ${name(shards[j])} both measured pair ${shared}; shards must not overlap (give each its own --pairs-from).`);
      }
    }
  }
}

/** The merged report; checks the shards first (see checkMergeable). */
export function mergeReports(shards: ReportShard[], now = new Date()): PlasticityReport {
  checkMergeable(shards);
  // Ordered by first pair, so the merged report reads as the single run would (bounds, notes).
  const ordered = [...shards].sort((a, b) => a.report.settings.pairIndices![0][0] - b.report.settings.pairIndices![0][0]);
  const base = ordered[0].report;
  const reports = ordered.map((shard) => shard.report);

  const blocks = mergeBlocks(
    reports.map((report) => report.blocks),
    base.components,
  );

  const pairIndices = unionOfRanges(reports.map((report) => report.settings.pairIndices!));
  const pairs = reports.reduce((sum, report) => sum + report.settings.pairs, 0);
  const shardList = ordered.map((shard) => `${path.basename(shard.file)} (pairs ${describeRanges(shard.report.settings.pairIndices!)})`).join(', ');
  const notes = [
    `Merged from ${ordered.length} shards: ${shardList}.`,
    ...unique(ordered.flatMap((shard) => shard.report.settings.inputs.notes.map((note) => `${path.basename(shard.file)}: ${note}`))),
  ];
  const providers = unique(reports.map((report) => report.settings.executionProvider.used));
  const warnings = unique(reports.flatMap((report) => report.warnings));
  if (providers.length > 1) warnings.push(`The shards were measured on different execution providers (${providers.join(', ')}); settings.executionProvider is the first shard's.`);
  const timing = {
    loadMs: sum(reports, (report) => report.timing.loadMs),
    discoverMs: sum(reports, (report) => report.timing.discoverMs),
    measureMs: sum(reports, (report) => report.timing.measureMs),
    totalMs: sum(reports, (report) => report.timing.totalMs),
    // Pairs per second of measuring time summed over shards (machines running at once are not counted as one).
    pairsPerSecond: Number(
      (
        (pairs /
          Math.max(
            sum(reports, (report) => report.timing.measureMs),
            1e-9,
          )) *
        1000
      ).toFixed(3),
    ),
  };
  const mergedFrom: MergedShard[] = ordered.map((shard) => ({
    file: shard.file,
    sha256: shard.sha256,
    createdAt: shard.report.createdAt,
    pairIndices: shard.report.settings.pairIndices!,
    executionProvider: shard.report.settings.executionProvider.used,
  }));

  const merged: PlasticityReport = {
    schemaVersion: REPORT_SCHEMA_VERSION,
    tool: { ...base.tool, version: TOOL_VERSION },
    createdAt: now.toISOString(),
    model: base.model,
    settings: { ...base.settings, pairs, pairIndices, inputs: { ...base.settings.inputs, notes } },
    components: base.components,
    blocks,
    summary: summarize(blocks),
    timing,
    warnings,
    mergedFrom,
  };
  // The bounds' weights are the model's; their token statistics are the first shard's first pairs, as in a single run.
  if (base.bounds) merged.bounds = base.bounds;
  // The targets are the same folders in the same order in every shard (checked as settings.inputs.targets).
  if (base.targets)
    merged.targets = base.targets.map((_, k) =>
      mergeTarget(
        reports.map((report) => report.targets![k]),
        base.components,
      ),
    );
  return merged;
}

/** Each (block, component) cell combined over the shards' blocks (each list in the same block order). */
function mergeBlocks(shardBlocks: BlockReport[][], components: ComponentName[]): BlockReport[] {
  return shardBlocks[0].map((block, position) => {
    const merged = {} as BlockReport['components'];
    for (const component of components) {
      const parts = shardBlocks.map((blocks) => blocks[position].components[component]);
      const combined: ComponentStatistics = {
        ...combineStatistics(parts),
        parameters: block.components[component].parameters,
        parameterCount: block.components[component].parameterCount,
      };
      merged[component] = combined;
    }
    return { index: block.index, module: block.module, modules: block.modules, components: merged };
  });
}

/**
 * One target of a multi-target run, from its part in each shard. Every part has measured pairs:
 * a run that left a target without any stops with an error instead of writing a report.
 */
function mergeTarget(parts: TargetReport[], components: ComponentName[]): TargetReport {
  const blocks = mergeBlocks(
    parts.map((part) => part.blocks),
    components,
  );
  const summary = summarize(blocks);
  const distance = combineStatistics(parts.map((part) => ({ mean: part.meanInputDistance, std: part.inputDistanceStd, n: part.pairs })));
  return {
    name: parts[0].name,
    folder: parts[0].folder,
    pairs: parts.reduce((total, part) => total + part.pairs, 0),
    pairIndices: unionOfRanges(parts.map((part) => part.pairIndices)),
    blocks,
    summary,
    ranking: rankingOf(summary),
    meanInputDistance: distance.mean,
    inputDistanceStd: distance.std,
    warnings: unique(parts.flatMap((part) => part.warnings)),
  };
}

function unique<T>(values: T[]): T[] {
  return [...new Set(values)];
}

function sum(reports: PlasticityReport[], value: (report: PlasticityReport) => number): number {
  return Number(reports.reduce((total, report) => total + value(report), 0).toFixed(1));
}
