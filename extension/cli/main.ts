// The command line: `plasticity-lens analyze ...`. Runs the engine in its worker process, shows
// progress on a terminal, stops cleanly on Ctrl-C, maps errors to exit codes.
import * as fs from 'node:fs';
import { CancelledError, InputDataError, ModelFileError, UsageError } from '../core/errors';
import { TOOL_VERSION } from '../core/toolVersion';
import { WorkerCrashError, WorkerSupervisor } from '../worker/workerSupervisor';
import { describeProgress } from '../worker/progressText';
import { AnalysisProgress } from '../worker/workerProtocol';
import { ANALYZE_USAGE, parseAnalyzeArguments } from './analyzeOptions';
import { formatReportTable } from './reportTable';
import { runOverlayCommand, runRecommendCommand } from './recommendCommand';
import { runCompareCommand } from './compareCommand';
import { runMergeCommand } from './mergeCommand';

export const EXIT = { done: 0, internal: 1, usage: 2, model: 3, input: 4, cancelled: 130 } as const;

const MAIN_USAGE = `Usage: plasticity-lens <command> [options]

Commands:
  analyze [MODEL]   measure the plasticity of a ViT's components (default command)
  recommend REPORT  what to finetune under a budget, as a freeze configuration (json, pytorch, peft, yaml)
  overlay REPORT    per-block plasticity for Netron or Model Explorer
  compare A B ...   reports of one architecture against the first: differences, Welch tests, rankings
  merge SHARDS ...  shard reports of one run (analyze --pairs-from) combined into one report
  --version         print the version

Run 'plasticity-lens analyze --help' for the options.`;

export function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError) return EXIT.usage;
  if (error instanceof ModelFileError) return EXIT.model;
  if (error instanceof InputDataError) return EXIT.input;
  if (error instanceof CancelledError) return EXIT.cancelled;
  return EXIT.internal;
}

const COMMANDS = ['analyze', 'recommend', 'overlay', 'compare', 'merge', 'help'];

/** `analyze` is the default command: no argument, an option, or a model path comes first. */
function impliesAnalyze(first: string | undefined): boolean {
  if (first === undefined) return true;
  if (first.startsWith('-')) return !['--help', '-h', '--version'].includes(first);
  if (COMMANDS.includes(first)) return false;
  return /[\\/.]/.test(first) || fs.existsSync(first);
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = impliesAnalyze(argv[0]) ? ['analyze', ...argv] : argv;
  if (command === '--version') {
    process.stdout.write(`${TOOL_VERSION}\n`);
    return EXIT.done;
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${MAIN_USAGE}\n`);
    return EXIT.done;
  }
  if (command === 'recommend') return runRecommendCommand(rest);
  if (command === 'overlay') return runOverlayCommand(rest);
  if (command === 'compare') return runCompareCommand(rest);
  if (command === 'merge') return runMergeCommand(rest);
  if (command !== 'analyze') {
    process.stderr.write(`plasticity-lens: unknown command '${command}'; the commands are ${COMMANDS.join(', ')} (see plasticity-lens --help).\n`);
    return EXIT.usage;
  }

  let verbose = rest.includes('--verbose');
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
    const command = parseAnalyzeArguments(rest);
    verbose = command.verbose;
    if (command.help) {
      process.stdout.write(`${ANALYZE_USAGE}\n`);
      return EXIT.done;
    }
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
  } catch (error) {
    clearProgress();
    const code = exitCodeOf(error);
    const message = error instanceof Error ? error.message : String(error);
    if (code === EXIT.internal && !(error instanceof WorkerCrashError)) {
      process.stderr.write(`plasticity-lens: internal error: ${message.split('\n')[0]}${verbose ? '' : ' (run with --verbose for details)'}\n`);
    } else {
      process.stderr.write(`plasticity-lens: ${message}\n`);
    }
    if (verbose && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
    return code;
  } finally {
    process.off('SIGINT', onInterrupt);
    supervisor.dispose();
  }
}

/** A text bar of done out of total, for the terminal's progress line. */
export function progressBar(done: number, total: number, width = 24): string {
  const filled = total > 0 ? Math.min(width, Math.round((done / total) * width)) : 0;
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}
