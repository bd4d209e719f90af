// The comparison panel in a real VS Code (code-server): a model analysed twice with different
// settings, then "Compare with..." on its report panel picks the other stored report and opens
// the comparison beside the model: rankings side by side, the types x reports heatmap with its
// values, the per-block curves of a chosen component, and the Welch table. Then a multi-target
// analysis (plasticityLens.targetFolders) and "Compare targets": the same panel with one series
// per target and which recommendations the targets agree on, and the budget control choosing
// across targets; a reload restores both comparison panels. Screenshots go to the artifacts folder.
//
// Run: npm run test:e2e (builds the .vsix first). Skips when code-server is not set up.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type { Frame, Page } from 'playwright-core';
import { clickExplorerContextMenu, reloadWindow, repoRoot } from './codeServer';
import { extensionWindowUnavailableReason, openExtensionWindow, writeWorkspaceSettings, type ExtensionWindow } from './extensionWindow';
import type { WebviewFrames } from './webviewFrames';

const ROOT = repoRoot();
const FIXTURES = path.join(ROOT, 'test', 'fixtures');
const unavailable = extensionWindowUnavailableReason();
/** Reloads in a row with both comparison panels open, each of which must restore both. */
const RELOADS = 10;

const SETTINGS = {
  'plasticityLens.referenceFolder': 'images/reference',
  'plasticityLens.targetFolder': 'images/target',
  'plasticityLens.executionProvider': 'cpu',
};

let vscodeWindow: ExtensionWindow | undefined;
let workspace = '';
let page: Page;
let frames: WebviewFrames;

function writeSettings(settings: Record<string, unknown>): void {
  writeWorkspaceSettings(workspace, settings);
}

async function shot(name: string): Promise<void> {
  await vscodeWindow?.shot(name);
}

/** The report panel once it shows a report of `pairs` pairs. */
async function reportWithPairs(pairs: number): Promise<Frame> {
  const frame = await frames.showing('h1', 'Plasticity of vit.onnx', 120_000);
  await frame.locator('.facts dd', { hasText: new RegExp(`^${pairs}$`) }).waitFor({ timeout: 120_000 });
  return frame;
}

before(async () => {
  if (unavailable) return;
  workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'plasticity-lens-e2e-comparison-'));
  fs.copyFileSync(path.join(FIXTURES, 'models', 'timm_op17_dyn.onnx'), path.join(workspace, 'vit.onnx'));
  for (const side of ['reference', 'target']) fs.cpSync(path.join(FIXTURES, 'pairs', side), path.join(workspace, 'images', side), { recursive: true });
  // Two more targets for the multi-target run: the target images, and the reference images, each in reverse order.
  for (const side of ['reference', 'target']) {
    const names = fs.readdirSync(path.join(FIXTURES, 'pairs', side)).sort();
    fs.mkdirSync(path.join(workspace, 'images', `${side}-reversed`));
    names.forEach((name, index) => fs.copyFileSync(path.join(FIXTURES, 'pairs', side, names[names.length - 1 - index]), path.join(workspace, 'images', `${side}-reversed`, name)));
  }
  writeSettings(SETTINGS);
  vscodeWindow = await openExtensionWindow('comparison', workspace, 'vit.onnx');
  page = vscodeWindow.page;
  frames = vscodeWindow.frames;
});

after(async () => {
  await vscodeWindow?.close();
  if (workspace) fs.rmSync(workspace, { recursive: true, force: true });
});

