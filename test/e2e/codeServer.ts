// Harness for end-to-end tests in a real VS Code: code-server (VS Code's server build, whose
// extension host is plain Node) driven by Debian's chromium through playwright-core.
//
// code-server is installed by scripts/setup-code-server.sh into
// ${PLASTICITY_LENS_E2E_CACHE:-<repo>/.e2e-cache}/code-server-<version>/; tests call
// findCodeServer() first and skip when it is missing, so `npm test` passes without that setup.
//
// Everything a run creates lives in one temp folder (user data, extensions, code-server's
// config) and every process it starts carries a marker in its environment, so stop() can prove
// that nothing is left behind: a terminal's shell, for one, runs in its own session and would
// escape a kill of code-server's process group.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
// Types only: playwright-core is loaded on first use, so that this module (which `node --test`
// may load as a test file) loads, and the tests can skip, on a machine without it.
import type { Browser, Frame, Locator, Page } from 'playwright-core';

export const DEFAULT_CODE_SERVER_VERSION = '4.100.3';
const MARKER_ENV = 'PLASTICITY_LENS_E2E_MARKER';

/** The repository root: the nearest folder above this file whose package.json is this project's. */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest)) {
      const name = (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: unknown }).name;
      if (name === 'plasticity-lens') return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json named plasticity-lens above ${__dirname}`);
    dir = parent;
  }
}

/** Where screenshots and logs of e2e runs go: $E2E_ARTIFACTS or <repo>/out/e2e-artifacts. */
export function artifactsDir(): string {
  const dir = process.env.E2E_ARTIFACTS || path.join(repoRoot(), 'out', 'e2e-artifacts');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

export const CHROMIUM_PATH = process.env.E2E_CHROMIUM || '/usr/bin/chromium';

export interface CodeServerInstallation {
  /** code-server's entry script, run with this process's node. */
  entry: string;
  version: string;
  installDir: string;
}

function installLocation(): { cacheDir: string; version: string; dir: string } {
  const cacheDir = process.env.PLASTICITY_LENS_E2E_CACHE || path.join(repoRoot(), '.e2e-cache');
  const version = process.env.CODE_SERVER_VERSION || DEFAULT_CODE_SERVER_VERSION;
  return { cacheDir, version, dir: path.join(cacheDir, `code-server-${version}`) };
}

/** The installed code-server, or undefined when scripts/setup-code-server.sh has not run (or did not finish). */
export function findCodeServer(): CodeServerInstallation | undefined {
  const { version, dir } = installLocation();
  const entry = path.join(dir, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
  if (!fs.existsSync(path.join(dir, '.setup-complete')) || !fs.existsSync(entry)) return undefined;
  return { entry, version, installDir: dir };
}

/** Why the e2e tests cannot run here, in a sentence that says what to do; undefined when they can. */
export function e2eUnavailableReason(): string | undefined {
  if (!findCodeServer()) {
    const { dir } = installLocation();
    return `code-server is not installed in ${dir}; run scripts/setup-code-server.sh to run the e2e tests`;
  }
  if (!fs.existsSync(CHROMIUM_PATH)) {
    return `no browser at ${CHROMIUM_PATH}; run scripts/setup-code-server.sh (it installs Debian's chromium)`;
  }
  return undefined;
}

// --- processes --------------------------------------------------------------------------------

/** Pids of live processes whose environment holds MARKER_ENV=marker (Linux /proc; [] elsewhere). */
export function processesWithMarker(marker: string): number[] {
  const needle = Buffer.from(`${MARKER_ENV}=${marker}\0`);
  const found: number[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      // A zombie's environ reads empty; it is gone for our purpose.
      if (fs.readFileSync(`/proc/${pid}/environ`).includes(needle)) found.push(pid);
    } catch {
      // Exited meanwhile, or not ours to read.
    }
  }
  return found;
}

/** Waits up to timeoutMs for the processes carrying `marker` to end; returns those still there. */
export async function processesLeftAfter(marker: string, timeoutMs = 5_000): Promise<number[]> {
  await waitUntil(() => processesWithMarker(marker).length === 0, timeoutMs);
  return processesWithMarker(marker);
}

