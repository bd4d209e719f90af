// Checks runExtensionTests(): extension tests (extensionTestsPath) run in code-server's Node
// extension host, and a failing run() is reported as a non-zero exit code, not as a pass.
// The probe extension in fixtures/ is plain JavaScript, so this needs no build of ours.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { artifactsDir, e2eUnavailableReason, repoRoot, runExtensionTests } from './codeServer';

const probe = path.join(repoRoot(), 'test', 'e2e', 'fixtures', 'probe-extension');

test("extension tests run in code-server's Node extension host", { timeout: 300_000 }, async (t) => {
  const unavailable = e2eUnavailableReason();
  if (unavailable) {
    t.skip(unavailable);
    return;
  }
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'plasticity-lens-e2e-exthost-'));
  try {
    const workspace = path.join(scratch, 'workspace');
    fs.mkdirSync(workspace);
    fs.writeFileSync(path.join(workspace, 'hello.txt'), 'hello\n');
    const reportFile = path.join(scratch, 'report.json');

    await t.test('a passing run() exits 0 with the development extension loaded', async () => {
      const started = performance.now();
      const result = await runExtensionTests({
        extensionDevelopmentPath: probe,
        extensionTestsPath: path.join(probe, 'tests', 'index.js'),
        workspace,
        env: { E2E_PROBE_REPORT: reportFile },
      });
      t.diagnostic(`passing run took ${Math.round(performance.now() - started)} ms`);
      if (result.exitCode !== 0) {
        fs.writeFileSync(path.join(artifactsDir(), 'extension-host-pass.log'), `${result.log.join('\n')}\n\n${result.serverLog}`);
      }
      assert.equal(result.exitCode, 0, `extension host exited ${result.exitCode}; log:\n${result.log.join('\n')}`);
      const report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as Record<string, unknown>;
      assert.equal(report.node, process.versions.node, 'tests ran in a Node extension host with this node');
      assert.equal(report.uiKind, 'web');
      assert.equal(report.extensionActive, true);
      assert.equal(report.pong, 'pong');
      assert.deepEqual(report.workspaceFolders, [workspace]);
      assert.ok(
        result.log.some((line) => line.includes('e2e-probe report')),
        'the extension host console reaches the log',
      );
    });

    await t.test('a rejecting run() exits non-zero', async () => {
      const result = await runExtensionTests({
        extensionDevelopmentPath: probe,
        extensionTestsPath: path.join(probe, 'tests', 'index.js'),
        workspace,
        env: { E2E_PROBE_FAIL: '1' },
      });
      assert.notEqual(result.exitCode, 0);
      assert.ok(result.log.some((line) => line.includes('failure requested by E2E_PROBE_FAIL')));
    });
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
});
