// Host side of the analysis worker: forks it on first use, sends requests, relays progress,
// cancels, and turns a dead worker into a sentence the user can act on. Imports no onnxruntime.
import { ChildProcess, fork } from 'node:child_process';
import * as path from 'node:path';
import { CancelledError, userErrorFromKind } from '../core/errors';
import { MeasuredModuleParameters } from '../core/recommend/measuredModel';
import { ModelOverview, PlasticityBounds } from '../core/report/reportSchema';
import { PlasticityReport } from '../core/report/reportSchema';
import { AnalysisProgress, AnalysisRequest, BoundsRequest, HostToWorker, WorkerMethod, WorkerParams, WorkerRequest, WorkerResult, WorkerToHost } from './workerProtocol';

export interface WorkerSupervisorOptions {
  /** Path of the built workerMain.js; defaults to the one beside this file. */
  workerScript?: string;
  /** Node or Electron executable; Electron runs as Node through ELECTRON_RUN_AS_NODE. */
  execPath?: string;
  /** Receives the worker's stderr (onnxruntime and GPU driver logs). */
  onLog?: (text: string) => void;
  /** How long a cancelled run may take to stop on its own before the worker is killed. */
  cancelGraceMs?: number;
  /** Variables added to the worker's environment (e.g. which Vulkan driver WebGPU uses). */
  env?: Record<string, string>;
}

/** Error raised when the worker process dies during a request. */
export class WorkerCrashError extends Error {
  override readonly name = 'WorkerCrashError';
}

/**
 * Checks, where values cross the process boundary (an untyped channel), that a result is the one
 * its method promises; the type guard is what lets each request resolve with its own type.
 */
const IS_RESULT_OF: { [M in WorkerMethod]: (value: WorkerResult<WorkerMethod>) => value is WorkerResult<M> } = {
  analyze: (value): value is PlasticityReport => typeof value === 'object' && 'schemaVersion' in value,
  describe: (value): value is ModelOverview => typeof value === 'object' && 'timing' in value && 'architecture' in value && !('schemaVersion' in value),
  hash: (value): value is string => typeof value === 'string',
  bounds: (value): value is PlasticityBounds => typeof value === 'object' && 'method' in value && 'blocks' in value,
  moduleParameters: (value): value is MeasuredModuleParameters => typeof value === 'object' && 'modules' in value && 'sha256' in value,
};

/** Builds the request message of one method (a function per method keeps method and params paired). */
const REQUEST_OF: { [M in WorkerMethod]: (id: number, params: WorkerParams<M>) => WorkerRequest } = {
  analyze: (id, params) => ({ type: 'request', id, method: 'analyze', params }),
  describe: (id, params) => ({ type: 'request', id, method: 'describe', params }),
  hash: (id, params) => ({ type: 'request', id, method: 'hash', params }),
  bounds: (id, params) => ({ type: 'request', id, method: 'bounds', params }),
  moduleParameters: (id, params) => ({ type: 'request', id, method: 'moduleParameters', params }),
};

interface Pending {
  accept(value: WorkerResult<WorkerMethod>): void;
  reject(error: Error): void;
  onProgress?: (progress: AnalysisProgress) => void;
}

export class WorkerSupervisor {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private stderrTail = '';

  constructor(private readonly options: WorkerSupervisorOptions = {}) {}

  /** Runs one analysis; rejects with the engine's user errors, CancelledError or WorkerCrashError. */
  analyze(request: AnalysisRequest, onProgress?: (progress: AnalysisProgress) => void, signal?: AbortSignal): Promise<PlasticityReport> {
    return this.request('analyze', { request }, onProgress, signal);
  }

  /** Reads a model and what discovery finds in it (a non-ViT resolves with the reason); its sha256 comes from hashFile. */
  describe(modelPath: string): Promise<ModelOverview> {
    return this.request('describe', { modelPath });
  }

  /** sha256 of a file, computed in the worker. */
  hashFile(modelPath: string): Promise<string> {
    return this.request('hash', { modelPath });
  }

  /**
   * The paper's data-free upper bounds before any measurement, computed in the worker: from the
   * weights, and for attention with token statistics of the first pairs of the request's inputs.
   */
  bounds(request: BoundsRequest): Promise<PlasticityBounds> {
    return this.request('bounds', { request });
  }

  /**
   * The parameters of `modules` in a model file and the sha256 of the .onnx file (as reports
   * record it), read in the worker without onnxruntime; a missing or unreadable file rejects with
   * a ModelFileError.
   */
  moduleParameters(modelPath: string, modules: string[]): Promise<MeasuredModuleParameters> {
    return this.request('moduleParameters', { modelPath, modules });
  }

