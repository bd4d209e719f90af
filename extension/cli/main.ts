// The command line's entry: picks the command (analyze by default), runs it, and turns any error
// into its one line and exit code (cli/exitCodes.ts). Each command lives in its own file.
import * as fs from 'node:fs';
import { TOOL_VERSION } from '../core/toolVersion';
import { runAnalyzeCommand } from './analyzeCommand';
import { runCompareCommand } from './compareCommand';
import { EXIT, reportFailure } from './exitCodes';
import { runMergeCommand } from './mergeCommand';
import { runOverlayCommand } from './overlayCommand';
import { runRecommendCommand } from './recommendCommand';

export { EXIT, exitCodeOf } from './exitCodes';

const MAIN_USAGE = `Usage: plasticity-lens <command> [options]

Commands:
  analyze [MODEL]   measure the plasticity of a ViT's components (default command)
  recommend REPORT  what to finetune under a budget, as a freeze configuration (json, pytorch, peft, yaml)
  overlay REPORT    per-block plasticity for Netron or Model Explorer
  compare A B ...   reports of one architecture against the first: differences, Welch tests, rankings
  merge SHARDS ...  shard reports of one run (analyze --pairs-from) combined into one report
  --version         print the version

Every command takes --help, and --verbose (stack traces and onnxruntime's log with an error).
Exit codes: 0 done, 1 internal error, 2 usage, 3 model not usable, 4 input data or report not usable, 130 cancelled.`;

const COMMANDS: Record<string, (args: string[]) => number | Promise<number>> = {
  analyze: runAnalyzeCommand,
  recommend: runRecommendCommand,
  overlay: runOverlayCommand,
  compare: runCompareCommand,
  merge: runMergeCommand,
};

/** `analyze` is the default command: no argument, an option, or a model path comes first. */
function impliesAnalyze(first: string | undefined): boolean {
  if (first === undefined) return true;
  if (first.startsWith('-')) return !['--help', '-h', '--version'].includes(first);
  if (first in COMMANDS || first === 'help') return false;
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
  const run = COMMANDS[command];
  if (!run) {
    process.stderr.write(`plasticity-lens: unknown command '${command}'; the commands are ${Object.keys(COMMANDS).join(', ')} (see plasticity-lens --help).\n`);
    return EXIT.usage;
  }
  try {
    return await run(rest);
  } catch (error) {
    return reportFailure(error, rest.includes('--verbose'));
  }
}