function describeProcesses(pids: number[]): string {
  return pids
    .map((pid) => {
      try {
        return `${pid} (${fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim().slice(0, 160)})`;
      } catch {
        return `${pid}`;
      }
    })
    .join(', ');
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitUntil(check: () => boolean, timeoutMs: number, intervalMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

function httpStatus(url: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const request = http.get(url, { timeout: 2000 }, (response) => {
      response.resume();
      resolve(response.statusCode);
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(undefined));
  });
}

// --- code-server ------------------------------------------------------------------------------

/** Settings that keep a test window quiet and offline; a test's userSettings override them. */
export const DEFAULT_USER_SETTINGS: Readonly<Record<string, unknown>> = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'security.workspace.trust.enabled': false,
  'npm.fetchOnlinePackageInfo': false,
  'typescript.disableAutomaticTypeAcquisition': true,
  'git.autoRepositoryDetection': false,
  'chat.commandCenter.enabled': false,
  // Without this the pty host keeps terminals (and their shells) alive after the page goes.
  'terminal.integrated.enablePersistentSessions': false,
};

export interface StartCodeServerOptions {
  /** A .vsix to install (with --install-extension) before the server starts. */
  vsix?: string;
  /** The folder to open; it must exist. */
  workspace: string;
  /** Merged over DEFAULT_USER_SETTINGS into <user-data-dir>/User/settings.json. */
  userSettings?: Record<string, unknown>;
  /**
   * Keep Workspace Trust on (the workspace then opens restricted until trusted). Off by default:
   * --disable-workspace-trust and security.workspace.trust.enabled=false.
   */
  workspaceTrust?: boolean;
  /** More command-line arguments for the server, e.g. ['--enable-proposed-api', 'publisher.name']. */
  extraArgs?: string[];
  /** Extra environment for code-server and everything it starts (extension host included). */
  env?: Record<string, string>;
  /** How long to wait for the server to answer HTTP; default 60 s. */
  startTimeoutMs?: number;
}

export interface CodeServerHandle {
  /** http://127.0.0.1:<port>, without a trailing slash. */
  url: string;
  port: number;
  workspace: string;
  userDataDir: string;
  extensionsDir: string;
  /** The marker in every process's environment; see processesWithMarker(). */
  marker: string;
  /** What code-server (and --install-extension) printed so far. */
  logs(): string;
  /** Copies the printed output and VS Code's own log files into dir (for CI artifacts). */
  saveLogs(dir: string): void;
  /**
   * Ends code-server and every process it started (SIGTERM, then SIGKILL), and removes the temp
   * folder unless E2E_KEEP_TEMP=1. Throws, naming the pids, if a process outlives SIGKILL.
   */
  stop(): Promise<void>;
}

function codeServerEnv(tempRoot: string, marker: string, extra: Record<string, string> | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra, [MARKER_ENV]: marker };
  // code-server writes its default config and state under these; keep them out of $HOME.
  env.XDG_CONFIG_HOME = path.join(tempRoot, 'xdg-config');
  env.XDG_DATA_HOME = path.join(tempRoot, 'xdg-data');
  // Settings of the machine must not leak in: code-server reads PASSWORD, PORT, etc.
  for (const name of ['PASSWORD', 'HASHED_PASSWORD', 'PORT', 'CS_DISABLE_FILE_DOWNLOADS', 'VSCODE_PROXY_URI']) delete env[name];
  // The node that runs this test runs code-server: its native modules were built for it.
  delete env.NODE_OPTIONS;
  // Set by `node --test` for its child processes; an extension host that inherited it would make
  // node:test inside extension tests report in the runner's private format.
  delete env.NODE_TEST_CONTEXT;
  return env;
}

function baseArgs(install: CodeServerInstallation, tempRoot: string, userDataDir: string, extensionsDir: string): string[] {
  return [install.entry, '--config', path.join(tempRoot, 'config.yaml'), '--user-data-dir', userDataDir, '--extensions-dir', extensionsDir];
}

function installExtension(install: CodeServerInstallation, vsix: string, args: string[], env: NodeJS.ProcessEnv, output: string[]): void {
  if (!fs.existsSync(vsix)) throw new Error(`no .vsix at ${vsix}; build it first (npm run package)`);
  const result = spawnSync(process.execPath, [...args, '--install-extension', path.resolve(vsix), '--force'], {
    env,
    encoding: 'utf8',
    timeout: 180_000,
  });
  const printed = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  output.push(`$ code-server --install-extension ${vsix}\n${printed}`);
  if (result.error || result.status !== 0 || !/successfully installed/i.test(printed)) {
    throw new Error(
      `code-server ${install.version} could not install ${vsix} (exit ${result.status ?? result.signal}` + `${result.error ? `, ${result.error.message}` : ''}):\n${printed}`,
    );
  }
}

