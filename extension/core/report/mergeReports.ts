// Shards of one run (same model, same settings, disjoint pairs, e.g. run on several machines with
// --pairs-from N --pairs M) combined into the report a single run over all their pairs makes:
// per cell mean, std and n exactly from each shard's (the parallel variance formula), the
// intervals, summary and ranking recomputed by the code that builds every report.
import * as path from 'node:path';
import { UsageError } from '../errors';
import { TOOL_VERSION } from '../toolVersion';
import { combineStatistics, summarize } from './buildReport';
import { describeRanges, firstSharedPair, unionOfRanges } from './pairRanges';
import { firstDifference, SHARD_FIELDS } from './reportFields';
import { BlockReport, ComponentStatistics, MergedShard, PlasticityReport, REPORT_SCHEMA_VERSION } from './reportSchema';

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
    if (shard.report.targets && shard.report.targets.length > 1) {
      throw new UsageError(`${name(shard)} is a multi-target report; merge does not combine those yet: run the shards per target (one --target each) and merge those.`);
    }
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

  const blocks: BlockReport[] = base.blocks.map((block, position) => {
    const components = {} as BlockReport['components'];
    for (const component of base.components) {
      const parts = reports.map((report) => report.blocks[position].components[component]);
      const combined: ComponentStatistics = {
        ...combineStatistics(parts),
        parameters: block.components[component].parameters,
        parameterCount: block.components[component].parameterCount,
      };
      components[component] = combined;
    }
    return { index: block.index, module: block.module, modules: block.modules, components };
  });

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
  return merged;
}

function unique<T>(values: T[]): T[] {
  return [...new Set(values)];
}

function sum(reports: PlasticityReport[], value: (report: PlasticityReport) => number): number {
  return Number(reports.reduce((total, report) => total + value(report), 0).toFixed(1));
}
