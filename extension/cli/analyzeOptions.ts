// Parsing and checking of `plasticity-lens analyze` options into an AnalysisRequest.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError } from '../core/errors';
import { sampleSetIn } from '../core/inputs/sampleSet';
import { EXECUTION_PROVIDER_REQUESTS, isOneOf, MEASURE_MODES } from '../core/vocabulary';
import { AnalysisRequest } from '../worker/workerProtocol';
import { parseOptions } from './commandLineOptions';

/** The sample ViT and images shipped in the repository: what runs when no model is given. */
export const SAMPLE = sampleSetIn(path.join(__dirname, '..', '..', '..', 'samples'));

export const ANALYZE_USAGE = `Usage: plasticity-lens analyze [MODEL] [options]

Measures the plasticity of each transformer block's LN1, MHA, LN2, FC1 and FC2 (Odonnat et al. 2026).
Without MODEL, analyses the sample ViT shipped with Plasticity Lens on its sample images.

Options:
  --reference DIR     reference images (pretraining-like data); pair i = i-th file of each folder
  --target DIR        target images (your downstream data); one folder alone is split in halves
                      (neither: seeded synthetic images, flagged as such in every output);
                      repeat it (--target A --target B ...) to measure several targets against
                      the same reference pairs in one run (a multi-target report)
  --targets DIR       a folder of target folders, one target each (its subfolders, by name)
  --pairs N           use at most N pairs (default: all pairs found; 32 synthetic pairs)
  --pairs-from N      skip the first N pairs: one shard of a longer run (with --pairs M);
                      shards' reports combine with 'plasticity-lens merge'
  --until-settled     stop once the ranking of component types is settled (their 95% intervals
                      are disjoint), after at least 32 pairs and at most --pairs (synthetic
                      inputs: 12800 by default; several targets: once every target is settled);
                      the report says how many pairs it took and why
  --tolerance T       with --until-settled: stop also when every (block, component) mean's 95%
                      half-interval is at most T times the mean (e.g. 0.01)
  --seed S            seed of synthetic inputs (default 0)
  --mode M            isolated (the paper's measure, default) or in-context
  --ep P              execution provider: auto (default), cpu, webgpu, cuda, dml, coreml
  --mean r,g,b        normalisation mean (default ImageNet 0.485,0.456,0.406)
  --std r,g,b         normalisation std (default ImageNet 0.229,0.224,0.225)
  --size H,W          image size, when the model's input size is symbolic
  --json FILE|-       write the JSON report to FILE, or to standard output with -
  --verbose           show stack traces and onnxruntime logs
  -h, --help          show this help

Exit codes: 0 done, 1 internal error, 2 usage, 3 model not usable, 4 input data not usable, 130 cancelled.`;

export interface AnalyzeCommand {
  request: AnalysisRequest;
  json?: string;
  verbose: boolean;
  help: boolean;
  usingSample: boolean;
}

function numberList(option: string, text: string, length: number, check: (value: number) => boolean, what: string): number[] {
  const values = text.split(',').map((part) => Number(part.trim()));
  if (values.length !== length || values.some((value) => !Number.isFinite(value) || !check(value))) {
    throw new UsageError(`--${option} takes ${length} comma-separated ${what} (got '${text}').`);
  }
  return values;
}

function integer(option: string, text: string, minimum: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < minimum) throw new UsageError(`--${option} takes an integer of at least ${minimum} (got '${text}').`);
  return value;
}

/** The target folders inside `--targets DIR`: its subfolders, sorted by name (hidden ones skipped). */
function subfolders(folder: string): string[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(folder, { withFileTypes: true });
  } catch (error) {
    throw new UsageError(`--targets ${folder} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); give a folder holding one folder per target.`);
  }
  const names = entries
    .filter((entry) => !entry.name.startsWith('.') && (entry.isDirectory() || (entry.isSymbolicLink() && isFolder(path.join(folder, entry.name)))))
    .map((entry) => entry.name)
    .sort();
  if (names.length === 0) throw new UsageError(`--targets ${folder} holds no folders; it takes a folder holding one folder of images per target.`);
  return names.map((name) => path.join(folder, name));
}