/**
 * Starts code-server on 127.0.0.1 with a port the kernel picks (--bind-addr 127.0.0.1:0: no race
 * for a free port) and resolves once it answers /healthz.
 */
export async function startCodeServer(options: StartCodeServerOptions): Promise<CodeServerHandle> {
  const install = findCodeServer();
  if (!install) throw new Error(e2eUnavailableReason());
  const workspace = path.resolve(options.workspace);
  if (!fs.statSync(workspace, { throwIfNoEntry: false })?.isDirectory()) {
    throw new Error(`workspace ${workspace} is not a folder`);
  }

  const tempRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'plasticity-lens-e2e-'));
  const userDataDir = path.join(tempRoot, 'user-data');
  const extensionsDir = path.join(tempRoot, 'extensions');
  fs.mkdirSync(path.join(userDataDir, 'User'), { recursive: true });
  fs.mkdirSync(extensionsDir, { recursive: true });
  fs.writeFileSync(
    path.join(userDataDir, 'User', 'settings.json'),
    JSON.stringify(
      {
        ...DEFAULT_USER_SETTINGS,
        ...(options.workspaceTrust ? { 'security.workspace.trust.enabled': true } : {}),
        ...options.userSettings,
      },
      null,
      2,
    ),
  );
  // Our own config file, so code-server neither reads nor writes ~/.config/code-server.
  fs.writeFileSync(path.join(tempRoot, 'config.yaml'), 'auth: none\ncert: false\n');

  const marker = randomBytes(8).toString('hex');
  const env = codeServerEnv(tempRoot, marker, options.env);
  const args = baseArgs(install, tempRoot, userDataDir, extensionsDir);
  const output: string[] = [];
  const removeTemp = (): void => {
    if (process.env.E2E_KEEP_TEMP !== '1') fs.rmSync(tempRoot, { recursive: true, force: true });
  };

  try {
    if (options.vsix) installExtension(install, options.vsix, args, env, output);
  } catch (error) {
    removeTemp();
    throw error;
  }

  const child: ChildProcess = spawn(
    process.execPath,
    [
      ...args,
      '--auth',
      'none',
      '--bind-addr',
      '127.0.0.1:0',
      '--disable-telemetry',
      '--disable-update-check',
      ...(options.workspaceTrust ? [] : ['--disable-workspace-trust']),
      '--disable-getting-started-override',
      '--ignore-last-opened',
      ...(options.extraArgs ?? []),
      workspace,
    ],
    // detached: its own process group, so stop() can signal the whole tree at once.
    { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const pid = child.pid;
  if (pid === undefined) {
    removeTemp();
    throw new Error(`could not start code-server (${process.execPath} ${install.entry})`);
  }
  // If the test process dies without calling stop(), take the server down with it.
  const killOnExit = (): void => {
    killQuietly(-pid, 'SIGKILL');
    for (const leftover of processesWithMarker(marker)) killQuietly(leftover, 'SIGKILL');
  };
  process.on('exit', killOnExit);

  let exited = false;
  let exitDescription = '';
  child.on('exit', (code, signal) => {
    exited = true;
    exitDescription = `exit ${code ?? signal}`;
  });
  let port: number | undefined;
  const onData = (chunk: Buffer): void => {
    const text = chunk.toString('utf8');
    output.push(text);
    const listening = /HTTP server listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(text);
    if (listening && port === undefined) port = Number(listening[1]);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    killQuietly(-pid, 'SIGTERM');
    for (const leftover of processesWithMarker(marker)) killQuietly(leftover, 'SIGTERM');
    const graceful = await waitUntil(() => exited && processesWithMarker(marker).length === 0, 3000);
    if (!graceful) {
      output.push(`[harness] still running 3 s after SIGTERM, now killed: ${describeProcesses(processesWithMarker(marker))}\n`);
    }
    killQuietly(-pid, 'SIGKILL');
    for (const leftover of processesWithMarker(marker)) killQuietly(leftover, 'SIGKILL');
    const allGone = await waitUntil(() => exited && processesWithMarker(marker).length === 0, 5000);
    process.removeListener('exit', killOnExit);
    removeTemp();
    if (!allGone) {
      throw new Error(`processes of code-server outlived SIGKILL: ${processesWithMarker(marker).join(', ')}`);
    }
  };

  const timeoutMs = options.startTimeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`code-server ended before it answered (${exitDescription}):\n${output.join('')}`);
    }
    if (port !== undefined && (await httpStatus(`http://127.0.0.1:${port}/healthz`)) === 200) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`code-server did not answer within ${timeoutMs} ms:\n${output.join('')}`);
    }
    await sleep(200);
  }
  if (port === undefined) throw new Error('unreachable: code-server answered without a port');

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    workspace,
    userDataDir,
    extensionsDir,
    marker,
    logs: () => output.join(''),
    saveLogs: (dir: string) => {
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'code-server.log'), output.join(''));
      const vscodeLogs = path.join(userDataDir, 'logs');
      if (fs.existsSync(vscodeLogs)) fs.cpSync(vscodeLogs, path.join(dir, 'vscode-logs'), { recursive: true });
    },
    stop,
  };
}

