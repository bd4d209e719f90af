// compare: Welch's test against SciPy's numbers and the hand-computed Welch–Satterthwaite degrees
// of freedom, the ranking agreement, and one-sentence refusals of reports that differ.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { comparisonToCsv } from '../../extension/core/compare/comparisonCsv';
import { compareReports } from '../../extension/core/compare/compareReports';
import { kendallTau } from '../../extension/core/compare/reportComparison';
import { welchTest } from '../../extension/core/compare/welchTest';
import { UsageError } from '../../extension/core/errors';
import { GOLDEN_COMPONENTS, sampleStatistics } from '../support/fixtures';
import { handMadeReport, pairValues } from '../support/reportBuilder';

const close = (actual: number | null, expected: number, tolerance: number, what: string) => {
  assert.ok(actual !== null && Math.abs(actual - expected) <= tolerance * Math.max(1, Math.abs(expected)), `${what}: ${actual} vs ${expected}`);
};

describe('Welch test from mean, std and n', () => {
  test('unequal variances and sizes: degrees of freedom by hand, t, p and interval as scipy.stats computes them', () => {
    // By hand: vA = 0.2²/10 = 0.004, vB = 0.5²/8 = 0.03125; se = √0.03525;
    // df = 0.03525² / (0.004²/9 + 0.03125²/7) = 8.79462; t = 0.3 / se = 1.59787.
    const result = welchTest({ mean: 1.0, std: 0.2, n: 10 }, { mean: 1.3, std: 0.5, n: 8 });
    close(result.difference, 0.3, 1e-12, 'difference');
    close(result.standardError, Math.sqrt(0.03525), 1e-12, 'standard error');
    close(result.degreesOfFreedom, 0.03525 ** 2 / (0.004 ** 2 / 9 + 0.03125 ** 2 / 7), 1e-12, 'df');
    close(result.degreesOfFreedom, 8.794617215641392, 1e-9, 'df (scipy)');
    close(result.t, 1.5978709238739226, 1e-9, 't');
    // scipy.stats.ttest_ind_from_stats(..., equal_var=False).pvalue and stats.t.ppf(0.975, df).
    close(result.p, 0.1453232689744526, 1e-7, 'p');
    close(result.ci95![0], -0.12623639370587142, 1e-7, 'interval low');
    close(result.ci95![1], 0.7262363937058716, 1e-7, 'interval high');
  });

  test('a negative difference, and p = 0.05 exactly at the tabulated critical value t(0.975, 8) = 2.306004', () => {
    const scipy = welchTest({ mean: 0.5, std: 0.05, n: 32 }, { mean: 0.48, std: 0.09, n: 16 });
    close(scipy.degreesOfFreedom, 19.759161979198954, 1e-9, 'df');
    close(scipy.t, -0.8273403039920314, 1e-9, 't');
    close(scipy.p, 0.41792449208922966, 1e-7, 'p');
    // Equal n = 5 and std 1: df = 2 (n − 1) = 8, se = √(2/5).
    const critical = welchTest({ mean: 0, std: 1, n: 5 }, { mean: 2.306004 * Math.sqrt(2 / 5), std: 1, n: 5 });
    close(critical.degreesOfFreedom, 8, 1e-12, 'df');
    close(critical.p, 0.05, 1e-6, 'p at the critical value');
    close(critical.ci95![0], 0, 1e-6, 'the interval just touches 0');
  });

  test('no spread or a single pair: the difference, but no test', () => {
    for (const result of [welchTest({ mean: 1, std: 0, n: 4 }, { mean: 2, std: 0, n: 4 }), welchTest({ mean: 1, std: 0.1, n: 1 }, { mean: 2, std: 0.1, n: 6 })]) {
      assert.equal(result.difference, 1);
      assert.equal(result.p, null);
      assert.equal(result.ci95, null);
    }
  });
});

