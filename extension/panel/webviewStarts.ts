// Restored webviews start one at a time. In VS Code for the web (code-server, vscode.dev) every
// webview's host page registers the one service worker of their shared scope, each under its own
// URL, and then waits for a change of controller unless the worker already controlling it is its
// own. When two host pages start at once (a reload restoring a report panel in one group and a
// comparison panel in another), the second registration can take over before the first page
// looks, and that page then waits for good for a change that already happened: its panel stays
// blank under a running progress bar, although the extension restored it. VS Code creates a
// restored panel's webview only once the serializer's promise settles, so the serializers hold
// each restored panel back until the one before it has started.
import * as vscode from 'vscode';

/** How long a start holds back the next one at most (a webview whose page never loads). */
export const START_TIMEOUT_MS = 15_000;

export class WebviewStarts {
  private previous: Promise<void> = Promise.resolve();

  /**
   * Settles when `panel`'s webview may start: once the webview before it has started. Its own
   * start ends, for the next one, at its first message (every page of this extension posts 'ready'
   * as soon as its script runs), when it is hidden or closed (VS Code then drops its page), or
   * after START_TIMEOUT_MS.
   */
  turn(panel: vscode.WebviewPanel): Promise<void> {
    const before = this.previous;
    const listeners: vscode.Disposable[] = [];
    let timer: NodeJS.Timeout | undefined;
    this.previous = new Promise<void>((resolve) => {
      const started = () => {
        clearTimeout(timer);
        for (const listener of listeners.splice(0)) listener.dispose();
        resolve();
      };
      listeners.push(
        panel.webview.onDidReceiveMessage(started),
        panel.onDidChangeViewState(({ webviewPanel }) => !webviewPanel.visible && started()),
        panel.onDidDispose(started),
      );
      void before.then(() => {
        if (listeners.length > 0) timer = setTimeout(started, START_TIMEOUT_MS);
      });
    });
    return before;
  }
}
