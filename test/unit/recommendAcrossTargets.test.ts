// Recommendations for a multi-target report, against rankings worked out by hand: the mean rank
// and worst-case rules, what each target alone would choose, and where the targets disagree.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { UsageError } from '../../extension/core/errors';
import { FreezePlan } from '../../extension/core/recommend/freezePlan';
import { recommend } from '../../extension/core/recommend/recommend';
import { runCli, tempDir } from '../support/fixtures';
import { goldenByStyle, reportFromGolden } from '../support/goldenReports';
import { everyBlock, multiTargetReport } from '../support/multiTargetReports';

// [LN1, MHA, LN2, FC1, FC2] per target, equal in every block. Ranks (1 = most plastic):
//   a: MHA 1, FC1 2, FC2 3, LN2 4, LN1 5
//   b: MHA 1, FC1 2, FC2 3, LN2 4, LN1 5
//   c: FC1 1, LN2 2, FC2 3, MHA 4, LN1 5
// Mean ranks: FC1 5/3, MHA 2, FC2 3, LN2 10/3, LN1 5 -> FC1, MHA, FC2, LN2, LN1.
// Worst ranks: FC1 2, FC2 3, MHA 4, LN2 4, LN1 5; MHA before LN2 by mean rank -> FC1, FC2, MHA, LN2, LN1.
const NAMES = ['a', 'b', 'c'];
const report = multiTargetReport(NAMES, [everyBlock([1, 5, 2, 4, 3]), everyBlock([1.1, 5.2, 2.1, 4.1, 3.1]), everyBlock([1, 2, 4, 5, 3])]);
const components = (recommendation: ReturnType<typeof recommend>) => recommendation.options.map((option) => option.component);
const chosen = (recommendation: ReturnType<typeof recommend>) =>
  recommendation.selected.map((option) => (option.block === null ? option.component : `${option.component}@${option.block}`));

describe('component types across targets', () => {
  test('mean rank: order, mean ranks, per-target ranks and mean plasticity', () => {
    const recommendation = recommend(report, { budget: { kind: 'types', count: 2 }, across: 'mean-rank' });
    assert.deepEqual(components(recommendation), ['FC1', 'MHA', 'FC2', 'LN2', 'LN1']);
    assert.deepEqual(
      recommendation.options.map((option) => option.rank),
      [1, 2, 3, 4, 5],
    );
    assert.deepEqual(
      recommendation.options.map((option) => option.targetRanks),
      [
        [2, 2, 1],
        [1, 1, 4],
        [3, 3, 3],
        [4, 4, 2],
        [5, 5, 5],
      ],
    );
    assert.deepEqual(
      recommendation.options.map((option) => option.meanRank),
      [5 / 3, 2, 3, 10 / 3, 5],
    );
    assert.ok(Math.abs(recommendation.options[0].plasticity - (4 + 4.1 + 5) / 3) < 1e-12);
    assert.deepEqual(chosen(recommendation), ['FC1', 'MHA']);
  });

  test('worst case: order by the worst rank, ties by mean rank', () => {
    const recommendation = recommend(report, { budget: { kind: 'types', count: 2 }, across: 'worst-case' });
    assert.deepEqual(components(recommendation), ['FC1', 'FC2', 'MHA', 'LN2', 'LN1']);
    assert.deepEqual(
      recommendation.options.map((option) => option.worstRank),
      [2, 3, 4, 4, 5],
    );
    assert.deepEqual(chosen(recommendation), ['FC1', 'FC2']);
  });

  test('the rule is stated, and where the targets disagree is said', () => {
    const meanRank = recommend(report, { budget: { kind: 'types', count: 2 } });
    assert.equal(meanRank.across?.rule, 'mean-rank', 'mean rank is the default');
    assert.match(meanRank.notes[0], /^Chosen across 3 targets \(a, b, c\) by mean rank/);
    assert.deepEqual(
      meanRank.across!.perTarget.map((target) => [target.name, target.selected, target.agrees]),
      [
        ['a', ['MHA (all blocks)', 'FC1 (all blocks)'], true],
        ['b', ['MHA (all blocks)', 'FC1 (all blocks)'], true],
        ['c', ['FC1 (all blocks)', 'LN2 (all blocks)'], false],
      ],
    );
    assert.equal(meanRank.across!.allAgree, false);
    assert.deepEqual(meanRank.across!.disagreements, [
      'On c alone, this budget would choose FC1 (all blocks), LN2 (all blocks) instead of FC1 (all blocks), MHA (all blocks).',
      'FC1 ranks 2 on a, 2 on b, 1 on c.',
      'MHA ranks 1 on a, 1 on b, 4 on c.',
      'LN2 ranks 4 on a, 4 on b, 2 on c.',
    ]);
    const worst = recommend(report, { budget: { kind: 'types', count: 2 }, across: 'worst-case' });
    assert.match(worst.notes[0], /by the worst case/);
    assert.deepEqual(
      worst.across!.perTarget.map((target) => target.agrees),
      [false, false, false],
    );
    // One type: every target but c would choose MHA alone; across, FC1 under both rules.
    const one = recommend(report, { budget: { kind: 'types', count: 1 } });
    assert.deepEqual(chosen(one), ['FC1']);
    assert.deepEqual(
      one.across!.perTarget.map((target) => target.agrees),
      [false, false, true],
    );
  });

  test('targets that agree say so', () => {
    const agreeing = multiTargetReport(['x', 'y'], [everyBlock([1, 5, 2, 4, 3]), everyBlock([1, 6, 2, 5, 3])]);
    const recommendation = recommend(agreeing, { budget: { kind: 'types', count: 2 }, across: 'worst-case' });
    assert.equal(recommendation.across!.allAgree, true);
    assert.deepEqual(recommendation.across!.disagreements, []);
    assert.ok(recommendation.notes.includes('Every target alone would make the same choice.'));
  });
});

