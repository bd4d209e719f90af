// The 4-bit files hubs ship next to model.onnx (test/fixtures/models/four_bit, made by
// test/fixtures/generate_4bit.py and checked in onnxruntime by check-4bit.mjs): MatMulNBits with
// and without zero points at block sizes 16, 32 and 128, with float16 scales and activations
// (q4f16), and MatMulBnb4 (FP4, NF4). Each is measured, through the real worker and command line,
// equal to its dequantized float model within 1e-4; the difference to the float model it was
// quantized from is printed (the README states it).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { ModelFileError } from '../../extension/core/errors';
import { readOnnxModel } from '../../extension/core/onnx/onnxModel';
import { PlasticityReport } from '../../extension/core/report/reportSchema';
import { discoverVit } from '../../extension/core/vit/discoverVit';
import { WorkerSupervisor } from '../../extension/worker/workerSupervisor';
import { GOLDEN_COMPONENTS, goldenBlockStatistics, goldenFixtures, MODELS, PAIRS, relativeError, runCli, tempDir } from '../support/fixtures';

const FOUR_BIT = path.join(MODELS, 'four_bit');
const FILES = ['timm_op17_q4.onnx', 'timm_op17_q4_b16.onnx', 'timm_op17_q4_b128.onnx', 'timm_op17_q4f16.onnx', 'timm_op17_bnb4_fp4.onnx', 'timm_op17_bnb4_nf4.onnx'];
const floatGolden = goldenFixtures().find((golden) => golden.model === 'timm_op17_dyn.onnx')!;

const supervisor = new WorkerSupervisor();
after(() => supervisor.dispose());

function analyze(file: string): Promise<PlasticityReport> {
  return supervisor.analyze({ modelPath: path.join(FOUR_BIT, file), mode: 'isolated', executionProvider: 'cpu', reference: PAIRS.reference, target: PAIRS.target, seed: 0 });
}

/** Largest relative difference between the component means of two reports (or a report and the float golden). */
function worstDifference(report: PlasticityReport, expected: (block: number, component: number) => number): number {
  let worst = 0;
  report.blocks.forEach((block, b) => GOLDEN_COMPONENTS.forEach((component, c) => (worst = Math.max(worst, relativeError(block.components[component].mean, expected(b, c))))));
  return worst;
}

describe('4-bit models measure as their dequantized float model', () => {
  for (const file of FILES) {
    test(file, async () => {
      const report = await analyze(file);
      const dequantized = await analyze(file.replace(/\.onnx$/, '.dequantized.onnx'));
      assert.equal(report.blocks.length, 3);
      const worst = worstDifference(report, (b, c) => dequantized.blocks[b].components[GOLDEN_COMPONENTS[c]].mean);
      assert.ok(worst < 1e-4, `${file}: relative difference ${worst.toExponential(2)} to its dequantized float model`);
      const graph = report.model.architecture.graph!;
      assert.deepEqual(
        graph.weightStorage.filter((storage) => storage !== 'float32' && storage !== 'float16'),
        ['4-bit'],
      );
      assert.match(graph.summary, /4-bit .*weights, measured in float32 on the dequantized weights/);
      const expected = goldenBlockStatistics(floatGolden.isolated);
      const toFloat = worstDifference(report, (b, c) => expected[b][c].mean);
      process.stdout.write(`# ${file}: ${worst.toExponential(2)} to its dequantized float model, ${toFloat.toExponential(2)} to the float model's PyTorch golden\n`);
    });
  }
});

test('the command line measures a 4-bit model and says what it measured', async () => {
  const dir = tempDir('four-bit-cli');
  const json = path.join(dir, 'report.json');
  const result = await runCli(['analyze', path.join(FOUR_BIT, 'timm_op17_q4.onnx'), '--reference', PAIRS.reference, '--target', PAIRS.target, '--ep', 'cpu', '--json', json]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /4-bit weights, measured in float32 on the dequantized weights/);
  const report = JSON.parse(fs.readFileSync(json, 'utf8')) as PlasticityReport;
  assert.deepEqual(report.model.architecture.graph?.weightStorage, ['4-bit']);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a 4-bit MatMulNBits that its specification does not describe is refused in one line naming the file', () => {
  // The float model with its first MatMul relabelled MatMulNBits: no K, N, bits or packed weight.
  const model = readOnnxModel(path.join(MODELS, 'timm_op17_dyn.onnx'));
  const first = model.nodes.find((node) => node.opType === 'MatMul')!;
  const relabelled = { ...model, nodes: model.nodes.map((node) => (node === first ? { ...node, opType: 'MatMulNBits', domain: 'com.microsoft' } : node)) };
  assert.throws(
    () => discoverVit(relabelled),
    (error: Error) =>
      error instanceof ModelFileError &&
      /^timm_op17_dyn\.onnx: the 4-bit MatMulNBits .* has no 'K' attribute; open the float32/.test(error.message) &&
      !error.message.includes('\n'),
  );
});
