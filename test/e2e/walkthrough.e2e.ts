// A first run without a model, in a real VS Code (code-server): the Getting Started walkthrough's
// "Try the Sample Model" button opens the sample ViT shipped in the .vsix, analyses it on its own
// images (whatever the workspace's folder settings say), shows the report panel, and the report's
// freeze-plan export writes a plan outside the extension's folder; each walkthrough step is then
// checked off, and the installed extension's files are unchanged. Screenshots go to the artifacts
// folder.
//
// Run: npm run test:e2e (builds the .vsix first). Skips when code-server is not set up.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { runCommand } from './codeServer';
import { extensionWindowUnavailableReason, openExtensionWindow, writeWorkspaceSettings, type ExtensionWindow } from './extensionWindow';
import type { WebviewFrames } from './webviewFrames';

const unavailable = extensionWindowUnavailableReason();
const WALKTHROUGH_TITLE = 'Get Started with Plasticity Lens';
const STEPS = ['trySample', 'analyse', 'readReport', 'exportPlan'];

let vscodeWindow: ExtensionWindow | undefined;
let workspace = '';
let page: Page;
let frames: WebviewFrames;

/** Every file under `folder` with its size and modification time, to show nothing was written there. */
function fileStamps(folder: string): string[] {
  return fs
    .readdirSync(folder, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => {
      const file = path.join(entry.parentPath, entry.name);
      const stat = fs.statSync(file);
      return `${path.relative(folder, file)} ${stat.size} ${stat.mtimeMs}`;
    })
    .sort();
}

function installedExtension(): string {
  const extensionsDir = vscodeWindow!.server.extensionsDir;
  const folder = fs.readdirSync(extensionsDir).find((name) => name.startsWith('plasticity-lens.plasticity-lens-'));
  assert.ok(folder, `no Plasticity Lens in ${extensionsDir}: ${fs.readdirSync(extensionsDir).join(', ')}`);
  return path.join(extensionsDir, folder);
}

/** The walkthrough's step element (VS Code names extension steps `<extension id>#<walkthrough>#<step>`). */
function step(id: string) {
  return page.locator(`.getting-started-step[data-step-id$="#${id}"]`);
}

/** A step's check mark, once done (VS Code marks its icon `complete`). */
function checkedOff(id: string) {
  return step(id).locator('.codicon.complete');
}

before(async () => {
  if (unavailable) return;
  workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'plasticity-lens-e2e-walkthrough-'));
  fs.writeFileSync(path.join(workspace, 'notes.md'), '# No model here yet\n');
  // Folder settings that name nothing: the sample must be measured on its own images regardless.
  writeWorkspaceSettings(workspace, {
    'plasticityLens.referenceFolder': 'missing/reference',
    'plasticityLens.targetFolder': 'missing/target',
    'plasticityLens.executionProvider': 'cpu',
  });
  vscodeWindow = await openExtensionWindow('walkthrough', workspace, 'notes.md');
  page = vscodeWindow.page;
  frames = vscodeWindow.frames;
});

after(async () => {
  await vscodeWindow?.close();
  if (workspace) fs.rmSync(workspace, { recursive: true, force: true });
});

test('a first run without a model, from the Getting Started walkthrough', { skip: unavailable, timeout: 600_000 }, async (t) => {
  let extensionFiles: string[] = [];
  let planFile = '';

  await t.test('the .vsix ships the sample model and its images', () => {
    const samples = path.join(installedExtension(), 'samples');
    assert.ok(fs.statSync(path.join(samples, 'sample-vit.onnx')).size > 1_000_000);
    for (const side of ['reference', 'target']) assert.equal(fs.readdirSync(path.join(samples, side)).filter((name) => name.endsWith('.png')).length, 8, side);
    extensionFiles = fileStamps(installedExtension());
  });

  await t.test('the walkthrough opens with its four steps, none done', async () => {
    await runCommand(page, 'Welcome: Open Walkthrough...');
    const input = page.locator('.quick-input-widget .quick-input-box input');
    await input.fill(WALKTHROUGH_TITLE);
    await page.locator('.quick-input-list .monaco-list-row', { hasText: WALKTHROUGH_TITLE }).first().click();
    await page.locator('.gettingStartedContainer', { hasText: WALKTHROUGH_TITLE }).waitFor({ timeout: 30_000 });
    for (const id of STEPS) await step(id).waitFor({ state: 'attached', timeout: 30_000 });
    for (const id of STEPS) assert.equal(await checkedOff(id).count(), 0, `step ${id} is checked off before it was done`);
    await vscodeWindow!.shot('walkthrough');
  });

  await t.test('its "Try the Sample Model" button analyses the sample on its images and shows the report', async () => {
    await page.locator('.getting-started-step .monaco-button', { hasText: 'Try the Sample Model' }).first().click();
    const frame = await frames.showing('h1', 'Plasticity of sample-vit.onnx', 120_000);
    await frame.locator('#heatmap tbody tr').first().waitFor({ state: 'attached', timeout: 120_000 });
    // The sample's 6 blocks, measured on its 8 image pairs (not synthetic, not the workspace's missing folders).
    assert.equal(await frame.locator('#heatmap tbody tr').count(), 6);
    await frame.locator('.facts dd', { hasText: /^8$/ }).waitFor({ timeout: 30_000 });
    assert.doesNotMatch(await frame.locator('body').innerText(), /synthetic/i);
    await vscodeWindow!.shot('sample-report');
  });

  await t.test("the report's freeze-plan export writes a plan outside the extension's folder", async () => {
    const frame = await frames.showing('h1', 'Plasticity of sample-vit.onnx', 30_000);
    await frame.locator('#recommendation-choices li[data-rank]').first().waitFor({ timeout: 30_000 });
    await frame.locator('#export-plan-pytorch').click();
    const input = page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: 30_000 });
    for (let waited = 0; !planFile.endsWith('.py') && waited < 10_000; waited += 100) {
      planFile = await input.inputValue();
      if (!planFile.endsWith('.py')) await page.waitForTimeout(100); // the dialog fills its path in steps
    }
    assert.match(planFile, /sample-vit-freeze_plan\.py$/);
    assert.ok(!path.resolve(planFile).startsWith(installedExtension()), `the default export path ${planFile} is inside the extension`);
    await page.keyboard.press('Enter');
    const content = () => (fs.existsSync(planFile) ? fs.readFileSync(planFile, 'utf8') : '');
    for (let waited = 0; !content().endsWith('\n') && waited < 30_000; waited += 200) await page.waitForTimeout(200);
    assert.match(content(), /def apply\(model/);
    assert.match(content(), /blocks\.\d+\./);
  });

  await t.test('every walkthrough step is checked off, and the installed extension is unchanged', async () => {
    await page.locator('.tabs-container .tab', { hasText: 'Walkthrough' }).first().click();
    for (const id of STEPS) {
      await checkedOff(id)
        .waitFor({ state: 'attached', timeout: 15_000 })
        .catch(async () => assert.fail(`walkthrough step ${id} is not checked off: ${await step(id).innerHTML()}`));
    }
    // The walkthrough alone in the window, its four steps in view, for the screenshot.
    await runCommand(page, 'View: Toggle Maximize Editor Group');
    await page.mouse.move(900, 450); // off the tabs: no tooltip in the picture
    await frames.showing('h1', 'The sample model', 30_000); // the first step's media
    await page.waitForTimeout(500);
    await vscodeWindow!.shot('walkthrough-done');
    assert.deepEqual(fileStamps(installedExtension()), extensionFiles);
  });
});
