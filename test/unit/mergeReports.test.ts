// merge: shards of one run combine into the statistics of all their pairs (computed here from the
// raw values), and shards that overlap or differ are refused with one sentence.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UsageError } from '../../extension/core/errors';
import { combineStatistics, describeSample } from '../../extension/core/report/buildReport';
import { mergeReports, ReportShard } from '../../extension/core/report/mergeReports';
import { firstSharedPair, rangesOfIndices, rangesWithout, unionOfRanges } from '../../extension/core/report/pairRanges';
import { GOLDEN_COMPONENTS, sampleStatistics } from '../support/fixtures';
import { handMadeReport, pairValues } from '../support/reportBuilder';

const relative = (actual: number, expected: number) => Math.abs(actual - expected) / Math.max(Math.abs(expected), 1e-12);

function shard(values: number[][][], pairIndices: number[], file: string, extra: Partial<Parameters<typeof handMadeReport>[0]> = {}): ReportShard {
  return { report: handMadeReport({ values, pairIndices, ...extra }), file, sha256: file.padEnd(64, '0') };
}

describe('merging shards', () => {
  const all = pairValues(23, 3, [0.9, 0.8, 0.7, 1.2, 0.3], 7);
  // Three shards of unequal sizes, given out of order, one with a gap (pair 20 left out).
  const indices = [...Array(23).keys()];
  const shards = [
    shard(all.slice(10, 20), indices.slice(10, 20), 'b.json'),
    shard(all.slice(0, 10), indices.slice(0, 10), 'a.json'),
    shard(all.slice(21), indices.slice(21), 'c.json'),
  ];
  const kept = [...all.slice(0, 20), ...all.slice(21)];

  test('means, stds and n equal those of all the pairs together; intervals, summary and ranking recomputed', () => {
    const merged = mergeReports(shards, new Date('2026-02-02T00:00:00Z'));
    assert.equal(merged.settings.pairs, 22);
    assert.deepEqual(merged.settings.pairIndices, [
      [0, 20],
      [21, 23],
    ]);
    const expected = handMadeReport({ values: kept });
    merged.blocks.forEach((block, b) => {
      GOLDEN_COMPONENTS.forEach((component, c) => {
        const direct = sampleStatistics(kept.map((pair) => pair[b][c]));
        const stats = block.components[component];
        assert.equal(stats.n, 22);
        assert.ok(relative(stats.mean, direct.mean) < 1e-12, `mean ${b} ${component}`);
        assert.ok(relative(stats.std, direct.std) < 1e-12, `std ${b} ${component}`);
        const half = (1.96 * direct.std) / Math.sqrt(22);
        assert.ok(relative(stats.ci95[0], direct.mean - half) < 1e-12 && relative(stats.ci95[1], direct.mean + half) < 1e-12);
        assert.deepEqual(stats.parameters, expected.blocks[b].components[component].parameters);
      });
    });
    for (const component of GOLDEN_COMPONENTS) {
      assert.equal(merged.summary[component].rank, expected.summary[component].rank);
      assert.ok(relative(merged.summary[component].mean, expected.summary[component].mean) < 1e-12);
    }
    assert.deepEqual(
      merged.mergedFrom!.map((one) => one.file),
      ['a.json', 'b.json', 'c.json'],
    );
    assert.match(merged.settings.inputs.notes[0], /^Merged from 3 shards: a\.json \(pairs 0–9\), b\.json \(pairs 10–19\), c\.json \(pairs 21–22\)\.$/);
  });

  test('combineStatistics agrees with describeSample over the union, including a shard of one pair', () => {
    const values = [0.3, 1.7, 0.2, 0.9, 1.1, 4.0, 0.01];
    const parts = [values.slice(0, 1), values.slice(1, 4), values.slice(4)].map((part) => describeSample(part));
    const combined = combineStatistics(parts);
    const direct = describeSample(values);
    assert.ok(relative(combined.mean, direct.mean) < 1e-14 && relative(combined.std, direct.std) < 1e-14);
    assert.equal(combined.n, 7);
  });

  test('overlapping, mismatched or unrecorded shards: one sentence each', () => {
    const first = shard(all.slice(0, 10), indices.slice(0, 10), 'a.json');
    const cases: [ReportShard[], RegExp][] = [
      [[first, shard(all.slice(5, 15), indices.slice(5, 15), 'b.json')], /^a\.json and b\.json both measured pair 5; shards must not overlap/],
      [
        [first, shard(all.slice(10, 20), indices.slice(10, 20), 'b.json', { sha256: 'c'.repeat(64) })],
        /^b\.json differs from a\.json in model\.sha256 \(cccccccccccc… vs aaaaaaaaaaaa…\)/,
      ],
      [[first, shard(all.slice(10, 20), indices.slice(10, 20), 'b.json', { mode: 'in-context' })], /^b\.json differs from a\.json in settings\.mode \(in-context vs isolated\)/],
      [[first], /at least two/],
    ];
    for (const [given, message] of cases) {
      assert.throws(
        () => mergeReports(given),
        (error: Error) => error instanceof UsageError && message.test(error.message) && !error.message.includes('\n'),
        String(message),
      );
    }
    const old = shard(all.slice(10, 20), indices.slice(10, 20), 'old.json');
    delete old.report.settings.pairIndices;
    assert.throws(() => mergeReports([first, old]), /old\.json does not record which pairs it measured/);
    const otherFolder = shard(all.slice(10, 20), indices.slice(10, 20), 'b.json');
    otherFolder.report.settings.inputs.target = '/data/other';
    assert.throws(() => mergeReports([first, otherFolder]), /in settings\.inputs\.target \(other vs target\)/);
  });

  test('pair ranges: from indices, overlap, union', () => {
    assert.deepEqual(rangesOfIndices([5, 0, 1, 2, 7, 6, 9]), [
      [0, 3],
      [5, 8],
      [9, 10],
    ]);
    assert.equal(firstSharedPair([[0, 4]], [[4, 8]]), null);
    assert.equal(
      firstSharedPair(
        [
          [0, 2],
          [6, 9],
        ],
        [[3, 7]],
      ),
      6,
    );
    assert.deepEqual(unionOfRanges([[[4, 8]], [[0, 4]], [[9, 10]]]), [
      [0, 8],
      [9, 10],
    ]);
  });

  test('pair ranges of a run: its pairs without the left-out ones, equal to the ranges of the kept indices', () => {
    const first = 100;
    for (const leftOut of [[], [0], [9], [0, 1, 5, 9], [3, 4, 5]]) {
      const kept = Array.from({ length: 10 }, (_, offset) => offset).filter((offset) => !leftOut.includes(offset));
      assert.deepEqual(rangesWithout(first, 10, leftOut), rangesOfIndices(kept.map((offset) => first + offset)), `left out ${leftOut.join(',')}`);
    }
    assert.deepEqual(rangesWithout(0, 3, [0, 1, 2]), []);
  });
});
