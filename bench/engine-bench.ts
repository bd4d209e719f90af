// Prints the engine's speed and memory on a ViT-B/16 next to the paper's procedure as a plain
// PyTorch program, both run here on the same model and inputs. Not a test: it asserts nothing.
//
//   /usr/bin/python3 bench/make_vit_b.py .bench/vitb        (once: model and 64+64 inputs)
//   npm run bench -- .bench/vitb [--pairs 64] [--ep cpu[,webgpu,cuda]] [--skip-pytorch]
//
// With several providers, each measures the same model and pairs in its own worker; a provider
// that cannot run here gets a line saying why (the engine's own one-line error).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { readOnnxModel } from '../extension/core/onnx/onnxModel';
import { ExecutionProviderRequest, PlasticityReport } from '../extension/core/report/reportSchema';
import { discoverVit } from '../extension/core/vit/discoverVit';
import { COMPONENTS } from '../extension/core/vit/vitStructure';
import { WorkerSupervisor } from '../extension/worker/workerSupervisor';
import { benchmarkModel, median, peakResidentBytes, REPO_ROOT } from './benchSupport';

/** Threads of both sides: the engine's onnxruntime (intra-op threads) and PyTorch (set_num_threads). */
const BASELINE_THREADS = 2;

const megabytes = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { pairs: { type: 'string', default: '64' }, ep: { type: 'string', default: 'cpu' }, 'skip-pytorch': { type: 'boolean', default: false } },
  });
  const located = benchmarkModel(positionals[0]);
  if (!located) return;
  const { folder, modelFile } = located;
  const pairs = Number(values.pairs);
  const fileSize = fs.statSync(modelFile).size;
  console.log(`Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${megabytes(os.totalmem())} memory, Node ${process.version}`);
  console.log(`Model: ${modelFile} (${megabytes(fileSize)})`);

  // 1. Reading and discovering the ViT, in this process (as the worker does).
  const loadTimes: number[] = [];
  for (let run = 0; run < 5; run++) {
    const started = performance.now();
    const structure = discoverVit(readOnnxModel(modelFile));
    loadTimes.push(performance.now() - started);
    if (structure.blocks.length !== 12) throw new Error(`expected 12 blocks, found ${structure.blocks.length}`);
  }

  // 2. The engine end to end in its worker process (what the command line and extension run), per provider.
  const providers = values.ep
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name.length > 0) as ExecutionProviderRequest[];
  const runs: { provider: string; report?: PlasticityReport; wallMs?: number; peak?: number; failure?: string }[] = [];
  for (const provider of providers) {
    const supervisor = new WorkerSupervisor();
    const started = performance.now();
    let peak: number | undefined;
    try {
      const report = await supervisor.analyze(
        { modelPath: modelFile, mode: 'isolated', executionProvider: provider, reference: path.join(folder, 'reference'), target: path.join(folder, 'target'), pairs, seed: 0 },
        () => (peak = peakResidentBytes(supervisor.workerPid) ?? peak),
      );
      const wallMs = performance.now() - started;
      runs.push({ provider, report, wallMs, peak: peakResidentBytes(supervisor.workerPid) ?? peak });
    } catch (error) {
      runs.push({ provider, failure: error instanceof Error ? error.message : String(error) });
    } finally {
      supervisor.dispose();
    }
  }
  const measuredRun = runs.find((run) => run.report);
  const report = measuredRun?.report;
  const n = report?.settings.pairs ?? pairs;

  // 3. The paper's procedure in plain PyTorch on the same model and inputs.
  let pytorch: { secondsPerPair: number; cpuSecondsPerPair?: number; mean: number[][]; threads: number; blasThreads: number | null; torch: string } | undefined;
  if (!values['skip-pytorch']) {
    // The same two cores for both sides: torch.set_num_threads(2) (OpenBLAS follows it), and
    // OpenBLAS choosing its own kernel: variables that pin its core type or cache size (set on
    // some machines, slowing it) are removed for this command only.
    const env = { ...process.env };
    delete env.OPENBLAS_CORETYPE;
    delete env.OPENBLAS_L2_SIZE;
    const result = spawnSync(
      '/usr/bin/python3',
      [path.join(REPO_ROOT, 'bench', 'reference_plasticity.py'), folder, '--pairs', String(pairs), '--threads', String(BASELINE_THREADS)],
      { encoding: 'utf8', env },
    );
    if (result.status === 0) pytorch = JSON.parse(fs.readFileSync(path.join(folder, 'reference_result.json'), 'utf8')) as typeof pytorch;
    else console.log(`PyTorch baseline did not run (${(result.stderr || result.error?.message || '').trim().split('\n').pop()}); needs Debian's python3-torch.`);
  }

  console.log('');
  console.log(`Load + discover ViT-B (5 runs): median ${median(loadTimes).toFixed(0)} ms, min ${Math.min(...loadTimes).toFixed(0)} ms   (goal < 1500 ms)`);
  for (const run of runs) {
    if (!run.report) {
      console.log(`Engine on ${run.provider}: not measured: ${run.failure}`);
      continue;
    }
    const { timing, settings } = run.report;
    const perPair = timing.measureMs / 1000 / settings.pairs;
    console.log(
      `Engine on ${settings.executionProvider.used}${settings.executionProvider.used !== run.provider ? ` (asked for ${run.provider})` : ''}, ${settings.pairs} pairs, isolated mode:`,
    );
    console.log(`  measuring (images, embedding, probe; not the bounds): ${(timing.measureMs / 1000).toFixed(2)} s = ${perPair.toFixed(3)} s per pair   (goal <= 0.25 s)`);
    if (timing.measureCpuMs !== undefined) console.log(`  processor time while measuring, all threads: ${(timing.measureCpuMs / 1000 / settings.pairs).toFixed(3)} s per pair`);
    if (timing.inputsWaitMs !== undefined) console.log(`  waiting for decoded images (decoding overlaps the probe): ${(timing.inputsWaitMs / 1000).toFixed(2)} s`);
    if (timing.boundsMs !== undefined) console.log(`  data-free bounds, before the probe loads: ${(timing.boundsMs / 1000).toFixed(2)} s`);
    console.log(
      `  whole analysis (read, hash, providers, compile, measure): ${(run.wallMs! / 1000).toFixed(2)} s = ${(run.wallMs! / 1000 / settings.pairs).toFixed(3)} s per pair`,
    );
    console.log(
      `  worker peak resident memory: ${run.peak ? megabytes(run.peak) : 'unknown'} = ${run.peak ? (run.peak / fileSize).toFixed(2) : '?'} x the model file   (goal < 2x)`,
    );
  }
  if (pytorch && report) {
    console.log(
      `PyTorch ${pytorch.torch} reference (threads ${pytorch.threads}, BLAS threads ${pytorch.blasThreads}; OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE unset): ${pytorch.secondsPerPair.toFixed(3)} s per pair`,
    );
    if (pytorch.cpuSecondsPerPair !== undefined) console.log(`  processor time, all threads: ${pytorch.cpuSecondsPerPair.toFixed(3)} s per pair`);
    console.log(`  speed-up of the engine's measuring phase: ${(pytorch.secondsPerPair / (report.timing.measureMs / 1000 / n)).toFixed(2)}x`);
    if (pytorch.cpuSecondsPerPair !== undefined && report.timing.measureCpuMs !== undefined) {
      // Less sensitive to other processes on the machine than elapsed time.
      console.log(`  in processor time: ${(pytorch.cpuSecondsPerPair / (report.timing.measureCpuMs / 1000 / n)).toFixed(2)}x`);
    }
    let worst = 0;
    report.blocks.forEach((block, b) =>
      COMPONENTS.forEach((component, c) => {
        worst = Math.max(worst, Math.abs(block.components[component].mean - pytorch!.mean[b][c]) / Math.abs(pytorch!.mean[b][c]));
      }),
    );
    console.log(`  largest relative difference of the 60 means, engine vs PyTorch: ${worst.toExponential(2)}`);
  }
  console.log(`\nReproduce: /usr/bin/python3 bench/make_vit_b.py .bench/vitb && npm run bench -- .bench/vitb --pairs ${pairs} --ep ${values.ep}`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
