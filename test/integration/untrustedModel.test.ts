// A model file is untrusted input: the external-data locations it names may only reach files in
// its own folder. Real models (the external-data fixture with its locations rewritten), the real
// command line and the real worker (whose describe answer is what the overview and the panel show).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ModelFileError } from '../../extension/core/errors';
import { PlasticityReport } from '../../extension/core/report/reportSchema';
import { WorkerSupervisor } from '../../extension/worker/workerSupervisor';
import { assertOneLineError, fileFingerprint, modelPath, PAIRS, relativeError, runCli, tempDir } from '../support/fixtures';

const EXIT_MODEL = 3;
const FIXTURE = 'timm_op17_external.onnx';
const FIXTURE_LOCATION = 'timm_op17_external.onnx.data';
const FOLDERS = ['--reference', PAIRS.reference, '--target', PAIRS.target, '--pairs', '2'];

let scratch: string;
const supervisor = new WorkerSupervisor();
before(() => {
  scratch = tempDir('untrusted');
});
after(() => {
  supervisor.dispose();
  fs.rmSync(scratch, { recursive: true, force: true });
});

/**
 * The fixture with every tensor's location replaced by `location`, written as `<folder>/model.onnx`.
 * Same-length locations keep every protobuf length as it was, so the rest of the file is untouched.
 */
function modelNaming(folder: string, location: string): string {
  assert.equal(Buffer.byteLength(location), FIXTURE_LOCATION.length, `test locations keep the fixture's length: ${location}`);
  const bytes = fs.readFileSync(modelPath(FIXTURE));
  const from = Buffer.from(FIXTURE_LOCATION);
  let replaced = 0;
  for (let at = bytes.indexOf(from); at >= 0; at = bytes.indexOf(from, at + from.length), replaced++) bytes.write(location, at);
  assert.ok(replaced > 10, 'every external tensor names the data file');
  fs.mkdirSync(folder, { recursive: true });
  const file = path.join(folder, 'model.onnx');
  fs.writeFileSync(file, bytes);
  return file;
}

function copyData(to: string): void {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.copyFileSync(modelPath(`${FIXTURE_LOCATION}`), to);
}

async function describeRefusal(model: string): Promise<string> {
  const error = await supervisor.describe(model).then(
    () => undefined,
    (rejection: unknown) => rejection,
  );
  assert.ok(error instanceof ModelFileError, `describe refuses the model: ${String(error)}`);
  return error.message;
}

describe('external data outside the model folder is refused before anything is opened', () => {
  test("'../secret/...': exit 3 naming the tensor and the location; the data file, a pipe, is never opened", async () => {
    const location = '../secret/timm_op17_ext.o.data'.slice(0, FIXTURE_LOCATION.length);
    const model = modelNaming(path.join(scratch, 'escape', 'models'), location);
    // A named pipe: opening it for reading blocks until a writer comes, so following the
    // location would hang the run instead of ending it with the refusal.
    const pipe = path.join(scratch, 'escape', 'models', ...location.split('/'));
    fs.mkdirSync(path.dirname(pipe), { recursive: true });
    execFileSync('mkfifo', [pipe]);
    const result = await runCli(['analyze', model, ...FOLDERS], { timeoutMs: 60_000 });
    assertOneLineError(result, EXIT_MODEL, new RegExp(`model\\.onnx: tensor '[^']+' keeps its data at '\\.\\./secret/[^']+', which leaves the model's folder`));
    assert.match(await describeRefusal(model), /keeps its data at '\.\.\/secret\/[^']+', which leaves the model's folder/);
  });

  test("'../secret/...' with real weights there: still refused, though the analysis would run", async () => {
    const location = '../secret/timm_op17_ext.o.data'.slice(0, FIXTURE_LOCATION.length);
    const model = modelNaming(path.join(scratch, 'weights-outside', 'models'), location);
    copyData(path.join(scratch, 'weights-outside', 'models', ...location.split('/')));
    assertOneLineError(await runCli(['analyze', model, ...FOLDERS]), EXIT_MODEL, /which leaves the model's folder \('\.\.'\)/);
  });

  test("'../../../../etc/passwd': refused as leaving the folder (not opened and found too short)", async () => {
    const location = '../'.repeat(6) + 'etc/passwd';
    const model = modelNaming(path.join(scratch, 'passwd'), location);
    const result = await runCli(['analyze', model, ...FOLDERS]);
    assertOneLineError(result, EXIT_MODEL, /keeps its data at '(\.\.\/){6}etc\/passwd', which leaves the model's folder/);
    assert.ok(!result.stderr.includes('shorter'), result.stderr);
  });

  test('an absolute location: refused', async () => {
    const location = '/' + 'x'.repeat(FIXTURE_LOCATION.length - 6) + '.data';
    const model = modelNaming(path.join(scratch, 'absolute'), location);
    assertOneLineError(await runCli(['analyze', model, ...FOLDERS]), EXIT_MODEL, /keeps its data at '\/x+\.data', an absolute path/);
    assert.match(await describeRefusal(model), /an absolute path/);
  });

  test('a data file that is a link to a device is refused as not a regular file (it would never end)', async () => {
    const folder = path.join(scratch, 'device');
    const model = modelNaming(folder, FIXTURE_LOCATION);
    fs.symlinkSync('/dev/zero', path.join(folder, FIXTURE_LOCATION));
    assertOneLineError(await runCli(['analyze', model, ...FOLDERS], { timeoutMs: 60_000 }), EXIT_MODEL, /in 'timm_op17_external\.onnx\.data', which is not a regular file/);
  });
});

describe('what keeps working', () => {
  let baseline: PlasticityReport;
  before(async () => {
    baseline = await analyzeJson(modelPath(FIXTURE), 'baseline.json');
  });

  async function analyzeJson(model: string, name: string): Promise<PlasticityReport> {
    const out = path.join(scratch, name);
    const result = await runCli(['analyze', model, ...FOLDERS, '--ep', 'cpu', '--json', out]);
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(fs.readFileSync(out, 'utf8')) as PlasticityReport;
  }

  function assertSameMeans(report: PlasticityReport): void {
    report.blocks.forEach((block, b) => {
      for (const [component, cell] of Object.entries(block.components)) {
        const expected = baseline.blocks[b].components[component as keyof typeof block.components].mean;
        assert.ok(relativeError(cell.mean, expected) < 1e-6, `block ${b} ${component}: ${cell.mean} vs ${expected}`);
      }
    });
  }

  test('data in a subfolder of the model folder is read, and measures as the fixture does', async () => {
    const location = 'weights/' + FIXTURE_LOCATION.slice('weights/'.length);
    const folder = path.join(scratch, 'subfolder');
    const model = modelNaming(folder, location);
    copyData(path.join(folder, ...location.split('/')));
    const before = fileFingerprint(model);
    assertSameMeans(await analyzeJson(model, 'subfolder.json'));
    assert.deepEqual(fileFingerprint(model), before, 'the model file is not modified');
  });

  test('a data file that is a symlink in the model folder (the user put it there) is followed', async () => {
    const folder = path.join(scratch, 'linked');
    const model = modelNaming(folder, FIXTURE_LOCATION);
    copyData(path.join(scratch, 'elsewhere', 'blob'));
    fs.symlinkSync(path.join('..', 'elsewhere', 'blob'), path.join(folder, FIXTURE_LOCATION));
    assertSameMeans(await analyzeJson(model, 'linked.json'));
  });
});