  private request<M extends WorkerMethod>(method: M, params: WorkerParams<M>, onProgress?: (progress: AnalysisProgress) => void, signal?: AbortSignal): Promise<WorkerResult<M>> {
    const id = this.nextId++;
    const child = this.ensureWorker();
    const isResult: (value: WorkerResult<WorkerMethod>) => value is WorkerResult<M> = IS_RESULT_OF[method];
    return new Promise<WorkerResult<M>>((resolve, reject) => {
      const abort = () => this.cancel(id);
      const cleanup = () => signal?.removeEventListener('abort', abort);
      this.pending.set(id, {
        accept: (value) => {
          cleanup();
          if (isResult(value)) resolve(value);
          else reject(new Error(`the analysis process answered '${method}' request ${id} with another kind of result`));
        },
        reject: (error) => {
          cleanup();
          reject(error);
        },
        onProgress,
      });
      signal?.addEventListener('abort', abort, { once: true });
      const build: (id: number, params: WorkerParams<M>) => WorkerRequest = REQUEST_OF[method];
      this.post(child, build(id, params));
      if (signal?.aborted) abort();
    });
  }

  /**
   * Asks the worker to stop between runs; if it has not answered within the grace period (a
   * long native call is running), kills it, so cancel always takes effect promptly.
   */
  cancel(id: number): void {
    const child = this.child;
    if (!child || !this.pending.has(id)) return;
    this.post(child, { type: 'cancel', id });
    const timer = setTimeout(() => {
      if (this.pending.has(id) && this.child === child) {
        // Forget the dying worker first: the next request must start a fresh one.
        this.child = undefined;
        child.kill('SIGKILL');
        for (const pendingId of [...this.pending.keys()]) this.settle(pendingId, (entry) => entry.reject(new CancelledError()));
      }
    }, this.options.cancelGraceMs ?? 750);
    timer.unref();
  }

  /** Stops the worker; pending requests fail as cancelled. */
  dispose(): void {
    const child = this.child;
    this.child = undefined;
    for (const id of [...this.pending.keys()]) this.settle(id, (entry) => entry.reject(new CancelledError()));
    child?.kill('SIGKILL');
  }

  get workerPid(): number | undefined {
    return this.child?.pid;
  }

  private ensureWorker(): ChildProcess {
    if (this.child) return this.child;
    const script = this.options.workerScript ?? path.join(__dirname, 'workerMain.js');
    const child = fork(script, [], {
      execPath: this.options.execPath ?? process.execPath,
      env: { ...process.env, ...this.options.env, ELECTRON_RUN_AS_NODE: '1', ORT_DISABLE_TELEMETRY: '1' },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      // gc() lets the worker free the model's file bytes before onnxruntime loads the weights.
      execArgv: ['--expose-gc'],
      serialization: 'advanced',
    });
    this.stderrTail = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      this.stderrTail = (this.stderrTail + text).slice(-4000);
      this.options.onLog?.(text);
    });
    child.on('message', (message: WorkerToHost) => this.onMessage(message));
    child.on('exit', (code, signal) => this.onExit(child, code, signal));
    child.on('error', (error) => this.onExit(child, null, null, error));
    this.child = child;
    return child;
  }

  private post(child: ChildProcess, message: HostToWorker): void {
    if (child.connected) child.send(message);
  }

  private onMessage(message: WorkerToHost): void {
    switch (message.type) {
      case 'ready':
        break;
      case 'progress':
        this.pending.get(message.id)?.onProgress?.(message.progress);
        break;
      case 'result':
        this.settle(message.id, (entry) => entry.accept(message.value));
        break;
      case 'error': {
        const { kind, message: text, stack } = message.error;
        const error = userErrorFromKind(kind, text);
        if (stack) error.stack = stack;
        this.settle(message.id, (entry) => entry.reject(error));
        break;
      }
    }
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null, error?: Error): void {
    if (this.child !== child) return;
    this.child = undefined; // the next request starts a fresh worker
    const outOfMemory = /out of memory|bad_alloc|Failed to allocate|heap limit/i.test(this.stderrTail);
    const how = error ? `could not start (${error.message})` : signal ? `was stopped by ${signal}` : `exited with code ${code}`;
    const advice =
      outOfMemory || signal === 'SIGKILL'
        ? 'it probably ran out of memory: close other programs, lower the pairs per run, or analyse a smaller model'
        : 'run it again; if it repeats, run the command line with --verbose and report the log';
    for (const id of [...this.pending.keys()]) {
      this.settle(id, (entry) => entry.reject(new WorkerCrashError(`The analysis process ${how}; ${advice}.`)));
    }
  }

  private settle(id: number, action: (entry: Pending) => void): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.pending.delete(id);
    action(entry);
  }
}
