// What the commands that read saved reports share (recommend, overlay, compare, merge): reading
// a report file, writing an output without clobbering an input, and the exit-code policy
// (2 usage, 3 model file, 4 report file).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CancelledError, InputDataError, ModelFileError, UsageError } from '../core/errors';
import { parseReport, ReportSource, reportSource } from '../core/recommend/reportInput';
import { PlasticityReport } from '../core/report/reportSchema';

export const REPORT_COMMAND_EXIT = { done: 0, internal: 1, usage: 2, model: 3, report: 4, cancelled: 130 } as const;

function exitCodeFor(error: unknown): number {
  if (error instanceof UsageError) return REPORT_COMMAND_EXIT.usage;
  if (error instanceof ModelFileError) return REPORT_COMMAND_EXIT.model;
  if (error instanceof InputDataError) return REPORT_COMMAND_EXIT.report;
  if (error instanceof CancelledError) return REPORT_COMMAND_EXIT.cancelled;
  return REPORT_COMMAND_EXIT.internal;
}

/** Prints the error's one line and returns its exit code. */
export function reportError(error: unknown): number {
  const code = exitCodeFor(error);
  const message = (error instanceof Error ? error.message : String(error)).split('\n')[0];
  process.stderr.write(code === REPORT_COMMAND_EXIT.internal ? `plasticity-lens: internal error: ${message}\n` : `plasticity-lens: ${message}\n`);
  return code;
}

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
