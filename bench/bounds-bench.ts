// Prints how long the paper's data-free bounds take on a ViT-B/16 and how close their spectral
// norms come to float64 SVD. Not a test: it asserts nothing.
//
//   /usr/bin/python3 bench/make_vit_b.py .bench/vitb        (once: model and inputs)
//   npm run bench:bounds -- .bench/vitb [--runs 5]
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { buildBoundsModel, DEFAULT_BOUNDS_STEPS } from '../extension/core/bounds/boundsModel';
import { combineBounds } from '../extension/core/bounds/plasticityBounds';
import { readOnnxModel } from '../extension/core/onnx/onnxModel';
import { discoverVit } from '../extension/core/vit/discoverVit';
import { createSession } from '../extension/worker/onnxRuntime';
import { WorkerSupervisor } from '../extension/worker/workerSupervisor';
import { benchmarkModel, median, peakResidentBytes, REPO_ROOT } from './benchSupport';

const ms = (values: number[]) => `${median(values).toFixed(0)} ms (median of ${values.length}: ${values.map((value) => value.toFixed(0)).join(', ')})`;

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { runs: { type: 'string', default: '5' } } });
  const located = benchmarkModel(positionals[0]);
  if (!located) return;
  const { folder, modelFile } = located;
  const runs = Number(values.runs);
  console.log(`Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, Node ${process.version}`);
  console.log(`Model: ${modelFile}; ${DEFAULT_BOUNDS_STEPS} Lanczos steps per spectral norm`);

  // 1. The weights' spectral norms, phase by phase: the engine's computation proper.
  const model = readOnnxModel(modelFile);
  const structure = discoverVit(model);
  const phases = { build: [] as number[], session: [] as number[], run: [] as number[], combine: [] as number[] };
  let bounds = undefined as ReturnType<typeof combineBounds> | undefined;
  for (let run = 0; run < runs; run++) {
    let mark = performance.now();
    const lap = (phase: keyof typeof phases) => {
      const now = performance.now();
      phases[phase].push(now - mark);
      mark = now;
    };
    const bytes = buildBoundsModel(model, structure);
    lap('build');
    const session = await createSession(bytes, { provider: 'cpu', externalDataFolder: model.dataFolder, graphOptimizationLevel: 'disabled', prepackWeights: false });
    lap('session');
    const outputs = await session.run({});
    lap('run');
    bounds = combineBounds(structure, model, Object.fromEntries(Object.entries(outputs).map(([name, tensor]) => [name, tensor.data as Float32Array])), null, DEFAULT_BOUNDS_STEPS);
    lap('combine');
    await session.release();
  }
  const computation = phases.build.map((_, i) => phases.build[i] + phases.session[i] + phases.run[i] + phases.combine[i]);
  console.log(`Weights' bounds (build + session + run + combine): ${ms(computation)}`);
  for (const [phase, times] of Object.entries(phases)) console.log(`  ${phase}: ${ms(times)}`);

  // 2. What the model overview asks the worker for, as the extension does: describe the file,
  // then the bounds (the worker reuses the file it read), embedding the first 4 pairs.
  const reference = path.join(folder, 'reference');
  const target = path.join(folder, 'target');
  const request = { modelPath: modelFile, seed: 0, ...(fs.existsSync(reference) ? { reference, target } : {}) };
  const overview: number[] = [];
  const supervisor = new WorkerSupervisor();
  let peak: number | undefined;
  try {
    for (let run = 0; run < runs; run++) {
      await supervisor.describe(modelFile);
      const started = performance.now();
      const result = await supervisor.bounds(request);
      overview.push(performance.now() - started);
      peak = peakResidentBytes(supervisor.workerPid) ?? peak;
      if (run === 0)
        console.log(
          `Token statistics: r = ${result.tokens?.radius.toFixed(2)}, s_min = ${result.tokens?.minTokenStd.toFixed(3)} from ${result.tokens?.images} images${result.tokens?.synthetic ? ' (synthetic)' : ''}`,
        );
    }
  } finally {
    supervisor.dispose();
  }
  console.log(`Overview's bounds request after its description (embed 4 pairs + all bounds, in the worker): ${ms(overview)}`);
  const fileBytes = fs.statSync(modelFile).size;
  if (peak) console.log(`Worker peak resident memory (VmHWM) over those requests: ${(peak / 2 ** 20).toFixed(0)} MiB = ${(peak / fileBytes).toFixed(2)} x the file`);

  // 3. Accuracy of the FC spectral norms against float64 SVD (when numpy and onnx are there).
  const d = structure.hiddenSize;
  const matrices = [
    // A plain MLP's one FC1 layer (the bench's ViT-B has no gated MLP).
    ...structure.blocks.map((block) => ({ weight: block.fc1[0].weight.name, layout: block.fc1[0].weightLayout, rows: null })),
    ...structure.blocks.map((block) => ({ weight: block.fc2.weight.name, layout: block.fc2.weightLayout, rows: d })),
  ];
  const python = spawnSync('/usr/bin/python3', [path.join(REPO_ROOT, 'bench', 'reference_bounds.py')], {
    input: JSON.stringify({ model: modelFile, matrices }),
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  if (python.status !== 0) {
    console.log(`Float64 reference skipped (needs python3 with numpy and onnx): ${python.stderr.trim().split('\n').pop()}`);
    return;
  }
  const { sigma } = JSON.parse(python.stdout) as { sigma: number[] };
  const engine = [...bounds!.blocks.map((block) => block.FC1.bound), ...bounds!.blocks.map((block) => block.FC2.bound)];
  const errors = engine.map((value, i) => (sigma[i] - value) / sigma[i]);
  console.log(
    `FC spectral norms vs float64 SVD: worst relative error ${Math.max(...errors.map(Math.abs)).toExponential(2)} ` +
      `(${errors.filter((error) => error >= 0).length} of ${errors.length} at or below σ_max); last-step change ${bounds!.lastStepChange.toExponential(2)}`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
