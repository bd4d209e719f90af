// The extension-host test suite (test/vscode/extensionSuite.ts) run inside code-server's Node
// extension host, with the repository as the extension under development: the offline stand-in
// for @vscode/test-electron.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { artifactsDir, e2eUnavailableReason, repoRoot, runExtensionTests } from './codeServer';

test('extension-host tests in code-server', { timeout: 300_000 }, async (t) => {
  const unavailable = e2eUnavailableReason();
  if (unavailable) {
    t.skip(unavailable);
    return;
  }
  const root = repoRoot();
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'plasticity-lens-e2e-suite-'));
  fs.copyFileSync(path.join(root, 'test', 'fixtures', 'models', 'timm_op17_dyn.onnx'), path.join(workspace, 'vit.onnx'));
  fs.mkdirSync(path.join(workspace, '.vscode'));
  fs.writeFileSync(path.join(workspace, '.vscode', 'settings.json'), JSON.stringify({ 'plasticityLens.executionProvider': 'cpu', 'plasticityLens.pairs': 4 }));
  try {
    const result = await runExtensionTests({
      extensionDevelopmentPath: root,
      extensionTestsPath: path.join(root, 'out', 'test', 'vscode', 'extensionSuite.js'),
      workspace,
    });
    const printed = result.log.filter((line) => /\bok - |passed, /.test(line));
    for (const line of printed) t.diagnostic(line);
    if (result.exitCode !== 0) fs.writeFileSync(path.join(artifactsDir(), 'extension-suite.log'), `${result.log.join('\n')}\n\n${result.serverLog}`);
    assert.equal(result.exitCode, 0, `extension-host tests failed:\n${result.log.join('\n')}`);
    assert.ok(
      printed.some((line) => / 0 failed/.test(line)),
      'the suite reported its count',
    );
  } finally {
    fs.rmSync(workspace, { recursive: true, force: true });
  }
});