describe('comparing reports', () => {
  const baselineValues = pairValues(12, 3, [0.9, 0.8, 0.7, 1.2, 0.3], 1);
  const otherValues = pairValues(9, 3, [0.9, 1.4, 0.7, 1.0, 0.3], 2);
  const baseline = handMadeReport({ values: baselineValues });
  const other = handMadeReport({ values: otherValues, sha256: 'b'.repeat(64) });

  test('each cell: the difference of means and Welch values from the statistics computed here', () => {
    const comparison = compareReports([
      { report: baseline, file: '/runs/a.json' },
      { report: other, file: '/runs/b.json' },
    ]);
    assert.deepEqual(
      comparison.series.map((series) => series.label),
      ['a.json', 'b.json'],
    );
    assert.equal(comparison.differences.length, 1);
    const cells = comparison.differences[0].cells;
    assert.equal(cells.length, 3 * 5);
    for (const cell of cells) {
      const c = GOLDEN_COMPONENTS.indexOf(cell.component);
      const a = sampleStatistics(baselineValues.map((pair) => pair[cell.block][c]));
      const b = sampleStatistics(otherValues.map((pair) => pair[cell.block][c]));
      const [va, vb] = [a.std ** 2 / 12, b.std ** 2 / 9];
      close(cell.difference, b.mean - a.mean, 1e-12, 'difference');
      close(cell.t, (b.mean - a.mean) / Math.sqrt(va + vb), 1e-9, 't');
      close(cell.degreesOfFreedom, (va + vb) ** 2 / (va ** 2 / 11 + vb ** 2 / 8), 1e-9, 'df');
      assert.ok(cell.p! > 0 && cell.p! <= 1);
      assert.ok(cell.ci95![0] < cell.difference && cell.difference < cell.ci95![1]);
      // The interval excludes 0 exactly when p < 0.05.
      assert.equal(cell.ci95![0] > 0 || cell.ci95![1] < 0, cell.p! < 0.05, `block ${cell.block} ${cell.component}`);
    }
  });

  test('rankings side by side: Kendall τ, the top type and the types that moved', () => {
    const comparison = compareReports([
      { report: baseline, file: 'a.json' },
      { report: other, file: 'b.json' },
      { report: baseline, file: 'a.json' },
    ]);
    assert.deepEqual(
      comparison.series.map((series) => series.label),
      ['a.json', 'b.json', 'a.json (2)'],
    );
    assert.deepEqual(comparison.rankings[0].order, ['FC1', 'LN1', 'MHA', 'LN2', 'FC2']);
    assert.deepEqual(comparison.rankings[1].order, ['MHA', 'FC1', 'LN1', 'LN2', 'FC2']);
    assert.equal(comparison.rankings[1].sameTop, false);
    assert.deepEqual(comparison.rankings[1].moved, ['LN1', 'MHA', 'FC1']);
    // Discordant pairs: (FC1, MHA), (LN1, MHA) of 10.
    close(comparison.rankings[1].kendallTau, (8 - 2) / 10, 1e-12, 'τ');
    assert.equal(comparison.rankings[2].kendallTau, 1);
    assert.equal(kendallTau(['LN1', 'MHA', 'LN2'], ['LN2', 'MHA', 'LN1']), -1);
    const csv = comparisonToCsv(comparison).trim().split('\n');
    assert.equal(csv.length, 1 + 3 * 3 * 5);
    assert.match(csv[1], /^a\.json,0,LN1,/);
  });

  test('a different architecture or mode: one sentence naming the field', () => {
    const cases: [ReturnType<typeof handMadeReport>, RegExp][] = [
      [handMadeReport({ values: pairValues(4, 3, [1, 1, 1, 1, 1], 3), mode: 'in-context' }), /^b\.json differs from a\.json in settings\.mode \(in-context vs isolated\)/],
      [handMadeReport({ values: pairValues(4, 3, [1, 1, 1, 1, 1], 3), activation: 'quick_gelu' }), /in model\.architecture\.activation \(quick_gelu vs gelu\)/],
      [handMadeReport({ values: pairValues(4, 2, [1, 1, 1, 1, 1], 3) }), /in model\.architecture\.blocks \(2 vs 3\)/],
    ];
    for (const [report, message] of cases) {
      assert.throws(
        () =>
          compareReports([
            { report: baseline, file: 'a.json' },
            { report, file: 'b.json' },
          ]),
        (error: Error) => error instanceof UsageError && message.test(error.message) && !error.message.includes('\n'),
      );
    }
    assert.throws(() => compareReports([{ report: baseline, file: 'a.json' }]), UsageError);
  });
});
