// The whole engine (worker process, onnxruntime, probes, report) held against PyTorch's own
// numbers for every exported ViT style, in both modes, plus the report's promises around them:
// statistics, ranking, provider choice, external data, synthetic inputs, untouched user files.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { ModelFileError } from '../../extension/core/errors';
import { MeasureMode, PlasticityReport } from '../../extension/core/report/reportSchema';
import { WorkerSupervisor } from '../../extension/worker/workerSupervisor';
import { AnalysisRequest } from '../../extension/worker/workerProtocol';
import {
  expectedNaming,
  fileFingerprint,
  Golden,
  GOLDEN_COMPONENTS,
  goldenBlockStatistics,
  goldenFixtures,
  modelPath,
  PAIRS,
  relativeError,
  sha256OfFile,
  tempDir,
} from '../support/fixtures';

// One worker for the file: starting onnxruntime once keeps the ~25 runs quick.
const supervisor = new WorkerSupervisor();
after(() => supervisor.dispose());

const MODES: MeasureMode[] = ['isolated', 'in-context'];
const PAIR_COUNT = 8;

function fixtureRequest(model: string, mode: MeasureMode, extra: Partial<AnalysisRequest> = {}): AnalysisRequest {
  return { modelPath: modelPath(model), mode, executionProvider: 'cpu', reference: PAIRS.reference, target: PAIRS.target, seed: 0, ...extra };
}

function goldenRatios(golden: Golden, mode: MeasureMode): number[][][] {
  return mode === 'isolated' ? golden.isolated : golden.inContext;
}

function assertMatchesGolden(report: PlasticityReport, golden: Golden, mode: MeasureMode): void {
  const expected = goldenBlockStatistics(goldenRatios(golden, mode));
  assert.equal(report.blocks.length, expected.length, 'block count');
  report.blocks.forEach((block, b) => {
    assert.equal(block.index, b);
    GOLDEN_COMPONENTS.forEach((component, c) => {
      const where = `${golden.model} ${mode} block ${b} ${component}`;
      const stats = block.components[component];
      const wanted = expected[b][c];
      assert.ok(relativeError(stats.mean, wanted.mean) < 1e-4, `${where}: mean ${stats.mean} vs golden ${wanted.mean}`);
      // Std is a small difference of close numbers: bounded against the mean's scale instead.
      assert.ok(Math.abs(stats.std - wanted.std) <= 1e-4 * wanted.mean, `${where}: std ${stats.std} vs golden ${wanted.std}`);
    });
  });
}

/** Statistics, ranking and totals must be consistent with each other, whatever the numbers. */
function assertReportConsistent(report: PlasticityReport, where: string): void {
  assert.deepEqual(report.components, [...GOLDEN_COMPONENTS], `${where}: components`);
  for (const block of report.blocks) {
    for (const component of GOLDEN_COMPONENTS) {
      const stats = block.components[component];
      const half = (1.96 * stats.std) / Math.sqrt(stats.n);
      assert.equal(stats.n, report.settings.pairs, `${where}: n of block ${block.index} ${component}`);
      assert.ok(Math.abs(stats.ci95[0] - (stats.mean - half)) <= 1e-12 * Math.max(1, stats.mean), `${where}: ci95 low of block ${block.index} ${component}`);
      assert.ok(Math.abs(stats.ci95[1] - (stats.mean + half)) <= 1e-12 * Math.max(1, stats.mean), `${where}: ci95 high of block ${block.index} ${component}`);
    }
  }
  const ranked = [...GOLDEN_COMPONENTS].sort((a, b) => report.summary[a].rank - report.summary[b].rank);
  assert.deepEqual(
    ranked.map((component) => report.summary[component].rank),
    [1, 2, 3, 4, 5],
    `${where}: ranks are a permutation of 1..5`,
  );
  for (let i = 1; i < ranked.length; i++) {
    assert.ok(
      report.summary[ranked[i - 1]].mean >= report.summary[ranked[i]].mean,
      `${where}: rank ${i} (${ranked[i - 1]}) is not at least as plastic as rank ${i + 1} (${ranked[i]})`,
    );
  }
  for (const component of GOLDEN_COMPONENTS) {
    const blockMeans = report.blocks.map((block) => block.components[component].mean);
    const meanOverBlocks = blockMeans.reduce((sum, value) => sum + value, 0) / blockMeans.length;
    assert.ok(relativeError(report.summary[component].mean, meanOverBlocks) < 1e-12, `${where}: summary mean of ${component}`);
    const parameterTotal = report.blocks.reduce((sum, block) => sum + block.components[component].parameterCount, 0);
    assert.equal(report.summary[component].parameterCount, parameterTotal, `${where}: summary parameterCount of ${component}`);
  }
}

