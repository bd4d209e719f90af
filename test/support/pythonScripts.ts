// Running the Python helpers under test/python/ that exercise generated configuration files.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { REPO_ROOT } from './fixtures';

export const PYTHON_HELPERS = path.join(REPO_ROOT, 'test', 'python');

/** Debian's interpreter is the one with python3-torch; any python3 does for torch-free checks. */
const CANDIDATES = ['/usr/bin/python3', 'python3'];

export interface PythonResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runPython(python: string, args: string[], timeoutMs = 60_000): PythonResult {
  const result = spawnSync(python, args, { encoding: 'utf8', timeout: timeoutMs });
  return { code: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? (result.error ? String(result.error) : '') };
}

/** The first interpreter that can import every module named, or null. */
export function pythonWith(modules: string[] = [], candidates: string[] = CANDIDATES): string | null {
  const imports = modules.length > 0 ? `import ${modules.join(', ')}` : 'pass';
  for (const python of candidates) {
    if (runPython(python, ['-c', imports], 60_000).code === 0) return python;
  }
  return null;
}

/** Runs a helper script that prints JSON; throws with its stderr when it fails. */
export function runPythonHelper<T>(python: string, script: string, args: string[], timeoutMs = 60_000): T {
  const result = runPython(python, [path.join(PYTHON_HELPERS, script), ...args], timeoutMs);
  if (result.code !== 0) throw new Error(`${script} ${args.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
  return JSON.parse(result.stdout) as T;
}
