// Shards and comparisons through the real command line: two `analyze --pairs-from` shards merged
// equal one run over all pairs, and `compare` prints, writes JSON and refuses what differs.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PlasticityComparison } from '../../extension/core/compare/reportComparison';
import { BlockReport, PlasticityReport } from '../../extension/core/report/reportSchema';
import { assertOneLineError, GOLDEN_COMPONENTS, modelPath, PAIRS, relativeError, runCli, tempDir } from '../support/fixtures';

const EXIT = { done: 0, usage: 2, report: 4 };
const FOLDERS = ['--reference', PAIRS.reference, '--target', PAIRS.target, '--ep', 'cpu'];
const MODEL = modelPath('timm_op14.onnx');

let scratch: string;
const file = (name: string) => path.join(scratch, name);
const readReport = (name: string) => JSON.parse(fs.readFileSync(file(name), 'utf8')) as PlasticityReport;

/** Each (block, component) cell of `merged` has the pairs of `single`'s, and its mean, std and interval to 1e-6. */
function assertSameCells(merged: BlockReport[], single: BlockReport[], label: string): void {
  assert.equal(merged.length, single.length);
  merged.forEach((block, b) => {
    for (const component of GOLDEN_COMPONENTS) {
      const stats = block.components[component];
      const expected = single[b].components[component];
      assert.equal(stats.n, expected.n);
      for (const key of ['mean', 'std'] as const)
        assert.ok(relativeError(stats[key], expected[key]) < 1e-6, `${label} block ${b} ${component} ${key}: ${stats[key]} vs ${expected[key]}`);
      assert.ok(relativeError(stats.ci95[0], expected.ci95[0]) < 1e-6 && relativeError(stats.ci95[1], expected.ci95[1]) < 1e-6, `${label} block ${b} ${component} ci95`);
    }
  });
}

async function analyze(name: string, ...args: string[]): Promise<PlasticityReport> {
  const result = await runCli(['analyze', ...args, '--json', file(name)]);
  assert.equal(result.code, EXIT.done, result.stderr);
  return readReport(name);
}

before(async () => {
  scratch = tempDir('compare');
  // All 8 fixture pairs at once, and as shards 0–2 and 3–7.
  await analyze('all.json', MODEL, ...FOLDERS);
  await analyze('shard-0.json', MODEL, ...FOLDERS, '--pairs-from', '0', '--pairs', '3');
  await analyze('shard-3.json', MODEL, ...FOLDERS, '--pairs-from', '3');
  await analyze('in-context.json', MODEL, ...FOLDERS, '--mode', 'in-context', '--pairs', '4');
  await analyze('clip.json', modelPath('hf_clip_op17_dyn.onnx'), ...FOLDERS, '--pairs', '4');
  // Two targets against the same reference: the fixture targets, and the reference images in reverse order.
  const reversed = file('reference-reversed');
  fs.mkdirSync(reversed);
  const names = fs.readdirSync(PAIRS.reference).sort();
  names.forEach((name, index) => fs.copyFileSync(path.join(PAIRS.reference, names[names.length - 1 - index]), path.join(reversed, name)));
  const targets = ['--reference', PAIRS.reference, '--target', PAIRS.target, '--target', reversed, '--ep', 'cpu'];
  await analyze('targets-all.json', MODEL, ...targets);
  await analyze('targets-0.json', MODEL, ...targets, '--pairs-from', '0', '--pairs', '3');
  await analyze('targets-3.json', MODEL, ...targets, '--pairs-from', '3');
});
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

