// Paths of the committed fixtures (made by test/fixtures/generate.py with PyTorch's exporter)
// and their golden values computed in PyTorch.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Repository root, from out/test/support. */
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures');
export const MODELS = path.join(FIXTURES, 'models');
export const PAIRS = { reference: path.join(FIXTURES, 'pairs', 'reference'), target: path.join(FIXTURES, 'pairs', 'target') };
export const CLI = path.join(REPO_ROOT, 'bin', 'plasticity-lens.js');
export const WORKER_SCRIPT = path.join(REPO_ROOT, 'out', 'extension', 'worker', 'workerMain.js');

export interface Golden {
  model: string;
  style: string;
  opset: number;
  dynamicBatch: boolean;
  inputName: string;
  architecture: {
    blocks: number;
    hiddenSize: number;
    heads: number;
    mlpSize: number;
    tokens: number;
    imageSize: [number, number];
    patchSize: [number, number];
    norm: 'pre' | 'post';
    naming: string;
    activation: string;
  };
  modules: Record<string, string>[];
  parameters: Record<string, { names: string[]; count: number }>[];
  totalParameters: number;
  /** [pair][block][component] */
  isolated: number[][][];
  inContext: number[][][];
}

export function goldenFixtures(): Golden[] {
  return fs
    .readdirSync(MODELS)
    .filter((name) => name.endsWith('.golden.json'))
    .sort()
    .map((name) => JSON.parse(fs.readFileSync(path.join(MODELS, name), 'utf8')) as Golden);
}

/** The ViT families beyond the plain ViT (generate_families.py), with the parameters of no component each golden lists. */
export const FAMILY_MODELS = path.join(MODELS, 'families');

export type FamilyGolden = Golden & { family: string; extraParameters: { name: string; block: number | null; follows: string | null }[] };

export function familyGoldens(): FamilyGolden[] {
  return fs
    .readdirSync(FAMILY_MODELS)
    .filter((name) => name.endsWith('.golden.json'))
    .sort()
    .map((name) => JSON.parse(fs.readFileSync(path.join(FAMILY_MODELS, name), 'utf8')) as FamilyGolden);
}

/** The families whose MLP is gated (SwiGLU), with no LayerScale: the float64 references (probes, bounds) cover them. */
export function swigluFamilyGoldens(): FamilyGolden[] {
  return familyGoldens().filter((golden) => golden.style.startsWith('eva_swiglu'));
}

/**
 * Every plain fixture and every family the float64 references (probes, bounds) compute, each with
 * its file: all but the rotary ones (DINOv3), whose references are the families test's own.
 */
export function referenceFixtures(): { golden: Golden; file: string }[] {
  return [
    ...goldenFixtures().map((golden) => ({ golden, file: modelPath(golden.model) })),
    ...familyGoldens()
      .filter((golden) => !golden.style.includes('dinov3'))
      .map((golden) => ({ golden, file: path.join(FAMILY_MODELS, golden.model) })),
  ];
}

export function modelPath(name: string): string {
  return path.join(MODELS, name);
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `plasticity-lens-${prefix}-`));
}

/** Writes a float32 array as a NumPy .npy file (format 1.0, C order), as numpy.save does. */
export function writeNpyFile(file: string, data: Float32Array, shape: number[]): void {
  const dictionary = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  // Magic (6) + version (2) + header length (2) + header, padded with spaces to 64 bytes, ending in a newline.
  const unpadded = 10 + dictionary.length + 1;
  const header = dictionary + ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const prefix = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
  prefix.writeUInt16LE(header.length, 8);
  fs.writeFileSync(file, Buffer.concat([prefix, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real command line in a child process. */
export function runCli(args: string[], options: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Relative difference, safe near zero. */
export function relativeError(actual: number, expected: number): number {
  return Math.abs(actual - expected) / Math.max(Math.abs(expected), 1e-12);
}

// ---- Helpers for the integration tests (engine goldens, command line, worker lifecycle). ----

/** Component order of the goldens' innermost arrays (and of the report's `components`). */
export const GOLDEN_COMPONENTS = ['LN1', 'MHA', 'LN2', 'FC1', 'FC2'] as const;

/** Mean and sample standard deviation (n - 1), as the report defines them. */
export function sampleStatistics(values: number[]): { mean: number; std: number } {
  const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
  const squares = values.reduce((sum, value) => sum + (value - mean) ** 2, 0);
  return { mean, std: values.length > 1 ? Math.sqrt(squares / (values.length - 1)) : 0 };
}

/** Golden per-pair ratios [pair][block][component] reduced to [block][component] statistics. */
export function goldenBlockStatistics(perPair: number[][][]): { mean: number; std: number }[][] {
  const blocks = perPair[0].length;
  return Array.from({ length: blocks }, (_, block) => GOLDEN_COMPONENTS.map((_, component) => sampleStatistics(perPair.map((pair) => pair[block][component]))));
}

/** The golden generator calls both CLIP flavours 'clip'; the engine tells HF CLIP apart as 'hf-clip'. */
export function expectedNaming(golden: Golden): string {
  return golden.style === 'hf_clip' ? 'hf-clip' : golden.architecture.naming;
}

export function sha256OfFile(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Content hash and modification time: what "the file was not touched" means. */
export function fileFingerprint(file: string): { sha256: string; mtimeMs: number; size: number } {
  const stats = fs.statSync(file);
  return { sha256: sha256OfFile(file), mtimeMs: stats.mtimeMs, size: stats.size };
}

/**
 * True while a process exists and is not a zombie. Zombies count as gone: a killed worker whose
 * parent already exited may wait a moment for whoever adopts it to reap it.
 */
export function processIsAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Polls until the process is gone; resolves false if it still lives after `limitMs`. */
export async function waitForProcessExit(pid: number, limitMs = 5000): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  while (processIsAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

/** Pids of live processes whose parent is `parentPid` and whose command line contains `needle` (Linux /proc). */
export function childProcessesMatching(parentPid: number, needle: string): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z' || Number(fields[1]) !== parentPid) continue;
      const commandLine = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (commandLine.includes(needle)) found.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

/** A user error: the exit code, and exactly one line on stderr, prefixed, without a stack trace. */
export function assertOneLineError(result: CliResult, code: number, mentions: RegExp): void {
  const where = `stderr was: ${JSON.stringify(result.stderr)}`;
  assert.equal(result.code, code, where);
  assert.equal(result.stdout, '', 'nothing on stdout');
  const lines = result.stderr.split('\n').filter((line) => line.length > 0);
  assert.equal(lines.length, 1, `one line on stderr; ${where}`);
  assert.match(lines[0], /^plasticity-lens: /, where);
  assert.match(lines[0], mentions, where);
  assert.ok(!result.stderr.includes('    at '), `no stack trace; ${where}`);
}
