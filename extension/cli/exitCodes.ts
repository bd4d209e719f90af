// The command line's one exit-code policy and its one way of saying what went wrong, for every
// command: a one-line sentence on standard error; with --verbose, the stack too.
import { CancelledError, InputDataError, ModelFileError, UsageError } from '../core/errors';
import { WorkerCrashError } from '../worker/workerSupervisor';

/** 0 done, 1 internal error, 2 usage, 3 model not usable, 4 input data or report not usable, 130 cancelled. */
export const EXIT = { done: 0, internal: 1, usage: 2, model: 3, input: 4, cancelled: 130 } as const;

export function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError) return EXIT.usage;
  if (error instanceof ModelFileError) return EXIT.model;
  if (error instanceof InputDataError) return EXIT.input;
  if (error instanceof CancelledError) return EXIT.cancelled;
  return EXIT.internal;
}

/** Prints the error's sentence (an internal error's first line, with how to see more) and returns its exit code. */
export function reportFailure(error: unknown, verbose: boolean): number {
  const code = exitCodeOf(error);
  const message = error instanceof Error ? error.message : String(error);
  if (code === EXIT.internal && !(error instanceof WorkerCrashError)) {
    process.stderr.write(`plasticity-lens: internal error: ${message.split('\n')[0]}${verbose ? '' : ' (run with --verbose for details)'}\n`);
  } else {
    process.stderr.write(`plasticity-lens: ${message}\n`);
  }
  if (verbose && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  return code;
}

/** The option every command takes (stack traces, and onnxruntime's log where it runs). */
export const VERBOSE_OPTION = { verbose: { type: 'boolean', default: false } } as const;
