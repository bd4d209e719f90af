// `plasticity-lens analyze [MODEL] [options]`: runs the engine in its worker process, shows
// progress on a terminal, stops cleanly on Ctrl-C, prints the table and writes the JSON report.
import * as fs from 'node:fs';
import { UsageError } from '../core/errors';
import { describeProgress } from '../worker/progressText';
import { AnalysisProgress } from '../worker/workerProtocol';
import { WorkerSupervisor } from '../worker/workerSupervisor';
import { ANALYZE_USAGE, parseAnalyzeArguments } from './analyzeOptions';
import { EXIT } from './exitCodes';
import { formatReportTable } from './reportTable';

export async function runAnalyzeCommand(args: string[]): Promise<number> {
  const command = parseAnalyzeArguments(args);
  if (command.help) {
    process.stdout.write(`${ANALYZE_USAGE}\n`);
    return EXIT.done;
  }
  const verbose = command.verbose;
  const supervisor = new WorkerSupervisor({ onLog: (text) => verbose && process.stderr.write(text) });
  const abort = new AbortController();
  const onInterrupt = () => {
    if (abort.signal.aborted) process.exit(EXIT.cancelled); // a second Ctrl-C does not wait
    abort.abort();
  };
  process.on('SIGINT', onInterrupt);
  const interactive = process.stderr.isTTY === true;
  let lastLine = '';
  const showProgress = (progress: AnalysisProgress) => {
    const line = progress.phase === 'measuring' ? `${progressBar(progress.pairsDone, progress.pairsTotal)} ${describeProgress(progress)}` : describeProgress(progress);
    if (interactive) {
      process.stderr.write(`\r\x1b[2K${line}`);
      lastLine = line;
    } else if (progress.phase !== 'measuring' && verbose) {
      process.stderr.write(`${line}\n`);
    }
  };
  const clearProgress = () => {
    if (interactive && lastLine) process.stderr.write('\r\x1b[2K');
    lastLine = '';
  };

  try {
    const report = await supervisor.analyze(command.request, showProgress, abort.signal);
    clearProgress();
    const table = formatReportTable(report);
    const json = `${JSON.stringify(report, null, 2)}\n`;
    if (command.json === '-') {
      process.stdout.write(json);
      process.stderr.write(`${table}\n`);
    } else {
      if (command.json) {
        try {
          fs.writeFileSync(command.json, json);
        } catch (error) {
          throw new UsageError(`The report cannot be written to ${command.json} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); choose a writable path.`);
        }
      }
      process.stdout.write(`${table}\n`);
      if (command.json) process.stdout.write(`Report written to ${command.json}\n`);
    }
    return EXIT.done;
  } finally {
    clearProgress();
    process.off('SIGINT', onInterrupt);
    supervisor.dispose();
  }
}

/** A text bar of done out of total, for the terminal's progress line. */
export function progressBar(done: number, total: number, width = 24): string {
  const filled = total > 0 ? Math.min(width, Math.round((done / total) * width)) : 0;
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}
