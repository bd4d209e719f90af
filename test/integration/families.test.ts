// The ViT families beyond the plain ViT (test/fixtures/models/families/, written in PyTorch after
// each family's published architecture by generate_families.py): measured through the real worker
// and command line against their PyTorch goldens in both modes, the parameters of no component
// listed with their block, and freeze plans assigning them by the stated rule.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { MeasureMode, PlasticityReport } from '../../extension/core/report/reportSchema';
import { EXTRA_PARAMETER_RULE } from '../../extension/core/vocabulary';
import { WorkerSupervisor } from '../../extension/worker/workerSupervisor';
import { pythonWith, runPythonHelper } from '../support/pythonScripts';
import { FAMILY_MODELS, familyGoldens, Golden, GOLDEN_COMPONENTS, goldenBlockStatistics, PAIRS, relativeError, runCli, tempDir } from '../support/fixtures';

const FAMILIES = FAMILY_MODELS;
/** The family each fixture is recognised as (the report's, the table's and the overview's family line). */
const FAMILY_NAMES: Record<string, string> = {
  'dinov2_reg_op17_dyn.onnx': 'DINOv2 (LayerScale, 4 register tokens)',
  'hf_dinov2_reg_op14_dyn.onnx': 'DINOv2 (LayerScale, 4 register tokens)',
  'siglip_op17_dyn.onnx': 'SigLIP (attention-pooling head)',
  'beit_op17_dyn.onnx': 'BEiT (relative position bias, LayerScale)',
  'hf_beit_op14_dyn.onnx': 'BEiT (relative position bias, LayerScale)',
  'beit_shared_op17_dyn.onnx': 'BEiT (relative position bias, LayerScale)',
};

const supervisor = new WorkerSupervisor();
const python = pythonWith(['torch', 'torchvision', 'numpy']);
after(() => supervisor.dispose());

/** The worst relative difference of the report's per-block means from the golden's. */
function worstDifference(report: PlasticityReport, golden: Golden, mode: MeasureMode): number {
  const expected = goldenBlockStatistics(mode === 'isolated' ? golden.isolated : golden.inContext);
  assert.equal(report.blocks.length, expected.length, 'block count');
  let worst = 0;
  report.blocks.forEach((block, b) => GOLDEN_COMPONENTS.forEach((component, c) => (worst = Math.max(worst, relativeError(block.components[component].mean, expected[b][c].mean)))));
  return worst;
}

describe('every ViT family matches its PyTorch goldens in both modes', () => {
  for (const golden of familyGoldens()) {
    for (const mode of ['isolated', 'in-context'] as MeasureMode[]) {
      test(`${golden.model} ${mode}`, async () => {
        const report = await supervisor.analyze({
          modelPath: path.join(FAMILIES, golden.model),
          mode,
          executionProvider: 'cpu',
          reference: PAIRS.reference,
          target: PAIRS.target,
          seed: 0,
        });
        const worst = worstDifference(report, golden, mode);
        assert.ok(worst < 1e-4, `${golden.model} ${mode}: worst relative difference ${worst.toExponential(2)}`);
        assert.equal(report.model.architecture.tokens, golden.architecture.tokens, 'tokens (class and register tokens included)');
        assert.equal(
          report.model.parameterCount,
          golden.totalParameters,
          "the model's parameters as PyTorch counts them (BEiT's folded attention constants counted as its parameters)",
        );
        report.blocks.forEach((block, b) => {
          assert.deepEqual(block.modules, golden.modules[b], `module names of block ${b}`);
          for (const component of GOLDEN_COMPONENTS)
            assert.deepEqual([...block.components[component].parameters].sort(), [...golden.parameters[b][component].names].sort(), `parameters of block ${b} ${component}`);
        });
        assert.equal(report.model.architecture.family?.family, FAMILY_NAMES[golden.model], 'the family discovery recognised');
        assert.ok(report.model.architecture.family.measured.length > 1, 'what is measured beyond the plain ViT is stated');
        const extras = report.model.architecture.extraParameters;
        assert.equal(extras?.rule, EXTRA_PARAMETER_RULE);
        assert.deepEqual(
          extras.parameters.map(({ name, block, follows }) => ({ name, block, follows })),
          golden.extraParameters,
          'parameters of no component, with their block and the component they follow',
        );
      });
    }
  }
});

