// Saving an export (PNG, CSV, JSON, a freeze plan) where the user chooses, next to the model by
// default; never over the model, and never over a report when the export is not one.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';

/** True for a file that holds a Plasticity Lens report (an exported one must not be overwritten by an export). */
export async function isReportFile(file: string): Promise<boolean> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(file, 'r');
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(4096), 0, 4096, 0);
    const head = buffer.subarray(0, bytesRead).toString('utf8');
    return head.includes('"schemaVersion"') && head.includes('"plasticity-lens"') && !head.includes('freeze-plan');
  } catch {
    return false; // absent or unreadable: nothing to protect
  } finally {
    await handle?.close();
  }
}

export interface ExportFile {
  /** The default folder and name come from this file ("model.onnx" gives "model-<suffix>"). */
  besideFile: string;
  suffix: string;
  filters: Record<string, string[]>;
  content: Buffer;
  /** Refuse to overwrite a Plasticity Lens report (for exports that are not reports). */
  protectReports?: boolean;
  /** Files never to overwrite besides `besideFile` (e.g. the compared reports). */
  protectedFiles?: string[];
}

/** Resolves the path written, or undefined when the user cancelled or the file was refused or not written. */
export async function saveExport(request: ExportFile): Promise<string | undefined> {
  const { besideFile, suffix, filters, content } = request;
  const base = path.basename(besideFile, path.extname(besideFile));
  const target = await vscode.window.showSaveDialog({ defaultUri: vscode.Uri.file(path.join(path.dirname(besideFile), `${base}-${suffix}`)), filters });
  if (!target) return undefined;
  if (target.fsPath === besideFile || request.protectedFiles?.includes(target.fsPath)) {
    void vscode.window.showErrorMessage(`Plasticity Lens will not overwrite ${path.basename(target.fsPath)}, which it reads; choose another name.`);
    return undefined;
  }
  if (request.protectReports && (await isReportFile(target.fsPath))) {
    void vscode.window.showErrorMessage(`Plasticity Lens will not overwrite the report ${path.basename(target.fsPath)}; choose another name.`);
    return undefined;
  }
  try {
    await fs.writeFile(target.fsPath, content);
    void vscode.window.showInformationMessage(`Plasticity Lens: saved ${path.basename(target.fsPath)}.`);
    return target.fsPath;
  } catch (error) {
    void vscode.window.showErrorMessage(
      `Plasticity Lens: ${target.fsPath} cannot be written (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); choose another place.`,
    );
    return undefined;
  }
}
