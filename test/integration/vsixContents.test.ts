// The packaged .vsix of this platform, read back: every piece of JavaScript is bundled into dist/
// (vsce no longer asks to bundle), node_modules holds only native binaries and the packages that
// load them, and the sample model ships for the first run without a model.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { REPO_ROOT, tempDir } from '../support/fixtures';

/** The names of a zip file's entries, from its central directory (a .vsix is a zip). */
function zipEntries(file: string): string[] {
  const bytes = fs.readFileSync(file);
  // The end-of-central-directory record is within the last 64 KiB + 22 bytes (its comment comes after it).
  let end = bytes.length - 22;
  while (end >= 0 && bytes.readUInt32LE(end) !== 0x06054b50) end--;
  assert.ok(end >= 0, `${file} is not a zip file`);
  const count = bytes.readUInt16LE(end + 10);
  let offset = bytes.readUInt32LE(end + 16);
  const names: string[] = [];
  for (let index = 0; index < count; index++) {
    assert.equal(bytes.readUInt32LE(offset), 0x02014b50, `central directory entry ${index} of ${file}`);
    const nameLength = bytes.readUInt16LE(offset + 28);
    const extraLength = bytes.readUInt16LE(offset + 30);
    const commentLength = bytes.readUInt16LE(offset + 32);
    names.push(bytes.subarray(offset + 46, offset + 46 + nameLength).toString('utf8'));
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return names;
}

const target = `${process.platform}-${process.arch}`;
let outDir = '';
let printed = '';
let entries: string[] = [];

before(() => {
  outDir = tempDir('vsix-contents-');
  const result = spawnSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'package-vsix.mjs'), '--current', '--out-dir', outDir], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 300_000,
  });
  printed = `${result.stdout}${result.stderr}`;
  assert.equal(result.status, 0, printed);
  const vsix = fs.readdirSync(outDir).find((name) => name.endsWith('.vsix'));
  assert.ok(vsix, `no .vsix in ${outDir}:\n${printed}`);
  entries = zipEntries(path.join(outDir, vsix)).filter((name) => name.startsWith('extension/'));
});

after(() => {
  if (outDir) fs.rmSync(outDir, { recursive: true, force: true });
});

test('vsce does not ask to bundle the extension', () => {
  assert.doesNotMatch(printed, /you should bundle your extension/);
});

test('node_modules in the .vsix holds only native binaries and their loaders', () => {
  const packages = new Set(
    entries
      .filter((name) => name.startsWith('extension/node_modules/'))
      .map((name) =>
        name
          .split('/')
          .slice(2, name.split('/')[2].startsWith('@') ? 4 : 3)
          .join('/'),
      ),
  );
  const allowed = (name: string) => name === 'onnxruntime-node' || /^@img\/sharp-(libvips-)?[a-z0-9]+-[a-z0-9]+$/.test(name);
  assert.deepEqual(
    [...packages].filter((name) => !allowed(name)),
    [],
    'bundleable packages left in node_modules',
  );
  // onnxruntime-node: its manifest and this platform's binaries only, no JavaScript.
  const ort = entries.filter((name) => name.startsWith('extension/node_modules/onnxruntime-node/'));
  const [platform, arch] = target.split('-');
  assert.deepEqual(
    ort.filter((name) => !name.endsWith('/package.json') && !name.startsWith(`extension/node_modules/onnxruntime-node/bin/napi-v6/${platform}/${arch}/`)),
    [],
  );
  assert.ok(ort.some((name) => name.endsWith('/onnxruntime_binding.node')));
  assert.ok(entries.some((name) => /^extension\/node_modules\/@img\/sharp-[^/]+\/lib\/sharp-[^/]+\.node$/.test(name)));
});

test('JavaScript outside dist/ is only the native packages own loaders, and the files are few', () => {
  const javaScript = entries.filter((name) => /\.(c|m)?js$/.test(name));
  assert.deepEqual(
    javaScript.filter((name) => !name.startsWith('extension/dist/') && !name.startsWith('extension/node_modules/@img/sharp-')),
    [],
  );
  // The six bundles (extension host, worker, pair loader, three webviews), sharp's index.cjs and libvips' lib/index.js.
  assert.ok(javaScript.length <= 8, `${javaScript.length} JavaScript files: ${javaScript.join(', ')}`);
  assert.ok(entries.length < 80, `${entries.length} files in the .vsix`);
});

test('the sample model and its images ship in the .vsix', () => {
  assert.ok(entries.includes('extension/samples/sample-vit.onnx'));
  for (const side of ['reference', 'target']) assert.equal(entries.filter((name) => name.startsWith(`extension/samples/${side}/`) && name.endsWith('.png')).length, 8, side);
});
