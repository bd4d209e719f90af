// The extension as a user meets it: the built .vsix installed into a real VS Code (code-server),
// driven in a real browser. Context menu, progress, the report panel against the command line's
// JSON, the model overview editor, cancel, bad models, theme switch, a reload, and the panel of a
// model not measured yet (its bounds, its Analyze button).
//
// Run: npm run test:e2e (builds the .vsix first). Skips when code-server is not set up.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type { Frame, Page } from 'playwright-core';
import { clickExplorerContextMenu, explorerRow, hoverWordInLine, processesWithMarker, repoRoot, reloadWindow, runCommand, waitForNotification } from './codeServer';
import { extensionWindowUnavailableReason, openExtensionWindow, writeWorkspaceSettings, type ExtensionWindow } from './extensionWindow';
import type { WebviewFrames } from './webviewFrames';
import type { PlasticityReport } from '../../extension/core/report/reportSchema';

const ROOT = repoRoot();
const FIXTURES = path.join(ROOT, 'test', 'fixtures');
const unavailable = extensionWindowUnavailableReason();

let vscodeWindow: ExtensionWindow | undefined;
let workspace = '';
let page: Page;
let frames: WebviewFrames;

function writeSettings(settings: Record<string, unknown>): void {
  writeWorkspaceSettings(workspace, settings);
}

const MEASURED_SETTINGS = {
  'plasticityLens.referenceFolder': 'images/reference',
  'plasticityLens.targetFolder': 'images/target',
  'plasticityLens.executionProvider': 'cpu',
};

function makeWorkspace(): string {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'plasticity-lens-e2e-extension-'));
  fs.copyFileSync(path.join(FIXTURES, 'models', 'timm_op17_dyn.onnx'), path.join(folder, 'vit.onnx'));
  fs.copyFileSync(path.join(FIXTURES, 'models', 'cnn_op13.onnx'), path.join(folder, 'cnn.onnx'));
  // Models as hubs ship them: a float16 conversion and a dynamic 8-bit quantization.
  fs.copyFileSync(path.join(FIXTURES, 'models', 'variants', 'timm_op17_fp16.onnx'), path.join(folder, 'hub-fp16.onnx'));
  fs.copyFileSync(path.join(FIXTURES, 'models', 'variants', 'hf_vit_op14_quantized.onnx'), path.join(folder, 'hub-quantized.onnx'));
  fs.copyFileSync(path.join(FIXTURES, 'models', 'families', 'dinov2_reg_op17_dyn.onnx'), path.join(folder, 'dinov2.onnx'));
  fs.copyFileSync(path.join(FIXTURES, 'models', 'families', 'hf_dinov3_op17_dyn.onnx'), path.join(folder, 'dinov3.onnx'));
  // Not analysed until the last tests: its panel shows it not measured yet.
  fs.copyFileSync(path.join(FIXTURES, 'models', 'hf_vit_op17.onnx'), path.join(folder, 'hf.onnx'));
  const bytes = fs.readFileSync(path.join(FIXTURES, 'models', 'hf_vit_op17.onnx'));
  fs.writeFileSync(path.join(folder, 'truncated.onnx'), bytes.subarray(0, Math.floor(bytes.length / 2)));
  fs.writeFileSync(
    path.join(folder, 'train.py'),
    [
      'import timm',
      '',
      'model = timm.create_model("vit")',
      'for p in model.blocks[2].attn.parameters():',
      '    p.requires_grad = True',
      'lora = dict(target_modules=["qkv", "proj"])',
      '',
    ].join('\n'),
  );
  for (const side of ['reference', 'target']) {
    fs.cpSync(path.join(FIXTURES, 'pairs', side), path.join(folder, 'images', side), { recursive: true });
  }
  return folder;
}

async function shot(name: string): Promise<void> {
  await vscodeWindow?.shot(name);
}

/**
 * Opens an .onnx from the explorer in the model overview editor. Just after start-up the editor
 * resolver can still miss the extension's custom editor and open the file as binary text; the
 * file is then closed and opened again, as a user would.
 */