test('the comparison panel in a real VS Code', { skip: unavailable, timeout: 600_000 }, async (t) => {
  await t.test('two analyses of one model with different pair counts are both stored', async () => {
    await clickExplorerContextMenu(page, 'vit.onnx', 'Analyze Model');
    await reportWithPairs(8);
    writeSettings({ ...SETTINGS, 'plasticityLens.pairs': 4 });
    await page.waitForTimeout(1000);
    const frame = await reportWithPairs(8);
    await frame.locator('#rerun').click();
    await reportWithPairs(4);
  });

  await t.test('"Compare with..." on the report panel offers the other stored report and opens the comparison beside', async () => {
    const report = await reportWithPairs(4);
    await report.locator('#compare').click();
    const row = page.locator('.quick-input-widget .quick-input-list .monaco-list-row', { hasText: '8 pairs' }).first();
    await row.waitFor({ timeout: 30_000 });
    await row.click(); // toggles its checkbox (a multi-select pick)
    await page.keyboard.press('Enter');
    const frame = await frames.showing('h1', /^Comparison: vit\.onnx vs vit\.onnx \(2\)$/, 60_000);

    // Rankings side by side: five types, one column per report, and Kendall's τ.
    assert.equal(await frame.locator('#ranking tbody tr[data-component]').count(), 5);
    assert.equal(await frame.locator('#ranking thead th').count(), 1 + 2);
    assert.match(await frame.locator('#ranking').innerText(), /Kendall τ/);
    // The heatmap prints every value: colour is never the only cue.
    const heat = await frame.locator('#type-heatmap tbody td').allInnerTexts();
    assert.equal(heat.length, 5 * 2);
    assert.ok(
      heat.every((text) => /\d\.\d{3}/.test(text)),
      heat.join(' | '),
    );
    // Curves of one component, one line per report, and the table of all 15 cells with Welch p-values.
    assert.equal(await frame.locator('canvas#curves-chart').count(), 1);
    assert.equal(await frame.locator('#differences-1 tbody tr').count(), 3 * 5);
    const p = await frame.locator('#differences-1 tbody tr td:last-child').allInnerTexts();
    assert.ok(
      p.every((text) => /^(\d\.\d{3}|\d\.\de-\d+|<1e-12|n\/a)/.test(text.trim())),
      p.join(' | '),
    );
    assert.ok((await page.locator('.editor-group-container').count()) >= 2);
    await shot('panel-dark');
  });

  await t.test('choosing another component redraws the curves', async () => {
    const frame = await frames.showing('h1', /^Comparison: /);
    const before = await frame.locator('canvas#curves-chart').evaluate((canvas) => (canvas as unknown as { toDataURL(): string }).toDataURL());
    const current = await frame.locator('vscode-radio[name="component"][checked]').getAttribute('value');
    const other = ['LN1', 'MHA', 'LN2', 'FC1', 'FC2'].find((component) => component !== current)!;
    await frame.locator(`vscode-radio[name="component"][value="${other}"]`).click();
    await frame.locator('canvas#curves-chart[aria-label*="' + other + '"]').waitFor({ timeout: 10_000 });
    const after = await frame.locator('canvas#curves-chart').evaluate((canvas) => (canvas as unknown as { toDataURL(): string }).toDataURL());
    assert.notEqual(after, before);
    writeSettings({ ...SETTINGS, 'plasticityLens.pairs': 4, 'workbench.colorTheme': 'Default Light Modern' });
    await frame.locator('body.vscode-light').waitFor({ timeout: 30_000 });
    await page.waitForTimeout(500);
    await shot('panel-light');
  });

  await t.test('a multi-target analysis opens its targets in the comparison panel: rankings, heatmap, curves and agreement', async () => {
    writeSettings({
      ...SETTINGS,
      'plasticityLens.pairs': 4,
      'plasticityLens.targetFolders': ['images/target', 'images/target-reversed', 'images/reference-reversed'],
      'workbench.colorTheme': 'Default Dark Modern',
    });
    await page.waitForTimeout(1000);
    const before = await reportWithPairs(4);
    await before.locator('#rerun').click();
    const report = await frames.showing('.facts dt', 'Targets', 120_000);
    assert.match(await report.locator('.facts').innerText(), /3 against the same reference pairs: target, target-reversed, reference-reversed/);
    // What to finetune chooses across the targets, by mean rank unless told otherwise, and says whether they agree.
    await report.locator('#budget-across').waitFor({ timeout: 30_000 });
    await report.locator('#recommendation-across').waitFor({ timeout: 30_000 });
    assert.match(await report.locator('#recommendation-across').innerText(), /Chosen across 3 targets \(target, target-reversed, reference-reversed\) by mean rank/);

    await report.locator('#compare-targets').click();
    const frame = await frames.showing('h1', /^Targets of vit\.onnx: target, target-reversed, reference-reversed$/, 60_000);
    assert.equal(await frame.locator('#series tr').count(), 3);
    assert.match(await frame.locator('#series').innerText(), /mean input distance \|\|X−Y\|\| \d+\.\d{3}/);
    assert.equal(await frame.locator('#ranking thead th').count(), 1 + 3);
    const heat = await frame.locator('#type-heatmap tbody td').allInnerTexts();
    assert.equal(heat.length, 5 * 3);
    assert.ok(
      heat.every((text) => /\d\.\d{3}/.test(text)),
      heat.join(' | '),
    );
    assert.equal(await frame.locator('canvas#curves-chart').count(), 1);
    assert.match((await frame.locator('canvas#curves-chart').getAttribute('aria-label')) ?? '', /one line per target/);
    // Agreement in words for k = 1..4 types, and the choices across targets by both rules.
    const agreement = await frame.locator('#recommendation-agreement tbody tr').allInnerTexts();
    assert.equal(agreement.length, 4);
    assert.ok(
      agreement.every((row) => /\b(agree|differ)\b/.test(row)),
      agreement.join(' | '),
    );
    assert.equal(await frame.locator('#differences-2 tbody tr').count(), 3 * 5);
    await shot('targets-dark');
    await frame.locator('#recommendation-agreement').scrollIntoViewIfNeeded();
    await page.waitForTimeout(300);
    await shot('targets-agreement-dark');
  });

  await t.test('a reload brings both comparison panels back with their comparisons, 10 reloads in a row', async () => {
    const targets = await frames.showing('h1', /^Targets of vit\.onnx: /);
    const heatBefore = await targets.locator('#type-heatmap tbody td').allInnerTexts();
    // No retry: each reload must restore both panels, each showing its comparison within 45 s.
    for (let reload = 1; reload <= RELOADS; reload++) {
      await reloadWindow(page);
      const targetsAgain = await frames.restoredAtOnce(/Targets: vit\.onnx/, 'h1', /^Targets of vit\.onnx: target, target-reversed, reference-reversed$/, `reload ${reload}`);
      assert.deepEqual(await targetsAgain.locator('#type-heatmap tbody td').allInnerTexts(), heatBefore, `reload ${reload}`);
      const reportsAgain = await frames.restoredAtOnce(/Compare: /, 'h1', /^Comparison: vit\.onnx vs vit\.onnx \(2\)$/, `reload ${reload}`);
      assert.equal(await reportsAgain.locator('#ranking tbody tr[data-component]').count(), 5, `reload ${reload}`);
    }
  });
});
