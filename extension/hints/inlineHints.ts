// Inline sensitivity hints: where Python or a config file names a module of the analysed model, a
// quiet end-of-line decoration gives its plasticity and rank, and a hover gives the per-block
// numbers. Everything comes from the stored report: an edit costs one debounced scan of the
// visible documents, never a worker call, and the decorations never add or move lines.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { AnalysisService } from '../analysis/analysisService';
import { ReportStore } from '../analysis/reportStore';
import { CHOOSE_HINT_MODEL_COMMAND, HintModelChoice, HintSource } from './hintModelChoice';
import { hintText, hoverMarkdown, openReportCommandLink } from './hintText';
import { matchLines, ModuleIndex, ModuleMatch, strongestMatch } from './moduleMatcher';

export const HINT_LANGUAGES: readonly string[] = ['python', 'json', 'jsonc', 'yaml', 'toml'];
/**
 * Where hints are given: files, untitled editors, and the code cells of notebooks (each cell its
 * own document, so an edit rescans that cell only, never the whole notebook).
 */
export const HINT_SCHEMES: readonly string[] = ['file', 'untitled', 'vscode-notebook-cell'];
export const TOGGLE_HINTS_COMMAND = 'plasticityLens.toggleHints';
const ENABLED_SETTING = 'hints.enabled';
const SECTION = 'plasticityLens';
/** Quiet time after the last edit before a document is scanned again. */
const DEBOUNCE_MS = 300;
/** Larger documents (and longer lines: minified JSON) are not scanned, to keep edits free. */
const MAX_LINES = 20_000;
const MAX_LINE_LENGTH = 2_000;

/** The documents the hover provider's selector covers, and so the ones decorated. */
function isHintDocument(document: vscode.TextDocument): boolean {
  return HINT_LANGUAGES.includes(document.languageId) && HINT_SCHEMES.includes(document.uri.scheme);
}

interface DocumentMatches {
  version: number;
  index: ModuleIndex;
  lines: ModuleMatch[][];
}

export class InlineSensitivityHints implements vscode.Disposable {
  private readonly choice: HintModelChoice;
  private readonly decoration = vscode.window.createTextEditorDecorationType({
    after: { color: new vscode.ThemeColor('editorCodeLens.foreground'), margin: '0 0 0 2em' },
    // Typing at the end of the line widens the empty range, so the hint stays after the text.
    rangeBehavior: vscode.DecorationRangeBehavior.OpenOpen,
  });
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private readonly matches = new Map<string, DocumentMatches>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(workspaceState: vscode.Memento, store: ReportStore, service: AnalysisService) {
    this.choice = new HintModelChoice(workspaceState, store);
    this.disposables.push(
      this.choice,
      this.decoration,
      vscode.commands.registerCommand(CHOOSE_HINT_MODEL_COMMAND, () => this.choice.pick()),
      vscode.commands.registerCommand(TOGGLE_HINTS_COMMAND, () => this.toggle()),
      vscode.languages.registerHoverProvider(
        HINT_LANGUAGES.flatMap((language) => HINT_SCHEMES.map((scheme) => ({ language, scheme }))),
        { provideHover: (document, position) => this.hover(document, position) },
      ),
      this.choice.onDidChange(() => this.refreshVisible()),
      service.onDidFinish(({ report }) => this.choice.reportFinished(report)),
      vscode.window.onDidChangeVisibleTextEditors(() => this.refreshVisible()),
      vscode.window.onDidChangeActiveTextEditor(() => this.updateStatusBar()),
      vscode.workspace.onDidChangeTextDocument((event) => this.scheduleDocument(event.document)),
      // A language change reopens the document (plaintext to python, for instance).
      vscode.workspace.onDidOpenTextDocument((document) => this.scheduleDocument(document)),
      vscode.workspace.onDidCloseTextDocument((document) => this.forget(document)),
      vscode.workspace.onDidChangeConfiguration((event) => event.affectsConfiguration(`${SECTION}.${ENABLED_SETTING}`) && this.refreshVisible()),
    );
    this.refreshVisible();
  }

  private enabled(): boolean {
    return vscode.workspace.getConfiguration(SECTION).get<boolean>(ENABLED_SETTING, true);
  }