describe('cells across targets', () => {
  // Cells per target rank by mean, ties by block then component: a and b rank MHA@0-2 1-3,
  // FC1@0-2 4-6; c ranks FC1@0-2 1-3, LN2 4-6, FC2 7-9, MHA 10-12.
  // Mean ranks: FC1@0 3, FC1@1 4 (worst 5), MHA@0 4 (worst 10), FC1@2 5, MHA@1 5 ...
  test('mean rank of each cell, ties by worst rank; a parameter budget of two FC1 cells', () => {
    const recommendation = recommend(report, { budget: { kind: 'parameters', count: 2 * 4224 }, unit: 'cells', across: 'mean-rank' });
    const top = recommendation.options.slice(0, 5).map((option) => [`${option.component}@${option.block}`, option.meanRank, option.worstRank]);
    assert.deepEqual(top, [
      ['FC1@0', 3, 4],
      ['FC1@1', 4, 5],
      ['MHA@0', 4, 10],
      ['FC1@2', 5, 6],
      ['MHA@1', 5, 11],
    ]);
    assert.deepEqual(chosen(recommendation), ['FC1@0', 'FC1@1']);
    assert.ok(recommendation.options.every((option) => option.ci95 === null && option.targetRanks!.length === 3));
    assert.deepEqual(
      recommendation.across!.perTarget.map((target) => target.selected),
      [
        ['MHA of block 0', 'MHA of block 1'],
        ['MHA of block 0', 'MHA of block 1'],
        ['FC1 of block 0', 'FC1 of block 1'],
      ],
    );
  });
});

test('--across on a single-target report is refused', () => {
  const single = reportFromGolden(goldenByStyle().get('timm')!);
  assert.throws(
    () => recommend(single, { budget: { kind: 'types', count: 1 }, across: 'worst-case' }),
    (error: unknown) => error instanceof UsageError && /needs a multi-target report/.test(error.message),
  );
  assert.equal(recommend(single, { budget: { kind: 'types', count: 1 } }).across, undefined);
});

describe('recommend --across on the command line', () => {
  let scratch: string;
  let file: string;
  before(() => {
    scratch = tempDir('across');
    file = path.join(scratch, 'multi.json');
    fs.writeFileSync(file, JSON.stringify(report));
  });
  after(() => fs.rmSync(scratch, { recursive: true, force: true }));

  test("states the rule, prints each target's ranks and the disagreements, and the plan carries them", async () => {
    const result = await runCli(['recommend', file, '--types', '2', '--across', 'worst-case']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /^Across {4}Chosen across 3 targets \(a, b, c\) by the worst case/m);
    assert.match(result.stderr, /^1\. {4}FC1 \(all blocks\)\s+\d\.\d{3}\s+\S+\s+#2\s+#2\s+#1 {2}chosen$/m);
    assert.match(result.stderr, /^Targets {3}disagree:$/m);
    assert.match(result.stderr, /^ {2}- MHA ranks 1 on a, 1 on b, 4 on c\.$/m);
    const plan = JSON.parse(result.stdout) as FreezePlan;
    assert.deepEqual(
      plan.choices.map((choice) => choice.component),
      ['FC1', 'FC2'],
    );
    assert.equal(plan.across?.rule, 'worst-case');
    assert.ok(plan.notes.some((note) => /by the worst case/.test(note)));
  });

  test('an unknown rule is a usage error', async () => {
    const result = await runCli(['recommend', file, '--types', '2', '--across', 'best']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--across takes mean-rank or worst-case/);
  });
});
