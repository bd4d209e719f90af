// A first run without a model: the sample ViT and images shipped in the extension, copied into
// global storage (the installed extension's folder stays read-only, and exports default next to
// the model, so they land in a writable folder), opened and analysed on its own images.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { SampleSet, sampleSetIn } from '../core/inputs/sampleSet';
import { AnalysisService } from '../analysis/analysisService';
import { MODEL_OVERVIEW_VIEW_TYPE } from '../modelEditor/modelOverviewEditor';

export const TRY_SAMPLE_COMMAND = 'plasticityLens.tryTheSample';

export class SampleModel {
  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly service: AnalysisService,
  ) {
    // Registered at once: a restored panel's re-run and bounds must use the sample's images too.
    service.useImagesFor(this.copy.model, this.copy);
  }

  /** Where the sample is copied to, in the extension's global storage. */
  get copy(): SampleSet {
    return sampleSetIn(path.join(this.context.globalStorageUri.fsPath, 'sample'));
  }

  /** Copies the sample into storage (the files that differ only), opens it and analyses it on its images. */
  async tryIt(): Promise<void> {
    const shipped = path.join(this.context.extensionPath, 'samples');
    try {
      await copyChangedFiles(shipped, path.dirname(this.copy.model));
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      void vscode.window.showErrorMessage(
        `Plasticity Lens: the sample model in ${shipped} cannot be copied to ${path.dirname(this.copy.model)} (${reason}); reinstall the extension.`,
      );
      return;
    }
    const model = vscode.Uri.file(this.copy.model);
    await vscode.commands.executeCommand('vscode.openWith', model, MODEL_OVERVIEW_VIEW_TYPE);
    // The report panel opens beside it when the analysis starts, and shows the report at its end.
    await this.service.analyze(model);
  }
}

/** Copies `source` into `destination`, file by file, leaving identical files untouched (their reports stay current). */
async function copyChangedFiles(source: string, destination: string): Promise<void> {
  await fs.mkdir(destination, { recursive: true });
  for (const entry of await fs.readdir(source, { withFileTypes: true })) {
    const from = path.join(source, entry.name);
    const to = path.join(destination, entry.name);
    if (entry.isDirectory()) {
      await copyChangedFiles(from, to);
    } else if (!(await sameContent(from, to))) {
      await fs.copyFile(from, to);
      // An installed extension's files can be read-only; the copy must stay replaceable.
      await fs.chmod(to, 0o644);
    }
  }
}

async function sameContent(first: string, second: string): Promise<boolean> {
  try {
    const [a, b] = await Promise.all([fs.readFile(first), fs.readFile(second)]);
    return a.equals(b);
  } catch {
    return false; // the copy is missing: copy it
  }
}
