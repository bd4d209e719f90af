// Builds one .vsix per platform (vsce package --target), each carrying only its platform's
// native binaries: onnxruntime-node's bin/napi-v6/<os>/<arch> and sharp's @img packages; every
// other piece of JavaScript is in the dist/ bundles.
//
//   node scripts/package-vsix.mjs [--targets linux-x64,win32-x64,... | --current] [--out-dir DIR]   (default: every target, into build/vsix)
//
// sharp's packages for other platforms are fetched from the npm registry with `npm pack` (the
// registry is the only network this needs); a target whose packages cannot be had is skipped
// with a message, the current platform's always builds from node_modules.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const ALL_TARGETS = ['linux-x64', 'linux-arm64', 'win32-x64', 'win32-arm64', 'darwin-arm64'];
const targetArgument = process.argv.indexOf('--targets');
const current = `${process.platform}-${process.arch}`;
// --current: only this machine's platform (what the end-to-end tests install).
const targets = process.argv.includes('--current') ? [current] : targetArgument > 0 ? process.argv[targetArgument + 1].split(',') : ALL_TARGETS;
const outDirArgument = process.argv.indexOf('--out-dir');
const outDir = outDirArgument > 0 ? path.resolve(process.argv[outDirArgument + 1]) : path.join(root, 'build', 'vsix');
const cacheDir = path.join(root, 'build', 'npm-pack-cache');

function packageJson(name) {
  return JSON.parse(readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8'));
}

/** Copies an installed package (whole) into the staging node_modules. */
function copyInstalled(name, staging) {
  cpSync(path.join(root, 'node_modules', name), path.join(staging, 'node_modules', name), { recursive: true });
}

/** The sharp platform packages a target needs: its binding, and libvips where it is separate. */
function sharpPackages(target) {
  const sharp = packageJson('sharp');
  const optional = sharp.optionalDependencies ?? {};
  return Object.keys(optional)
    .filter((name) => name === `@img/sharp-${target}` || name === `@img/sharp-libvips-${target}`)
    .map((name) => ({ name, version: optional[name] }));
}

/** Puts a package into the staging node_modules: from node_modules if installed, else `npm pack`. */
function stagePackage({ name, version }, staging) {
  if (existsSync(path.join(root, 'node_modules', name, 'package.json'))) {
    copyInstalled(name, staging);
    return;
  }
  mkdirSync(cacheDir, { recursive: true });
  const tarball = execFileSync('npm', ['pack', `${name}@${version}`, '--silent', '--pack-destination', cacheDir], {
    cwd: cacheDir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  })
    .trim()
    .split('\n')
    .pop();
  const destination = path.join(staging, 'node_modules', name);
  mkdirSync(destination, { recursive: true });
  execFileSync('tar', ['-xzf', path.join(cacheDir, tarball), '-C', destination, '--strip-components=1']);
}

function stage(target) {
  const [platform, arch] = target.split('-');
  const staging = path.join(root, 'build', `stage-${target}`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  cpSync(path.join(root, 'media'), path.join(staging, 'media'), { recursive: true });
  cpSync(path.join(root, 'LICENSE'), path.join(staging, 'LICENSE'));
  // The sample ViT and its images (the first run without a model), read-only in the installed extension.
  cpSync(path.join(root, 'samples'), path.join(staging, 'samples'), { recursive: true });
  // The Marketplace page: a README written for extension users (the repository's is for developers).
  cpSync(path.join(root, 'media', 'extension-readme.md'), path.join(staging, 'README.md'));
  cpSync(path.join(root, 'dist'), path.join(staging, 'dist'), { recursive: true, filter: (source) => !source.endsWith('.map') });

  // All JavaScript is bundled into dist/ (scripts/build-extension.mjs); node_modules keeps only
  // what must stay a file: onnxruntime-node's binding and libraries, and sharp's platform packages
  // (its binary, libvips, and the index.cjs that loads them). They are the published dependencies,
  // so that vsce ships them.
  const sharpNative = sharpPackages(target);
  const { scripts: _scripts, devDependencies: _dev, bin: _bin, private: _private, ...published } = manifest;
  published.dependencies = {
    'onnxruntime-node': manifest.dependencies['onnxruntime-node'],
    ...Object.fromEntries(sharpNative.map(({ name, version }) => [name, version])),
  };
  writeFileSync(path.join(staging, 'package.json'), JSON.stringify(published, null, 2));
  writeFileSync(path.join(staging, '.vscodeignore'), '**/*.map\n**/*.d.ts\n');

  // onnxruntime-node: this platform's binaries, its licence, and a manifest without its JavaScript
  // (bundled), install script or dependencies.
  const ortSource = path.join(root, 'node_modules', 'onnxruntime-node');
  const ortTarget = path.join(staging, 'node_modules', 'onnxruntime-node');
  const binaries = path.join(ortSource, 'bin', 'napi-v6', platform, arch);
  if (!existsSync(binaries)) throw new Error(`onnxruntime-node ${packageJson('onnxruntime-node').version} has no binaries for ${target}`);
  cpSync(binaries, path.join(ortTarget, 'bin', 'napi-v6', platform, arch), { recursive: true });
  for (const file of readdirSync(ortSource).filter((name) => /^(LICENSE|ThirdPartyNotices)/i.test(name))) cpSync(path.join(ortSource, file), path.join(ortTarget, file));
  const { name, version, license } = packageJson('onnxruntime-node');
  writeFileSync(path.join(ortTarget, 'package.json'), JSON.stringify({ name, version, license }, null, 2));

  // sharp's platform packages, whole (binary, libvips, loader).
  for (const entry of sharpNative) stagePackage(entry, staging);
  return staging;
}

function directorySize(folder) {
  let total = 0;
  for (const entry of readdirSync(folder, { withFileTypes: true })) {
    const full = path.join(folder, entry.name);
    total += entry.isDirectory() ? directorySize(full) : statSync(full).size;
  }
  return total;
}

mkdirSync(outDir, { recursive: true });
const vsce = require.resolve('@vscode/vsce/vsce');
const results = [];
for (const target of targets) {
  let staging;
  try {
    staging = stage(target);
  } catch (error) {
    const reason = error.stderr?.toString().trim().split('\n').pop() || error.message;
    console.log(`${target}: skipped (${target === current ? '' : 'its native packages could not be fetched: '}${reason})`);
    if (target === current) process.exitCode = 1;
    continue;
  }
  const file = path.join(outDir, `plasticity-lens-${target}-${manifest.version}.vsix`);
  execFileSync(process.execPath, [vsce, 'package', '--target', target, '--allow-missing-repository', '--out', file], { cwd: staging, stdio: ['ignore', 'ignore', 'inherit'] });
  const size = statSync(file).size;
  results.push({ target, file, size, unpacked: directorySize(staging) });
  console.log(`${target}: ${path.relative(root, file)}  ${(size / 2 ** 20).toFixed(1)} MiB (${(directorySize(staging) / 2 ** 20).toFixed(1)} MiB unpacked)`);
}
if (results.length === 0) process.exitCode = 1;
