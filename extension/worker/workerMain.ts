// Entry point of the analysis worker process (child_process.fork). It owns onnxruntime, whose
// calls block the thread that makes them, so neither the extension host nor the command line
// ever freezes or dies with it.
import { isUserError } from '../core/errors';
import { readOnnxModel } from '../core/onnx/onnxModel';
import { measuredModuleParameters } from '../core/recommend/measuredModel';
import { describeModel, sha256OfFile } from '../core/report/modelDescription';
import { ModelReadCache } from './modelReadCache';
import { HostToWorker, WorkerErrorPayload, WorkerMethod, WorkerRequest, WorkerResult, WorkerToHost } from './workerProtocol';

const cancelled = new Set<number>();
// The model overview asks to describe a file, then for its bounds: the second reads it from here.
const lastRead = new ModelReadCache();

function send(message: WorkerToHost): void {
  process.send?.(message);
}

function errorPayload(error: unknown): WorkerErrorPayload {
  if (isUserError(error)) return { kind: error.name as WorkerErrorPayload['kind'], message: error.message };
  const internal = error instanceof Error ? error : new Error(String(error));
  return { kind: 'InternalError', message: internal.message, stack: internal.stack };
}

// onnxruntime's native library takes a moment to load: loaded on the first request that needs it.
function analysisRunner(): Promise<typeof import('./analysisRunner')> {
  return import('./analysisRunner');
}

function modelBounds(): Promise<typeof import('./modelBounds')> {
  return import('./modelBounds');
}

/** The result of one request, by method. */
async function answer(message: WorkerRequest, cachedFor: ReturnType<ModelReadCache['take']>): Promise<WorkerResult<WorkerMethod>> {
  switch (message.method) {
    case 'analyze':
      return (await analysisRunner()).runAnalysis(message.params.request, {
        onProgress: (progress) => send({ type: 'progress', id: message.id, progress }),
        isCancelled: () => cancelled.has(message.id),
      });
    case 'describe': {
      // Synchronous, but off the host's thread; a ViT-B file takes a few hundred milliseconds.
      const { model, readMs } = lastRead.read(message.params.modelPath);
      return describeModel(model, readMs);
    }
    case 'hash':
      return sha256OfFile(message.params.modelPath);
    case 'bounds':
      return (await modelBounds()).dataFreeBoundsBeforeMeasuring(message.params.request, cachedFor);
    case 'moduleParameters':
      // Reads the .onnx file (weights stay where they are) and never loads onnxruntime.
      return measuredModuleParameters(readOnnxModel(message.params.modelPath), message.params.modules);
  }
}

process.on('message', (message: HostToWorker) => {
  if (message.type === 'cancel') {
    cancelled.add(message.id);
    return;
  }
  // The cached model holds the file's bytes: only the request right after a describe may use it.
  const cachedFor = message.method === 'bounds' ? lastRead.take(message.params.request.modelPath) : lastRead.clear();
  answer(message, cachedFor)
    .then(
      (value) => send({ type: 'result', id: message.id, value }),
      (error: unknown) => send({ type: 'error', id: message.id, error: errorPayload(error) }),
    )
    .finally(() => cancelled.delete(message.id));
});

// The host going away (closed editor, Ctrl-C) must not leave this process behind.
process.on('disconnect', () => process.exit(0));
// A terminal's Ctrl-C reaches the whole process group; the host turns it into a cancel.
process.on('SIGINT', () => undefined);
send({ type: 'ready' });
