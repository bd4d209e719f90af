// `plasticity-lens overlay`: each block component's plasticity written onto the ONNX graph's
// nodes, for Netron or Google Model Explorer, from a saved report.
import { parseArgs } from 'node:util';
import { UsageError } from '../core/errors';
import { isOneOf } from '../core/vocabulary';
import { exportOverlay, OVERLAY_FORMATS } from '../core/recommend/graphOverlays';
import { parseOptions } from './commandLineOptions';
import { EXIT, VERBOSE_OPTION } from './exitCodes';
import { loadMeasuredModel, onePositional, protectOutput, readReportFile, writeOutput } from './reportFiles';

export const OVERLAY_USAGE = `Usage: plasticity-lens overlay REPORT.json --format model-explorer|netron [--out FILE] [--model FILE]

Writes each block component's plasticity onto the ONNX graph's nodes (matched by the module scope
in their names), for viewing in a graph viewer:
  model-explorer   node data JSON for Google Model Explorer (ONNX via the model-explorer-onnx
                   adapter): load it with "Add per-node data" > Upload, or --node_data_paths; nodes are
                   coloured light to dark red by plasticity
  netron           a netron:attachment JSON for Netron (8.2.8 or later): open the model, then open
                   this file (its name must end in .json); values appear in each node's properties
                   (Metrics, Metadata); Netron does not colour nodes from it

Options:
  --model FILE        the ONNX model the report measured (default: the report's model.path)
  --out FILE          write to FILE instead of standard output (never the report or the model)
  --verbose           with an error, its stack trace
  -h, --help          show this help

Exit codes: 0 done, 1 internal error, 2 usage, 3 model file not usable, 4 report not readable.`;

export function runOverlayCommand(args: string[]): number {
  const { values, positionals } = parseOptions('overlay', () =>
    parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        format: { type: 'string' },
        model: { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
        ...VERBOSE_OPTION,
      },
    }),
  );
  if (values.help) {
    process.stdout.write(`${OVERLAY_USAGE}\n`);
    return EXIT.done;
  }
  const format = values.format;
  if (!isOneOf(OVERLAY_FORMATS, format)) {
    throw new UsageError(`--format takes ${OVERLAY_FORMATS.join(' or ')}${format === undefined ? '' : ` (got '${format}')`}.`);
  }
  const reportFile = onePositional('overlay', positionals);
  const out = values.out === undefined ? undefined : protectOutput(values.out, [reportFile]);
  const { report } = readReportFile(reportFile);
  if (out) protectOutput(out, [report.model.path, ...(values.model ? [values.model] : [])]);
  const { model } = loadMeasuredModel(report, values.model, true);
  const text = exportOverlay(report, model!.nodes, format);
  if (out) {
    writeOutput(text, out);
    process.stdout.write(`${format} overlay written to ${out}\n`);
    if (format === 'netron' && !out.toLowerCase().endsWith('.json')) {
      process.stderr.write('plasticity-lens: warning: Netron reads attachments only from files whose name ends in .json; rename the file.\n');
    }
  } else {
    process.stdout.write(text);
  }
  if (report.settings.inputs.synthetic) process.stderr.write('plasticity-lens: warning: the report was measured on synthetic images, not on your data.\n');
  return EXIT.done;
}
