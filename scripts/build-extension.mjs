// Bundles the extension host code, the worker and the webviews into dist/ with esbuild, and
// type-checks the webview code (tsc checks the rest). All JavaScript is bundled, onnxruntime-node's
// and sharp's included; only their native binaries and the packages that load them
// (@img/sharp-<platform>, whose index.cjs requires its .node) stay files in the .vsix's
// node_modules (scripts/package-vsix.mjs).
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const production = process.argv.includes('--production');
rmSync('dist', { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'webview'], { stdio: 'inherit' });

/** How onnxruntime-node's loader (dist/binding.js) requires its binding: relative to its own file, gone once bundled. */
const ORT_BINDING_REQUIRE = 'require(`../bin/napi-v6/${process.platform}/${process.arch}/onnxruntime_binding.node`)';
/** The same binding, from the bundle in dist/: node_modules/onnxruntime-node/bin, where the .vsix (and a checkout) has it. */
const ORT_BINDING_FROM_DIST =
  "require(require('node:path').join(__dirname, '..', 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', process.platform, process.arch, 'onnxruntime_binding.node'))";

const onnxruntimeBinding = {
  name: 'onnxruntime-binding',
  setup(build) {
    build.onLoad({ filter: /onnxruntime-node[\\/]dist[\\/]binding\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      if (!source.includes(ORT_BINDING_REQUIRE)) throw new Error(`${args.path} no longer loads its binding with ${ORT_BINDING_REQUIRE}; update scripts/build-extension.mjs`);
      return { contents: source.replace(ORT_BINDING_REQUIRE, ORT_BINDING_FROM_DIST), loader: 'js' };
    });
  },
};

// sharp's ES module build needs import.meta.url, which a CommonJS bundle lacks: its CommonJS build
// is bundled. That one first tries a sharp built from source, relative to its own file; from dist/
// the same folder is node_modules/sharp/src/build (absent from the .vsix: it falls back to
// @img/sharp-<platform>, as in an installed sharp).
const SHARP_SOURCE_BUILD = 'require(`../src/build/Release/';
const SHARP_SOURCE_BUILD_FROM_DIST = "require(`${require('node:path').join(__dirname, '..', 'node_modules', 'sharp')}/src/build/Release/";

const sharpCommonJs = {
  name: 'sharp-commonjs',
  setup(build) {
    build.onResolve({ filter: /^sharp$/ }, () => ({ path: require.resolve('sharp') }));
    build.onLoad({ filter: /sharp[\\/]dist[\\/]sharp\.cjs$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      if (!source.includes(SHARP_SOURCE_BUILD)) throw new Error(`${args.path} no longer loads its source build with ${SHARP_SOURCE_BUILD}; update scripts/build-extension.mjs`);
      return { contents: source.replaceAll(SHARP_SOURCE_BUILD, SHARP_SOURCE_BUILD_FROM_DIST), loader: 'js' };
    });
  },
};

const common = { bundle: true, sourcemap: !production, minify: production, logLevel: 'warning', legalComments: 'linked', metafile: true };
const results = await Promise.all([
  build({
    ...common,
    entryPoints: { extension: 'extension/extension.ts', workerMain: 'extension/worker/workerMain.ts', pairLoaderThread: 'extension/worker/pairLoaderThread.ts' },
    outdir: 'dist',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // sharp's platform packages hold its binary and libvips; they load from node_modules.
    external: ['vscode', '@img/sharp-*'],
    plugins: [onnxruntimeBinding, sharpCommonJs],
  }),
  build({
    ...common,
    entryPoints: { reportPanel: 'webview/reportPanel/main.ts', comparisonPanel: 'webview/comparisonPanel/main.ts', modelOverview: 'webview/modelOverview/main.ts' },
    outdir: 'dist/webview',
    platform: 'browser',
    format: 'iife',
    target: 'chrome120',
  }),
]);

/** The folder of the npm package that holds `file` (an esbuild input path), or undefined for the project's own code. */
function packageFolder(file) {
  const parts = file.split(/[\\/]/);
  const at = parts.lastIndexOf('node_modules');
  if (at < 0) return undefined;
  return parts.slice(0, at + (parts[at + 1].startsWith('@') ? 3 : 2)).join('/');
}

// The bundles carry other packages' code, and their licences ask for their notices to travel with
// it (the packages' own LICENSE files are no longer in the .vsix).
const bundled = new Set(
  results.flatMap((result) =>
    Object.keys(result.metafile.inputs)
      .map(packageFolder)
      .filter((folder) => folder !== undefined),
  ),
);
// One entry per licence text: the many @stdlib packages share one.
const packagesByNotice = new Map();
for (const folder of [...bundled].sort()) {
  const { name, version, license } = JSON.parse(readFileSync(path.join(folder, 'package.json'), 'utf8'));
  const file = readdirSync(folder).find((entry) => /^(licen[cs]e|copying)(\.|$)/i.test(entry));
  const text = file ? readFileSync(path.join(folder, file), 'utf8').trim() : `${license ?? 'UNKNOWN'} (the package ships no licence file)`;
  packagesByNotice.set(text, [...(packagesByNotice.get(text) ?? []), `${name} ${version}`]);
}
const notices = [...packagesByNotice].map(([text, packages]) => `${packages.join(', ')}\n\n${text}\n`);
writeFileSync(path.join('dist', 'THIRD-PARTY-NOTICES.txt'), `Packages bundled into these files, with their licences.\n\n${notices.join(`\n${'-'.repeat(80)}\n\n`)}`);
console.log(`Built dist/ (${production ? 'production' : 'development'}).`);
