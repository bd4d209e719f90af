// The report panel's budget control (host side) and the Plasticity tree view's rows: a form
// becomes the core's budget, the preview repeats the core's plan (with the head and final norm
// exact once the model file has answered), the tree lists types by rank.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ModelFileError, UsageError } from '../../extension/core/errors';
import { readOnnxModel } from '../../extension/core/onnx/onnxModel';
import { MeasuredModuleParameters, measuredModuleParameters, PlanModelParameters } from '../../extension/core/recommend/measuredModel';
import { exportFreezePlan } from '../../extension/core/recommend/planExports';
import { SYNTHETIC_WARNING } from '../../extension/core/recommend/recommend';
import { PlasticityReport } from '../../extension/core/report/reportSchema';
import { budgetFromForm, planFromForm, previewOfPlan, PLAN_EXPORT_FILES } from '../../extension/panel/budgetForm';
import { MODEL_FILE_PENDING_NOTE, ModelFileParameters } from '../../extension/panel/modelFileParameters';
import { BudgetForm } from '../../extension/panel/webviewProtocol';
import { blockRows, componentTypeRows } from '../../extension/tree/modelTreeRows';
import { goldenByStyle, reportFromGolden } from '../support/goldenReports';

const PAPER_LIKE = [
  [0.24, 7.5, 0.32, 4.4, 2.1],
  [0.25, 7.9, 0.3, 4.6, 2.0],
  [0.23, 7.1, 0.34, 4.2, 2.2],
];
const golden = goldenByStyle().get('timm')!;
const form = (change: Partial<BudgetForm>): BudgetForm => ({ kind: 'types', value: '1', unit: 'types', naming: 'detected', includeHead: true, ...change });

describe('budgetFromForm', () => {
  test('reads each budget kind', () => {
    assert.deepEqual(budgetFromForm({ kind: 'types', value: ' 2 ' }), { kind: 'types', count: 2 });
    assert.deepEqual(budgetFromForm({ kind: 'share', value: '10' }), { kind: 'share', percent: 10 });
    assert.deepEqual(budgetFromForm({ kind: 'share', value: '0.5%' }), { kind: 'share', percent: 0.5 });
    assert.deepEqual(budgetFromForm({ kind: 'parameters', value: '18k' }), { kind: 'parameters', count: 18000 });
    assert.deepEqual(budgetFromForm({ kind: 'parameters', value: '28.3M' }), { kind: 'parameters', count: 28300000 });
  });

  test('refuses unusable values with a sentence', () => {
    for (const [kind, value] of [
      ['types', ''],
      ['types', '1.5'],
      ['types', '0'],
      ['share', '150'],
      ['share', 'abc'],
      ['parameters', '10%'],
      ['parameters', '-3'],
    ] as const) {
      assert.throws(
        () => budgetFromForm({ kind, value }),
        (error: unknown) => error instanceof UsageError && error.message.length > 10,
        `${kind} '${value}'`,
      );
    }
  });
});

