// The HTML shell of every webview: a strict Content-Security-Policy (nothing but our own
// bundle, by nonce, and our own styles), the built bundle, and the editor's theme variables.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as vscode from 'vscode';

/** Where built webview bundles and media live inside the extension. */
export function webviewRoots(extensionUri: vscode.Uri): vscode.Uri[] {
  return [vscode.Uri.joinPath(extensionUri, 'dist', 'webview'), vscode.Uri.joinPath(extensionUri, 'media')];
}

export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
  return { enableScripts: true, localResourceRoots: webviewRoots(extensionUri) };
}

export function webviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri, bundle: 'reportPanel' | 'comparisonPanel' | 'modelOverview', title: string): string {
  const nonce = randomBytes(16).toString('base64');
  const script = bundleSource(vscode.Uri.joinPath(extensionUri, 'dist', 'webview', `${bundle}.js`).fsPath);
  const style = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'media', 'webview.css'));
  const csp = ["default-src 'none'", `script-src 'nonce-${nonce}'`, `style-src ${webview.cspSource}`, `img-src ${webview.cspSource} data:`, `font-src ${webview.cspSource}`].join(
    '; ',
  );
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${style}">
<title>${escapeHtml(title)}</title>
</head>
<body>
<main id="root" aria-live="polite"><p class="muted">Loading…</p></main>
<script nonce="${nonce}">${script}</script>
</body>
</html>`;
}

const bundles = new Map<string, string>();

/**
 * The bundle's source, put inline (allowed by the nonce): a script fetched through the webview's
 * resource service worker could 404 in VS Code for the web when a panel was restored at start-up,
 * leaving the page on "Loading…" for good. `</script` inside it is escaped so the HTML parser does
 * not end the element early (the same text to JavaScript in strings, regexes and comments).
 */
function bundleSource(file: string): string {
  let source = bundles.get(file);
  if (source === undefined) {
    source = fs.readFileSync(file, 'utf8').replace(/<\/script/gi, '<\\/script');
    bundles.set(file, source);
  }
  return source;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}
