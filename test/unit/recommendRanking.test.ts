// Ranking and budgets: component types (the paper's protocol) and single cells, parameter counts
// and shares, the edge cases, and the warnings and paper figures carried by every recommendation.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UsageError } from '../../extension/core/errors';
import { parseParameterBudget, parseTypeBudget, shareLimit } from '../../extension/core/recommend/budget';
import { resolveNaming } from '../../extension/core/recommend/frameworkNaming';
import { buildFreezePlan } from '../../extension/core/recommend/freezePlan';
import { PAPER_ACCURACY } from '../../extension/core/recommend/paperResults';
import { exportFreezePlan, PLAN_FORMATS } from '../../extension/core/recommend/planExports';
import { IN_CONTEXT_WARNING, recommend, SYNTHETIC_WARNING } from '../../extension/core/recommend/recommend';
import { goldenByStyle, reportFromGolden } from '../support/goldenReports';

const timm = goldenByStyle().get('timm')!;
// Paper-like means per block [LN1, MHA, LN2, FC1, FC2]: rank MHA > FC1 > FC2 > LN2 > LN1.
const PAPER_LIKE = [
  [0.24, 7.5, 0.32, 4.4, 2.1],
  [0.25, 7.9, 0.3, 4.6, 2.0],
  [0.23, 7.1, 0.34, 4.2, 2.2],
];
// Per type over 3 blocks: LN1 192, MHA 12672, LN2 192, FC1 12672, FC2 12384; model 45258.
const report = reportFromGolden(timm, { means: PAPER_LIKE });

function chosen(recommendation: ReturnType<typeof recommend>): string[] {
  return recommendation.selected.map((option) => (option.block === null ? option.component : `${option.component}@${option.block}`));
}

describe('ranking', () => {
  test('types are ranked by mean plasticity over blocks, as the report ranks them', () => {
    const recommendation = recommend(report, { budget: { kind: 'types', count: 5 } });
    assert.deepEqual(
      recommendation.options.map((option) => option.component),
      ['MHA', 'FC1', 'FC2', 'LN2', 'LN1'],
    );
    assert.deepEqual(
      recommendation.options.map((option) => option.rank),
      [1, 2, 3, 4, 5],
    );
    for (const option of recommendation.options) {
      assert.equal(option.plasticity, report.summary[option.component].mean);
      assert.equal(option.parameterCount, report.summary[option.component].parameterCount);
    }
    assert.deepEqual(
      recommendation.options.map((option) => option.parameterCount),
      [12672, 12672, 12384, 192, 192],
    );
  });

  test('cells are ranked by their block mean, ties in block then component order', () => {
    const tied = reportFromGolden(timm, {
      means: [
        [1, 1, 1, 1, 1],
        [1, 1, 1, 1, 1],
        [2, 1, 1, 1, 1],
      ],
    });
    const recommendation = recommend(tied, { budget: { kind: 'parameters', count: 64 }, unit: 'cells' });
    assert.equal(recommendation.options.length, 15);
    assert.deepEqual(
      recommendation.options.slice(0, 3).map((option) => [option.block, option.component]),
      [
        [2, 'LN1'],
        [0, 'LN1'],
        [0, 'MHA'],
      ],
    );
    assert.deepEqual(
      recommendation.options.map((option) => option.rank),
      Array.from({ length: 15 }, (_, index) => index + 1),
    );
    assert.ok(recommendation.options.every((option) => option.ci95 !== null));
  });
});

