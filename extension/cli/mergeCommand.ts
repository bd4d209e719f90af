// `plasticity-lens merge SHARD.json ... --out MERGED.json`: shards of one run (disjoint pairs,
// e.g. from several machines) into the report of one run over all their pairs.
import { parseArgs } from 'node:util';
import { UsageError } from '../core/errors';
import { mergeReports } from '../core/report/mergeReports';
import { parseOptions } from './commandLineOptions';
import { EXIT, VERBOSE_OPTION } from './exitCodes';
import { reportFiles } from './compareCommand';
import { protectOutput, readReportFile, writeOutput } from './reportFiles';
import { formatReportTable } from './reportTable';

export const MERGE_USAGE = `Usage: plasticity-lens merge SHARD.json SHARD.json ... --out MERGED.json

Combines reports of the same model (sha256) and settings over disjoint pairs, e.g. shards run on
several machines with 'analyze --pairs-from N --pairs M', into the report of one run over all their
pairs: means, standard deviations and n combined exactly, intervals, summary and ranking recomputed.

Options:
  --out FILE          write the merged report to FILE (- for standard output)
  --verbose           with an error, its stack trace
  -h, --help          show this help

Shards of another model, other settings, or sharing a pair are refused with the reason (exit 2).
Exit codes: 0 done, 1 internal error, 2 usage or shards that cannot be merged, 4 report not readable.`;

export function runMergeCommand(args: string[]): number {
  const { values, positionals } = parseOptions('merge', () =>
    parseArgs({ args, allowPositionals: true, strict: true, options: { out: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false }, ...VERBOSE_OPTION } }),
  );
  if (values.help) {
    process.stdout.write(`${MERGE_USAGE}\n`);
    return EXIT.done;
  }
  const files = reportFiles('merge', positionals);
  if (values.out === undefined) throw new UsageError('merge needs --out MERGED.json (or --out - for standard output).');
  const out = values.out === '-' ? '-' : protectOutput(values.out, files);
  const merged = mergeReports(
    files.map((file) => {
      const { report, source } = readReportFile(file);
      return { report, file, sha256: source.sha256 };
    }),
  );
  const json = `${JSON.stringify(merged, null, 2)}\n`;
  const table = formatReportTable(merged);
  if (out === '-') {
    process.stdout.write(json);
    process.stderr.write(`${table}\n`);
  } else {
    writeOutput(json, out);
    process.stdout.write(`${table}\nMerged report of ${merged.settings.pairs} pairs written to ${out}\n`);
  }
  return EXIT.done;
}
