// Reports as comparison series: checks that they measure the same architecture the same way
// (one sentence naming the field that differs), then compares them with the first.
import * as path from 'node:path';
import { UsageError } from '../errors';
import { ARCHITECTURE_FIELDS, firstDifference } from '../report/reportFields';
import { PlasticityReport } from '../report/reportSchema';
import { ComponentName } from '../vocabulary';
import { multipleTargets, reportOfTarget } from '../recommend/acrossTargets';
import { recommend } from '../recommend/recommend';
import { CellStatistics, compareSeries, ComparisonSeries, PlasticityComparison, RecommendationAgreement, uniqueLabels } from './reportComparison';

export interface NamedReport {
  report: PlasticityReport;
  /** The file it was read from; null for a report that has none (e.g. kept in the extension's storage). */
  file: string | null;
  /** What to call it; default: the file's name. */
  label?: string;
}

/** Throws a one-line UsageError naming the first field in which a report differs from the first. */
export function checkComparable(reports: NamedReport[]): void {
  if (reports.length < 2) throw new UsageError(`compare takes at least two reports, got ${reports.length}.`);
  const [first, ...others] = reports;
  const labels = labelsOf(reports);
  others.forEach((other, index) => {
    const difference = firstDifference(first.report, other.report, ARCHITECTURE_FIELDS);
    if (difference) {
      throw new UsageError(
        `${labels[index + 1]} differs from ${labels[0]} in ${difference.field} (${difference.other} vs ${difference.first}); compare takes reports of the same architecture measured in the same mode.`,
      );
    }
  });
}

export function compareReports(reports: NamedReport[]): PlasticityComparison {
  checkComparable(reports);
  const labels = labelsOf(reports);
  const components = reports[0].report.components;
  const series = reports.map(({ report, file }, index) => reportSeries(report, file, labels[index], components));
  const notes: string[] = [];
  const synthetic = labels.filter((_, index) => reports[index].report.settings.inputs.synthetic);
  if (synthetic.length > 0) notes.push(`${synthetic.join(', ')} measured synthetic images: those numbers describe the model on generated patterns, not your data.`);
  const models = new Set(reports.map(({ report }) => report.model.sha256));
  if (models.size === 1 && sameInputs(reports.map(({ report }) => report))) {
    notes.push('All reports measured the same model on the same pairs: differences are between runs (execution provider, version), not between models or data.');
  } else if (sameInputs(reports.map(({ report }) => report))) {
    notes.push("The reports measured the same pairs: Welch's test, which ignores that pairing, is conservative here.");
  }
  return compareSeries({ mode: reports[0].report.settings.mode, components, series, notes });
}

function labelsOf(reports: NamedReport[]): string[] {
  return uniqueLabels(reports.map(({ file, label, report }) => label ?? (file ? path.basename(file) : path.basename(report.model.path))));
}

function sameInputs(reports: PlasticityReport[]): boolean {
  const key = (report: PlasticityReport) =>
    JSON.stringify([
      report.settings.inputs.kind,
      report.settings.inputs.reference,
      report.settings.inputs.target,
      report.settings.inputs.synthetic ? report.settings.seed : null,
      report.settings.pairIndices ?? report.settings.pairs,
    ]);
  return new Set(reports.map(key)).size === 1;
}

/** A whole report as one series. */
export function reportSeries(report: PlasticityReport, file: string | null, label: string, components: ComponentName[]): ComparisonSeries {
  return {
    label,
    source: {
      kind: 'report',
      file,
      modelPath: report.model.path,
      sha256: report.model.sha256,
      createdAt: report.createdAt,
      pairs: report.settings.pairs,
      synthetic: report.settings.inputs.synthetic,
    },
    blocks: report.blocks.map((block) => ({
      index: block.index,
      components: Object.fromEntries(
        components.map((component): [ComponentName, CellStatistics] => {
          const { mean, std, n, ci95 } = block.components[component];
          return [component, { mean, std, n, ci95 }];
        }),
      ) as Record<ComponentName, CellStatistics>,
    })),
    summary: Object.fromEntries(
      components.map((component) => [component, { mean: report.summary[component].mean, rank: report.summary[component].rank }]),
    ) as ComparisonSeries['summary'],
  };
}

/**
 * The targets of one multi-target report as series, the first target the baseline: their
 * rankings, heatmap, curves and Welch tests, and which recommendations of k component types the
 * targets agree on.
 */
export function compareTargets(report: PlasticityReport, file: string | null): PlasticityComparison {
  const targets = multipleTargets(report);
  if (!targets) {
    throw new UsageError(
      `${file ? path.basename(file) : path.basename(report.model.path)} measured one target; comparing targets needs a multi-target report (analyze --target A --target B ...).`,
    );
  }
  const components = report.components;
  const labels = uniqueLabels(targets.map((target) => target.name));
  const series = targets.map((target, index): ComparisonSeries => {
    const one = reportSeries(reportOfTarget(report, target), file, labels[index], components);
    return {
      ...one,
      source: { ...one.source, kind: 'target', pairs: target.pairs, folder: target.folder, meanInputDistance: target.meanInputDistance },
    };
  });
  const notes = [
    `The ${targets.length} targets of one report, measured against the same reference pairs (${path.basename(report.model.path)}, sha256 ${report.model.sha256.slice(0, 12)}…); the first, ${labels[0]}, is the baseline. The same reference images are in every target's pairs, so Welch's test, which ignores that, is conservative.`,
  ];
  if (report.settings.inputs.synthetic) notes.push('The report measured synthetic images: its numbers describe the model on generated patterns, not your data.');
  return compareSeries({ mode: report.settings.mode, components, series, notes, seriesKind: 'targets', recommendations: recommendationAgreement(report, components) });
}

/** For 1 .. (types - 1) component types: each target's own choice, and the choices across targets by both rules. */
function recommendationAgreement(report: PlasticityReport, components: ComponentName[]): RecommendationAgreement[] {
  const agreements: RecommendationAgreement[] = [];
  for (let count = 1; count < components.length; count++) {
    const budget = { kind: 'types' as const, count };
    const meanRank = recommend(report, { budget, across: 'mean-rank' });
    const worstCase = recommend(report, { budget, across: 'worst-case' });
    const perSeries = report.targets!.map((target) => recommend(reportOfTarget(report, target), { budget }).selected.map((option) => option.component));
    agreements.push({
      types: count,
      perSeries,
      agree: meanRank.across!.allAgree,
      meanRank: meanRank.selected.map((option) => option.component),
      worstCase: worstCase.selected.map((option) => option.component),
    });
  }
  return agreements;
}
