// Option parsing shared by the commands: node's parseArgs, its errors turned into one-line usage errors.
import { UsageError } from '../core/errors';

/** Runs `parse` (a parseArgs call); its error becomes a UsageError pointing at the command's --help. */
export function parseOptions<T>(command: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new UsageError(`${(error as Error).message.split('\n')[0]} (see plasticity-lens ${command} --help).`);
  }
}
