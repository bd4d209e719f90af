// Named fields of a report, compared between reports: compare and merge refuse reports that
// differ where they must agree, with one sentence naming the field and both values.
import * as path from 'node:path';
import { PlasticityReport } from './reportSchema';

export interface ReportField {
  /** The field as the JSON report spells it, e.g. "model.architecture.blocks". */
  name: string;
  value(report: PlasticityReport): unknown;
}

const field = (name: string, value: (report: PlasticityReport) => unknown): ReportField => ({ name, value });

/** What makes two reports' (block, component) cells the same cells, measured the same way. */
export const ARCHITECTURE_FIELDS: ReportField[] = [
  field('components', (report) => report.components),
  field('model.architecture.blocks', (report) => report.model.architecture.blocks),
  field('model.architecture.hiddenSize', (report) => report.model.architecture.hiddenSize),
  field('model.architecture.heads', (report) => report.model.architecture.heads),
  field('model.architecture.mlpSize', (report) => report.model.architecture.mlpSize),
  field('model.architecture.norm', (report) => report.model.architecture.norm),
  field('model.architecture.activation', (report) => report.model.architecture.activation),
  field('settings.mode', (report) => report.settings.mode),
];

/**
 * What shards of one run share: the model and every setting that changes the numbers. Folders
 * are compared by name, not full path: shards run on several machines mount data in different places.
 */
export const SHARD_FIELDS: ReportField[] = [
  field('model.sha256', (report) => report.model.sha256),
  ...ARCHITECTURE_FIELDS,
  field('settings.inputs.kind', (report) => report.settings.inputs.kind),
  field('settings.inputs.reference', (report) => folderName(report.settings.inputs.reference)),
  field('settings.inputs.target', (report) => folderName(report.settings.inputs.target)),
  field('settings.inputs.targets', (report) => report.settings.inputs.targets?.map(folderName) ?? null),
  field('settings.seed', (report) => (report.settings.inputs.synthetic ? report.settings.seed : 'not used')),
  field('settings.preprocessing.size', (report) => report.settings.preprocessing.size),
  field('settings.preprocessing.mean', (report) => report.settings.preprocessing.mean),
  field('settings.preprocessing.std', (report) => report.settings.preprocessing.std),
];

function folderName(folder: string | null): string | null {
  return folder === null ? null : path.basename(folder.replace(/[\\/]+$/, ''));
}

export interface FieldDifference {
  field: string;
  first: string;
  other: string;
}

/** The first listed field whose value differs between the two reports, or null. */
export function firstDifference(first: PlasticityReport, other: PlasticityReport, fields: ReportField[]): FieldDifference | null {
  for (const { name, value } of fields) {
    const a = JSON.stringify(value(first));
    const b = JSON.stringify(value(other));
    if (a !== b) return { field: name, first: shorten(a), other: shorten(b) };
  }
  return null;
}

/** Hashes and long lists shortened so the message stays one readable line. */
function shorten(text: string): string {
  const plain = text.replace(/^"|"$/g, '');
  return /^[0-9a-f]{64}$/.test(plain) ? `${plain.slice(0, 12)}…` : plain.length > 60 ? `${plain.slice(0, 57)}…` : plain;
}
