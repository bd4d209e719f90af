// The worker's module-parameters request, which the report panel uses to name the head and final
// norm exactly: real worker process, real fixtures (timm and Hugging Face ViT), against the
// reports the same worker measured. The request reads the .onnx file only; onnxruntime stays
// unloaded until an analysis needs it.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { ModelFileError } from '../../extension/core/errors';
import { headAndFinalNormModules } from '../../extension/core/recommend/measuredModel';
import { PlasticityReport } from '../../extension/core/report/reportSchema';
import { planFromForm } from '../../extension/panel/budgetForm';
import { ModelFileParameters } from '../../extension/panel/modelFileParameters';
import { WorkerSupervisor } from '../../extension/worker/workerSupervisor';
import { modelPath, PAIRS, sha256OfFile, tempDir } from '../support/fixtures';

// The fixtures' heads are nn.Linear(32, 10) and their final norms nn.LayerNorm(32) (see
// test/fixtures/models/README.md): 330 and 64 parameters.
const STYLES = [
  {
    style: 'timm',
    model: 'timm_op17_dyn.onnx',
    head: 'head',
    headParameters: ['head.weight', 'head.bias'],
    finalNorm: 'norm',
    finalNormParameters: ['norm.weight', 'norm.bias'],
    absent: ['head_dist', 'fc_norm', 'classifier'],
  },
  {
    style: 'hf_vit',
    model: 'hf_vit_op14_dyn.onnx',
    head: 'classifier',
    headParameters: ['classifier.weight', 'classifier.bias'],
    finalNorm: 'layernorm',
    finalNormParameters: ['layernorm.weight', 'layernorm.bias'],
    absent: ['head', 'norm', 'visual_projection'],
  },
];

const supervisor = new WorkerSupervisor();
const scratch = tempDir('module-parameters');

after(() => {
  supervisor.dispose();
  fs.rmSync(scratch, { recursive: true, force: true });
});

/** True when the process has onnxruntime's native library mapped (Linux /proc). */
function hasOnnxRuntimeLoaded(pid: number): boolean {
  return /onnxruntime/.test(fs.readFileSync(`/proc/${pid}/maps`, 'utf8'));
}

function analyze(model: string): Promise<PlasticityReport> {
  return supervisor.analyze({ modelPath: modelPath(model), mode: 'isolated', executionProvider: 'cpu', reference: PAIRS.reference, target: PAIRS.target, seed: 0 });
}

describe('moduleParameters in the worker', () => {
  test('reads the model without loading onnxruntime', { skip: fs.existsSync('/proc/self/maps') ? false : 'needs /proc' }, async () => {
    const answer = await supervisor.moduleParameters(modelPath('timm_op14.onnx'), ['head']);
    assert.deepEqual(answer.modules.head?.count, 330);
    assert.ok(!hasOnnxRuntimeLoaded(supervisor.workerPid!), 'onnxruntime is not loaded by the request');
    // The check above can see onnxruntime: an analysis in the same worker loads it.
    await analyze('timm_op14.onnx');
    assert.ok(hasOnnxRuntimeLoaded(supervisor.workerPid!), 'an analysis loads onnxruntime');
  });

  for (const expected of STYLES) {
    test(`${expected.style}: exact head and final-norm parameters, and the sha256 of the report`, async () => {
      const report = await analyze(expected.model);
      const answer = await supervisor.moduleParameters(report.model.path, headAndFinalNormModules(report));
      assert.equal(answer.sha256, report.model.sha256);
      assert.equal(answer.sha256, sha256OfFile(modelPath(expected.model)));
      assert.deepEqual(answer.modules[expected.head], { names: expected.headParameters, count: 330 });
      assert.deepEqual(answer.modules[expected.finalNorm], { names: expected.finalNormParameters, count: 64 });
      for (const module of expected.absent) assert.equal(answer.modules[module], null, module);

      // The report panel's plan from this worker's answer.
      const modelFile = new ModelFileParameters(report, report.model.path, (modules) => supervisor.moduleParameters(report.model.path, modules));
      const plan = planFromForm(report, { kind: 'types', value: '1', unit: 'types', naming: 'detected', includeHead: true }, await modelFile.answered);
      assert.deepEqual(
        plan.trainable.filter((group) => group.role !== 'component').map((group) => [group.role, group.modules, group.parameters, group.parameterCount]),
        [
          ['final-norm', [expected.finalNorm], expected.finalNormParameters, 64],
          ['head', [expected.head], expected.headParameters, 330],
        ],
      );
      assert.equal(plan.counts.trainable, plan.counts.selectedBlockParameters + 330 + 64);
    });
  }

  test('the external-data model: the sha256 covers the .onnx file, the weights stay where they are', async () => {
    const file = modelPath('timm_op17_external.onnx');
    const answer = await supervisor.moduleParameters(file, ['head', 'norm']);
    assert.equal(answer.sha256, sha256OfFile(file));
    assert.deepEqual(answer.modules.head, { names: ['head.weight', 'head.bias'], count: 330 });
  });

  test('a missing or unreadable file is a one-line ModelFileError naming it', async () => {
    const missing = path.join(scratch, 'gone.onnx');
    await assert.rejects(supervisor.moduleParameters(missing, ['head']), (error: Error) => {
      assert.ok(error instanceof ModelFileError, `expected ModelFileError, got ${error.name}: ${error.message}`);
      assert.equal(error.message, `${missing} does not exist; check the path.`);
      return true;
    });
    const garbage = path.join(scratch, 'garbage.onnx');
    fs.writeFileSync(garbage, Buffer.from('this is not a model, only text that will not parse as protobuf'));
    await assert.rejects(supervisor.moduleParameters(garbage, ['head']), (error: Error) => {
      assert.ok(error instanceof ModelFileError, `expected ModelFileError, got ${error.name}: ${error.message}`);
      assert.ok(!error.message.includes('\n') && error.message.includes('garbage.onnx'), error.message);
      return true;
    });
    // The worker is still there for the next request.
    assert.equal((await supervisor.moduleParameters(modelPath('timm_op14.onnx'), ['norm'])).modules.norm?.count, 64);
  });
});
