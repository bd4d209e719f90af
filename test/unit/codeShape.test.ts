// The shape the code keeps (issue: "discovery grows by adding files"): no product module imports
// one that imports it back, directly or through others, and no product file outgrows 600 lines.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../support/fixtures';

const PRODUCT_FOLDERS = ['extension', 'webview'];
const MAX_LINES = 600;

function productFiles(): string[] {
  const files: string[] = [];
  const walk = (folder: string) => {
    for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
      const file = path.join(folder, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.name.endsWith('.ts')) files.push(file);
    }
  };
  for (const folder of PRODUCT_FOLDERS) walk(path.join(REPO_ROOT, folder));
  return files;
}

/** Relative imports of a file (type-only ones included: they tie the modules as tightly), resolved to files. */
function localImports(file: string): string[] {
  const source = fs.readFileSync(file, 'utf8');
  const imports: string[] = [];
  for (const match of source.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+'(\.[^']+)'/gms)) {
    const base = path.resolve(path.dirname(file), match[1]);
    const resolved = [`${base}.ts`, path.join(base, 'index.ts')].find((candidate) => fs.existsSync(candidate));
    if (resolved) imports.push(resolved);
  }
  return imports;
}

test('no import cycles among product modules', () => {
  const files = productFiles();
  const edges = new Map(files.map((file) => [file, localImports(file)]));
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const visit = (file: string, trail: string[]) => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'open') {
      cycles.push([...trail.slice(trail.indexOf(file)), file].map((entry) => path.relative(REPO_ROOT, entry)).join(' -> '));
      return;
    }
    state.set(file, 'open');
    for (const next of edges.get(file) ?? []) visit(next, [...trail, file]);
    state.set(file, 'done');
  };
  for (const file of files) visit(file, []);
  assert.deepEqual(cycles, []);
});

test(`no product file over ${MAX_LINES} lines`, () => {
  const long = productFiles()
    .map((file) => ({ file: path.relative(REPO_ROOT, file), lines: fs.readFileSync(file, 'utf8').split('\n').length }))
    .filter((entry) => entry.lines > MAX_LINES);
  assert.deepEqual(long, []);
});
