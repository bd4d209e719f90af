// Several targets in one run, through the real command line and worker: each target's numbers
// equal a separate single-target run over the same pairs (to 1e-6), in both modes, with
// --target repeated and with --targets DIR; the report's per-target section.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PlasticityReport } from '../../extension/core/report/reportSchema';
import { assertOneLineError, GOLDEN_COMPONENTS, modelPath, PAIRS, relativeError, runCli, tempDir } from '../support/fixtures';

const MODEL = modelPath('timm_op14.onnx');
const EXIT = { done: 0, usage: 2 };

let scratch: string;
/** Target folders: the fixture targets, the targets in reverse order, the reference images in reverse order. */
let targets: string[];
const file = (name: string) => path.join(scratch, name);
const readReport = (name: string) => JSON.parse(fs.readFileSync(file(name), 'utf8')) as PlasticityReport;

async function analyze(name: string, ...args: string[]): Promise<PlasticityReport> {
  const result = await runCli(['analyze', MODEL, '--ep', 'cpu', ...args, '--json', file(name)]);
  assert.equal(result.code, EXIT.done, result.stderr);
  return readReport(name);
}

/** A copy of `from` whose file i is `from`'s file n-1-i. */
function reversedCopy(from: string, to: string): string {
  const names = fs.readdirSync(from).sort();
  fs.mkdirSync(to, { recursive: true });
  names.forEach((name, index) => fs.copyFileSync(path.join(from, names[names.length - 1 - index]), path.join(to, name)));
  return to;
}

function assertSameStatistics(actual: PlasticityReport['blocks'], expected: PlasticityReport['blocks'], what: string): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((block, b) => {
    for (const component of GOLDEN_COMPONENTS) {
      const got = block.components[component];
      const want = expected[b].components[component];
      assert.equal(got.n, want.n, `${what} block ${b} ${component} n`);
      for (const [key, value, reference] of [
        ['mean', got.mean, want.mean],
        ['std', got.std, want.std],
        ['ci95 low', got.ci95[0], want.ci95[0]],
        ['ci95 high', got.ci95[1], want.ci95[1]],
      ] as const) {
        assert.ok(relativeError(value, reference) < 1e-6, `${what} block ${b} ${component} ${key}: ${value} vs ${reference}`);
      }
    }
  });
}

before(async () => {
  scratch = tempDir('targets');
  targets = [PAIRS.target, reversedCopy(PAIRS.target, file('set/b-target-reversed')), reversedCopy(PAIRS.reference, file('set/c-reference-reversed'))];
  fs.symlinkSync(PAIRS.target, file('set/a-target'));
});
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

for (const mode of ['isolated', 'in-context'] as const) {
  describe(`three targets in one run, ${mode}`, () => {
    let multi: PlasticityReport;
    let singles: PlasticityReport[];
    before(async () => {
      // 3 pairs per probe run: the last batch of the 8 pairs is a partial one.
      multi = await analyze(`multi-${mode}.json`, '--mode', mode, '--reference', PAIRS.reference, ...targets.flatMap((target) => ['--target', target]), '--batch-pairs', '3');
      singles = [];
      for (const [index, target] of targets.entries())
        singles.push(await analyze(`single-${mode}-${index}.json`, '--mode', mode, '--reference', PAIRS.reference, '--target', target));
    });

    test('each target equals its separate single-target run (to 1e-6): blocks, intervals, summary and ranking', () => {
      assert.equal(multi.targets?.length, 3);
      multi.targets!.forEach((target, k) => {
        assertSameStatistics(target.blocks, singles[k].blocks, target.name);
        assert.equal(target.pairs, singles[k].settings.pairs);
        assert.deepEqual(target.pairIndices, singles[k].settings.pairIndices);
        for (const component of GOLDEN_COMPONENTS) {
          assert.equal(target.summary[component].rank, singles[k].summary[component].rank, `${target.name} ${component} rank`);
          assert.ok(relativeError(target.summary[component].mean, singles[k].summary[component].mean) < 1e-6);
          assert.equal(target.summary[component].parameterCount, singles[k].summary[component].parameterCount);
        }
      });
    });

    test('the top level is the first target, as a single-target report', () => {
      assertSameStatistics(multi.blocks, singles[0].blocks, 'top level');
      assert.deepEqual(multi.summary, multi.targets![0].summary);
      assert.equal(multi.settings.pairs, 8);
      assert.deepEqual(multi.settings.pairIndices, [[0, 8]]);
      assert.equal(multi.settings.inputs.target, targets[0]);
      assert.deepEqual(multi.settings.inputs.targets, targets);
      assert.equal(singles[0].targets, undefined);
      assert.equal(singles[0].settings.inputs.targets, undefined);
    });
  });
}

describe('the per-target section', () => {
  test('names, folders, rankings and mean input distances', () => {
    const multi = readReport('multi-isolated.json');
    const names = multi.targets!.map((target) => target.name);
    assert.deepEqual(names, ['target', 'b-target-reversed', 'c-reference-reversed']);
    for (const target of multi.targets!) {
      assert.deepEqual(Object.keys(target).sort(), ['blocks', 'folder', 'inputDistanceStd', 'meanInputDistance', 'name', 'pairIndices', 'pairs', 'ranking', 'summary', 'warnings']);
      assert.deepEqual(
        target.ranking,
        [...GOLDEN_COMPONENTS].sort((a, b) => target.summary[a].rank - target.summary[b].rank),
      );
      assert.ok(target.meanInputDistance > 0 && Number.isFinite(target.inputDistanceStd), `${target.name}: ${target.meanInputDistance}`);
      assert.deepEqual(target.warnings, []);
    }
    // The same target images in another order make other pairs, so another mean input distance.
    assert.notEqual(multi.targets![0].meanInputDistance, multi.targets![1].meanInputDistance);
  });

  test('--targets DIR reads one target per subfolder, sorted by name, and gives the same numbers', async () => {
    const report = await analyze('folder-of-folders.json', '--reference', PAIRS.reference, '--targets', file('set'));
    assert.deepEqual(
      report.targets!.map((target) => target.name),
      ['a-target', 'b-target-reversed', 'c-reference-reversed'],
    );
    const multi = readReport('multi-isolated.json');
    report.targets!.forEach((target, k) => assertSameStatistics(target.blocks, multi.targets![k].blocks, target.name));
  });

  test('the table lists every target', async () => {
    const result = await runCli(['analyze', MODEL, '--ep', 'cpu', '--reference', PAIRS.reference, '--target', targets[0], '--target', targets[1], '--pairs', '4']);
    assert.equal(result.code, EXIT.done, result.stderr);
    assert.match(result.stdout, /Targets against the same reference pairs/);
    assert.match(result.stdout, /\nb-target-reversed\s+4\s+\d+\.\d\d/);
  });

  test('several targets without a reference, or a target twice, are refused in one line', async () => {
    assertOneLineError(await runCli(['analyze', MODEL, '--ep', 'cpu', '--target', targets[0], '--target', targets[1]]), EXIT.usage, /give --reference DIR too/);
    assertOneLineError(
      await runCli(['analyze', MODEL, '--ep', 'cpu', '--reference', PAIRS.reference, '--target', targets[0], '--target', file('set/a-target')]),
      EXIT.usage,
      /is given twice/,
    );
  });
});
