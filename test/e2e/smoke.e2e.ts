// Smoke test of the e2e harness itself, with no extension of ours installed: a real code-server,
// a real chromium, the explorer, the command palette, a context menu, a webview's inner frame,
// a screenshot, and a stop that leaves no process behind.
//
// Run: npm run test:e2e (after scripts/setup-code-server.sh). Skips when code-server is missing.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import {
  artifactsDir,
  clickExplorerContextMenu,
  e2eUnavailableReason,
  explorerRow,
  openWorkbench,
  processesLeftAfter,
  runCommand,
  screenshot,
  startCodeServer,
  waitForWebviewFrame,
  type CodeServerHandle,
  type Workbench,
} from './codeServer';

function makeWorkspace(): string {
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'plasticity-lens-e2e-ws-'));
  fs.writeFileSync(path.join(workspace, 'hello.txt'), 'Hello from the Plasticity Lens e2e smoke test.\n');
  fs.writeFileSync(path.join(workspace, 'notes.md'), '# Smoke notes\n\nRendered by the markdown preview webview.\n');
  return workspace;
}

test('code-server smoke: workbench, command palette, context menu, webview, clean stop', { timeout: 240_000 }, async (t) => {
  const unavailable = e2eUnavailableReason();
  if (unavailable) {
    t.skip(unavailable);
    return;
  }

  const artifacts = artifactsDir();
  const workspace = makeWorkspace();
  const timings: Record<string, number> = {};
  const t0 = performance.now();
  const lap = (name: string): void => {
    timings[name] = Math.round(performance.now() - t0);
  };

  let server: CodeServerHandle | undefined;
  let workbench: Workbench | undefined;
  try {
    server = await startCodeServer({ workspace });
    lap('codeServerAnswers');
    workbench = await openWorkbench(server.url, workspace, { expectFile: 'hello.txt' });
    lap('workbenchReady');
    const { page } = workbench;
    // A failed subtest does not throw here, so each step saves its own evidence.
    const step = (name: string, body: () => Promise<void>): Promise<void> =>
      t.test(name, async () => {
        try {
          await body();
        } catch (error) {
          await screenshot(page, path.join(artifacts, 'smoke-failure.png')).catch(() => undefined);
          server?.saveLogs(path.join(artifacts, 'smoke-logs'));
          throw error;
        }
      });

    await step('the explorer lists hello.txt', async () => {
      assert.equal(await explorerRow(page, 'hello.txt').isVisible(), true);
    });

    await step('the command palette runs "View: Toggle Terminal"', async () => {
      await runCommand(page, 'View: Toggle Terminal');
      await page.locator('.terminal-wrapper .xterm').first().waitFor({ state: 'visible' });
      // The tab shows the shell's name once the pty host (node-pty, built by the setup) runs it.
      await page.locator('.single-terminal-tab', { hasText: /\w/ }).waitFor({ state: 'visible' });
      lap('terminalShown');
      await screenshot(page, path.join(artifacts, 'smoke.png'));
    });

    await step('a context-menu entry opens a webview whose frame can be queried', async () => {
      await clickExplorerContextMenu(page, 'notes.md', 'Open Preview');
      const frame = await waitForWebviewFrame(page, 'Preview notes.md');
      await frame.locator('h1', { hasText: 'Smoke notes' }).waitFor({ state: 'visible' });
      lap('webviewFrame');
      await screenshot(page, path.join(artifacts, 'smoke-webview.png'));
    });
  } catch (error) {
    if (workbench) await screenshot(workbench.page, path.join(artifacts, 'smoke-failure.png')).catch(() => undefined);
    server?.saveLogs(path.join(artifacts, 'smoke-logs'));
    throw error;
  } finally {
    await workbench?.close();
    lap('browserClosed');
    await server?.stop();
    lap('codeServerStopped');
    fs.rmSync(workspace, { recursive: true, force: true });
  }

  // stop() already throws if anything outlived SIGKILL; this checks that the browser went too.
  assert.deepEqual(await processesLeftAfter(server.marker), [], 'code-server processes left behind');
  assert.deepEqual(await processesLeftAfter(workbench.marker), [], 'chromium processes left behind');
  t.diagnostic(`timings (ms since start): ${JSON.stringify(timings)}`);
  if (/\[harness\]/.test(server.logs()))
    t.diagnostic(
      server
        .logs()
        .split('\n')
        .filter((line) => line.startsWith('[harness]'))
        .join('\n'),
    );
});
