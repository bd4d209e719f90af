// Webview frames found by what they show (several webviews, overview editors and report and
// comparison panels, are open side by side), and, when one is not there, what the window shows
// instead: the editor tabs, each webview frame's headings, the webviews' console and the
// extension's own log, so that a failure in CI explains itself.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { runCommand, screenshot, type CodeServerHandle } from './codeServer';

/** VS Code's webview host page (pre/index.html) and the page it writes an extension's HTML into (pre/fake.html). */
const WEBVIEW_PAGE = /\/webview\/browser\/pre\/(index|fake)\.html/;
/** An extension's own webview content: a console error from it is the extension's, not VS Code's. */
const EXTENSION_CONTENT = /\/webview\/browser\/pre\/fake\.html/;

export class WebviewFrames {
  private readonly consoleLines: string[] = [];
  private readonly contentErrors: string[] = [];

  /** `shotFile(name)`: where a screenshot named `name` goes. */
  constructor(
    private readonly page: Page,
    private readonly server: CodeServerHandle,
    private readonly shotFile: (name: string) => string,
  ) {
    page.on('console', (message) => {
      const url = message.location().url;
      // Chromium's warning about every webview's sandbox says nothing about this one.
      if (!WEBVIEW_PAGE.test(url) || /can escape its sandboxing/.test(message.text())) return;
      const line = `${message.type()}: ${message.text().slice(0, 300)}`;
      this.consoleLines.push(line);
      if (message.type() === 'error' && EXTENSION_CONTENT.test(url)) this.contentErrors.push(line);
    });
  }

  /** The frame showing `selector` with `text`; throws, with what the window shows, after timeoutMs. */
  async showing(selector: string, text: string | RegExp, timeoutMs = 60_000): Promise<Frame> {
    const frame = await this.find(selector, text, timeoutMs);
    if (frame) return frame;
    await screenshot(this.page, this.shotFile(`missing-${selector.replace(/[^a-z0-9]+/gi, '')}`)).catch(() => undefined);
    throw new Error(`no webview shows ${selector} with ${String(text)} within ${timeoutMs} ms.\n${await this.describe()}`);
  }

  /**
   * A panel that a reload restored, brought to the front by its tab as a user would (a hidden
   * webview has no frame), once it shows `selector` with `text`.
   *
   * In one CI run of many, a restored panel stayed empty for 60 s and nothing said why. After
   * each reload VS Code's webview host page logs "Found unexpected service worker controller ...
   * Waiting for controllerchange": it shows nothing until its service worker takes control. So if
   * the panel shows nothing within 45 s, what the window shows goes to `note` and the webviews are
   * reloaded once with VS Code's "Developer: Reload Webviews", which rebuilds each from the HTML
   * its extension set: a panel the extension never restored stays empty and fails. An error in a
   * webview's own script fails at once.
   */
  async restored(tabTitle: string | RegExp, selector: string, text: string | RegExp, note: (message: string) => void): Promise<Frame> {
    const tab = this.page.locator('.tabs-container .tab', { hasText: tabTitle }).first();
    await tab.waitFor({ timeout: 60_000 });
    await tab.click();
    const frame = await this.find(selector, text, 45_000);
    if (frame) return frame;
    if (this.contentErrors.length > 0) throw new Error(`a webview's script failed: ${this.contentErrors.join(' | ')}\n${await this.describe()}`);
    note(`the restored panel "${String(tabTitle)}" showed no ${selector} with ${String(text)} in 45 s; reloading the webviews once. The window showed:\n${await this.describe()}`);
    await runCommand(this.page, 'Developer: Reload Webviews');
    await tab.click();
    return this.showing(selector, text, 45_000);
  }

  /**
   * A panel that a reload restored, brought to the front by its tab, once it shows `selector`
   * with `text`; no second chance: throws, with what the window shows, after 45 s.
   */
  async restoredAtOnce(tabTitle: string | RegExp, selector: string, text: string | RegExp, what: string): Promise<Frame> {
    const tab = this.page.locator('.tabs-container .tab', { hasText: tabTitle }).first();
    await tab.waitFor({ timeout: 60_000 });
    await tab.click();
    const frame = await this.find(selector, text, 45_000);
    if (frame) return frame;
    await screenshot(this.page, this.shotFile(`not-restored-${selector.replace(/[^a-z0-9]+/gi, '')}`)).catch(() => undefined);
    throw new Error(`${what}: the restored panel "${String(tabTitle)}" showed no ${selector} with ${String(text)} within 45 s.\n${await this.describe()}`);
  }

  /** The tabs, the webview frames with their headings, the webviews' console and the extension's log. */
  async describe(): Promise<string> {
    const tabs = await this.page
      .locator('.tabs-container .tab')
      .evaluateAll((elements: { getAttribute(name: string): string | null; classList: { contains(name: string): boolean } }[]) =>
        elements.map((tab) => `${tab.getAttribute('aria-label') ?? '?'}${tab.classList.contains('active') ? ' (active)' : ''}`),
      )
      .catch((error: Error) => [`(unreadable: ${error.message})`]);
    const frames = await Promise.all(
      this.page
        .frames()
        .filter((frame) => WEBVIEW_PAGE.test(frame.url()))
        .map(async (frame) => {
          const headings = await frame
            .locator('h1')
            .allInnerTexts()
            .catch(() => ['(detached)']);
          return `  ${path.basename(new URL(frame.url()).pathname)} ${new URL(frame.url()).searchParams.get('id') ?? ''} h1: ${JSON.stringify(headings)}`;
        }),
    );
    return [
      `editor tabs: ${tabs.join(' | ')}`,
      `webview frames (${frames.length}):`,
      ...frames,
      'webview console (last 20):',
      ...this.consoleLines.slice(-20).map((line) => `  ${line}`),
      'extension log (last 15 lines):',
      ...extensionLogTail(this.server.userDataDir, 15).map((line) => `  ${line}`),
    ].join('\n');
  }

  private async find(selector: string, text: string | RegExp, timeoutMs: number): Promise<Frame | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const frame of this.page.frames()) {
        try {
          if ((await frame.locator(selector, { hasText: text }).count()) > 0) return frame;
        } catch {
          // a frame navigating or detached while we look
        }
      }
      await this.page.waitForTimeout(250);
    }
    return undefined;
  }
}

/** The last lines of the newest "Plasticity Lens" output channel log under the user data folder. */
function extensionLogTail(userDataDir: string, lines: number): string[] {
  const logs = path.join(userDataDir, 'logs');
  if (!fs.existsSync(logs)) return ['(no logs folder)'];
  const files = fs
    .readdirSync(logs, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('Plasticity Lens.log'))
    .map((file) => path.join(logs, file))
    .sort((a, b) => fs.statSync(a).mtimeMs - fs.statSync(b).mtimeMs);
  const newest = files.at(-1);
  if (!newest) return ['(no Plasticity Lens log)'];
  return fs.readFileSync(newest, 'utf8').trimEnd().split('\n').slice(-lines);
}