describe('planFromForm and previewOfPlan', () => {
  test('one type: the most plastic, with the paper note, head kept trainable', () => {
    const report = reportFromGolden(golden, { means: PAPER_LIKE });
    const preview = previewOfPlan(planFromForm(report, form({})));
    assert.equal(preview.choices.length, 1);
    assert.match(preview.choices[0].label, /^MHA/);
    assert.equal(preview.choices[0].rank, 1);
    assert.equal(preview.paperNotes.length, 1);
    assert.ok(preview.trainableModules.some((module) => module.includes('attn')));
    assert.ok(
      preview.trainableModules.some((module) => /head/.test(module)),
      preview.trainableModules.join(', '),
    );
    assert.equal(preview.counts.selectedBlockParameters, report.summary.MHA.parameterCount);
    assert.equal(preview.warnings.length, 0);
  });

  test('no head, a naming override and synthetic inputs', () => {
    const report = reportFromGolden(golden, { means: PAPER_LIKE, synthetic: true });
    const preview = previewOfPlan(planFromForm(report, form({ naming: 'hf', includeHead: false, kind: 'types', value: '2' })));
    assert.equal(preview.choices.length, 2);
    assert.ok(
      preview.trainableModules.every((module) => module.startsWith('vit.encoder.layer.')),
      preview.trainableModules.join(', '),
    );
    assert.ok(!preview.trainableModules.some((module) => /head|classifier/.test(module)));
    assert.deepEqual(preview.counts.trainable, preview.counts.selectedBlockParameters);
    assert.ok(preview.warnings.includes(SYNTHETIC_WARNING));
  });

  test('cells under a parameter budget; a budget below the cheapest choice is a sentence', () => {
    const report = reportFromGolden(golden, { means: PAPER_LIKE });
    const cheapest = Math.min(...report.blocks.flatMap((block) => Object.values(block.components).map((statistics) => statistics.parameterCount)));
    const preview = previewOfPlan(planFromForm(report, form({ kind: 'parameters', value: String(cheapest * 3), unit: 'cells' })));
    assert.equal(preview.unit, 'cells');
    assert.ok(preview.choices.every((choice) => / of block \d+$/.test(choice.label)));
    assert.ok(preview.counts.selectedBlockParameters <= cheapest * 3);
    assert.throws(
      () => planFromForm(report, form({ kind: 'parameters', value: String(cheapest - 1) })),
      (error: unknown) => error instanceof UsageError && /smaller than the cheapest choice/.test(error.message),
    );
    assert.throws(() => planFromForm(report, form({ kind: 'types', value: '1', unit: 'cells' })), UsageError);
  });

  test('every export format has a default file name', () => {
    for (const format of ['json', 'pytorch', 'peft', 'yaml'] as const) assert.ok(PLAN_EXPORT_FILES[format].suffix.includes('.'));
  });
});

