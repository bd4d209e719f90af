// Entry point of the analysis worker process (child_process.fork). It owns onnxruntime, whose
// calls block the thread that makes them, so neither the extension host nor the command line
// ever freezes or dies with it.
import { isUserError } from '../core/errors';
import { readOnnxModel } from '../core/onnx/onnxModel';
import { measuredModuleParameters } from '../core/recommend/measuredModel';
import { describeModel, sha256OfFile } from '../core/report/modelDescription';
import { ModelReadCache } from './modelReadCache';
import { HostToWorker, WorkerErrorPayload, WorkerToHost } from './workerProtocol';

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

process.on('message', (message: HostToWorker) => {
  // The cached model holds the file's bytes: only the request right after a describe may use it.
  const cachedFor = message.type === 'bounds' ? lastRead.take(message.request.modelPath) : lastRead.clear();
  switch (message.type) {
    case 'cancel':
      cancelled.add(message.id);
      break;
    case 'describe':
      // Synchronous, but off the host's thread; a ViT-B file takes a few hundred milliseconds.
      try {
        const { model, readMs } = lastRead.read(message.modelPath);
        send({ type: 'description', id: message.id, overview: describeModel(model, readMs, { hash: message.hash }) });
      } catch (error) {
        send({ type: 'error', id: message.id, error: errorPayload(error) });
      }
      break;
    case 'moduleParameters':
      // Reads the .onnx file (weights stay where they are) and never loads onnxruntime.
      try {
        send({ type: 'moduleParametersFound', id: message.id, parameters: measuredModuleParameters(readOnnxModel(message.modelPath), message.modules) });
      } catch (error) {
        send({ type: 'error', id: message.id, error: errorPayload(error) });
      }
      break;
    case 'hash':
      sha256OfFile(message.modelPath).then(
        (sha256) => send({ type: 'hashed', id: message.id, sha256 }),
        (error: unknown) => send({ type: 'error', id: message.id, error: errorPayload(error) }),
      );
      break;
    case 'bounds':
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      (require('./analysisRunner') as typeof import('./analysisRunner')).dataFreeBoundsBeforeMeasuring(message.request, cachedFor).then(
        (bounds) => send({ type: 'boundsComputed', id: message.id, bounds }),
        (error: unknown) => send({ type: 'error', id: message.id, error: errorPayload(error) }),
      );
      break;
    case 'analyze':
      // Loaded on first use: onnxruntime's native library takes a moment to load, and describing
      // a model (the overview editor) does not need it.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      (require('./analysisRunner') as typeof import('./analysisRunner')).runAnalysis(message.request, {
        onProgress: (progress) => send({ type: 'progress', id: message.id, progress }),
        isCancelled: () => cancelled.has(message.id),
      })
        .then((report) => send({ type: 'result', id: message.id, report }))
        .catch((error: unknown) => send({ type: 'error', id: message.id, error: errorPayload(error) }))
        .finally(() => cancelled.delete(message.id));
      break;
  }
});

// The host going away (closed editor, Ctrl-C) must not leave this process behind.
process.on('disconnect', () => process.exit(0));
// A terminal's Ctrl-C reaches the whole process group; the host turns it into a cancel.
process.on('SIGINT', () => undefined);
send({ type: 'ready' });
