// The ViTs people download and deploy (test/fixtures/models/variants: float16 conversions,
// 8-bit quantizations, onnxruntime-optimised and fused graphs, dynamo exports at opsets 18-23),
// each held against the PyTorch goldens of the float model it was made from, through the real
// worker and the real command line. Tolerances (relative, on plasticity means) are the README's:
// float32 rewrites 1e-3, float16 1e-2, 8-bit 5e-2.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { ModelFileError } from '../../extension/core/errors';
import { readOnnxModel } from '../../extension/core/onnx/onnxModel';
import { MeasureMode, PlasticityReport } from '../../extension/core/report/reportSchema';
import { discoverVit } from '../../extension/core/vit/discoverVit';
import { WorkerSupervisor } from '../../extension/worker/workerSupervisor';
import { fileFingerprint, Golden, GOLDEN_COMPONENTS, goldenBlockStatistics, goldenFixtures, MODELS, PAIRS, relativeError, runCli, tempDir } from '../support/fixtures';

interface Variant {
  file: string;
  family: 'float16' | 'quantized' | 'ort-optimized' | 'ort-fused' | 'dynamo';
  source: string;
  tolerance: number;
  description: string;
}

const VARIANTS_DIR = path.join(MODELS, 'variants');
const variants = (JSON.parse(fs.readFileSync(path.join(VARIANTS_DIR, 'manifest.json'), 'utf8')) as { variants: Variant[] }).variants;
const goldens = new Map(goldenFixtures().map((golden) => [golden.model, golden]));

const supervisor = new WorkerSupervisor();
after(() => supervisor.dispose());

function assertCloseToGolden(report: PlasticityReport, golden: Golden, mode: MeasureMode, tolerance: number, where: string): number {
  const expected = goldenBlockStatistics(mode === 'isolated' ? golden.isolated : golden.inContext);
  let worst = 0;
  assert.equal(report.blocks.length, expected.length, `${where}: block count`);
  report.blocks.forEach((block, b) =>
    GOLDEN_COMPONENTS.forEach((component, c) => {
      const error = relativeError(block.components[component].mean, expected[b][c].mean);
      worst = Math.max(worst, error);
      assert.ok(
        error < tolerance,
        `${where} block ${b} ${component}: ${block.components[component].mean} vs float model ${expected[b][c].mean} (relative ${error.toExponential(2)}, tolerance ${tolerance})`,
      );
    }),
  );
  return worst;
}

describe('models in the wild measure as their float model does', () => {
  for (const variant of variants) {
    const golden = goldens.get(variant.source)!;
    test(`${variant.file} (${variant.family}) isolated`, async () => {
      const modelPath = path.join(VARIANTS_DIR, variant.file);
      const before = fileFingerprint(modelPath);
      const report = await supervisor.analyze({ modelPath, mode: 'isolated', executionProvider: 'cpu', reference: PAIRS.reference, target: PAIRS.target, seed: 0 });
      const worst = assertCloseToGolden(report, golden, 'isolated', variant.tolerance, variant.file);
      // Names come out as for the float model: the framework's modules and parameters.
      report.blocks.forEach((block, b) => {
        assert.deepEqual(block.modules, golden.modules[b], `${variant.file}: modules of block ${b}`);
        for (const component of GOLDEN_COMPONENTS) {
          assert.equal(block.components[component].parameterCount, golden.parameters[b][component].count, `${variant.file}: parameter count of block ${b} ${component}`);
        }
      });
      assert.equal(report.model.architecture.naming, golden.architecture.naming);
      const graph = report.model.architecture.graph!;
      assert.ok(graph.summary.length > 0);
      if (variant.family === 'float16') assert.deepEqual(graph.weightStorage, ['float16']);
      if (variant.family === 'quantized') {
        assert.ok(
          graph.weightStorage.every((type) => type === 'int8' || type === 'uint8'),
          graph.weightStorage.join(),
        );
        assert.ok(graph.activationQuantization.length > 0);
        assert.ok(report.warnings.some((warning) => /activation quantization not applied/.test(warning)));
      }
      if (variant.family === 'ort-fused') assert.ok(graph.fusedOperators.length > 0);
      assert.deepEqual(fileFingerprint(modelPath), before, 'the model file is untouched');
      process.stdout.write(`# ${variant.file}: worst relative difference to the float model ${worst.toExponential(2)}\n`);
    });
  }

  // In-context rebuilds every block's forward pass from the discovered weights and checks it
  // against the model's own last block output, so it exercises the canonical graph end to end.
  for (const file of ['timm_op17_fp16.onnx', 'hf_vit_op14_quantized.onnx', 'timm_op17_fused_attention.onnx', 'hf_vit_op14_fused_mha.onnx', 'timm_op23_dynamo.onnx']) {
    const variant = variants.find((candidate) => candidate.file === file)!;
    test(`${file} in-context`, async () => {
      const report = await supervisor.analyze({
        modelPath: path.join(VARIANTS_DIR, file),
        mode: 'in-context',
        executionProvider: 'cpu',
        reference: PAIRS.reference,
        target: PAIRS.target,
        seed: 0,
      });
      assertCloseToGolden(report, goldens.get(variant.source)!, 'in-context', variant.tolerance, `${file} in-context`);
    });
  }
});