function assertModelDescribed(report: PlasticityReport, golden: Golden): void {
  const architecture = report.model.architecture;
  const wanted = golden.architecture;
  assert.equal(report.schemaVersion, 1);
  assert.equal(report.model.sha256, sha256OfFile(modelPath(golden.model)), 'sha256 of the model file');
  assert.equal(report.model.parameterCount, golden.totalParameters, 'parameterCount');
  assert.equal(architecture.blocks, wanted.blocks);
  assert.equal(architecture.hiddenSize, wanted.hiddenSize);
  assert.equal(architecture.heads, wanted.heads);
  assert.equal(architecture.mlpSize, wanted.mlpSize);
  assert.equal(architecture.tokens, wanted.tokens);
  assert.deepEqual(architecture.imageSize, wanted.imageSize);
  assert.deepEqual(architecture.patchSize, wanted.patchSize);
  assert.equal(architecture.norm, wanted.norm);
  assert.equal(architecture.activation, wanted.activation);
  assert.equal(architecture.naming, expectedNaming(golden));
  report.blocks.forEach((block, b) => {
    assert.deepEqual(block.modules, golden.modules[b], `module names of block ${b}`);
    for (const component of GOLDEN_COMPONENTS) {
      const parameters = golden.parameters[b][component];
      // Order is not part of the contract (PyTorch lists HF CLIP's k, v, q; the graph q, k, v).
      assert.deepEqual([...block.components[component].parameters].sort(), [...parameters.names].sort(), `parameters of block ${b} ${component}`);
      assert.equal(block.components[component].parameterCount, parameters.count, `parameterCount of block ${b} ${component}`);
    }
  });
}

describe('every exported ViT style matches its PyTorch goldens', () => {
  for (const golden of goldenFixtures()) {
    for (const mode of MODES) {
      test(`${golden.model} ${mode}`, async () => {
        const report = await supervisor.analyze(fixtureRequest(golden.model, mode));
        assertMatchesGolden(report, golden, mode);
        assertReportConsistent(report, `${golden.model} ${mode}`);
        assertModelDescribed(report, golden);
        assert.equal(report.settings.mode, mode);
        assert.equal(report.settings.pairs, PAIR_COUNT);
        assert.equal(report.settings.inputs.kind, 'folders');
        assert.equal(report.settings.inputs.synthetic, false);
        assert.equal(report.settings.executionProvider.requested, 'cpu');
        assert.equal(report.settings.executionProvider.used, 'cpu');
        for (const block of report.blocks) for (const component of GOLDEN_COMPONENTS) assert.equal(block.components[component].n, PAIR_COUNT);
      });
    }
  }
});

test("executionProvider 'auto' reports every provider it tried and measures on one that ran", async () => {
  const golden = goldenFixtures().find((candidate) => candidate.model === 'timm_op17_dyn.onnx')!;
  const cpu = await supervisor.analyze(fixtureRequest(golden.model, 'isolated'));
  const auto = await supervisor.analyze(fixtureRequest(golden.model, 'isolated', { executionProvider: 'auto' }));
  const { requested, used, tried } = auto.settings.executionProvider;
  assert.equal(requested, 'auto');
  assert.ok(tried.length > 0, 'tried lists the attempts');
  for (const attempt of tried) {
    assert.equal(typeof attempt.ok, 'boolean');
    assert.ok(attempt.reason.trim().length > 0, `${attempt.name} has a reason`);
  }
  assert.ok(
    tried.some((attempt) => attempt.name === used && attempt.ok),
    `used provider ${used} is listed as one that ran: ${JSON.stringify(tried)}`,
  );
  // Failed attempts come before the one kept; falling back to cpu means a GPU provider was tried.
  assert.ok(tried.findIndex((attempt) => attempt.ok) === tried.length - 1, `only the last attempt ran: ${JSON.stringify(tried)}`);
  if (used === 'cpu') {
    assert.ok(
      tried.some((attempt) => attempt.name !== 'cpu' && !attempt.ok),
      `a GPU provider was tried before cpu: ${JSON.stringify(tried)}`,
    );
    assertMatchesGolden(auto, golden, 'isolated');
  } else {
    // A GPU machine: its numbers must agree with the cpu run.
    auto.blocks.forEach((block, b) => {
      for (const component of GOLDEN_COMPONENTS) {
        const gpuMean = block.components[component].mean;
        const cpuMean = cpu.blocks[b].components[component].mean;
        assert.ok(relativeError(gpuMean, cpuMean) < 1e-3, `${used} block ${b} ${component}: ${gpuMean} vs cpu ${cpuMean}`);
      }
    });
  }
});

