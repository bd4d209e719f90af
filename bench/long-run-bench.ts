// Prints the memory of a long analysis (the paper's 12,800 pairs by default) and how fast it
// stops on cancel. Synthetic inputs are generated on the fly, so any number of pairs runs
// without files. Not a test: it asserts nothing.
//
//   npm run bench:long -- [MODEL.onnx] [--pairs 12800] [--ep cpu] [--cancel-after 64]
//
// MODEL defaults to the sample ViT. The worker's resident memory (VmRSS) is sampled at every
// progress event; its peak (VmHWM) is printed at the end, with the pairs/s and the ETA shown.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { CancelledError } from '../extension/core/errors';
import { ExecutionProviderRequest } from '../extension/core/report/reportSchema';
import { WorkerSupervisor } from '../extension/worker/workerSupervisor';
import { peakResidentBytes, REPO_ROOT } from './benchSupport';

const megabytes = (bytes: number | undefined) => (bytes === undefined ? '?' : `${(bytes / 2 ** 20).toFixed(0)} MiB`);

function residentBytes(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { pairs: { type: 'string', default: '12800' }, ep: { type: 'string', default: 'cpu' }, 'cancel-after': { type: 'string', default: '64' } },
  });
  const modelFile = path.resolve(positionals[0] ?? path.join(REPO_ROOT, 'samples', 'sample-vit.onnx'));
  const pairs = Number(values.pairs);
  const cancelAfter = Number(values['cancel-after']);
  console.log(`Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${megabytes(os.totalmem())} memory, Node ${process.version}`);
  console.log(`Model: ${modelFile} (${megabytes(fs.statSync(modelFile).size)}), ${pairs} synthetic pairs, --ep ${values.ep}`);

  // 1. The whole run: resident memory along the way.
  const supervisor = new WorkerSupervisor();
  const samples: { pairs: number; rss: number }[] = [];
  let printed = 0;
  const started = performance.now();
  try {
    const report = await supervisor.analyze({ modelPath: modelFile, mode: 'isolated', executionProvider: values.ep as ExecutionProviderRequest, pairs, seed: 0 }, (progress) => {
      if (progress.phase !== 'measuring') return;
      const rss = residentBytes(supervisor.workerPid);
      if (rss !== undefined) samples.push({ pairs: progress.pairsDone, rss });
      if (progress.pairsDone >= printed + pairs / 10 || progress.pairsDone === progress.pairsTotal) {
        printed = progress.pairsDone;
        console.log(
          `  ${progress.pairsDone}/${progress.pairsTotal} pairs, ${progress.pairsPerSecond.toFixed(1)} pairs/s, ETA ${Math.ceil(progress.etaSeconds ?? 0)} s, worker resident ${megabytes(rss)}`,
        );
      }
    });
    const peak = peakResidentBytes(supervisor.workerPid);
    const early = samples.find((sample) => sample.pairs >= Math.min(pairs, 100));
    const late = samples.at(-1);
    console.log(
      `\nMeasured ${report.settings.pairs} pairs in ${(report.timing.measureMs / 1000).toFixed(1)} s (${report.timing.pairsPerSecond.toFixed(1)} pairs/s); whole run ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    console.log(
      `Worker resident memory: ${megabytes(early?.rss)} after ${early?.pairs} pairs, ${megabytes(late?.rss)} after ${late?.pairs}; largest sample ${megabytes(Math.max(...samples.map((sample) => sample.rss)))}`,
    );
    console.log(`Worker peak resident memory (VmHWM, the whole run, bounds included): ${megabytes(peak)}`);
  } finally {
    supervisor.dispose();
  }

  // 2. Cancel: abort once `cancelAfter` pairs are measured; time until the run is rejected.
  const cancelling = new WorkerSupervisor({ cancelGraceMs: 60_000 });
  try {
    const abort = new AbortController();
    let abortedAt = 0;
    const run = cancelling.analyze(
      { modelPath: modelFile, mode: 'isolated', executionProvider: values.ep as ExecutionProviderRequest, pairs, seed: 0 },
      (progress) => {
        if (progress.phase === 'measuring' && progress.pairsDone >= cancelAfter && !abortedAt) {
          abortedAt = performance.now();
          abort.abort();
        }
      },
      abort.signal,
    );
    try {
      await run;
      console.log('Cancel: the run ended before the abort');
    } catch (error) {
      if (!(error instanceof CancelledError)) throw error;
      console.log(`Cancel latency (abort after ${cancelAfter} pairs to the worker's answer; no kill): ${(performance.now() - abortedAt).toFixed(0)} ms`);
    }
  } finally {
    cancelling.dispose();
  }
  console.log(`\nReproduce: npm run bench:long -- ${positionals[0] ?? ''} --pairs ${pairs} --ep ${values.ep}`.replace('--  --', '-- --'));
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