test('a deduplicated parameter belongs to every module that uses it, and names come from the structure', () => {
  const structure = discoverVit(readOnnxModel(path.join(MODELS, 'torchvision_op14_dedup.onnx')));
  const block = structure.blocks[0];
  assert.equal(block.modules.MHA, 'encoder.layers.encoder_layer_0.self_attention');
  assert.equal(block.module, 'encoder.layers.encoder_layer_0');
  assert.ok(block.parameters.MHA.includes('encoder.layers.encoder_layer_0.self_attention.out_proj.bias'));
  assert.ok(!block.parameters.MHA.includes('conv_proj.bias'));
  assert.ok(structure.blocks[1].parameters.LN1.includes('encoder.layers.encoder_layer_1.ln_1.weight'));
});

test('the command line measures a float16 model and says what it measured', async () => {
  const dir = tempDir('wild-cli');
  const json = path.join(dir, 'report.json');
  const result = await runCli(['analyze', path.join(VARIANTS_DIR, 'timm_op17_fp16.onnx'), '--reference', PAIRS.reference, '--target', PAIRS.target, '--ep', 'cpu', '--json', json]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /float16 weights, measured in float32 on the upcast weights/);
  const report = JSON.parse(fs.readFileSync(json, 'utf8')) as PlasticityReport;
  assert.deepEqual(report.model.architecture.graph?.weightStorage, ['float16']);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('recommend names the torchvision head and final norm of the deduplicated export', async () => {
  const dir = tempDir('wild-recommend');
  const json = path.join(dir, 'report.json');
  const model = path.join(MODELS, 'torchvision_op14_dedup.onnx');
  const analyzed = await runCli(['analyze', model, '--reference', PAIRS.reference, '--target', PAIRS.target, '--ep', 'cpu', '--json', json]);
  assert.equal(analyzed.code, 0, analyzed.stderr);
  const recommended = await runCli(['recommend', json, '--types', '2', '--format', 'json', '--naming', 'torchvision', '--model', model]);
  assert.equal(recommended.code, 0, recommended.stderr);
  assert.match(recommended.stdout, /"heads/);
  assert.match(recommended.stdout, /"encoder\.ln/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('an operator the engine cannot read is named in a one-line error, never "not a Vision Transformer"', () => {
  // The float model with its first MatMul turned into onnxruntime's level-"all" MatMulIntegerToFloat.
  const model = readOnnxModel(path.join(MODELS, 'timm_op17_dyn.onnx'));
  const first = model.nodes.find((node) => node.opType === 'MatMul')!;
  const fused = { ...model, nodes: model.nodes.map((node) => (node === first ? { ...node, opType: 'MatMulIntegerToFloat', domain: 'com.microsoft' } : node)) };
  assert.throws(
    () => discoverVit(fused),
    (error: Error) =>
      error instanceof ModelFileError &&
      /com\.microsoft\.MatMulIntegerToFloat/.test(error.message) &&
      /quantize_dynamic/.test(error.message) &&
      !error.message.includes('\n') &&
      !/not a Vision Transformer/.test(error.message),
  );
});
