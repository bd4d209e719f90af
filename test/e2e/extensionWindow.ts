// One real VS Code window with the packaged extension, for an e2e suite: code-server with the
// current .vsix installed, chromium on the suite's workspace, the webview finder, and
// screenshots and logs named after the suite; close() keeps the logs and stops everything.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { artifactsDir, e2eUnavailableReason, openWorkbench, repoRoot, screenshot, startCodeServer, waitForCommand, type CodeServerHandle, type Workbench } from './codeServer';
import { WebviewFrames } from './webviewFrames';

const ROOT = repoRoot();
const { version } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
/** What `npm run test:e2e` packages before the suites run. */
export const VSIX = path.join(ROOT, 'build', 'vsix', `plasticity-lens-${process.platform}-${process.arch}-${version}.vsix`);

/** Why the suites cannot run here (no code-server set up, or no .vsix built), or undefined. */
export function extensionWindowUnavailableReason(): string | undefined {
  return e2eUnavailableReason() ?? (fs.existsSync(VSIX) ? undefined : `no .vsix at ${VSIX}; run npm run package first`);
}

export interface ExtensionWindow {
  server: CodeServerHandle;
  workbench: Workbench;
  page: Page;
  frames: WebviewFrames;
  /** A screenshot of the window, <suite>-<name>.png in the artifacts folder. */
  shot(name: string): Promise<void>;
  /** A last screenshot, the logs into the artifacts folder, then the browser and code-server stopped. */
  close(): Promise<void>;
}

/** Opens `workspace` (expecting `expectFile` in the explorer) in a dark-themed window, once the extension's commands are known. */
export async function openExtensionWindow(suite: string, workspace: string, expectFile: string): Promise<ExtensionWindow> {
  const server = await startCodeServer({ vsix: VSIX, workspace, userSettings: { 'workbench.colorTheme': 'Default Dark Modern' } });
  let workbench: Workbench;
  try {
    workbench = await openWorkbench(server.url, workspace, { expectFile });
  } catch (error) {
    server.saveLogs(path.join(artifactsDir(), `${suite}-logs`));
    await server.stop();
    throw error;
  }
  const page = workbench.page;
  const shotFile = (name: string) => path.join(artifactsDir(), `${suite}-${name}.png`);
  const shot = async (name: string) => {
    await screenshot(page, shotFile(name));
  };
  const opened: ExtensionWindow = {
    server,
    workbench,
    page,
    frames: new WebviewFrames(page, server, shotFile),
    shot,
    close: async () => {
      await shot('final').catch(() => undefined);
      server.saveLogs(path.join(artifactsDir(), `${suite}-logs`));
      await workbench.close();
      await server.stop();
    },
  };
  try {
    // Before the extension host has read the extension, an .onnx would open as a binary file.
    await waitForCommand(page, 'Plasticity Lens: Analyze Model');
  } catch (error) {
    await opened.close();
    throw error;
  }
  return opened;
}

/** Writes the workspace's .vscode/settings.json (the extension reads its settings from there). */
export function writeWorkspaceSettings(workspace: string, settings: Record<string, unknown>): void {
  fs.mkdirSync(path.join(workspace, '.vscode'), { recursive: true });
  fs.writeFileSync(path.join(workspace, '.vscode', 'settings.json'), JSON.stringify(settings, null, 2));
}
