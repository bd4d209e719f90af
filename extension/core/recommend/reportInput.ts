// Reading a saved report back: checks that the JSON is a schemaVersion 1 report with the fields
// recommendations and overlays use, so a wrong file fails with a sentence, not a TypeError.
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { InputDataError } from '../errors';
import { PlasticityReport, REPORT_SCHEMA_VERSION } from '../report/reportSchema';
import { COMPONENTS } from '../vit/vitStructure';

/** Where a report came from, as plans record it. */
export interface ReportSource {
  file: string;
  sha256: string;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** The first missing or malformed field, described in words; null when the report is usable. */
function reportProblem(value: Record<string, unknown>): string | null {
  const model = value.model;
  if (!isObject(model)) return "it has no 'model'";
  if (!isNumber(model.parameterCount)) return "'model.parameterCount' is missing";
  if (typeof model.path !== 'string' || typeof model.sha256 !== 'string') return "'model.path' or 'model.sha256' is missing";
  if (!isObject(model.architecture) || typeof model.architecture.naming !== 'string') return "'model.architecture.naming' is missing";
  const settings = value.settings;
  if (!isObject(settings) || !isObject(settings.inputs) || typeof settings.inputs.synthetic !== 'boolean') return "'settings.inputs.synthetic' is missing";
  if (settings.mode !== 'isolated' && settings.mode !== 'in-context') return "'settings.mode' is missing";
  if (!Array.isArray(value.warnings)) return "'warnings' is missing";
  if (!isObject(value.summary)) return "'summary' is missing";
  for (const component of COMPONENTS) {
    const summary = value.summary[component];
    if (!isObject(summary) || !isNumber(summary.mean) || !isNumber(summary.rank) || !isNumber(summary.parameterCount)) return `'summary.${component}' is incomplete`;
  }
  if (!Array.isArray(value.blocks) || value.blocks.length === 0) return "it has no 'blocks'";
  for (const [position, block] of value.blocks.entries()) {
    if (!isObject(block) || !isNumber(block.index) || typeof block.module !== 'string' || !isObject(block.modules) || !isObject(block.components)) {
      return `block ${position} lacks its index, module names or components`;
    }
    for (const component of COMPONENTS) {
      const statistics = block.components[component];
      if (typeof block.modules[component] !== 'string') return `block ${block.index} has no module name for ${component}`;
      if (!isObject(statistics) || !isNumber(statistics.mean) || !isNumber(statistics.parameterCount) || !Array.isArray(statistics.parameters) || !Array.isArray(statistics.ci95)) {
        return `block ${block.index} ${component} lacks mean, ci95, parameters or parameterCount`;
      }
    }
  }
  if (value.targets !== undefined) {
    if (!Array.isArray(value.targets)) return "'targets' is not a list";
    for (const [position, target] of value.targets.entries()) {
      if (!isObject(target) || typeof target.name !== 'string' || !isNumber(target.meanInputDistance)) return `target ${position} lacks its name or meanInputDistance`;
      // A target is read as a report of its own: the same checks on its blocks and summary.
      const problem = reportProblem({ ...value, targets: undefined, blocks: target.blocks, summary: target.summary });
      if (problem) return `target ${target.name}: ${problem}`;
    }
  }
  return null;
}

/**
 * Parses and checks a report's text. `fileName` names the file in messages. Throws
 * InputDataError (the report is the input of recommend and overlay).
 */
export function parseReport(text: string, fileName: string): PlasticityReport {
  const name = path.basename(fileName);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InputDataError(`${name} is not JSON (${(error as Error).message.split('\n')[0]}); pass the report written by 'plasticity-lens analyze MODEL --json ${name}'.`);
  }
  if (!isObject(value) || !isObject(value.tool) || value.tool.name !== 'plasticity-lens' || !('schemaVersion' in value)) {
    throw new InputDataError(`${name} is not a Plasticity Lens report; pass the report written by 'plasticity-lens analyze MODEL --json ${name}'.`);
  }
  if (value.schemaVersion !== REPORT_SCHEMA_VERSION) {
    throw new InputDataError(
      `${name} is a report of schemaVersion ${String(value.schemaVersion)}, this version reads ${REPORT_SCHEMA_VERSION}; rerun the analysis with this version of Plasticity Lens.`,
    );
  }
  const problem = reportProblem(value);
  if (problem) throw new InputDataError(`${name} is an incomplete Plasticity Lens report (${problem}); rerun 'plasticity-lens analyze MODEL --json ${name}'.`);
  return value as unknown as PlasticityReport;
}

export function reportSource(file: string, text: string): ReportSource {
  return { file, sha256: createHash('sha256').update(text).digest('hex') };
}