async function openInOverview(name: string, selector: string, text: string | RegExp): Promise<Frame> {
  for (let attempt = 1; ; attempt++) {
    await explorerRow(page, name).dblclick();
    try {
      return await frames.showing(selector, text, attempt < 3 ? 20_000 : 60_000);
    } catch (error) {
      if (attempt >= 3) throw error;
      await runCommand(page, 'View: Close All Editors');
      await page.waitForTimeout(2000);
    }
  }
}

/** The report panel's frame once its table is drawn. */
async function reportFrame(model: string): Promise<Frame> {
  const frame = await frames.showing('h1', `Plasticity of ${model}`, 120_000);
  await frame.locator('#heatmap tbody tr').first().waitFor({ state: 'attached', timeout: 60_000 });
  return frame;
}

/** The report panel's frame while nothing is measured yet (no report: the pending state). */
async function pendingFrame(model: string): Promise<Frame> {
  const frame = await frames.showing('h1', `Plasticity of ${model}`, 120_000);
  await frame.locator('#not-measured').waitFor({ timeout: 30_000 });
  return frame;
}

/** The data-free bounds of the fixture (3 blocks), the attention's from the workspace's reference images. */
async function assertBoundsBeforeMeasuring(frame: Frame): Promise<void> {
  await frame.locator('#bounds tbody tr').first().waitFor({ timeout: 60_000 });
  assert.equal(await frame.locator('#bounds tbody tr').count(), 3);
  const attentionBounds = await frame.locator('#bounds tbody tr td:nth-of-type(2)').allInnerTexts();
  assert.ok(
    attentionBounds.every((text) => Number(text) > 0),
    `MHA bounds: ${attentionBounds.join(', ')}`,
  );
  assert.match(await frame.locator('#bounds h2').innerText(), /upper bounds \(not plasticity\)/);
  assert.match(await frame.locator('#bounds').innerText(), /from 8 embedded images/);
}

/** How many editor tabs hold the report panel of `model`. */
function reportTabCount(model: string): Promise<number> {
  return page.locator('.tabs-container .tab', { hasText: `Plasticity: ${model}` }).count();
}

/** The editor stays responsive: the command palette opens and closes at once. */
async function assertEditorResponsive(): Promise<void> {
  const started = Date.now();
  await page.keyboard.press('F1');
  await page.locator('.quick-input-widget .quick-input-box input').waitFor({ state: 'visible', timeout: 5_000 });
  await page.keyboard.press('Escape');
  assert.ok(Date.now() - started < 5_000);
}

before(async () => {
  if (unavailable) return;
  workspace = makeWorkspace();
  writeSettings(MEASURED_SETTINGS);
  vscodeWindow = await openExtensionWindow('extension', workspace, 'cnn.onnx');
  page = vscodeWindow.page;
  frames = vscodeWindow.frames;
});

after(async () => {
  await vscodeWindow?.close();
  if (workspace) fs.rmSync(workspace, { recursive: true, force: true });
});