  private async toggle(): Promise<void> {
    const enabled = !this.enabled();
    const target = vscode.workspace.workspaceFolders?.length ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
    await vscode.workspace.getConfiguration(SECTION).update(ENABLED_SETTING, enabled, target);
    vscode.window.setStatusBarMessage(`Plasticity Lens inline hints ${enabled ? 'on' : 'off'}`, 3000);
  }

  private hintEditors(): vscode.TextEditor[] {
    return vscode.window.visibleTextEditors.filter((editor) => isHintDocument(editor.document));
  }

  /** Decorates every visible editor that can show hints (cached per document version). */
  private refreshVisible(): void {
    const editors = this.hintEditors();
    this.updateStatusBar();
    if (!this.enabled()) {
      for (const editor of vscode.window.visibleTextEditors) editor.setDecorations(this.decoration, []);
      return;
    }
    if (editors.length === 0) return;
    // Reports are read from storage only once some editor can show hints.
    void this.choice.current().then((source) => {
      this.updateStatusBar();
      for (const editor of this.hintEditors()) this.decorate(editor, source);
    });
  }

  private scheduleDocument(document: vscode.TextDocument): void {
    if (!isHintDocument(document)) return;
    const key = document.uri.toString();
    clearTimeout(this.pending.get(key));
    this.pending.set(
      key,
      setTimeout(() => {
        this.pending.delete(key);
        if (!this.enabled()) return;
        const source = this.choice.currentIfLoaded();
        for (const editor of this.hintEditors()) if (editor.document === document) this.decorate(editor, source);
      }, DEBOUNCE_MS),
    );
  }

  private forget(document: vscode.TextDocument): void {
    const key = document.uri.toString();
    clearTimeout(this.pending.get(key));
    this.pending.delete(key);
    this.matches.delete(key);
  }

  private decorate(editor: vscode.TextEditor, source: HintSource | undefined): void {
    if (!source || !this.enabled()) {
      editor.setDecorations(this.decoration, []);
      return;
    }
    const lines = this.matchesOf(editor.document, source);
    const options: vscode.DecorationOptions[] = [];
    lines.forEach((matches, line) => {
      const match = strongestMatch(matches);
      const text = match && hintText(match, source.report);
      if (!text) return;
      const end = editor.document.lineAt(line).range.end;
      options.push({ range: new vscode.Range(end, end), renderOptions: { after: { contentText: text } } });
    });
    editor.setDecorations(this.decoration, options);
  }

  private matchesOf(document: vscode.TextDocument, source: HintSource): ModuleMatch[][] {
    const key = document.uri.toString();
    const cached = this.matches.get(key);
    if (cached && cached.version === document.version && cached.index === source.index) return cached.lines;
    const texts = document.lineCount > MAX_LINES ? [] : document.getText().split(/\r\n|\r|\n/);
    const lines = matchLines(
      texts.map((text) => (text.length > MAX_LINE_LENGTH ? '' : text)),
      source.index,
    );
    this.matches.set(key, { version: document.version, index: source.index, lines });
    return lines;
  }

  private async hover(document: vscode.TextDocument, position: vscode.Position): Promise<vscode.Hover | undefined> {
    if (!this.enabled()) return undefined;
    const source = await this.choice.current();
    if (!source) return undefined;
    const match = this.matchesOf(document, source)[position.line]?.find((candidate) => candidate.start <= position.character && position.character <= candidate.end);
    if (!match) return undefined;
    const modelUri = vscode.Uri.file(source.modelPath);
    const markdown = new vscode.MarkdownString(hoverMarkdown(match, source.report, path.basename(source.modelPath), openReportCommandLink(modelUri)));
    // The link may run this one command, nothing else.
    markdown.isTrusted = { enabledCommands: ['plasticityLens.showReport'] };
    return new vscode.Hover(markdown, new vscode.Range(position.line, match.start, position.line, match.end));
  }

  private updateStatusBar(): void {
    const document = vscode.window.activeTextEditor?.document;
    this.choice.showStatusBar(this.enabled() && document !== undefined && isHintDocument(document));
  }

  dispose(): void {
    for (const timer of this.pending.values()) clearTimeout(timer);
    for (const disposable of this.disposables) disposable.dispose();
  }
}
