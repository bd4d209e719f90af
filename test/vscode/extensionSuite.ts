// Extension-host tests: run inside a real VS Code's extension host, with the vscode API, against
// the extension under development. Loaded through extensionTestsPath, by
// test/vscode/runWithTestElectron.ts (a downloaded VS Code) or test/e2e/extensionSuite.e2e.ts
// (code-server, offline). Each test is a function; run() rejects when any fails.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { HostDiagnosticsSnapshot } from '../../extension/analysis/hostDiagnostics';

const EXTENSION_ID = 'plasticity-lens.plasticity-lens';

function workspaceFile(name: string): vscode.Uri {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'the tests need a workspace folder');
  return vscode.Uri.joinPath(folder.uri, name);
}

function reportTabs(model: string): vscode.Tab[] {
  return vscode.window.tabGroups.all.flatMap((group) => group.tabs).filter((tab) => tab.label === `Plasticity: ${model}`);
}

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
    const value = probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const tests: [string, () => Promise<void>][] = [
  [
    'the extension activates and registers its commands',
    async () => {
      const extension = vscode.extensions.getExtension(EXTENSION_ID);
      assert.ok(extension, `${EXTENSION_ID} is installed`);
      await extension.activate();
      const commands = await vscode.commands.getCommands(true);
      for (const command of [
        'plasticityLens.analyzeModel',
        'plasticityLens.showReport',
        'plasticityLens.cancelAnalysis',
        'plasticityLens.diagnostics',
        'plasticityLens.tryTheSample',
      ]) {
        assert.ok(commands.includes(command), `${command} is registered`);
      }
      const diagnostics = (await vscode.commands.executeCommand('plasticityLens.diagnostics')) as HostDiagnosticsSnapshot;
      assert.ok(diagnostics.activationMs >= 0 && diagnostics.activationMs < 1000, `activation took ${diagnostics.activationMs} ms`);
    },
  ],
  [
    'Analyze Model runs in the worker, opens one panel beside the model and measures the host stall',
    async () => {
      await vscode.commands.executeCommand('plasticityLens.analyzeModel', workspaceFile('vit.onnx'));
      await waitFor('the report panel', () => (reportTabs('vit.onnx').length === 1 ? true : undefined));
      const diagnostics = (await vscode.commands.executeCommand('plasticityLens.diagnostics')) as HostDiagnosticsSnapshot;
      const run = diagnostics.analyses.find((entry) => path.basename(entry.model) === 'vit.onnx');
      assert.ok(run, 'the analysis was watched');
      assert.ok(Number.isFinite(run.maxStallMs));
    },
  ],
  [
    'Show Report reveals the existing panel instead of opening a second one',
    async () => {
      await vscode.commands.executeCommand('plasticityLens.showReport', workspaceFile('vit.onnx'));
      assert.equal(reportTabs('vit.onnx').length, 1);
    },
  ],
  [
    'an .onnx file opens in the model overview editor',
    async () => {
      await vscode.commands.executeCommand('vscode.open', workspaceFile('vit.onnx'));
      const tab = await waitFor('the overview tab', () =>
        vscode.window.tabGroups.all
          .flatMap((group) => group.tabs)
          .find((candidate) => candidate.input instanceof vscode.TabInputCustom && candidate.input.viewType === 'plasticityLens.modelOverview'),
      );
      assert.equal((tab.input as vscode.TabInputCustom).uri.fsPath, workspaceFile('vit.onnx').fsPath);
    },
  ],
];

export async function run(): Promise<void> {
  const failures: string[] = [];
  for (const [name, body] of tests) {
    try {
      await body();
      console.log(`ok - ${name}`);
    } catch (error) {
      failures.push(name);
      console.log(`not ok - ${name}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    }
  }
  console.log(`${tests.length - failures.length} passed, ${failures.length} failed`);
  if (failures.length > 0) throw new Error(`${failures.length} extension-host test(s) failed: ${failures.join('; ')}`);
}
