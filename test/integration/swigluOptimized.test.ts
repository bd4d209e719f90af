// SwiGLU models as onnxruntime saves them after its extended optimizations (the session optimizer's
// optimizedModelFilePath): SiLU fused into com.microsoft QuickGelu (alpha 1), LayerNorms and
// linears fused as onnxruntime does. Written here with the real onnxruntime, then measured
// through the worker against the float model's PyTorch goldens in both modes.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { readOnnxModel } from '../../extension/core/onnx/onnxModel';
import { MeasureMode } from '../../extension/core/report/reportSchema';
import { ort } from '../../extension/worker/onnxRuntime';
import { WorkerSupervisor } from '../../extension/worker/workerSupervisor';
import { FAMILY_MODELS, GOLDEN_COMPONENTS, goldenBlockStatistics, PAIRS, relativeError, swigluFamilyGoldens, tempDir } from '../support/fixtures';

const supervisor = new WorkerSupervisor();
after(() => supervisor.dispose());

for (const golden of swigluFamilyGoldens().filter((candidate) => candidate.opset === 17)) {
  test(`${golden.model} saved by onnxruntime's extended optimizations measures as the float model`, async () => {
    const optimized = path.join(tempDir('swiglu-ort'), golden.model.replace('.onnx', '_ort_extended.onnx'));
    const session = await ort.InferenceSession.create(path.join(FAMILY_MODELS, golden.model), {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'extended',
      optimizedModelFilePath: optimized,
    });
    await session.release();
    assert.ok(
      readOnnxModel(optimized).nodes.some((node) => node.opType === 'QuickGelu'),
      'onnxruntime fused the SiLU gate into QuickGelu',
    );
    for (const mode of ['isolated', 'in-context'] as MeasureMode[]) {
      const report = await supervisor.analyze({ modelPath: optimized, mode, executionProvider: 'cpu', reference: PAIRS.reference, target: PAIRS.target, seed: 0 });
      const expected = goldenBlockStatistics(mode === 'isolated' ? golden.isolated : golden.inContext);
      let worst = 0;
      report.blocks.forEach((block, b) =>
        GOLDEN_COMPONENTS.forEach((component, c) => (worst = Math.max(worst, relativeError(block.components[component].mean, expected[b][c].mean)))),
      );
      assert.ok(worst < 1e-4, `${mode}: worst relative difference ${worst.toExponential(2)}`);
      assert.deepEqual(
        report.blocks.map((block) => block.modules.FC1),
        golden.modules.map((modules) => modules.FC1),
      );
    }
  });
}
