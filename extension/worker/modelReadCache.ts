// Holds the one model file the worker read last, so a request that follows at once (the model
// overview's bounds after its description) does not read it again: a ViT-B takes a quarter of a
// second. The file's bytes stay in memory while cached, so the cache is handed over or dropped
// by the very next request.
import * as fs from 'node:fs';
import { OnnxModel, readOnnxModel } from '../core/onnx/onnxModel';

export class ModelReadCache {
  private entry: { filePath: string; size: number; mtimeMs: number; model: OnnxModel } | undefined;

  /** Reads `filePath` and keeps it; returns the model and how long reading took. */
  read(filePath: string): { model: OnnxModel; readMs: number } {
    const started = performance.now();
    const model = readOnnxModel(filePath);
    const stat = fs.statSync(filePath);
    this.entry = { filePath, size: stat.size, mtimeMs: stat.mtimeMs, model };
    return { model, readMs: performance.now() - started };
  }

  /** The cached model of `filePath` if the file is unchanged since; the cache is empty afterwards. */
  take(filePath: string): OnnxModel | undefined {
    const entry = this.entry;
    this.entry = undefined;
    if (!entry || entry.filePath !== filePath) return undefined;
    try {
      const stat = fs.statSync(filePath);
      return stat.size === entry.size && stat.mtimeMs === entry.mtimeMs ? entry.model : undefined;
    } catch {
      return undefined;
    }
  }

  clear(): undefined {
    this.entry = undefined;
    return undefined;
  }
}
