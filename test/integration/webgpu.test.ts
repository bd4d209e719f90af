// The WebGPU provider on a real Vulkan driver: SwiftShader (software) where no GPU is present,
// through the real worker. Every fixture and a 12-block ViT (as deep as ViT-S, whose probe once
// failed on WebGPU's storage-buffer limit) agree with cpu; `auto` does not keep a software
// adapter; cancel works mid-run; the bounds run on cpu and say so. Skipped, with the reason
// printed, where no Vulkan driver can be found.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { CancelledError } from '../../extension/core/errors';
import { PlasticityReport } from '../../extension/core/report/reportSchema';
import { WorkerSupervisor } from '../../extension/worker/workerSupervisor';
import { AnalysisRequest } from '../../extension/worker/workerProtocol';
import { GOLDEN_COMPONENTS, goldenFixtures, modelPath, PAIRS, relativeError, tempDir } from '../support/fixtures';
import { softwareVulkan } from '../support/softwareVulkan';
import { writeStackedBlocksModel } from '../support/derivedModels';

const vulkan = softwareVulkan();
const skip = vulkan.found ? false : vulkan.reason;
if (!vulkan.found) console.log(`WebGPU tests skipped: ${vulkan.reason}`);

const gpu = new WorkerSupervisor({ env: vulkan.found ? vulkan.env : {} });
const cpu = new WorkerSupervisor();
const scratch = tempDir('webgpu');
after(() => {
  gpu.dispose();
  cpu.dispose();
  fs.rmSync(scratch, { recursive: true, force: true });
});

/** Four pairs in batches of two: the first batch is checked against cpu, the others run on the GPU alone. */
function request(model: string, extra: Partial<AnalysisRequest> = {}): AnalysisRequest {
  return { modelPath: model, mode: 'isolated', executionProvider: 'webgpu', reference: PAIRS.reference, target: PAIRS.target, pairs: 4, batchPairs: 2, seed: 0, ...extra };
}

/** The same request on webgpu and on cpu, in two worker processes at once (SwiftShader compiles shaders slowly). */
async function onBoth(model: string, extra: Partial<AnalysisRequest> = {}): Promise<{ onGpu: PlasticityReport; onCpu: PlasticityReport }> {
  const [onGpu, onCpu] = await Promise.all([gpu.analyze(request(model, extra)), cpu.analyze(request(model, { ...extra, executionProvider: 'cpu' }))]);
  return { onGpu, onCpu };
}

function assertAgreesWithCpu(gpuReport: PlasticityReport, cpuReport: PlasticityReport, label: string): number {
  let worst = 0;
  gpuReport.blocks.forEach((block, b) => {
    for (const component of GOLDEN_COMPONENTS) {
      const error = relativeError(block.components[component].mean, cpuReport.blocks[b].components[component].mean);
      worst = Math.max(worst, error);
      assert.ok(error < 1e-4, `${label} block ${b} ${component}: webgpu ${block.components[component].mean} vs cpu ${cpuReport.blocks[b].components[component].mean}`);
    }
  });
  return worst;
}

describe('WebGPU on SwiftShader', { skip }, () => {
  test("every fixture gives cpu's numbers within 1e-4 on webgpu", async () => {
    let worst = 0;
    for (const golden of goldenFixtures()) {
      const file = modelPath(golden.model);
      const { onGpu, onCpu } = await onBoth(file);
      assert.equal(onGpu.settings.executionProvider.used, 'webgpu', golden.model);
      assert.equal(onGpu.settings.pairs, 4);
      worst = Math.max(worst, assertAgreesWithCpu(onGpu, onCpu, golden.model));
    }
    console.log(`webgpu against cpu, every fixture: worst relative difference of a mean ${worst.toExponential(2)}`);
  });

  test('a 12-block ViT (a 3-block export stacked 4 times) runs on webgpu and agrees with cpu', async () => {
    const file = path.join(scratch, 'timm_12_blocks.onnx');
    writeStackedBlocksModel(modelPath('timm_op17_dyn.onnx'), 4, file);
    const { onGpu, onCpu } = await onBoth(file);
    assert.equal(onGpu.blocks.length, 12);
    assert.equal(onGpu.settings.executionProvider.used, 'webgpu');
    const worst = assertAgreesWithCpu(onGpu, onCpu, '12 blocks');
    console.log(`webgpu against cpu, 12 blocks: worst relative difference of a mean ${worst.toExponential(2)}`);
  });

  test('auto checks webgpu against cpu, times both, and keeps cpu over the slower software adapter', async () => {
    const report = await gpu.analyze(request(modelPath('timm_op14.onnx'), { executionProvider: 'auto', pairs: 8 }));
    const { used, tried } = report.settings.executionProvider;
    const webgpu = tried.find((attempt) => attempt.name === 'webgpu');
    assert.ok(webgpu, `webgpu was tried: ${JSON.stringify(tried)}`);
    assert.match(webgpu.adapter ?? '', /SwiftShader.*software/, 'the adapter is named');
    assert.match(webgpu.reason, /agreed with cpu/);
    assert.equal(used, 'cpu', `a software adapter is slower than cpu: ${JSON.stringify(tried)}`);
    assert.match(webgpu.reason, /slower \(a software renderer\)/);
    assert.ok(webgpu.secondsPerPair! > tried.at(-1)!.secondsPerPair!, 'the timings stand behind the choice');
    assert.deepEqual(tried.at(-1)?.name, 'cpu');
    assert.equal(report.settings.pairs, 8);
  });

  test('cancel during a webgpu run stops it, and the same supervisor then runs on webgpu again', async () => {
    const abort = new AbortController();
    const started = Date.now();
    let cancelledAt = 0;
    const long = gpu.analyze(
      { modelPath: modelPath('timm_op14.onnx'), mode: 'isolated', executionProvider: 'webgpu', pairs: 2000, batchPairs: 2, seed: 0 },
      (progress) => {
        if (progress.phase !== 'measuring' || abort.signal.aborted) return;
        assert.equal(progress.executionProvider, 'webgpu');
        cancelledAt = Date.now();
        abort.abort();
      },
      abort.signal,
    );
    await assert.rejects(long, (error: Error) => error instanceof CancelledError);
    assert.ok(cancelledAt > 0, 'cancelled while measuring');
    assert.ok(Date.now() - cancelledAt < 5000, `stopped within 5 s of the cancel (${Date.now() - cancelledAt} ms; run took ${Date.now() - started} ms)`);
    const after = await gpu.analyze(request(modelPath('timm_op14.onnx')));
    assert.equal(after.settings.executionProvider.used, 'webgpu');
  });

  test("the bounds of a webgpu run are computed on cpu, say why, and equal a cpu run's", async () => {
    const file = modelPath('hf_vit_op17.onnx');
    const { onGpu, onCpu } = await onBoth(file);
    assert.equal(onGpu.bounds?.executionProvider?.used, 'cpu');
    assert.match(onGpu.bounds?.executionProvider?.reason ?? '', /Loop/);
    // The weights' bounds are the same numbers; the others take token statistics from the embeddings, computed on webgpu.
    onGpu.bounds!.blocks.forEach((block, b) => {
      const onCpuBlock = onCpu.bounds!.blocks[b];
      assert.deepEqual([block.FC1, block.FC2], [onCpuBlock.FC1, onCpuBlock.FC2], `block ${b}`);
      for (const component of GOLDEN_COMPONENTS) {
        assert.ok(relativeError(block[component]!.bound, onCpuBlock[component]!.bound) < 1e-4, `block ${b} ${component} bound`);
      }
    });
  });
});
