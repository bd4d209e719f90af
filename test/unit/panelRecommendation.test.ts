// The report panel's budget control (host side) and the Plasticity tree view's rows: a form
// becomes the core's budget, the preview repeats the core's plan, the tree lists types by rank.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UsageError } from '../../extension/core/errors';
import { SYNTHETIC_WARNING } from '../../extension/core/recommend/recommend';
import { budgetFromForm, planFromForm, previewOfPlan, PLAN_EXPORT_FILES } from '../../extension/panel/budgetForm';
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
    for (const [kind, value] of [['types', ''], ['types', '1.5'], ['types', '0'], ['share', '150'], ['share', 'abc'], ['parameters', '10%'], ['parameters', '-3']] as const) {
      assert.throws(() => budgetFromForm({ kind, value }), (error: unknown) => error instanceof UsageError && error.message.length > 10, `${kind} '${value}'`);
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
    assert.ok(preview.trainableModules.some((module) => /head/.test(module)), preview.trainableModules.join(', '));
    assert.equal(preview.counts.selectedBlockParameters, report.summary.MHA.parameterCount);
    assert.equal(preview.warnings.length, 0);
  });

  test('no head, a naming override and synthetic inputs', () => {
    const report = reportFromGolden(golden, { means: PAPER_LIKE, synthetic: true });
    const preview = previewOfPlan(planFromForm(report, form({ naming: 'hf', includeHead: false, kind: 'types', value: '2' })));
    assert.equal(preview.choices.length, 2);
    assert.ok(preview.trainableModules.every((module) => module.startsWith('vit.encoder.layer.')), preview.trainableModules.join(', '));
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
    assert.throws(() => planFromForm(report, form({ kind: 'parameters', value: String(cheapest - 1) })), (error: unknown) => error instanceof UsageError && /smaller than the cheapest choice/.test(error.message));
    assert.throws(() => planFromForm(report, form({ kind: 'types', value: '1', unit: 'cells' })), UsageError);
  });

  test('every export format has a default file name', () => {
    for (const format of ['json', 'pytorch', 'peft', 'yaml'] as const) assert.ok(PLAN_EXPORT_FILES[format].suffix.includes('.'));
  });
});

describe('tree rows', () => {
  test('types in rank order with their mean; blocks in depth order with their value', () => {
    const report = reportFromGolden(golden, { means: PAPER_LIKE });
    const types = componentTypeRows(report);
    assert.deepEqual(types.map((row) => row.label), ['1. MHA', '2. FC1', '3. FC2', '4. LN2', '5. LN1']);
    assert.equal(types[0].description, report.summary.MHA.mean.toFixed(3));
    const blocks = blockRows(report, 'MHA');
    assert.deepEqual(blocks.map((row) => row.label), report.blocks.map((block) => `block ${block.index}`));
    assert.equal(blocks[1].description, '7.900');
  });
});
