// Paths of the committed fixtures (made by test/fixtures/generate.py with PyTorch's exporter)
// and their golden values computed in PyTorch.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
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

export function modelPath(name: string): string {
  return path.join(MODELS, name);
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(require('node:os').tmpdir(), `plasticity-lens-${prefix}-`));
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real command line in a child process. */
export function runCli(args: string[], options: { timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
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