function isFolder(file: string): boolean {
  try {
    return fs.statSync(file).isDirectory();
  } catch {
    return false;
  }
}

export function parseAnalyzeArguments(args: string[]): AnalyzeCommand {
  const { values, positionals } = parseOptions('analyze', () =>
    parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        reference: { type: 'string' },
        target: { type: 'string', multiple: true },
        targets: { type: 'string' },
        pairs: { type: 'string' },
        'pairs-from': { type: 'string' },
        'until-settled': { type: 'boolean', default: false },
        tolerance: { type: 'string' },
        seed: { type: 'string' },
        mode: { type: 'string' },
        ep: { type: 'string' },
        mean: { type: 'string' },
        std: { type: 'string' },
        size: { type: 'string' },
        json: { type: 'string' },
        verbose: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
        'batch-pairs': { type: 'string' },
      },
    }),
  );
  if (positionals.length > 1) throw new UsageError(`analyze takes one model file, got ${positionals.length}: ${positionals.join(' ')}.`);
  const mode = values.mode ?? 'isolated';
  if (!isOneOf(MEASURE_MODES, mode)) throw new UsageError(`--mode takes ${MEASURE_MODES.join(' or ')} (got '${values.mode}').`);
  const executionProvider = values.ep ?? 'auto';
  if (!isOneOf(EXECUTION_PROVIDER_REQUESTS, executionProvider)) throw new UsageError(`--ep takes one of ${EXECUTION_PROVIDER_REQUESTS.join(', ')} (got '${values.ep}').`);

  const usingSample = positionals.length === 0;
  const request: AnalysisRequest = {
    modelPath: path.resolve(positionals[0] ?? SAMPLE.model),
    mode,
    executionProvider,
    seed: values.seed === undefined ? 0 : integer('seed', values.seed, 0),
  };
  const targetFolders = [...(values.target ?? []), ...(values.targets !== undefined ? subfolders(values.targets) : [])];
  const reference = values.reference ?? (usingSample && targetFolders.length === 0 ? SAMPLE.reference : undefined);
  const target = targetFolders[0] ?? (usingSample && values.reference === undefined ? SAMPLE.target : undefined);
  if (reference) request.reference = path.resolve(reference);
  if (target) request.target = path.resolve(target);
  if (targetFolders.length > 1) {
    if (!reference) throw new UsageError('Several targets are measured against one reference folder: give --reference DIR too.');
    request.targets = targetFolders.map((folder) => path.resolve(folder));
  }
  if (values.pairs !== undefined) request.pairs = integer('pairs', values.pairs, 1);
  if (values['pairs-from'] !== undefined) request.pairsFrom = integer('pairs-from', values['pairs-from'], 0);
  if (values['until-settled']) request.untilSettled = true;
  if (values.tolerance !== undefined) {
    const tolerance = Number(values.tolerance);
    if (!(Number.isFinite(tolerance) && tolerance > 0 && tolerance < 1))
      throw new UsageError(`--tolerance takes a relative half-interval between 0 and 1, e.g. 0.01 (got '${values.tolerance}').`);
    if (!request.untilSettled) throw new UsageError('--tolerance only applies with --until-settled; add it, or leave --tolerance out.');
    request.tolerance = tolerance;
  }
  if (values['batch-pairs'] !== undefined) request.batchPairs = integer('batch-pairs', values['batch-pairs'], 1);
  if (values.mean !== undefined) request.mean = numberList('mean', values.mean, 3, () => true, 'numbers') as [number, number, number];
  if (values.std !== undefined) request.std = numberList('std', values.std, 3, (value) => value > 0, 'positive numbers') as [number, number, number];
  if (values.size !== undefined) request.size = numberList('size', values.size, 2, (value) => Number.isInteger(value) && value > 0, 'positive integers') as [number, number];
  if (values.json !== undefined && values.json !== '-' && path.resolve(values.json) === request.modelPath) {
    throw new UsageError('--json would overwrite the model file; choose another file name.');
  }
  return { request, json: values.json, verbose: values.verbose ?? false, help: values.help ?? false, usingSample };
}