// --- browser ----------------------------------------------------------------------------------

export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

interface LaunchedChromium {
  browser: Browser;
  marker: string;
  close(): Promise<void>;
}

/**
 * Launches headless chromium with a fresh profile (playwright makes a temp --user-data-dir) and
 * its own XDG folders: chromium writes "Crash Reports" under $XDG_CONFIG_HOME/chromium whatever
 * the profile, and that must not land in the user's home.
 */
async function launchChromium(timeout: number): Promise<LaunchedChromium> {
  const { chromium } = await import('playwright-core');
  const marker = randomBytes(8).toString('hex');
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'plasticity-lens-e2e-browser-'));
  const removeHome = (): void => {
    if (process.env.E2E_KEEP_TEMP !== '1') fs.rmSync(home, { recursive: true, force: true });
  };
  let browser: Browser;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_ARGS],
      env: {
        ...process.env,
        [MARKER_ENV]: marker,
        XDG_CONFIG_HOME: path.join(home, 'config'),
        XDG_CACHE_HOME: path.join(home, 'cache'),
      },
      timeout,
    });
  } catch (error) {
    removeHome();
    throw error;
  }
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    try {
      await browser.close();
    } finally {
      removeHome();
    }
  };
  return { browser, marker, close };
}

export interface Workbench {
  browser: Browser;
  page: Page;
  /** In the environment of chromium's processes; see processesWithMarker(). */
  marker: string;
  /** Closes the browser; safe to call twice. */
  close(): Promise<void>;
}

export interface OpenWorkbenchOptions {
  /** Extra (name, value) pairs for the workbench's URL payload, e.g. extensionTestsPath. */
  payload?: Array<[string, string]>;
  /** Wait for this file name in the explorer (default: the workspace's first entry, if any). */
  expectFile?: string;
  timeoutMs?: number;
  viewport?: { width: number; height: number };
}

/** URL that opens `workspace` (a folder on the server's machine) in the workbench. */
export function workbenchUrl(url: string, workspace: string, payload?: Array<[string, string]>): string {
  const params = new URLSearchParams({ folder: path.resolve(workspace) });
  if (payload && payload.length > 0) params.set('payload', JSON.stringify(payload));
  return `${url}/?${params.toString()}`;
}

/**
 * Opens the workbench in a fresh headless chromium (playwright's launch() gives each browser a
 * new temp profile) and waits until the explorer shows the workspace's files.
 */
