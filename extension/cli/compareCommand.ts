// `plasticity-lens compare A.json B.json [C.json ...]`: reports of one architecture side by side,
// each against the first.
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError } from '../core/errors';
import { compareReports, compareTargets } from '../core/compare/compareReports';
import { parseOptions } from './commandLineOptions';
import { EXIT, VERBOSE_OPTION } from './exitCodes';
import { formatComparisonTable } from './comparisonTable';
import { protectOutput, readReportFile, writeOutput } from './reportFiles';

export const COMPARE_USAGE = `Usage: plasticity-lens compare A.json B.json [C.json ...] [--json FILE|-]
       plasticity-lens compare MULTI-TARGET.json [--json FILE|-]

Compares reports of the same architecture (two checkpoints, two models, two runs), each against
the first: per (block, component) the difference of means with its 95% interval and a two-sided
Welch t-test from each report's mean, std and n; and the ranking of component types side by side.

One multi-target report (analyze --target A --target B ...) compares its targets instead, each
against the first, and says which recommendations of k component types they agree on.

Options:
  --json FILE|-       write the comparison as JSON to FILE, or to standard output with - (the
                      table then goes to standard error)
  --verbose           with an error, its stack trace
  -h, --help          show this help

Reports whose architecture (blocks, width, heads, MLP, norm, activation) or mode differ are
refused with the field that differs (exit 2).
Exit codes: 0 done, 1 internal error, 2 usage or reports that cannot be compared, 4 report not readable.`;

/** The report files named on the command line: at least two. */
export function reportFiles(command: string, positionals: string[]): string[] {
  if (positionals.length < 2) {
    throw new UsageError(
      `${command} takes at least two report files (written by 'plasticity-lens analyze MODEL --json REPORT.json'), got ${positionals.length}${positionals.length ? `: ${positionals.join(' ')}` : ''}.`,
    );
  }
  return positionals.map((file) => path.resolve(file));
}

export function runCompareCommand(args: string[]): number {
  const { values, positionals } = parseOptions('compare', () =>
    parseArgs({ args, allowPositionals: true, strict: true, options: { json: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false }, ...VERBOSE_OPTION } }),
  );
  if (values.help) {
    process.stdout.write(`${COMPARE_USAGE}\n`);
    return EXIT.done;
  }
  const single = positionals.length === 1 ? readReportFile(path.resolve(positionals[0])).report : undefined;
  const files = single?.targets && single.targets.length > 1 ? [path.resolve(positionals[0])] : reportFiles('compare', positionals);
  const out = values.json === undefined || values.json === '-' ? values.json : protectOutput(values.json, files);
  const comparison = single && files.length === 1 ? compareTargets(single, files[0]) : compareReports(files.map((file) => ({ report: readReportFile(file).report, file })));
  const table = formatComparisonTable(comparison);
  const json = `${JSON.stringify(comparison, null, 2)}\n`;
  if (out === '-') {
    process.stdout.write(json);
    process.stderr.write(`${table}\n`);
  } else {
    if (out) writeOutput(json, out);
    process.stdout.write(`${table}\n`);
    if (out) process.stdout.write(`Comparison written to ${out}\n`);
  }
  return EXIT.done;
}