describe("the model file's answer in the panel's plans", () => {
  /** What the worker answers for the report's model file: the same core function, on the real fixture. */
  const answerFor =
    (report: PlasticityReport) =>
    (modules: string[]): Promise<MeasuredModuleParameters> =>
      Promise.resolve(measuredModuleParameters(readOnnxModel(report.model.path), modules));
  const extras = (report: PlasticityReport, fromModel: PlanModelParameters) =>
    planFromForm(report, form({}), fromModel)
      .trainable.filter((group) => group.role !== 'component')
      .map((group) => [group.role, group.match, group.modules, group.parameters, group.parameterCount]);

  test("with the worker's answer the head and final norm are named exactly and counted", async () => {
    const report = reportFromGolden(golden, { means: PAPER_LIKE });
    let asked: string[] = [];
    const modelFile = new ModelFileParameters(report, report.model.path, (modules) => {
      asked = modules;
      return answerFor(report)(modules);
    });
    // Every naming's candidates are asked at once: the form can switch namings without asking again.
    for (const module of ['head', 'head_dist', 'norm', 'fc_norm', 'classifier', 'vit.layernorm', 'heads', 'encoder.ln', 'proj', 'ln_post'])
      assert.ok(asked.includes(module), module);
    await modelFile.answered;
    assert.deepEqual(extras(report, modelFile.now()), [
      ['final-norm', 'all', ['norm'], ['norm.weight', 'norm.bias'], 64],
      ['head', 'all', ['head'], ['head.weight', 'head.bias'], 330],
    ]);
    const plan = planFromForm(report, form({}), modelFile.now());
    assert.equal(plan.source.model.fileChecked, true);
    assert.ok(!plan.notes.some((note) => /count is unknown|alternatives|still being read/.test(note)), plan.notes.join(' | '));
    const preview = previewOfPlan(plan);
    assert.equal(preview.counts.trainable, report.summary.MHA.parameterCount + 330 + 64);
    assert.ok(preview.trainableModules.includes('head') && !preview.trainableModules.some((module) => module.includes(' or ')), preview.trainableModules.join(', '));
    const pytorch = exportFreezePlan(plan, 'pytorch');
    assert.match(pytorch, /\("classification head", "all", \[\n\s+"head",\n\s+\]\)/);
    assert.match(pytorch, /head 330, final norm 64/);
    assert.doesNotMatch(pytorch, /count unknown|head_dist/);
    // Another naming's template ignores the model's parameters, as in the command line.
    assert.deepEqual(
      planFromForm(report, form({ naming: 'hf' }), modelFile.now())
        .trainable.filter((group) => group.role === 'head')
        .map((group) => group.modules),
      [['classifier']],
    );
  });

  test('without the answer: the alternatives, count unknown, and a note saying why', async () => {
    const report = reportFromGolden(golden, { means: PAPER_LIKE });
    const alternatives = [
      ['final-norm', 'any', ['norm', 'fc_norm'], null, null],
      ['head', 'any', ['head', 'head_dist'], null, null],
    ];
    assert.deepEqual(extras(report, {}), alternatives);

    let answer!: (value: MeasuredModuleParameters) => void;
    const pending = new ModelFileParameters(report, report.model.path, () => new Promise((resolve) => (answer = resolve)));
    assert.deepEqual(extras(report, pending.now()), alternatives);
    assert.ok(planFromForm(report, form({}), pending.now()).notes.includes(MODEL_FILE_PENDING_NOTE));
    // An export made before the answer waits for it, then goes with what is known, saying so.
    const late = await pending.forExport(20);
    assert.deepEqual(extras(report, late), alternatives);
    assert.deepEqual(late.note, "The model file was not read within 0.02 s: head and final-norm names are the framework's alternatives.");
    const waiting = pending.forExport(5000);
    answer(measuredModuleParameters(readOnnxModel(report.model.path), ['head', 'head_dist', 'norm', 'fc_norm']));
    assert.equal((await waiting).note, undefined);
    assert.equal(extras(report, await waiting)[1][4], 330);

    const missing = new ModelFileParameters(report, '/nowhere/vit.onnx', () => Promise.reject(new ModelFileError('/nowhere/vit.onnx does not exist; check the path.')));
    await missing.answered;
    assert.deepEqual(extras(report, missing.now()), alternatives);
    assert.deepEqual(missing.now().note, "/nowhere/vit.onnx does not exist: head and final-norm names are the framework's alternatives.");

    const other = reportFromGolden(goldenByStyle().get('hf_vit')!);
    const different = new ModelFileParameters(report, other.model.path, answerFor(other));
    await different.answered;
    assert.deepEqual(extras(report, different.now()), alternatives);
    assert.match(
      different.now().note!,
      /hf_vit_op14_dyn\.onnx is not the model the report measured \(its sha256 differs\): head and final-norm names are the framework's alternatives\.$/,
    );

    const unexpected: unknown[] = [];
    const crashed = new ModelFileParameters(
      report,
      report.model.path,
      () => Promise.reject(new Error('worker gone')),
      (error) => unexpected.push(error),
    );
    await crashed.answered;
    assert.equal(crashed.now().note, "The analysis process could not read the model file: head and final-norm names are the framework's alternatives.");
    assert.equal(unexpected.length, 1);
  });

  test('one question per report', () => {
    const report = reportFromGolden(golden, { means: PAPER_LIKE });
    const modelFile = new ModelFileParameters(report, report.model.path, answerFor(report));
    assert.ok(modelFile.isFor(reportFromGolden(golden)));
    assert.ok(!modelFile.isFor({ ...report, createdAt: '2026-02-01T00:00:00.000Z' }));
  });
});

describe('tree rows', () => {
  test('types in rank order with their mean; blocks in depth order with their value', () => {
    const report = reportFromGolden(golden, { means: PAPER_LIKE });
    const types = componentTypeRows(report);
    assert.deepEqual(
      types.map((row) => row.label),
      ['1. MHA', '2. FC1', '3. FC2', '4. LN2', '5. LN1'],
    );
    assert.equal(types[0].description, report.summary.MHA.mean.toFixed(3));
    const blocks = blockRows(report, 'MHA');
    assert.deepEqual(
      blocks.map((row) => row.label),
      report.blocks.map((block) => `block ${block.index}`),
    );
    assert.equal(blocks[1].description, '7.900');
  });
});