export async function openWorkbench(url: string, workspace: string, options: OpenWorkbenchOptions = {}): Promise<Workbench> {
  const timeout = options.timeoutMs ?? 60_000;
  const { browser, marker, close } = await launchChromium(timeout);
  try {
    const context = await browser.newContext({ viewport: options.viewport ?? { width: 1400, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(timeout);
    await page.goto(workbenchUrl(url, workspace, options.payload));
    await page.locator('.monaco-workbench').waitFor({ state: 'visible' });
    const expectFile = options.expectFile ?? firstEntry(workspace);
    if (expectFile !== undefined) await explorerRow(page, expectFile).waitFor({ state: 'visible' });
    return { browser, page, marker, close };
  } catch (error) {
    await close();
    throw error;
  }
}

function firstEntry(workspace: string): string | undefined {
  const names = fs.readdirSync(workspace).filter((name) => !name.startsWith('.'));
  names.sort((a, b) => a.localeCompare(b, undefined, { sensitivity: 'base' }));
  return names[0];
}

// --- workbench helpers --------------------------------------------------------------------------

/** The explorer's row for a file or folder name (its label, as the tree shows it). */
export function explorerRow(page: Page, name: string): Locator {
  return page.locator(`.explorer-folders-view .monaco-list-row[aria-label="${cssString(name)}"]`);
}

/**
 * Moves the mouse onto `word` in the editor line (under `linesSelector`) that contains `lineText`
 * and returns the hover that then shows a table (the hint hovers' per-block numbers). Lines off
 * screen are skipped: a hidden notebook editor keeps its cells far to the left.
 */
export async function hoverWordInLine(page: Page, linesSelector: string, lineText: string, word: string): Promise<Locator> {
  const point = (await page.evaluate(`((selector, text, target) => {
      const line = [...document.querySelectorAll(selector)].find((node) => node.textContent.includes(text) && node.getBoundingClientRect().left >= 0);
      if (!line) return null;
      const at = line.textContent.indexOf(target, line.textContent.indexOf(text));
      const walker = document.createTreeWalker(line, NodeFilter.SHOW_TEXT);
      let offset = 0;
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (offset + node.length > at) {
          // The word's second character: inside it, away from its edges.
          const range = document.createRange();
          range.setStart(node, at - offset + 1);
          range.setEnd(node, at - offset + 2);
          const box = range.getBoundingClientRect();
          return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
        }
        offset += node.length;
      }
      return null;
    })(${JSON.stringify(linesSelector)}, ${JSON.stringify(lineText)}, ${JSON.stringify(word)})`)) as { x: number; y: number } | null;
  if (!point) throw new Error(`no line on screen contains "${lineText}"`);
  await page.mouse.move(point.x, point.y);
  const hover = page.locator('.monaco-hover-content', { has: page.locator('table') }).first();
  await hover.waitFor({ timeout: 15_000 });
  return hover;
}

function cssString(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
}

/**
 * Runs a command from the command palette by its full title as the palette lists it,
 * e.g. "View: Toggle Terminal" or "Plasticity Lens: Analyze Model". The palette's list is made
 * when it opens, and an extension's commands appear only once the extension host has read its
 * package.json, so it reopens the palette until the command shows up or timeoutMs passes.
 */
export async function runCommand(page: Page, title: string, timeoutMs = 30_000): Promise<void> {
  const widget = page.locator('.quick-input-widget');
  const input = widget.locator('.quick-input-box input');
  // Pick the row whose label is exactly the title (the palette also lists fuzzy matches).
  const row = widget
    .locator('.quick-input-list .monaco-list-row')
    .filter({ has: page.locator('.label-name', { hasText: new RegExp(`^${escapeRegExp(title)}$`) }) })
    .first();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await page.keyboard.press('F1');
    await input.waitFor({ state: 'visible' });
    await input.fill(`>${title}`);
    try {
      await row.waitFor({ state: 'visible', timeout: 2_000 });
      break;
    } catch {
      const listed = await widget.locator('.quick-input-list .monaco-list-row .label-name').allInnerTexts();
      await page.keyboard.press('Escape');
      await widget.waitFor({ state: 'hidden' });
      if (Date.now() > deadline) {
        throw new Error(`the command palette has no command titled "${title}" after ${timeoutMs} ms; it lists: ${JSON.stringify(listed)}`);
      }
      await sleep(500);
    }
  }
  await clickUntilGone(row, widget, title);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Reloads the window as a user does, with the workbench's command: it saves the open editors
 * (webview panels and their state) before reloading. A browser reload keeps only what the
 * workbench last saved on its own (when the window lost focus, or every minute), which may
 * predate the panels a test just opened.
 */
export async function reloadWindow(page: Page): Promise<void> {
  const reloaded = page.waitForEvent('framenavigated', { predicate: (frame) => frame === page.mainFrame(), timeout: 30_000 });
  await runCommand(page, 'Developer: Reload Window');
  await reloaded;
  await page.locator('.monaco-workbench').waitFor({ state: 'visible' });
}

/**
 * Waits until the command palette lists a command titled `title`: an extension's commands (and
 * its custom editors) are known to the workbench only once the extension host has read it.
 */
export async function waitForCommand(page: Page, title: string, timeoutMs = 60_000): Promise<void> {
  const input = page.locator('.quick-input-widget .quick-input-box input');
  const row = page.locator('.quick-input-list .monaco-list-row .label-name', { hasText: title });
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
    await page.keyboard.press('F1');
    await input.fill(`>${title}`);
    const listed = await row
      .first()
      .waitFor({ state: 'visible', timeout: 2_000 })
      .then(
        () => true,
        () => false,
      );
    await page.keyboard.press('Escape');
    if (listed) return;
    await sleep(500);
  }
  throw new Error(`the command palette never listed "${title}" within ${timeoutMs} ms`);
}

/**
 * Right-clicks `name` in the explorer and clicks the context-menu entry labelled `label`.
 * An extension's entries appear once its contributions are read, so it reopens the menu until
 * the entry shows up or timeoutMs passes.
 */
export async function clickExplorerContextMenu(page: Page, name: string, label: string, timeoutMs = 30_000): Promise<void> {
  const row = explorerRow(page, name);
  const menu = page.locator('.context-view .monaco-menu');
  const item = menu.locator(`.action-item .action-label[aria-label="${cssString(label)}"]`).first();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await row.waitFor({ state: 'visible' });
    await row.click({ button: 'right' });
    await menu.waitFor({ state: 'visible' });
    try {
      await item.waitFor({ state: 'visible', timeout: 2_000 });
      break;
    } catch {
      const listed = (await menu.locator('.action-item .action-label').allInnerTexts()).filter((text) => text.trim() !== '');
      await page.keyboard.press('Escape');
      await menu.waitFor({ state: 'hidden' });
      if (Date.now() > deadline) {
        throw new Error(`the explorer's context menu for ${name} has no entry "${label}" after ${timeoutMs} ms; it has: ${JSON.stringify(listed)}`);
      }
      await sleep(500);
    }
  }
  await clickUntilGone(item, menu, label);
}

/**
 * Clicks `target` until it is gone (its container closed, or replaced, as when a command opens
 * another quick pick). VS Code's menus can drop a click that comes right after they open (seen
 * here about once in ten runs: the entry highlights, nothing runs).
 */
async function clickUntilGone(target: Locator, container: Locator, what: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await target.click();
    const deadline = Date.now() + 2_000;
    for (;;) {
      if (!(await container.isVisible()) || !(await target.isVisible())) return;
      if (Date.now() > deadline) break;
      await sleep(100);
    }
    if (attempt >= 3) throw new Error(`clicked "${what}" ${attempt} times and it is still there`);
  }
}