describe('analyze --pairs-from and merge', () => {
  test('shards record the pairs they measured', () => {
    assert.deepEqual(readReport('all.json').settings.pairIndices, [[0, 8]]);
    assert.deepEqual(readReport('shard-0.json').settings.pairIndices, [[0, 3]]);
    const later = readReport('shard-3.json');
    assert.deepEqual(later.settings.pairIndices, [[3, 8]]);
    assert.equal(later.settings.pairs, 5);
    assert.ok(later.settings.inputs.notes.includes('Using pairs 3 to 7 of 8 available pairs.'), later.settings.inputs.notes.join(' | '));
  });

  test('merging the two shards gives the single run over all pairs (to 1e-6), also recomputed here from the shards', async () => {
    const result = await runCli(['merge', file('shard-3.json'), file('shard-0.json'), '--out', file('merged.json')]);
    assert.equal(result.code, EXIT.done, result.stderr);
    assert.match(result.stdout, /Merged report of 8 pairs written to /);
    const merged = readReport('merged.json');
    const single = readReport('all.json');
    const shards = [readReport('shard-0.json'), readReport('shard-3.json')];
    assert.deepEqual(merged.settings.pairIndices, [[0, 8]]);
    assert.equal(merged.settings.pairs, 8);
    assertSameCells(merged.blocks, single.blocks, 'merged');
    merged.blocks.forEach((block, b) => {
      for (const component of GOLDEN_COMPONENTS) {
        const stats = block.components[component];
        // Independently: the pooled mean and the sum of squares about it, from the shards' numbers.
        const parts = shards.map((shard) => shard.blocks[b].components[component]);
        const n = parts[0].n + parts[1].n;
        const mean = (parts[0].n * parts[0].mean + parts[1].n * parts[1].mean) / n;
        const squares = parts.reduce((sum, part) => sum + (part.n - 1) * part.std ** 2 + part.n * (part.mean - mean) ** 2, 0);
        assert.ok(relativeError(stats.mean, mean) < 1e-12 && relativeError(stats.std, Math.sqrt(squares / (n - 1))) < 1e-12);
      }
    });
    for (const component of GOLDEN_COMPONENTS) {
      assert.equal(merged.summary[component].rank, single.summary[component].rank);
      assert.ok(relativeError(merged.summary[component].mean, single.summary[component].mean) < 1e-6);
    }
    assert.equal(merged.mergedFrom?.length, 2);
  });

  test('shards of a multi-target run merge target by target into the single run', async () => {
    const result = await runCli(['merge', file('targets-3.json'), file('targets-0.json'), '--out', file('targets-merged.json')]);
    assert.equal(result.code, EXIT.done, result.stderr);
    const merged = readReport('targets-merged.json');
    const single = readReport('targets-all.json');
    assert.equal(merged.targets?.length, 2);
    merged.targets!.forEach((target, k) => {
      const reference = single.targets![k];
      assert.equal(target.name, reference.name);
      assert.equal(target.pairs, reference.pairs);
      assert.deepEqual(target.pairIndices, reference.pairIndices);
      assert.deepEqual(target.ranking, reference.ranking);
      assert.ok(relativeError(target.meanInputDistance, reference.meanInputDistance) < 1e-9);
      assert.ok(relativeError(target.inputDistanceStd, reference.inputDistanceStd) < 1e-6);
      assertSameCells(target.blocks, reference.blocks, target.name);
    });
    // The top level stays the first target's, as in a single run.
    assert.deepEqual(merged.summary, merged.targets![0].summary);
    // A multi-target shard and a single-target one are not shards of one run.
    assertOneLineError(
      await runCli(['merge', file('targets-0.json'), file('shard-3.json'), '--out', file('x.json')]),
      EXIT.usage,
      /shard-3\.json differs from targets-0\.json in settings\.inputs\.targets/,
    );
  });

  test('overlapping shards, shards of another model and a bad --pairs-from are refused in one line', async () => {
    assertOneLineError(await runCli(['merge', file('all.json'), file('shard-3.json'), '--out', file('x.json')]), EXIT.usage, /all\.json and shard-3\.json both measured pair 3/);
    assertOneLineError(
      await runCli(['merge', file('shard-0.json'), file('clip.json'), '--out', file('x.json')]),
      EXIT.usage,
      /clip\.json differs from shard-0\.json in model\.sha256/,
    );
    assertOneLineError(await runCli(['merge', file('shard-0.json'), file('shard-3.json')]), EXIT.usage, /needs --out/);
    assertOneLineError(await runCli(['analyze', MODEL, ...FOLDERS, '--pairs-from', 'two']), EXIT.usage, /--pairs-from takes an integer of at least 0 \(got 'two'\)/);
    assertOneLineError(await runCli(['analyze', MODEL, ...FOLDERS, '--pairs-from', '8']), EXIT.report, /Skipping 8 pairs leaves none: the inputs have 8/);
    assert.ok(!fs.existsSync(file('x.json')));
  });
});

describe('compare', () => {
  test('prints the ranking side by side and every cell with its Welch test; --json - writes the comparison', async () => {
    const table = await runCli(['compare', file('all.json'), file('shard-0.json')]);
    assert.equal(table.code, EXIT.done, table.stderr);
    assert.match(table.stdout, /^Ranking of component types/m);
    assert.match(table.stdout, /^shard-0\.json − all\.json per block/m);
    const rows = table.stdout.split('\n').filter((line) => /^\d+\s+(LN1|MHA|LN2|FC1|FC2)\s/.test(line));
    assert.equal(rows.length, 3 * 5);

    const json = await runCli(['compare', file('all.json'), file('shard-0.json'), '--json', '-']);
    assert.equal(json.code, EXIT.done, json.stderr);
    const comparison = JSON.parse(json.stdout) as PlasticityComparison;
    assert.match(json.stderr, /^Ranking of component types/m);
    const all = readReport('all.json');
    const shard = readReport('shard-0.json');
    for (const cell of comparison.differences[0].cells) {
      const a = all.blocks[cell.block].components[cell.component];
      const b = shard.blocks[cell.block].components[cell.component];
      assert.ok(Math.abs(cell.difference - (b.mean - a.mean)) < 1e-12);
      const [va, vb] = [a.std ** 2 / a.n, b.std ** 2 / b.n];
      assert.ok(relativeError(cell.degreesOfFreedom!, (va + vb) ** 2 / (va ** 2 / (a.n - 1) + vb ** 2 / (b.n - 1))) < 1e-9);
    }
  });

  test('reports of another architecture or mode are refused with the field that differs', async () => {
    assertOneLineError(
      await runCli(['compare', file('all.json'), file('in-context.json')]),
      EXIT.usage,
      /in-context\.json differs from all\.json in settings\.mode \(in-context vs isolated\)/,
    );
    assertOneLineError(
      await runCli(['compare', file('all.json'), file('clip.json')]),
      EXIT.usage,
      /clip\.json differs from all\.json in model\.architecture\.activation \(quick_gelu vs gelu\)/,
    );
    assertOneLineError(await runCli(['compare', file('all.json')]), EXIT.usage, /compare takes at least two report files/);
    fs.writeFileSync(file('not-json.json'), 'nope');
    assertOneLineError(await runCli(['compare', file('all.json'), file('not-json.json')]), EXIT.report, /not-json\.json is not JSON/);
  });
});