describe('external data', () => {
  test('a model with its weights in a .onnx.data file gives the same numbers as the same model inline', async () => {
    for (const mode of MODES) {
      const inline = await supervisor.analyze(fixtureRequest('timm_op17_dyn.onnx', mode));
      const external = await supervisor.analyze(fixtureRequest('timm_op17_external.onnx', mode));
      external.blocks.forEach((block, b) => {
        for (const component of GOLDEN_COMPONENTS) {
          const a = block.components[component];
          const e = inline.blocks[b].components[component];
          assert.ok(relativeError(a.mean, e.mean) < 1e-6, `${mode} block ${b} ${component}: external ${a.mean} vs inline ${e.mean}`);
          assert.ok(Math.abs(a.std - e.std) <= 1e-6 * e.mean, `${mode} block ${b} ${component}: std external ${a.std} vs inline ${e.std}`);
        }
      });
    }
  });

  test('a copy without its .data file fails with ModelFileError naming the missing file', async () => {
    const folder = tempDir('no-external-data');
    try {
      const copy = path.join(folder, 'timm_op17_external.onnx');
      fs.copyFileSync(modelPath('timm_op17_external.onnx'), copy);
      await assert.rejects(supervisor.analyze({ ...fixtureRequest('timm_op17_external.onnx', 'isolated'), modelPath: copy }), (error: Error) => {
        assert.ok(error instanceof ModelFileError, `expected ModelFileError, got ${error.name}: ${error.message}`);
        assert.match(error.message, /timm_op17_external\.onnx\.data/);
        assert.doesNotMatch(error.message, /\n/, 'one-line message');
        return true;
      });
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });
});

describe('synthetic inputs', () => {
  const synthetic = (seed: number): AnalysisRequest => ({ modelPath: modelPath('timm_op14.onnx'), mode: 'isolated', executionProvider: 'cpu', pairs: 6, seed });

  test('are flagged in settings and warnings, and are reproducible from the seed', async () => {
    const first = await supervisor.analyze(synthetic(0));
    const again = await supervisor.analyze(synthetic(0));
    const otherSeed = await supervisor.analyze(synthetic(1));
    assert.equal(first.settings.inputs.synthetic, true);
    assert.equal(first.settings.inputs.kind, 'synthetic');
    assert.equal(first.settings.inputs.reference, null);
    assert.equal(first.settings.inputs.target, null);
    assert.equal(first.settings.pairs, 6);
    assert.ok(
      first.warnings.some((warning) => /synthetic/i.test(warning)),
      `warnings mention synthetic inputs: ${JSON.stringify(first.warnings)}`,
    );
    assertReportConsistent(first, 'synthetic');
    const means = (report: PlasticityReport) => report.blocks.flatMap((block) => GOLDEN_COMPONENTS.map((component) => block.components[component].mean));
    assert.deepEqual(means(again), means(first), 'same seed, same numbers');
    assert.notDeepEqual(means(otherSeed), means(first), 'another seed, other images');
  });
});

test('the model, its external data and the input files are never modified', async () => {
  const model = modelPath('timm_op17_external.onnx');
  const files = [model, `${model}.data`, ...[PAIRS.reference, PAIRS.target].flatMap((folder) => fs.readdirSync(folder).map((name) => path.join(folder, name)))];
  const before = files.map(fileFingerprint);
  for (const mode of MODES) await supervisor.analyze(fixtureRequest('timm_op17_external.onnx', mode));
  assert.deepEqual(files.map(fileFingerprint), before);
});