describe('the command line lists the parameters of no component and freeze plans assign them by the rule', () => {
  for (const golden of familyGoldens()) {
    test(golden.model, async () => {
      const dir = tempDir('family');
      const reportFile = path.join(dir, 'report.json');
      const analyzed = await runCli(['analyze', path.join(FAMILIES, golden.model), '--reference', PAIRS.reference, '--target', PAIRS.target, '--ep', 'cpu', '--json', reportFile]);
      assert.equal(analyzed.code, 0, analyzed.stderr);
      assert.match(analyzed.stdout, /^Extra +not in any component: /m);
      assert.ok(analyzed.stdout.includes(EXTRA_PARAMETER_RULE), 'the rule is printed with the table');
      const report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as PlasticityReport;
      assert.ok(worstDifference(report, golden, 'isolated') < 1e-4);
      const cases: { id: string; style: string; pytorch: string; peft: string; trainable: string[] }[] = [];
      for (const types of [2, 4]) {
        const planFile = path.join(dir, `plan-${types}.json`);
        const recommended = await runCli(['recommend', reportFile, '--types', String(types), '--out', planFile]);
        assert.equal(recommended.code, 0, recommended.stderr);
        assert.ok(recommended.stdout.includes(EXTRA_PARAMETER_RULE), 'the rule is printed with the plan');
        const plan = JSON.parse(fs.readFileSync(planFile, 'utf8')) as {
          choices: { component: string }[];
          trainable: { role: string; modules: string[] }[];
          trainableParameters: string[];
          notes: string[];
        };
        assert.ok(plan.notes.includes(EXTRA_PARAMETER_RULE));
        const chosen = new Set(plan.choices.map((choice) => choice.component));
        for (const extra of report.model.architecture.extraParameters!.parameters) {
          if (extra.kind === 'pooling head') {
            assert.ok(
              plan.trainable.some((group) => group.role === 'head' && group.modules.includes(extra.name)),
              `the pooling head ${extra.name} is trained as the head`,
            );
            continue;
          }
          const trained = extra.follows !== null && chosen.has(extra.follows);
          assert.equal(plan.trainableParameters.includes(extra.name), trained, `${extra.name} (follows ${extra.follows ?? 'the embedding'}) with ${[...chosen].join(', ')} chosen`);
        }
        const exports = { pytorch: path.join(dir, `plan_${types}_freeze.py`), peft: path.join(dir, `plan_${types}_peft.py`) };
        for (const format of ['pytorch', 'peft'] as const) {
          const written = await runCli(['recommend', reportFile, '--types', String(types), '--format', format, '--out', exports[format]]);
          assert.equal(written.code, 0, written.stderr);
        }
        cases.push({ id: `${golden.style}-${types}`, style: golden.style, ...exports, trainable: plan.trainableParameters });
      }
      if (!python) return;
      // The real PyTorch model the fixture came from takes the exports: exactly the plan is trainable.
      const manifest = path.join(dir, 'manifest.json');
      fs.writeFileSync(manifest, JSON.stringify({ cases }));
      const checks = runPythonHelper<{ id: string; requiresGrad: string[]; applyError?: string; peft: Record<string, string[]> }[]>(
        python,
        'check_freeze_exports.py',
        [manifest],
        120_000,
      );
      for (const [index, check] of checks.entries()) {
        assert.equal(check.applyError, undefined, check.id);
        assert.deepEqual([...check.requiresGrad].sort(), [...cases[index].trainable].sort(), `${check.id}: apply(model) trains exactly the plan`);
        assert.deepEqual(
          [...check.peft.missingTargets, ...check.peft.nonLinearTargets, ...check.peft.missingModulesToSave, ...check.peft.missingTrainableParameters],
          [],
          `${check.id}: PEFT names exist`,
        );
      }
    });
  }
});
