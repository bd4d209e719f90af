// Inline hints in a Jupyter notebook, in a real VS Code (code-server): the model analysed once,
// then an .ipynb opened in VS Code's own notebook editor (its built-in ipynb support; no kernel,
// no Jupyter extension) whose code cells name modules of the model. The cells get the same hints
// as a .py file, the hover its per-block numbers and an "Open report" that brings up the report
// panel, and the toggle hides them.
//
// Run: npm run test:e2e (builds the .vsix first). Skips when code-server is not set up.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { clickExplorerContextMenu, explorerRow, hoverWordInLine, repoRoot, runCommand } from './codeServer';
import { extensionWindowUnavailableReason, openExtensionWindow, writeWorkspaceSettings, type ExtensionWindow } from './extensionWindow';

const ROOT = repoRoot();
const FIXTURES = path.join(ROOT, 'test', 'fixtures');
const unavailable = extensionWindowUnavailableReason();

let vscodeWindow: ExtensionWindow | undefined;
let workspace = '';
let page: Page;

/** A notebook as Jupyter writes it (nbformat 4). No markdown cell: code-server renders those with a renderer it fetches online. */
function notebook(cells: { kind: 'code' | 'markdown'; source: string[] }[]): string {
  return JSON.stringify(
    {
      cells: cells.map(({ kind, source }) =>
        kind === 'code' ? { cell_type: 'code', execution_count: null, metadata: {}, outputs: [], source } : { cell_type: 'markdown', metadata: {}, source },
      ),
      metadata: {
        kernelspec: { display_name: 'Python 3', language: 'python', name: 'python3' },
        language_info: { name: 'python' },
      },
      nbformat: 4,
      nbformat_minor: 5,
    },
    null,
    1,
  );
}

before(async () => {
  if (unavailable) return;
  workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'plasticity-lens-e2e-notebook-'));
  fs.copyFileSync(path.join(FIXTURES, 'models', 'timm_op17_dyn.onnx'), path.join(workspace, 'vit.onnx'));
  for (const side of ['reference', 'target']) fs.cpSync(path.join(FIXTURES, 'pairs', side), path.join(workspace, 'images', side), { recursive: true });
  fs.writeFileSync(
    path.join(workspace, 'finetune.ipynb'),
    notebook([
      { kind: 'code', source: ['import timm\n', 'model = timm.create_model("vit")'] },
      { kind: 'code', source: ['for p in model.blocks[2].attn.parameters():\n', '    p.requires_grad = True'] },
      { kind: 'code', source: ['lora = dict(target_modules=["qkv", "proj"])'] },
    ]),
  );
  writeWorkspaceSettings(workspace, {
    'plasticityLens.referenceFolder': 'images/reference',
    'plasticityLens.targetFolder': 'images/target',
    'plasticityLens.executionProvider': 'cpu',
    'plasticityLens.pairs': 4,
  });
  vscodeWindow = await openExtensionWindow('notebook', workspace, 'vit.onnx');
  page = vscodeWindow.page;
});

after(async () => {
  await vscodeWindow?.close();
  if (workspace) fs.rmSync(workspace, { recursive: true, force: true });
});

/** The hint texts the notebook's cell editors show (decorations are ::after content). */
function notebookHints(): Promise<string[]> {
  return page.evaluate(() => {
    const view = globalThis as unknown as {
      document: { querySelectorAll(selector: string): ArrayLike<unknown> };
      getComputedStyle(node: unknown, pseudo: string): { content: string };
    };
    return Array.from(view.document.querySelectorAll('.notebook-editor .cell-editor-container .view-lines .view-line span'))
      .filter((node) => (node as { getBoundingClientRect(): { left: number } }).getBoundingClientRect().left >= 0)
      .map((node) => view.getComputedStyle(node, '::after').content)
      .filter((content) => content.startsWith('"←'))
      .map((content) => JSON.parse(content) as string);
  });
}

async function hintsWhen(done: (shown: string[]) => boolean, timeoutMs: number): Promise<string[]> {
  let shown = await notebookHints();
  for (const deadline = Date.now() + timeoutMs; !done(shown) && Date.now() < deadline;) {
    await page.waitForTimeout(250);
    shown = await notebookHints();
  }
  return shown;
}

test('inline hints in a Jupyter notebook in a real VS Code', { skip: unavailable, timeout: 400_000 }, async (t) => {
  await t.test('the model is analysed', async () => {
    await clickExplorerContextMenu(page, 'vit.onnx', 'Analyze Model');
    await vscodeWindow!.frames.showing('h1', 'Plasticity of vit.onnx', 120_000);
  });

  await t.test("the notebook's code cells show the hints a .py file shows", async () => {
    await explorerRow(page, 'finetune.ipynb').dblclick();
    // The notebook's tab in front: a notebook editor that is not keeps its cells' DOM, off screen.
    await page.locator('.tabs-container .tab.active', { hasText: 'finetune.ipynb' }).waitFor({ timeout: 60_000 });
    const shown = await hintsWhen((hints) => hints.length >= 2, 60_000);
    // The same texts as train.py's lines in extension.e2e.ts: one per line naming a module.
    assert.ok(
      shown.some((hint) => /^← MHA block 2: \d/.test(hint)),
      JSON.stringify(shown),
    );
    assert.ok(
      shown.some((hint) => /^← MHA, mean of 3 blocks/.test(hint)),
      JSON.stringify(shown),
    );
    assert.equal(shown.length, 2, JSON.stringify(shown));
    await vscodeWindow!.shot('notebook-hints');
  });

  await t.test('the hover on a cell\'s "attn" gives the per-block numbers and "Open report"', async () => {
    const hover = await hoverWordInLine(page, '.notebook-editor .cell-editor-container .view-line', 'model.blocks[2].attn', 'attn');
    const hoverText = await hover.innerText();
    assert.match(hoverText, /MHA/);
    assert.match(hoverText, /\b2\b/);
    assert.equal(await hover.locator('a', { hasText: 'Open report' }).count(), 1, hoverText);
    await vscodeWindow!.shot('notebook-hint-hover');
    // The notebook's tab is the active one until the link brings the report panel to the front.
    await hover.locator('a', { hasText: 'Open report' }).click();
    await page.locator('.tabs-container .tab.active', { hasText: 'Plasticity: vit.onnx' }).waitFor({ timeout: 30_000 });
    await vscodeWindow!.frames.showing('h1', 'Plasticity of vit.onnx', 30_000);
    await page.mouse.move(5, 5);
  });

  await t.test('the toggle hides the hints in the cells and brings them back', async () => {
    await page.locator('.tabs-container .tab', { hasText: 'finetune.ipynb' }).click();
    assert.equal((await hintsWhen((hints) => hints.length === 2, 15_000)).length, 2);
    await runCommand(page, 'Plasticity Lens: Toggle Inline Hints');
    assert.deepEqual(await hintsWhen((hints) => hints.length === 0, 10_000), []);
    await runCommand(page, 'Plasticity Lens: Toggle Inline Hints');
    assert.equal((await hintsWhen((hints) => hints.length === 2, 10_000)).length, 2);
  });
});
