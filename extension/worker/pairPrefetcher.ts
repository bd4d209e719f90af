// Batches of input pairs for the measuring loop, decoded one batch ahead in a worker thread
// (pairLoaderThread): onnxruntime blocks the analysis thread during a run, so decoding there
// would wait for it. Without the thread's script (or when it cannot start), batches are
// decoded in this thread, one at a time.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { userErrorFromKind } from '../core/errors';
import type { PairSource, PairSpec, PreprocessOptions } from '../core/inputs/pairSource';

export interface PairBatch {
  reference: Float32Array[];
  target: Float32Array[];
  names: string[];
}

export interface LoaderSetup {
  spec: PairSpec;
  preprocess: PreprocessOptions;
}

export interface LoaderRequest {
  id: number;
  start: number;
  count: number;
}

export type LoaderReply = ({ id: number } & PairBatch) | { id: number; error: { kind: string; message: string } };

const LOADER_SCRIPT = path.join(__dirname, 'pairLoaderThread.js');

export class PairPrefetcher {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly waiting = new Map<number, { start: number; count: number; resolve(batch: PairBatch): void; reject(error: Error): void }>();
  /** The batch asked for ahead of time. */
  private ahead: { start: number; count: number; batch: Promise<PairBatch> } | undefined;
  /** Milliseconds the measuring loop waited for batches. */
  waitedMs = 0;

  constructor(
    private readonly pairs: PairSource,
    setup: LoaderSetup,
    /** Pairs per batch and how many pairs there are, to know which batch comes next. */
    private readonly batchPairs: number,
  ) {
    if (!fs.existsSync(LOADER_SCRIPT)) return;
    try {
      this.worker = new Worker(LOADER_SCRIPT, { workerData: setup });
      this.worker.on('message', (reply: LoaderReply) => this.settle(reply));
      // A thread that dies leaves its batches, and all later ones, to this thread.
      this.worker.on('error', () => this.loseWorker());
      this.worker.on('exit', () => this.loseWorker());
    } catch {
      this.worker = undefined;
    }
  }

  /** Pairs start .. start + count - 1; asks for the following batch at once, to decode during the measurement. */
  async batch(start: number, count: number): Promise<PairBatch> {
    const started = performance.now();
    const ahead = this.ahead;
    this.ahead = undefined;
    const batch = ahead && ahead.start === start && ahead.count === count ? ahead.batch : this.load(start, count);
    if (ahead && ahead.batch !== batch) ahead.batch.catch(() => undefined);
    const next = start + count;
    if (next < this.pairs.count) {
      const nextCount = Math.min(this.batchPairs, this.pairs.count - next);
      this.ahead = { start: next, count: nextCount, batch: this.load(next, nextCount) };
      this.ahead.batch.catch(() => undefined); // awaited, with its error, when its turn comes
    }
    try {
      return await batch;
    } finally {
      this.waitedMs += performance.now() - started;
    }
  }

  async close(): Promise<void> {
    this.ahead?.batch.catch(() => undefined);
    this.ahead = undefined;
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
    this.failAll(new Error('the pair loader was closed'));
  }

  private load(start: number, count: number): Promise<PairBatch> {
    if (!this.worker) return loadInThisThread(this.pairs, start, count);
    const id = this.nextId++;
    return new Promise<PairBatch>((resolve, reject) => {
      this.waiting.set(id, { start, count, resolve, reject });
      this.worker!.postMessage({ id, start, count } satisfies LoaderRequest);
    });
  }

  private settle(reply: LoaderReply): void {
    const entry = this.waiting.get(reply.id);
    if (!entry) return;
    this.waiting.delete(reply.id);
    if ('error' in reply) entry.reject(userErrorFromKind(reply.error.kind, reply.error.message));
    else entry.resolve({ reference: reply.reference, target: reply.target, names: reply.names });
  }

  private failAll(error: Error): void {
    for (const entry of this.waiting.values()) entry.reject(error);
    this.waiting.clear();
  }

  private loseWorker(): void {
    if (!this.worker) return;
    this.worker = undefined;
    for (const entry of this.waiting.values()) loadInThisThread(this.pairs, entry.start, entry.count).then(entry.resolve, entry.reject);
    this.waiting.clear();
  }
}

export async function loadInThisThread(pairs: PairSource, start: number, count: number): Promise<PairBatch> {
  const batch: PairBatch = { reference: [], target: [], names: [] };
  for (let i = start; i < start + count; i++) {
    const pair = await pairs.load(i);
    batch.reference.push(pair.reference);
    batch.target.push(pair.target);
    batch.names.push(`${pair.referenceName} / ${pair.targetName}`);
  }
  return batch;
}
