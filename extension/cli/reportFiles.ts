// What the commands that read saved reports share (recommend, overlay, compare, merge): reading
// a report file and the model it measured, and writing an output without clobbering an input.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputDataError, ModelFileError, UsageError } from '../core/errors';
import { OnnxModel, onnxFileSha256, readOnnxModel } from '../core/onnx/onnxModel';
import { measuredModelMismatch, measuredModelMissing } from '../core/recommend/measuredModel';
import { parseReport, ReportSource, reportSource } from '../core/recommend/reportInput';
import { PlasticityReport } from '../core/report/reportSchema';

export function readReportFile(file: string): { report: PlasticityReport; source: ReportSource } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new InputDataError(`The report ${file} cannot be read (${code}); pass the file written by 'plasticity-lens analyze MODEL --json FILE'.`);
  }
  return { report: parseReport(text, file), source: reportSource(file, text) };
}

export function protectOutput(out: string, protectedFiles: string[]): string {
  const resolved = path.resolve(out);
  const real = (file: string) => {
    try {
      return fs.realpathSync(file);
    } catch {
      return path.resolve(file);
    }
  };
  if (protectedFiles.some((file) => real(file) === real(resolved))) {
    throw new UsageError(`--out ${out} would overwrite the report or the model it reads; choose another file name.`);
  }
  return resolved;
}

export function writeOutput(text: string, out: string): void {
  try {
    fs.writeFileSync(out, text);
  } catch (error) {
    throw new UsageError(`The output cannot be written to ${out} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); choose a writable path.`);
  }
}

/** The one report file a command takes. */
export function onePositional(command: string, positionals: string[]): string {
  if (positionals.length !== 1) {
    throw new UsageError(
      `${command} takes one report file (written by 'plasticity-lens analyze MODEL --json REPORT.json'), got ${positionals.length}${positionals.length ? `: ${positionals.join(' ')}` : ''}.`,
    );
  }
  return path.resolve(positionals[0]);
}

export interface MeasuredModel {
  model: OnnxModel | null;
  /** The model file's sha256, when it was read. */
  sha256?: string;
  /** Why the model was not used, when it was not. */
  note?: string;
}

/**
 * The ONNX model the report measured. `required`: a missing or different file is an error;
 * otherwise the plan goes on without it and says so.
 */
export function loadMeasuredModel(report: PlasticityReport, explicit: string | undefined, required: boolean): MeasuredModel {
  const file = path.resolve(explicit ?? report.model.path);
  const give = (message: string): MeasuredModel => {
    if (required || explicit !== undefined) throw new ModelFileError(message);
    return { model: null, note: message };
  };
  if (!fs.existsSync(file)) {
    return give(`${measuredModelMissing(file)}; pass it with --model FILE.`);
  }
  let model: OnnxModel;
  try {
    model = readOnnxModel(file);
  } catch (error) {
    if (error instanceof ModelFileError) return give(error.message);
    throw error;
  }
  const sha256 = onnxFileSha256(model);
  const mismatch = measuredModelMismatch(report, file, sha256);
  if (mismatch) return give(`${mismatch}; pass the measured model with --model FILE.`);
  return { model, sha256 };
}
