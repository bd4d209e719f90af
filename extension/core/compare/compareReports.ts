// Reports as comparison series: checks that they measure the same architecture the same way
// (one sentence naming the field that differs), then compares them with the first.
import * as path from 'node:path';
import { UsageError } from '../errors';
import { ARCHITECTURE_FIELDS, firstDifference } from '../report/reportFields';
import { PlasticityReport } from '../report/reportSchema';
import { ComponentName } from '../vocabulary';
import { CellStatistics, compareSeries, ComparisonSeries, PlasticityComparison, uniqueLabels } from './reportComparison';

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
      throw new UsageError(`${labels[index + 1]} differs from ${labels[0]} in ${difference.field} (${difference.other} vs ${difference.first}); compare takes reports of the same architecture measured in the same mode.`);
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
    JSON.stringify([report.settings.inputs.kind, report.settings.inputs.reference, report.settings.inputs.target, report.settings.inputs.synthetic ? report.settings.seed : null, report.settings.pairIndices ?? report.settings.pairs]);
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
    summary: Object.fromEntries(components.map((component) => [component, { mean: report.summary[component].mean, rank: report.summary[component].rank }])) as ComparisonSeries['summary'],
  };
}
