// Running statistics (what a run of any length keeps per column) against the two-pass
// statistics of all the values, on fresh random inputs; and when a run may stop as settled.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeSample, Statistics } from '../../extension/core/report/buildReport';
import { RunningStatistics } from '../../extension/core/report/runningStatistics';
import { everyTargetSettled, largestRelativeHalfInterval, MIN_SETTLED_PAIRS, settledVerdict } from '../../extension/core/report/settledRanking';

function close(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= 1e-12 * Math.max(1, Math.abs(expected)), `${what}: ${actual} vs ${expected}`);
}

test('running statistics equal two-pass statistics on fresh random inputs', () => {
  const seed = Date.now() % 100000; // fresh on every run; printed on failure
  let state = seed;
  const random = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
  for (const rows of [1, 2, 7, 500]) {
    const columns = 6;
    // Ratios of very different scales and offsets, as plasticity columns are (LayerNorms near 1, attention large).
    const values = Array.from({ length: rows }, () => Array.from({ length: columns }, (_, c) => 10 ** (c - 2) * (1000 + random() * (c + 1))));
    const whole = new RunningStatistics(columns);
    for (const row of values) whole.add(row);
    // The same rows in three running parts, merged (as checked and unchecked batches are).
    const parts = [new RunningStatistics(columns), new RunningStatistics(columns), new RunningStatistics(columns)];
    values.forEach((row, i) => parts[i % 3].add(row));
    const merged = new RunningStatistics(columns);
    for (const part of parts) merged.merge(part);
    for (let c = 0; c < columns; c++) {
      const expected = describeSample(values.map((row) => row[c]));
      for (const [name, statistics] of [
        ['running', whole],
        ['merged', merged],
      ] as const) {
        const actual = statistics.column(c);
        assert.equal(actual.n, rows);
        close(actual.mean, expected.mean, `seed ${seed}, ${rows} rows, column ${c}, ${name} mean`);
        // Sums of squares around a mean near 1000 x scale lose digits in float64 either way: 1e-9 relative.
        assert.ok(
          Math.abs(actual.std - expected.std) <= 1e-9 * Math.max(expected.std, 1e-300) || expected.std === 0,
          `seed ${seed}, ${rows} rows, column ${c}, ${name} std: ${actual.std} vs ${expected.std}`,
        );
        close(actual.ci95[0], expected.ci95[0], `seed ${seed}, ${name} interval`);
      }
    }
  }
});

test('an empty accumulator has no statistics; merging an empty one changes nothing', () => {
  const empty = new RunningStatistics(2);
  assert.equal(empty.column(0).n, 0);
  assert.ok(Number.isNaN(empty.column(0).mean));
  const one = new RunningStatistics(2);
  one.add([3, 4]);
  one.merge(new RunningStatistics(2));
  assert.deepEqual(one.column(1), { mean: 4, std: 0, ci95: [4, 4], n: 1 });
});

/** Statistics with a given mean, std and n (the report's normal interval). */
function statistics(mean: number, std: number, n: number): Statistics {
  const half = (1.96 * std) / Math.sqrt(n);
  return { mean, std, ci95: [mean - half, mean + half], n };
}

test("settled: the types' intervals are disjoint, or every mean within the tolerance, never before the minimum of pairs", () => {
  const n = MIN_SETTLED_PAIRS;
  const apart = [1, 2, 3, 4, 5].map((mean) => statistics(mean, 0.1, n));
  const verdict = settledVerdict(apart, apart, {});
  assert.equal(verdict.settled, true);
  assert.equal(verdict.settled && verdict.reason, 'ranking-separated');
  assert.match(verdict.settled ? verdict.message : '', /FC2 > FC1 > LN2 > MHA > LN1/);
  // Too few pairs: not yet, however far apart.
  assert.equal(
    settledVerdict(
      [1, 2, 3, 4, 5].map((mean) => statistics(mean, 0.1, n - 1)),
      apart,
      {},
    ).settled,
    false,
  );
  // Two types tied: not settled by separation; the tolerance decides.
  const tied = [1, 1, 3, 4, 5].map((mean) => statistics(mean, 0.1, n));
  assert.equal(settledVerdict(tied, tied, {}).settled, false);
  const cells = [1, 1, 3, 4, 5].map((mean) => statistics(mean, 0.01, 10000));
  assert.ok(largestRelativeHalfInterval(cells) < 0.001);
  const byTolerance = settledVerdict(tied, cells, { tolerance: 0.001 });
  assert.equal(byTolerance.settled && byTolerance.reason, 'tolerance-reached');
  assert.equal(settledVerdict(tied, cells, { tolerance: 1e-5 }).settled, false);
});

test('several targets: settled once every target is, with the tolerance as the reason when any target needed it', () => {
  const separated = { settled: true, reason: 'ranking-separated', message: 'the ranking of component types (FC1 > MHA > LN2 > LN1 > FC2) is settled' } as const;
  const tolerant = { settled: true, reason: 'tolerance-reached', message: 'every (block, component) mean is known to 5%' } as const;
  assert.deepEqual(
    everyTargetSettled([
      { name: 'a', verdict: separated },
      { name: 'b', verdict: { settled: false } },
    ]),
    { settled: false },
  );
  assert.deepEqual(everyTargetSettled([]), { settled: false });
  const both = everyTargetSettled([
    { name: 'a', verdict: separated },
    { name: 'b', verdict: separated },
  ]);
  assert.ok(both.settled && both.reason === 'ranking-separated');
  const mixed = everyTargetSettled([
    { name: 'a', verdict: separated },
    { name: 'b', verdict: tolerant },
  ]);
  assert.ok(mixed.settled);
  assert.equal(mixed.reason, 'tolerance-reached');
  assert.equal(mixed.message, `every target is settled: a: ${separated.message}; b: ${tolerant.message}`);
});