describe('budgets', () => {
  test('a number of types takes the most plastic types', () => {
    assert.deepEqual(chosen(recommend(report, { budget: { kind: 'types', count: 1 } })), ['MHA']);
    const two = recommend(report, { budget: { kind: 'types', count: 2 } });
    assert.deepEqual(chosen(two), ['MHA', 'FC1']);
    assert.equal(two.selectedParameterCount, 12672 * 2);
    assert.equal(two.parameterLimit, null);
  });

  test('more types than a block has selects everything, and says so', () => {
    const recommendation = recommend(report, { budget: { kind: 'types', count: 7 } });
    assert.equal(recommendation.selected.length, 5);
    assert.ok(recommendation.notes.some((note) => /only 5/.test(note)));
    assert.ok(recommendation.notes.some((note) => /covers every component type/.test(note)));
  });

  test('a parameter count takes, in rank order, each type that still fits', () => {
    assert.deepEqual(chosen(recommend(report, { budget: { kind: 'parameters', count: 12672 } })), ['MHA']);
    const recommendation = recommend(report, { budget: { kind: 'parameters', count: 13000 } });
    assert.deepEqual(chosen(recommendation), ['MHA', 'LN2']);
    assert.equal(recommendation.selectedParameterCount, 12864);
    const skipped = recommendation.options.filter((option) => option.skipped).map((option) => option.component);
    assert.deepEqual(skipped, ['FC1', 'FC2'], 'only options ranked above the last chosen one carry a reason');
  });

  test('a share is a fraction of the model parameters, rounded down', () => {
    assert.equal(shareLimit(10, 45258), 4525);
    const recommendation = recommend(report, { budget: { kind: 'share', percent: 10 } });
    assert.equal(recommendation.parameterLimit, 4525);
    assert.deepEqual(chosen(recommendation), ['LN2', 'LN1']);
    assert.match(recommendation.budgetDescription, /10% of the model's 45,258 parameters \(4,525 block parameters\)/);
    assert.deepEqual(chosen(recommend(report, { budget: { kind: 'share', percent: 60 } })), ['MHA', 'FC1', 'LN2', 'LN1']);
  });

  test('cells under a parameter budget pick the most plastic cells that fit', () => {
    const recommendation = recommend(report, { budget: { kind: 'parameters', count: 4224 * 2 + 64 }, unit: 'cells' });
    assert.deepEqual(chosen(recommendation), ['MHA@1', 'MHA@0', 'LN2@2']);
    assert.equal(recommendation.selectedParameterCount, 4224 * 2 + 64);
    assert.ok(recommendation.selected.every((option) => option.paperNote === null));
    assert.ok(recommendation.notes.some((note) => /none for choosing single blocks/.test(note)));
  });

  test('a budget below the cheapest choice is a usage error naming the least it must be', () => {
    assert.throws(
      () => recommend(report, { budget: { kind: 'parameters', count: 100 } }),
      (error: Error) => error instanceof UsageError && /cheapest choice, LN2 \(all blocks\) with 192 parameters; raise it to at least 192 parameters\.$/.test(error.message),
    );
    assert.throws(
      () => recommend(report, { budget: { kind: 'share', percent: 0.1 } }),
      (error: Error) => error instanceof UsageError && /at least 192 parameters \(0\.42% of the model\)/.test(error.message),
    );
    assert.throws(
      () => recommend(report, { budget: { kind: 'parameters', count: 63 }, unit: 'cells' }),
      (error: Error) => error instanceof UsageError && /LN2 of block 2 with 64 parameters/.test(error.message),
    );
  });

  test('a budget above everything selects everything', () => {
    for (const unit of ['types', 'cells'] as const) {
      const recommendation = recommend(report, { budget: { kind: 'parameters', count: 10_000_000 }, unit });
      assert.equal(recommendation.selected.length, recommendation.options.length, unit);
      assert.equal(recommendation.selectedParameterCount, 38_112, unit);
      assert.equal(recommendation.blockParameterCount, 38_112, unit);
      assert.ok(
        recommendation.options.every((option) => option.skipped === undefined),
        unit,
      );
    }
    assert.equal(recommend(report, { budget: { kind: 'share', percent: 100 } }).selected.length, 5);
  });

  test('a number of types cannot choose cells', () => {
    assert.throws(() => recommend(report, { budget: { kind: 'types', count: 2 }, unit: 'cells' }), UsageError);
  });

  test('budget texts: counts with k/M suffixes, shares, and clear refusals', () => {
    assert.deepEqual(parseParameterBudget('10%'), { kind: 'share', percent: 10 });
    assert.deepEqual(parseParameterBudget('0.5 %'), { kind: 'share', percent: 0.5 });
    assert.deepEqual(parseParameterBudget('120000'), { kind: 'parameters', count: 120000 });
    assert.deepEqual(parseParameterBudget('18k'), { kind: 'parameters', count: 18000 });
    assert.deepEqual(parseParameterBudget('28.3M'), { kind: 'parameters', count: 28_300_000 });
    assert.deepEqual(parseParameterBudget('1.5e6'), { kind: 'parameters', count: 1_500_000 });
    for (const bad of ['abc', '0%', '150%', '-5', '0', '', '10 parameters', '0.4']) {
      assert.throws(() => parseParameterBudget(bad), UsageError, bad);
    }
    assert.deepEqual(parseTypeBudget('3'), { kind: 'types', count: 3 });
    for (const bad of ['0', '1.5', 'two', '-1']) assert.throws(() => parseTypeBudget(bad), UsageError, bad);
  });
});

describe('what the recommendation says', () => {
  test("each chosen type carries the paper's figures for it, stated as the paper's results", () => {
    const recommendation = recommend(report, { budget: { kind: 'types', count: 5 } });
    for (const option of recommendation.selected) {
      const note = option.paperNote!;
      assert.ok(note.includes(`finetuning ${option.component} alone in all blocks reached ${PAPER_ACCURACY[option.component]}`), note);
      assert.match(note, /90\.85 for full finetuning/);
      assert.match(note, /ViT-B\/16 pretrained on ImageNet-21k, 11 target datasets/);
      assert.match(note, /These are the paper's results, not a prediction for this model\./);
    }
    assert.match(recommendation.selected.find((option) => option.component === 'MHA')!.paperNote!, /against 90\.85 for full finetuning, LN1 alone 89\.82/);
    assert.match(recommendation.selected.find((option) => option.component === 'LN1')!.paperNote!, /about 18k parameters/);
    assert.ok(recommendation.notes.some((note) => /one component type at a time/.test(note)));
  });

  test('the order note appears only when the measured order differs from the paper', () => {
    const paperOrder = recommend(report, { budget: { kind: 'types', count: 1 } });
    assert.ok(!paperOrder.notes.some((note) => /differs from the paper's order/.test(note)));
    const measured = recommend(reportFromGolden(timm), { budget: { kind: 'types', count: 1 } });
    assert.ok(measured.notes.some((note) => /differs from the paper's order/.test(note)));
  });

  test('synthetic inputs put a warning on the recommendation, the plan and every export', () => {
    const synthetic = reportFromGolden(timm, { synthetic: true, means: PAPER_LIKE, warnings: ['Inputs are synthetic images: numbers describe generated patterns.'] });
    const recommendation = recommend(synthetic, { budget: { kind: 'types', count: 1 } });
    assert.deepEqual(recommendation.warnings, [SYNTHETIC_WARNING], "the report's own synthetic warning is not repeated");
    const plan = buildFreezePlan({ report: synthetic, recommendation, naming: resolveNaming(synthetic) });
    assert.deepEqual(plan.warnings, [SYNTHETIC_WARNING]);
    for (const format of PLAN_FORMATS) {
      assert.ok(exportFreezePlan(plan, format).includes('synthetic images, not on your data'), format);
    }
    assert.deepEqual(recommend(report, { budget: { kind: 'types', count: 1 } }).warnings, []);
  });

  test("in-context reports and the report's own warnings are repeated as warnings", () => {
    const inContext = reportFromGolden(timm, { mode: 'in-context', warnings: ['cuda disagreed with cpu'] });
    const recommendation = recommend(inContext, { budget: { kind: 'types', count: 1 } });
    assert.deepEqual(recommendation.warnings, [IN_CONTEXT_WARNING, 'From the report: cuda disagreed with cpu']);
  });

  test('the head and final norm are trainable by default, outside the budget, or frozen when asked', () => {
    const withHead = recommend(report, { budget: { kind: 'types', count: 1 } });
    assert.equal(withHead.includeHead, true);
    assert.ok(withHead.notes.some((note) => /stay trainable here, on top of the budget/.test(note)));
    const withoutHead = recommend(report, { budget: { kind: 'types', count: 1 }, includeHead: false });
    assert.ok(withoutHead.notes.some((note) => /frozen here, as asked/.test(note)));
  });
});
