#!/usr/bin/env node
// Runs the built command line, building it first when out/ holds no build yet (installs run no
// scripts: see .npmrc).
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const root = path.join(__dirname, '..');
const entry = path.join(root, 'out', 'extension', 'cli', 'main.js');
if (!fs.existsSync(entry)) {
  process.stderr.write('plasticity-lens: building the command line (first run only, about half a minute)...\n');
  try {
    execFileSync(process.execPath, [require.resolve('typescript/bin/tsc', { paths: [root] }), '-p', root], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
    execFileSync(process.execPath, [path.join(root, 'scripts', 'build-extension.mjs')], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  } catch {
    process.stderr.write("plasticity-lens: the build failed; run 'npm ci' in the repository, then 'npm run build' to see why.\n");
    process.exit(1);
  }
}
const { main } = require(entry);
main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
