// Runs the extension-host tests in a VS Code that @vscode/test-electron downloads (machines with
// network access):  npm run build && node out/test/vscode/runWithTestElectron.js
// Offline, the same suite runs in code-server: test/e2e/extensionSuite.e2e.ts.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runTests } from '@vscode/test-electron';

async function main(): Promise<void> {
  const root = path.resolve(__dirname, '..', '..', '..');
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'plasticity-lens-vscode-'));
  fs.copyFileSync(path.join(root, 'test', 'fixtures', 'models', 'timm_op17_dyn.onnx'), path.join(workspace, 'vit.onnx'));
  fs.mkdirSync(path.join(workspace, '.vscode'));
  fs.writeFileSync(path.join(workspace, '.vscode', 'settings.json'), JSON.stringify({ 'plasticityLens.executionProvider': 'cpu', 'plasticityLens.pairs': 4 }));
  await runTests({
    extensionDevelopmentPath: root,
    extensionTestsPath: path.join(__dirname, 'extensionSuite.js'),
    launchArgs: [workspace, '--disable-extensions', '--disable-workspace-trust'],
  });
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
