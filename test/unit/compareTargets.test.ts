// A multi-target report's targets as comparison series, the recommendations they agree on, and
// the report panel's budget control choosing across targets.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compareTargets } from '../../extension/core/compare/compareReports';
import { comparisonToCsv } from '../../extension/core/compare/comparisonCsv';
import { UsageError } from '../../extension/core/errors';
import { planFromForm, previewOfPlan } from '../../extension/panel/budgetForm';
import { BudgetForm } from '../../extension/panel/webviewProtocol';
import { goldenByStyle, reportFromGolden } from '../support/goldenReports';
import { everyBlock, multiTargetReport } from '../support/multiTargetReports';

// Ranks: a and b MHA > FC1 > FC2 > LN2 > LN1; c FC1 > LN2 > FC2 > MHA > LN1 (see recommendAcrossTargets.test.ts).
const DEFAULT_BUDGET_FORM_FOR_TESTS: BudgetForm = { kind: 'types', value: '1', unit: 'types', naming: 'detected', includeHead: true };
const report = multiTargetReport(['a', 'b', 'c'], [everyBlock([1, 5, 2, 4, 3]), everyBlock([1.1, 5.2, 2.1, 4.1, 3.1]), everyBlock([1, 2, 4, 5, 3])]);

describe('compareTargets', () => {
  const comparison = compareTargets(report, '/reports/multi.json');

  test('series are the targets, the first the baseline, with their folders and input distances', () => {
    assert.equal(comparison.seriesKind, 'targets');
    assert.deepEqual(
      comparison.series.map((one) => one.label),
      ['a', 'b', 'c'],
    );
    assert.deepEqual(
      comparison.series.map((one) => one.source.kind),
      ['target', 'target', 'target'],
    );
    assert.deepEqual(
      comparison.series.map((one) => (one.source.kind === 'target' ? [one.source.folder, one.source.meanInputDistance] : null)),
      [
        ['/data/a', 10],
        ['/data/b', 11],
        ['/data/c', 12],
      ],
    );
    assert.deepEqual(comparison.series[2].summary.FC1, { mean: 5, rank: 1 });
    assert.deepEqual(
      comparison.rankings.map((ranking) => ranking.order[0]),
      ['MHA', 'MHA', 'FC1'],
    );
    assert.equal(comparison.differences.length, 2);
    assert.ok(Math.abs(comparison.differences[1].typeMeans.MHA - (2 - 5)) < 1e-12);
    assert.match(comparison.notes.join(' '), /same reference pairs/);
    assert.match(comparisonToCsv(comparison).split('\n')[1], /^a,0,LN1,/);
  });

  test('which recommendations of k types agree, worked out by hand', () => {
    assert.deepEqual(
      comparison.recommendations!.map((agreement) => [agreement.types, agreement.agree, agreement.perSeries, agreement.meanRank, agreement.worstCase]),
      [
        [1, false, [['MHA'], ['MHA'], ['FC1']], ['FC1'], ['FC1']],
        [
          2,
          false,
          [
            ['MHA', 'FC1'],
            ['MHA', 'FC1'],
            ['FC1', 'LN2'],
          ],
          ['FC1', 'MHA'],
          ['FC1', 'FC2'],
        ],
        [
          3,
          false,
          [
            ['MHA', 'FC1', 'FC2'],
            ['MHA', 'FC1', 'FC2'],
            ['FC1', 'LN2', 'FC2'],
          ],
          ['FC1', 'MHA', 'FC2'],
          ['FC1', 'FC2', 'MHA'],
        ],
        [
          4,
          true,
          [
            ['MHA', 'FC1', 'FC2', 'LN2'],
            ['MHA', 'FC1', 'FC2', 'LN2'],
            ['FC1', 'LN2', 'FC2', 'MHA'],
          ],
          ['FC1', 'MHA', 'FC2', 'LN2'],
          ['FC1', 'FC2', 'MHA', 'LN2'],
        ],
      ],
    );
  });

  test('a single-target report has no targets to compare', () => {
    assert.throws(
      () => compareTargets(reportFromGolden(goldenByStyle().get('timm')!), 'one.json'),
      (error: unknown) => error instanceof UsageError && /one\.json measured one target/.test(error.message),
    );
  });
});

describe("the budget control's across rule", () => {
  test('mean rank by default, worst case when chosen; the preview states it and the disagreements', () => {
    const byMean = previewOfPlan(planFromForm(report, { ...DEFAULT_BUDGET_FORM_FOR_TESTS, value: '2' }, {}, '2026-01-01T00:00:00.000Z'));
    assert.deepEqual(
      byMean.choices.map((choice) => choice.label),
      ['FC1 (all blocks)', 'MHA (all blocks)'],
    );
    assert.match(byMean.across!.statement, /by mean rank/);
    assert.equal(byMean.across!.allAgree, false);
    assert.ok(byMean.across!.disagreements.includes('MHA ranks 1 on a, 1 on b, 4 on c.'));
    assert.ok(!byMean.notes.includes(byMean.across!.statement), 'stated once, in the across section');
    const byWorst = previewOfPlan(planFromForm(report, { ...DEFAULT_BUDGET_FORM_FOR_TESTS, value: '2', across: 'worst-case' }));
    assert.deepEqual(
      byWorst.choices.map((choice) => choice.label),
      ['FC1 (all blocks)', 'FC2 (all blocks)'],
    );
    assert.match(byWorst.across!.statement, /by the worst case/);
  });

  test('a single-target report ignores a remembered across choice', () => {
    const single = reportFromGolden(goldenByStyle().get('timm')!);
    const preview = previewOfPlan(planFromForm(single, { ...DEFAULT_BUDGET_FORM_FOR_TESTS, across: 'worst-case' }));
    assert.equal(preview.across, undefined);
  });
});