/** The messages of the notification toasts now shown. */
export async function notificationMessages(page: Page): Promise<string[]> {
  return page.locator('.notifications-toasts .notification-list-item-message').allInnerTexts();
}

/** Waits for a notification toast whose message matches and returns its text. */
export async function waitForNotification(page: Page, message: string | RegExp, timeoutMs = 30_000): Promise<string> {
  const toast = page.locator('.notifications-toasts .notification-list-item-message', { hasText: message }).first();
  try {
    await toast.waitFor({ state: 'visible', timeout: timeoutMs });
  } catch {
    throw new Error(`no notification matching ${String(message)} within ${timeoutMs} ms; shown: ${JSON.stringify(await notificationMessages(page))}`);
  }
  return toast.innerText();
}

export interface WebviewOptions {
  /** Only a webview of this extension (publisher.name), e.g. when several are open. */
  extensionId?: string;
  timeoutMs?: number;
}

/**
 * Waits for the editor tab titled `title` to be the active one and returns the Frame that holds
 * its webview's own HTML. VS Code nests two iframes: the outer one (class "webview", src
 * .../webview/browser/pre/index.html?id=...&extensionId=...) hosts the inner "active-frame",
 * into which the extension's HTML is written.
 */
export async function waitForWebviewFrame(page: Page, title: string, options: WebviewOptions = {}): Promise<Frame> {
  const timeout = options.timeoutMs ?? 30_000;
  const tab = page.locator(`.tabs-container .tab.active[aria-label^="${cssString(title)}"]`);
  await tab.first().waitFor({ state: 'visible', timeout });

  const selector = options.extensionId ? `iframe.webview.ready[src*="extensionId=${encodeURIComponent(options.extensionId)}"]` : 'iframe.webview.ready';
  // Hidden webviews (other tabs) stay in the DOM; the active editor's one is the visible one.
  const outerElement = page.locator(selector).filter({ visible: true }).first();
  await outerElement.waitFor({ state: 'visible', timeout });
  const outer = await (await outerElement.elementHandle())?.contentFrame();
  if (!outer) throw new Error(`the webview of "${title}" has no frame`);
  const innerElement = outer.locator('iframe#active-frame');
  await innerElement.waitFor({ state: 'attached', timeout });
  const inner = await (await innerElement.elementHandle())?.contentFrame();
  if (!inner) throw new Error(`the webview of "${title}" has no active frame`);
  await inner.waitForLoadState('domcontentloaded', { timeout });
  return inner;
}