test('the extension in a real VS Code', { skip: unavailable, timeout: 600_000 }, async (t) => {
  await t.test('an .onnx file opens in the model overview editor, with what discovery found', async () => {
    const frame = await openInOverview('vit.onnx', 'h2', 'Vision Transformer found');
    const text = await frame.locator('body').innerText();
    assert.match(text, /Blocks\s+3/);
    assert.match(text, /Heads\s+4/);
    assert.match(text, /Naming\s+timm/);
    // Before any measurement, the data-free bounds, labelled as bounds: with the attention
    // bound, from the first pairs of the workspace's reference images.
    await assertBoundsBeforeMeasuring(frame);
    await shot('model-overview');
  });

  await t.test('a CNN opens with the reason it is not a ViT', async () => {
    await openInOverview('cnn.onnx', '.banner', /cnn\.onnx is not a Vision Transformer/);
  });

  let panelMeans: number[] = [];
  await t.test('the explorer context menu analyses a model with progress and opens the panel beside it', async () => {
    await clickExplorerContextMenu(page, 'vit.onnx', 'Analyze Model');
    await waitForNotification(page, /Plasticity Lens: vit\.onnx/, 30_000);
    // The panel opens when the analysis starts, not measured yet; this waits for the report in it.
    const frame = await reportFrame('vit.onnx');
    assert.equal(await frame.locator('#not-measured').count(), 0);
    await shot('report-panel-dark');
    // Beside: the panel opens in a second editor group.
    assert.ok((await page.locator('.editor-group-container').count()) >= 2);
    panelMeans = await frame
      .locator('#heatmap tbody td')
      .evaluateAll((cells: { getAttribute(name: string): string | null }[]) => cells.map((cell) => Number(cell.getAttribute('data-mean'))));
    assert.equal(panelMeans.length, 3 * 5);
    assert.match(await frame.locator('body').innerText(), /isolated \(the paper's measure\)/);
    assert.ok((await frame.locator('canvas#depth-chart').count()) === 1);
    // The data-free bounds are shown, labelled as bounds.
    assert.equal(await frame.locator('#bounds tbody tr').count(), 3);
    assert.match(await frame.locator('#bounds h2').innerText(), /upper bounds \(not plasticity\)/);
  });

  await t.test("the panel's table equals the command line's JSON for the same model and settings", async () => {
    const json = execFileSync(
      process.execPath,
      [
        path.join(ROOT, 'bin', 'plasticity-lens.js'),
        'analyze',
        path.join(workspace, 'vit.onnx'),
        '--reference',
        path.join(workspace, 'images', 'reference'),
        '--target',
        path.join(workspace, 'images', 'target'),
        '--ep',
        'cpu',
        '--json',
        '-',
      ],
      { encoding: 'utf8' },
    );
    const report = JSON.parse(json) as PlasticityReport;
    const cliMeans = report.blocks.flatMap((block) => report.components.map((component) => block.components[component].mean));
    assert.deepEqual(panelMeans, cliMeans);
  });

  await t.test('the theme switch re-renders the charts in the new colours', async () => {
    const frame = await reportFrame('vit.onnx');
    const before = await frame.locator('canvas#depth-chart').evaluate((canvas) => (canvas as unknown as { toDataURL(): string }).toDataURL());
    // VS Code applies a workspace's colour theme setting as soon as the file changes.
    writeSettings({ ...MEASURED_SETTINGS, 'workbench.colorTheme': 'Default Light Modern' });
    await frame.locator('body.vscode-light').waitFor({ timeout: 30_000 });
    await page.waitForTimeout(500);
    const current = await reportFrame('vit.onnx');
    const afterSwitch = await current.locator('canvas#depth-chart').evaluate((canvas) => (canvas as unknown as { toDataURL(): string }).toDataURL());
    assert.notEqual(afterSwitch, before);
    await shot('report-panel-light');
  });

  await t.test('the budget control previews what to train and exports a PyTorch freeze file', async () => {
    const frame = await reportFrame('vit.onnx');
    const choices = frame.locator('#recommendation-choices li[data-rank]');
    await choices.first().waitFor({ timeout: 30_000 });
    const before = await choices.count();
    await frame.locator('#budget-value').evaluate((field: { value: string; dispatchEvent(event: Event): boolean }) => {
      field.value = '2';
      field.dispatchEvent(new Event('input', { bubbles: true }));
    });
    await frame.waitForFunction(
      (count) =>
        (globalThis as unknown as { document: { querySelectorAll(selector: string): { length: number } } }).document.querySelectorAll('#recommendation-choices li[data-rank]')
          .length === count,
      before + 1,
      { timeout: 30_000 },
    );
    assert.match(await frame.locator('#recommendation-summary').innerText(), /parameters/);
    // The worker has read the model file: the preview counts the head and final norm.
    await frame.locator('#recommendation-summary', { hasText: /of [\d,]+ parameters trainable \(/ }).waitFor({ timeout: 30_000 });
    assert.doesNotMatch(await frame.locator('#recommendation-preview').innerText(), /count unknown| or head_dist/);
    await frame.locator('#export-plan-pytorch').click();
    // VS Code's own save dialog (a quick input holding the default path next to the model).
    const input = page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: 30_000 });
    let target = '';
    for (let waited = 0; !target.endsWith('.py') && waited < 10_000; waited += 100) {
      target = await input.inputValue();
      if (!target.endsWith('.py')) await page.waitForTimeout(100); // the dialog fills its path in steps
    }
    assert.match(target, /vit-freeze_plan\.py$/);
    await page.keyboard.press('Enter');
    const saved = path.join(workspace, path.basename(target));
    // The file exists as soon as the save starts; its content comes with the write's end.
    const content = () => (fs.existsSync(saved) ? fs.readFileSync(saved, 'utf8') : '');
    for (let waited = 0; !content().endsWith('\n') && waited < 30_000; waited += 200) await page.waitForTimeout(200);
    const written = content();
    assert.match(written, /def apply\(model/);
    // The fixture's timm head and final norm, named exactly (not "any" of the alternatives) and counted.
    assert.match(written, /\("classification head", "all", \[\n\s+"head",\n\s+\]\)/);
    assert.match(written, /\("final norm", "all", \[\n\s+"norm",\n\s+\]\)/);
    assert.match(written, /"head\.weight",\n\s+"head\.bias",/);
    assert.match(written, /head 330, final norm 64/);
    assert.doesNotMatch(written, /count unknown|head_dist|", "any", \[/);
    await shot('budget-control');
  });

  await t.test("the explorer's Plasticity view lists the model and its ranked component types", async () => {
    const header = page.locator('.pane-header', { hasText: /^plasticity$/i }).first();
    await header.waitFor({ timeout: 30_000 });
    const pane = header.locator('xpath=..');
    if ((await header.getAttribute('aria-expanded')) !== 'true') await header.click();
    const modelRow = pane.locator('.monaco-list-row', { hasText: 'vit.onnx' }).first();
    await modelRow.waitFor({ timeout: 30_000 });
    // Clicking a row runs its command (it reveals the panel); the twistie expands it.
    if ((await modelRow.getAttribute('aria-expanded')) !== 'true') await modelRow.locator('.monaco-tl-twistie').click();
    await pane
      .locator('.monaco-list-row', { hasText: /1\. (LN1|MHA|LN2|FC1|FC2)/ })
      .first()
      .waitFor({ timeout: 30_000 });
    await shot('plasticity-view');
  });

  await t.test('inline hints appear where training code names a module, and the toggle hides them', async () => {
    await explorerRow(page, 'train.py').dblclick();
    const hints = () =>
      page.evaluate(() => {
        const view = globalThis as unknown as {
          document: { querySelectorAll(selector: string): ArrayLike<unknown> };
          getComputedStyle(node: unknown, pseudo: string): { content: string };
        };
        return Array.from(view.document.querySelectorAll('.view-lines .view-line span'))
          .map((node) => view.getComputedStyle(node, '::after').content)
          .filter((content) => content.startsWith('"←'))
          .map((content) => JSON.parse(content) as string);
      });
    let shown: string[] = [];
    for (let waited = 0; shown.length < 2 && waited < 30_000; waited += 250) {
      shown = await hints();
      if (shown.length < 2) await page.waitForTimeout(250);
    }
    assert.ok(
      shown.some((hint) => /^← MHA block 2: \d/.test(hint)),
      JSON.stringify(shown),
    );
    assert.ok(
      shown.some((hint) => /^← MHA, mean of 3 blocks/.test(hint)),
      JSON.stringify(shown),
    );
    await shot('inline-hints');

    // The hover on "attn" of model.blocks[2].attn shows the per-block numbers and a link to the panel.
    const hover = await hoverWordInLine(page, '.view-line', 'model.blocks[2].attn', 'attn');
    const hoverText = await hover.innerText();
    assert.match(hoverText, /MHA/);
    assert.match(hoverText, /\b2\b/);
    assert.ok((await hover.locator('a', { hasText: 'Open report' }).count()) === 1, hoverText);
    await shot('inline-hint-hover');
    await page.mouse.move(5, 5);

    await runCommand(page, 'Plasticity Lens: Toggle Inline Hints');
    for (let waited = 0; shown.length > 0 && waited < 10_000; waited += 250) {
      await page.waitForTimeout(250);
      shown = await hints();
    }
    assert.deepEqual(shown, []);
    await runCommand(page, 'Plasticity Lens: Toggle Inline Hints');
  });

  await t.test('a reload restores the panel from the stored report', async (sub) => {
    await reloadWindow(page);
    // The panel's tab comes back; it may lie behind train.py in its group.
    await frames.restored('Plasticity: vit.onnx', 'h1', 'Plasticity of vit.onnx', (message) => sub.diagnostic(message));
    const frame = await reportFrame('vit.onnx');
    const restored = await frame
      .locator('#heatmap tbody td')
      .evaluateAll((cells: { getAttribute(name: string): string | null }[]) => cells.map((cell) => Number(cell.getAttribute('data-mean'))));
    assert.deepEqual(restored, panelMeans);
  });

  await t.test('a changed model file marks its report out of date and offers to re-run', async () => {
    // One more byte changes the file's hash, which is what marks a report out of date.
    fs.appendFileSync(path.join(workspace, 'vit.onnx'), Buffer.from([0x00]));
    try {
      const frame = await reportFrame('vit.onnx');
      await frame.locator('.banner', { hasText: 'Out of date' }).waitFor({ timeout: 30_000 });
      await waitForNotification(page, /vit\.onnx changed; its report is out of date/, 30_000);
    } finally {
      // The next tests analyse this model: a failure here must not leave it broken for them.
      fs.copyFileSync(path.join(FIXTURES, 'models', 'timm_op17_dyn.onnx'), path.join(workspace, 'vit.onnx'));
    }
  });

  await t.test('a truncated model gives a readable error and the editor stays responsive', async () => {
    await clickExplorerContextMenu(page, 'truncated.onnx', 'Analyze Model');
    const message = await waitForNotification(page, /truncated or corrupt/, 60_000);
    assert.ok(!message.includes('    at '), message);
    // Its panel opened when the analysis started; it stays not measured, saying why.
    const panel = await pendingFrame('truncated.onnx');
    await panel.locator('#status', { hasText: /^Analysis failed: .*truncated or corrupt/ }).waitFor({ timeout: 30_000 });
    await panel.locator('#bounds', { hasText: /Not computed: .+/ }).waitFor({ timeout: 30_000 });
    await assertEditorResponsive();
    await shot('truncated-error');
  });

  await t.test('a CNN gives a readable error', async () => {
    await clickExplorerContextMenu(page, 'cnn.onnx', 'Analyze Model');
    await waitForNotification(page, /is not a Vision Transformer/, 60_000);
    await assertEditorResponsive();
  });

  await t.test('cancel stops a long run within a second and leaves no process behind', async () => {
    writeSettings({ 'plasticityLens.executionProvider': 'cpu', 'plasticityLens.pairs': 200000 });
    try {
      await page.waitForTimeout(1000); // settings are read at the start of a run
      await clickExplorerContextMenu(page, 'vit.onnx', 'Analyze Model');
      await waitForNotification(page, /pairs on cpu/, 60_000);
      const workers = () =>
        processesWithMarker(vscodeWindow!.server.marker).filter((pid) => {
          try {
            return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('workerMain.js');
          } catch {
            return false;
          }
        });
      assert.ok(workers().length >= 1, 'a worker process runs the analysis');
      await runCommand(page, 'Plasticity Lens: Cancel Analysis');
      const cancelled = Date.now();
      await waitForNotification(page, /cancelled/, 10_000);
      assert.ok(Date.now() - cancelled < 3_000, `cancel took ${Date.now() - cancelled} ms to be reported`);
      for (let waited = 0; workers().length > 0 && waited < 2_000; waited += 100) await page.waitForTimeout(100);
      assert.deepEqual(workers(), []);
      await assertEditorResponsive();
    } finally {
      // Later tests measure with the workspace's images.
      writeSettings(MEASURED_SETTINGS);
    }
  });

  await t.test('Show Report on a model with no report opens its panel beside it, not measured yet, with the data-free bounds', async () => {
    await explorerRow(page, 'hf.onnx').dblclick();
    await frames.showing('h1', /^hf\.onnx$/);
    await runCommand(page, 'Plasticity Lens: Show Report');
    const frame = await pendingFrame('hf.onnx');
    assert.match(await frame.locator('#not-measured').innerText(), /Nothing measured yet/);
    assert.equal(await frame.locator('vscode-button#analyze').count(), 1);
    assert.equal(await frame.locator('#heatmap').count(), 0);
    await assertBoundsBeforeMeasuring(frame);
    assert.equal(await reportTabCount('hf.onnx'), 1);
    assert.ok((await page.locator('.editor-group-container').count()) >= 2);
    await shot('report-panel-pending');
  });

  await t.test('a reload brings the panel of a model with no report back, not measured yet', async (sub) => {
    await reloadWindow(page);
    await frames.restored('Plasticity: hf.onnx', 'h1', 'Plasticity of hf.onnx', (message) => sub.diagnostic(message));
    await assertBoundsBeforeMeasuring(await pendingFrame('hf.onnx'));
  });

  await t.test("the pending panel's Analyze button measures the model and shows the report in that same panel", async () => {
    const frame = await pendingFrame('hf.onnx');
    await frame.locator('vscode-button#analyze').click();
    await frame.locator('#heatmap tbody tr').first().waitFor({ state: 'attached', timeout: 120_000 });
    assert.equal(await frame.locator('#not-measured').count(), 0);
    assert.equal(await frame.locator('#heatmap tbody td').count(), 3 * 5);
    assert.match(await frame.locator('h1').innerText(), /^Plasticity of hf\.onnx$/);
    assert.equal(await reportTabCount('hf.onnx'), 1);
  });

  await t.test('float16 and 8-bit models from a hub open in the overview, which says what will be measured', async () => {
    // One overview at a time: frames are found by content, and every ViT overview says the same heading.
    await runCommand(page, 'View: Close All Editors');
    const fp16 = await openInOverview('hub-fp16.onnx', 'h2', 'Vision Transformer found');
    assert.match(await fp16.locator('body').innerText(), /Graph\s+float16 weights, measured in float32 on the upcast weights/);
    await runCommand(page, 'View: Close All Editors');
    const quantized = await openInOverview('hub-quantized.onnx', 'h2', 'Vision Transformer found');
    const text = await quantized.locator('body').innerText();
    assert.match(text, /uint8 weights, measured in float32 on the dequantized weights; activation quantization not applied/);
    assert.match(text, /Naming\s+hf/);
    await shot('model-overview-quantized');
  });

  await t.test('DINOv2 and DINOv3 open in the overview, which names the family and what is measured for it', async () => {
    await runCommand(page, 'View: Close All Editors');
    const dinov2 = await openInOverview('dinov2.onnx', 'h2', 'What is measured');
    const text = await dinov2.locator('#family').innerText();
    assert.match(text, /Family: DINOv2 \(LayerScale, 4 register tokens\)/);
    assert.match(text, /LayerScale γ is not part of MHA or FC2/);
    assert.match(text, /Not in any component: .*layer scale \(6 parameters, 192 values\)/);
    assert.match(text, /Not in any component: .*register tokens \(1 parameter, 128 values\)/);
    assert.match(text, /a LayerScale γ is trained when the component whose output it scales is/);
    await shot('model-overview-dinov2');
    await runCommand(page, 'View: Close All Editors');
    const dinov3 = await openInOverview('dinov3.onnx', 'h2', 'What is measured');
    assert.match(await dinov3.locator('#family').innerText(), /Family: DINOv3 \(rotary position embedding.*\)[\s\S]*MHA includes the rotary position embedding/);
  });
});
