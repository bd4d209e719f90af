// What the benchmarks share: where the benchmark model lies, medians, memory figures.
import * as fs from 'node:fs';
import * as path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');

/**
 * The benchmark model's folder (the command line's first argument, default .bench/vitb) and
 * file. Null, with the command that makes it printed and exit code 2, when it is not there.
 */
export function benchmarkModel(folderArgument: string | undefined): { folder: string; modelFile: string } | null {
  const folder = path.resolve(folderArgument ?? path.join(REPO_ROOT, '.bench', 'vitb'));
  const modelFile = path.join(folder, 'vit_b16.onnx');
  if (fs.existsSync(modelFile)) return { folder, modelFile };
  console.error(
    `No benchmark model at ${modelFile}. Make it first (needs Debian's python3-torch):\n  /usr/bin/python3 bench/make_vit_b.py ${path.relative(process.cwd(), folder) || folder}`,
  );
  process.exitCode = 2;
  return null;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Peak resident memory of a live process, from /proc (Linux only). */
export function peakResidentBytes(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /VmHWM:\s+(\d+) kB/.exec(status);
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
