// Bundles the extension host code, the worker and the webviews into dist/ with esbuild, and
// type-checks the webview code (tsc checks the rest). onnxruntime-node and sharp stay external:
// they carry native binaries and ship in the .vsix's node_modules.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const production = process.argv.includes('--production');
rmSync('dist', { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'webview'], { stdio: 'inherit' });

const common = { bundle: true, sourcemap: !production, minify: production, logLevel: 'warning', legalComments: 'linked' };
await Promise.all([
  build({
    ...common,
    entryPoints: { extension: 'extension/extension.ts', workerMain: 'extension/worker/workerMain.ts', pairLoaderThread: 'extension/worker/pairLoaderThread.ts' },
    outdir: 'dist',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['vscode', 'onnxruntime-node', 'sharp'],
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
console.log(`Built dist/ (${production ? 'production' : 'development'}).`);
