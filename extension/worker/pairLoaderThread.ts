// A worker thread that reads and decodes input pairs while the analysis thread is blocked in
// onnxruntime: the batch after the one being measured is ready when the probe returns. It opens
// the same PairSource as the analysis (same folders, limits and preprocessing).
import { parentPort, workerData } from 'node:worker_threads';
import { isUserError } from '../core/errors';
import { openPairSource, PairSource } from '../core/inputs/pairSource';
import type { LoaderReply, LoaderRequest, LoaderSetup } from './pairPrefetcher';

const setup = workerData as LoaderSetup;
const opened: Promise<PairSource> = openPairSource(setup.spec, setup.preprocess);
// Unhandled until the first request awaits it.
opened.catch(() => undefined);

parentPort?.on('message', (request: LoaderRequest) => {
  loadBatch(request).then(
    (reply) =>
      parentPort?.postMessage(
        reply,
        [...reply.reference, ...reply.target].map((array) => array.buffer as ArrayBuffer),
      ),
    (error: unknown) =>
      parentPort?.postMessage({
        id: request.id,
        error: { kind: isUserError(error) ? error.name : 'InternalError', message: error instanceof Error ? error.message : String(error) },
      } satisfies LoaderReply),
  );
});

async function loadBatch(request: LoaderRequest): Promise<Extract<LoaderReply, { reference: Float32Array[] }>> {
  const pairs = await opened;
  const reply = { id: request.id, reference: [] as Float32Array[], target: [] as Float32Array[], names: [] as string[] };
  for (let i = request.start; i < request.start + request.count; i++) {
    const pair = await pairs.load(i);
    reply.reference.push(pair.reference);
    reply.target.push(pair.target);
    reply.names.push(`${pair.referenceName} / ${pair.targetName}`);
  }
  return reply;
}