/** Saves a PNG of the whole window to `file`, creating its folder. */
export async function screenshot(page: Page, file: string): Promise<string> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await page.screenshot({ path: file });
  return file;
}

// --- extension-host tests -----------------------------------------------------------------------

/**
 * A vscode-remote URI for a path on the server's machine. The web workbench parses payload
 * values as URIs: a bare path would mean a file in the browser, and the Node extension host
 * would never see it.
 */
export function serverUri(url: string, file: string): string {
  const host = new URL(url).host;
  const absolute = path.resolve(file).split(path.sep).map(encodeURIComponent).join('/');
  return `vscode-remote://${host}${absolute}`;
}

export interface ExtensionTestOptions {
  /** Folder with the extension's package.json (its `main` must be built). */
  extensionDevelopmentPath: string;
  /** Module exporting `run(): Promise<void>`, as for @vscode/test-electron; a rejection fails the run. */
  extensionTestsPath: string;
  workspace: string;
  userSettings?: Record<string, unknown>;
  /** Environment of code-server, and so of the extension host that runs the tests. */
  env?: Record<string, string>;
  /** Default 180 s. */
  timeoutMs?: number;
  /** Called with each line the workbench logs (the extension host's console included). */
  onLog?: (line: string) => void;
}

export interface ExtensionTestResult {
  /** What the extension host exited with: 0 when run() resolved. */
  exitCode: number;
  /** The workbench's log lines, the extension host's console output among them. */
  log: string[];
  /** What code-server printed. */
  serverLog: string;
}

/**
 * Runs extension tests in code-server's Node extension host: the workbench is opened with
 * extensionDevelopmentPath and extensionTestsPath in its URL payload, and reports the end
 * through window.codeAutomationExit(code), as VS Code's own browser integration tests use it.
 */
export async function runExtensionTests(options: ExtensionTestOptions): Promise<ExtensionTestResult> {
  const timeoutMs = options.timeoutMs ?? 180_000;
  const server = await startCodeServer({ workspace: options.workspace, userSettings: options.userSettings, env: options.env });
  const log: string[] = [];
  const record = (line: string): void => {
    log.push(line);
    options.onLog?.(line);
  };
  let chromium: LaunchedChromium | undefined;
  try {
    chromium = await launchChromium(60_000);
    const page = await chromium.browser.newPage();
    let onExit: (code: number) => void = () => undefined;
    const exited = new Promise<number>((resolve) => {
      onExit = resolve;
    });
    await page.exposeFunction('codeAutomationLog', (type: string, args: unknown[]) => {
      record(`[${type}] ${args.map((arg) => (typeof arg === 'string' ? arg : JSON.stringify(arg))).join(' ')}`);
    });
    await page.exposeFunction('codeAutomationExit', (code: number) => onExit(code));
    await page.goto(
      workbenchUrl(server.url, options.workspace, [
        ['extensionDevelopmentPath', serverUri(server.url, options.extensionDevelopmentPath)],
        ['extensionTestsPath', serverUri(server.url, options.extensionTestsPath)],
      ]),
    );
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const outcome = await Promise.race([exited, timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      throw new Error(
        `extension tests ${options.extensionTestsPath} did not finish within ${timeoutMs} ms.\n` + `workbench log:\n${log.join('\n')}\ncode-server log:\n${server.logs()}`,
      );
    }
    return { exitCode: outcome, log, serverLog: server.logs() };
  } finally {
    await chromium?.close();
    await server.stop();
  }
}
