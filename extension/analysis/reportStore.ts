// Reports kept per model in workspace storage, keyed by the model's content hash and the
// settings that change the numbers, so reopening VS Code shows them at once and a changed model
// is recognised as stale.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { PlasticityReport } from '../core/report/reportSchema';
import { MeasurementSettings } from './analysisSettings';

interface IndexEntry {
  /** Report file name in the storage folder. */
  file: string;
  sha256: string;
  createdAt: string;
}

const INDEX_KEY = 'plasticityLens.reportIndex';

export function settingsKey(sha256: string, settings: MeasurementSettings): string {
  const canonical = JSON.stringify(settings, Object.keys(settings).sort());
  return `${sha256.slice(0, 16)}-${createHash('sha256').update(canonical).digest('hex').slice(0, 12)}`;
}

export class ReportStore {
  constructor(private readonly context: vscode.ExtensionContext) {}

  private get folder(): string {
    // Workspace storage when a folder is open; global storage otherwise.
    return path.join((this.context.storageUri ?? this.context.globalStorageUri).fsPath, 'reports');
  }

  private index(): Record<string, IndexEntry> {
    return this.context.workspaceState.get<Record<string, IndexEntry>>(INDEX_KEY, {});
  }

  async save(report: PlasticityReport, settings: MeasurementSettings): Promise<void> {
    const file = `${settingsKey(report.model.sha256, settings)}.json`;
    await fs.mkdir(this.folder, { recursive: true });
    // Written next to its final name then renamed, so a crash never leaves half a report.
    const temporary = path.join(this.folder, `${file}.${process.pid}.tmp`);
    await fs.writeFile(temporary, JSON.stringify(report));
    await fs.rename(temporary, path.join(this.folder, file));
    await this.context.workspaceState.update(INDEX_KEY, { ...this.index(), [report.model.path]: { file, sha256: report.model.sha256, createdAt: report.createdAt } });
  }

  /** The last report made for this model path, if any (whatever the model's current content). */
  async latest(modelPath: string): Promise<PlasticityReport | undefined> {
    const entry = this.index()[modelPath];
    if (!entry) return undefined;
    try {
      return JSON.parse(await fs.readFile(path.join(this.folder, entry.file), 'utf8')) as PlasticityReport;
    } catch {
      return undefined; // storage cleared or unreadable: as if never analysed
    }
  }

  /** A report for exactly this model content and these settings, if one was made. */
  async find(sha256: string, settings: MeasurementSettings): Promise<PlasticityReport | undefined> {
    try {
      return JSON.parse(await fs.readFile(path.join(this.folder, `${settingsKey(sha256, settings)}.json`), 'utf8')) as PlasticityReport;
    } catch {
      return undefined;
    }
  }

  /** Every stored report (one per model content and settings), newest first; unreadable files are skipped. */
  async all(): Promise<PlasticityReport[]> {
    let names: string[];
    try {
      names = (await fs.readdir(this.folder)).filter((name) => name.endsWith('.json'));
    } catch {
      return []; // nothing stored yet
    }
    const reports = await Promise.all(
      names.map((name) =>
        fs.readFile(path.join(this.folder, name), 'utf8').then(
          (text) => JSON.parse(text) as PlasticityReport,
          () => undefined,
        ),
      ),
    );
    return reports.filter((report): report is PlasticityReport => report !== undefined).sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  analysedModels(): string[] {
    return Object.keys(this.index());
  }
}
