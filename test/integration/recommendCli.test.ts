// `plasticity-lens recommend` and `plasticity-lens overlay` as a user runs them: outputs, the
// summary, one-line errors and their exit codes, and files never overwritten.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FreezePlan } from '../../extension/core/recommend/freezePlan';
import { assertOneLineError, fileFingerprint, modelPath, runCli, tempDir } from '../support/fixtures';
import { goldenByStyle, reportFromGolden } from '../support/goldenReports';
import type { ModelExplorerNodeData } from '../../extension/core/recommend/graphOverlays';

const EXIT = { done: 0, usage: 2, model: 3, report: 4 };
const goldens = goldenByStyle();
let scratch: string;
let timmReport: string;
let syntheticReport: string;

function writeReport(name: string, value: unknown): string {
  const file = path.join(scratch, name);
  fs.writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  return file;
}

before(() => {
  scratch = tempDir('recommend-cli');
  timmReport = writeReport('timm.json', reportFromGolden(goldens.get('timm')!));
  syntheticReport = writeReport('synthetic.json', reportFromGolden(goldens.get('hf_vit')!, { synthetic: true }));
});
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

describe('recommend', () => {
  test('prints the JSON plan on stdout and the summary on stderr', async () => {
    const result = await runCli(['recommend', timmReport, '--types', '2']);
    assert.equal(result.code, EXIT.done, result.stderr);
    const plan = JSON.parse(result.stdout) as FreezePlan;
    assert.equal(plan.choices.length, 2);
    assert.equal(plan.source.report, timmReport);
    assert.equal(plan.source.model.fileChecked, true);
    assert.match(result.stderr, /^Budget {4}2 component types, by component type in all blocks$/m);
    assert.match(result.stderr, /^1\. {4}\S+ \(all blocks\)\s+\d\.\d{3}\s+\S+ {2}chosen$/m);
  });

  test('--out writes the file, prints the summary, and leaves the report alone', async () => {
    const before = fileFingerprint(timmReport);
    const out = path.join(scratch, 'plan.py');
    const result = await runCli(['recommend', timmReport, '--params', '10%', '--cells', '--format', 'pytorch', '--naming', 'torchvision', '--out', out]);
    assert.equal(result.code, EXIT.done, result.stderr);
    assert.match(result.stdout, /pytorch configuration written to .*plan\.py$/m);
    assert.match(fs.readFileSync(out, 'utf8'), /^def apply\(model, prefix=""\):$/m);
    assert.match(fs.readFileSync(out, 'utf8'), /"encoder\.layers\.encoder_layer_\d\./);
    assert.deepEqual(fileFingerprint(timmReport), before);
  });

  test('every format and naming is accepted', async () => {
    for (const format of ['peft', 'yaml']) {
      const result = await runCli(['recommend', timmReport, '--types', '1', '--format', format, '--naming', 'hf-clip', '--no-head']);
      assert.equal(result.code, EXIT.done, result.stderr);
      assert.match(result.stdout, /vision_model\.encoder\.layers\.0\./, format);
    }
  });

  test('synthetic reports carry the warning in the output and the summary', async () => {
    const result = await runCli(['recommend', syntheticReport, '--types', '1', '--format', 'yaml']);
    assert.equal(result.code, EXIT.done, result.stderr);
    assert.match(result.stdout, /^# WARNING: The report was measured on synthetic images/m);
    assert.match(result.stderr, /^! The report was measured on synthetic images/m);
  });

  test('a model file that is gone or different only loses the exact head names', async () => {
    const report = reportFromGolden(goldens.get('timm')!);
    report.model.path = path.join(scratch, 'gone.onnx');
    const result = await runCli(['recommend', writeReport('gone.json', report), '--types', '1']);
    assert.equal(result.code, EXIT.done, result.stderr);
    const plan = JSON.parse(result.stdout) as FreezePlan;
    assert.equal(plan.source.model.fileChecked, false);
    assert.ok(plan.notes.some((note) => /gone\.onnx, is missing: head and final-norm names are the framework's alternatives/.test(note)));
    assert.deepEqual(
      plan.trainable.filter((group) => group.role === 'head').map((group) => group.match),
      ['any'],
    );
    const explicit = await runCli(['recommend', timmReport, '--types', '1', '--model', modelPath('hf_vit_op14_dyn.onnx')]);
    assertOneLineError(explicit, EXIT.model, /hf_vit_op14_dyn\.onnx is not the model the report measured \(its sha256 differs\); pass the measured model with --model FILE\.$/);
  });

  test('usage errors: one line, exit 2', async () => {
    const before = fileFingerprint(timmReport);
    const cases: [string[], RegExp][] = [
      [[timmReport], /needs a budget: --types N .* or --params N\|P%/],
      [[timmReport, '--types', '1', '--params', '5%'], /Give one budget/],
      [[timmReport, '--types', '2', '--cells'], /to choose single \(block, component\) cells, give a parameter budget/],
      [[timmReport, '--params', 'lots'], /^plasticity-lens: --params: A parameter budget is a count/],
      [[timmReport, '--params', '100'], /smaller than the cheapest choice, .* raise it to at least 192 parameters\.$/],
      [[timmReport, '--types', '1', '--format', 'toml'], /--format takes one of json, pytorch, peft, yaml \(got 'toml'\)/],
      [[timmReport, '--types', '1', '--naming', 'keras'], /--naming takes one of timm, hf, hf-dinov2, hf-dinov3, torchvision, clip, hf-clip, timm-beit, hf-beit, onnx/],
      [[timmReport, '--types', '1', '--frobnicate'], /frobnicate.*see plasticity-lens recommend --help/],
      [['--types', '1'], /takes one report file/],
      [[timmReport, '--types', '1', '--out', timmReport], /would overwrite the report or the model/],
      [[timmReport, '--types', '1', '--out', modelPath('timm_op11.onnx')], /would overwrite the report or the model/],
    ];
    const results = await Promise.all(cases.map(([args]) => runCli(['recommend', ...args])));
    results.forEach((result, index) => assertOneLineError(result, EXIT.usage, cases[index][1]));
    assert.deepEqual(fileFingerprint(timmReport), before);
  });

  test('unreadable or foreign reports: one line naming the file, exit 4', async () => {
    assertOneLineError(
      await runCli(['recommend', path.join(scratch, 'none.json'), '--types', '1']),
      EXIT.report,
      /none\.json cannot be read \(ENOENT\); pass the file written by 'plasticity-lens analyze MODEL --json FILE'/,
    );
    assertOneLineError(await runCli(['recommend', writeReport('broken.json', '{"schemaVersion": 1,'), '--types', '1']), EXIT.report, /broken\.json is not JSON/);
    assertOneLineError(await runCli(['recommend', writeReport('other.json', { hello: 'world' }), '--types', '1']), EXIT.report, /other\.json is not a Plasticity Lens report/);
    const future = { ...reportFromGolden(goldens.get('timm')!), schemaVersion: 2 };
    assertOneLineError(
      await runCli(['recommend', writeReport('future.json', future), '--types', '1']),
      EXIT.report,
      /future\.json is a report of schemaVersion 2, this version reads 1/,
    );
    const partial = reportFromGolden(goldens.get('timm')!) as unknown as { blocks: { components: Record<string, unknown> }[] };
    delete partial.blocks[1].components.FC2;
    assertOneLineError(
      await runCli(['recommend', writeReport('partial.json', partial), '--types', '1']),
      EXIT.report,
      /partial\.json is an incomplete Plasticity Lens report \(block 1 FC2 lacks/,
    );
  });

  test('help', async () => {
    const result = await runCli(['recommend', '--help']);
    assert.equal(result.code, EXIT.done);
    assert.match(result.stdout, /^Usage: plasticity-lens recommend REPORT\.json/);
    const main = await runCli(['--help']);
    assert.match(main.stdout, /^ {2}recommend REPORT/m);
    assert.match(main.stdout, /^ {2}overlay REPORT/m);
  });
});

describe('overlay', () => {
  test('writes Model Explorer node data and a Netron attachment', async () => {
    const netron = path.join(scratch, 'overlay.netron.json');
    const written = await runCli(['overlay', timmReport, '--format', 'netron', '--out', netron]);
    assert.equal(written.code, EXIT.done, written.stderr);
    assert.match(written.stdout, /netron overlay written to/);
    assert.equal((JSON.parse(fs.readFileSync(netron, 'utf8')) as { signature: string }).signature, 'netron:attachment');
    const explorer = await runCli(['overlay', timmReport, '--format', 'model-explorer']);
    assert.equal(explorer.code, EXIT.done, explorer.stderr);
    const data = JSON.parse(explorer.stdout) as ModelExplorerNodeData;
    assert.ok(Object.keys(data.results).length > 50);
  });

  test('errors: format 2, model missing or different 3, report 4', async () => {
    assertOneLineError(await runCli(['overlay', timmReport]), EXIT.usage, /--format takes model-explorer or netron/);
    assertOneLineError(await runCli(['overlay', timmReport, '--format', 'tensorboard']), EXIT.usage, /\(got 'tensorboard'\)/);
    const report = reportFromGolden(goldens.get('timm')!);
    report.model.path = path.join(scratch, 'gone.onnx');
    assertOneLineError(await runCli(['overlay', writeReport('gone-model.json', report), '--format', 'netron']), EXIT.model, /gone\.onnx, is missing; pass it with --model FILE\.$/);
    assertOneLineError(await runCli(['overlay', timmReport, '--format', 'netron', '--model', modelPath('timm_op14.onnx')]), EXIT.model, /is not the model the report measured/);
    assertOneLineError(await runCli(['overlay', path.join(scratch, 'none.json'), '--format', 'netron']), EXIT.report, /cannot be read/);
    assertOneLineError(await runCli(['overlay', timmReport, '--format', 'netron', '--out', timmReport]), EXIT.usage, /would overwrite/);
  });
});
