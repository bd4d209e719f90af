// The real command line in a child process: what a user types, what they see, the exit codes
// scripts rely on, and that Ctrl-C stops everything it started.
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readOnnxModel } from '../../extension/core/onnx/onnxModel';
import { PlasticityReport } from '../../extension/core/report/reportSchema';
import { discoverVit } from '../../extension/core/vit/discoverVit';
import { writeScaledTensorModel } from '../support/derivedModels';
import {
  childProcessesMatching,
  CLI,
  GOLDEN_COMPONENTS,
  goldenBlockStatistics,
  goldenFixtures,
  modelPath,
  PAIRS,
  REPO_ROOT,
  relativeError,
  assertOneLineError,
  runCli,
  tempDir,
  waitForProcessExit,
} from '../support/fixtures';

const EXIT = { done: 0, usage: 2, model: 3, input: 4, cancelled: 130 };
const FIXTURE_MODEL = modelPath('timm_op14.onnx');
const FOLDERS = ['--reference', PAIRS.reference, '--target', PAIRS.target];

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Block rows of the table: "<index>  <mean> ± <half> ..." with one cell per component. */
function tableBlockRows(table: string): string[] {
  return table.split('\n').filter((line) => /^\d+\s+(-?\d+\.\d+ ± \d+\.\d+\s*){5}$/.test(line));
}

let scratch: string;
before(() => {
  scratch = tempDir('cli');
});
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

describe('successful runs', () => {
  test('no arguments analyses the shipped sample and prints the table', async () => {
    const result = await runCli([]);
    assert.equal(result.code, EXIT.done, result.stderr);
    const blocks = Number(/\((\d+) blocks,/.exec(result.stdout)?.[1]);
    assert.ok(blocks > 0, `the model line gives the block count: ${result.stdout}`);
    assert.match(result.stdout, /^Model\s+sample-vit\.onnx/m);
    assert.match(result.stdout, /^Mode\s+isolated \(the paper's measure\)/m);
    assert.match(result.stdout, /^Provider\s+\w+/m);
    assert.match(result.stdout, /samples[\\/]reference vs .*samples[\\/]target/);
    assert.equal(tableBlockRows(result.stdout).length, blocks, 'one row per block');
    assert.match(result.stdout, /^Ranking/m);
    for (const component of GOLDEN_COMPONENTS) assert.match(result.stdout, new RegExp(`^  [1-5]\\. ${component}\\s`, 'm'));
  });

  test('--json - prints a report on stdout whose numbers match the PyTorch goldens', async () => {
    const golden = goldenFixtures().find((candidate) => candidate.model === 'timm_op14.onnx')!;
    const result = await runCli(['analyze', FIXTURE_MODEL, ...FOLDERS, '--ep', 'cpu', '--json', '-']);
    assert.equal(result.code, EXIT.done, result.stderr);
    const report = JSON.parse(result.stdout) as PlasticityReport; // stdout is the JSON alone
    assert.equal(report.schemaVersion, 1);
    assert.equal(report.model.path, FIXTURE_MODEL);
    const expected = goldenBlockStatistics(golden.isolated);
    report.blocks.forEach((block, b) => {
      GOLDEN_COMPONENTS.forEach((component, c) => {
        const mean = block.components[component].mean;
        assert.ok(relativeError(mean, expected[b][c].mean) < 1e-4, `block ${b} ${component}: ${mean} vs golden ${expected[b][c].mean}`);
      });
    });
    // The table goes to stderr, so a pipe gets clean JSON and the terminal still shows the summary.
    assert.match(result.stderr, /^Ranking/m);
  });

  test('--json FILE writes the report and still prints the table', async () => {
    const file = path.join(scratch, 'report.json');
    const result = await runCli(['analyze', FIXTURE_MODEL, ...FOLDERS, '--ep', 'cpu', '--json', file]);
    assert.equal(result.code, EXIT.done, result.stderr);
    const report = JSON.parse(fs.readFileSync(file, 'utf8')) as PlasticityReport;
    assert.equal(report.model.path, FIXTURE_MODEL);
    assert.equal(report.settings.pairs, 8);
    assert.match(result.stdout, /^Ranking/m);
    assert.ok(result.stdout.includes(file), 'says where the report went');
  });

  test("--mode in-context is labelled as such, never as the paper's measure", async () => {
    const result = await runCli(['analyze', FIXTURE_MODEL, ...FOLDERS, '--ep', 'cpu', '--mode', 'in-context']);
    assert.equal(result.code, EXIT.done, result.stderr);
    assert.match(result.stdout, /^Mode\s+in-context/m);
    assert.ok(!result.stdout.includes("(the paper's measure)"), result.stdout);
  });

  test('--mode in-context refuses, in one line, a model whose blocks hold a part it does not rebuild; isolated mode measures it', async () => {
    // The last block's MLP activation scaled by 2 before FC2 reads it, as a layer scale would be.
    const model = readOnnxModel(FIXTURE_MODEL);
    const fc2Input = discoverVit(model).blocks.at(-1)!.fc2.input;
    const scaled = path.join(scratch, 'scaled', 'layer-scale.onnx');
    writeScaledTensorModel(FIXTURE_MODEL, fc2Input, 2, scaled);
    assertOneLineError(
      await runCli(['analyze', scaled, ...FOLDERS, '--ep', 'cpu', '--mode', 'in-context']),
      EXIT.model,
      /layer-scale\.onnx: in-context mode rebuilds the blocks' forward pass, but it differs from the model's own output .* Use --mode isolated\./,
    );
    const isolated = await runCli(['analyze', scaled, ...FOLDERS, '--ep', 'cpu', '--pairs', '2']);
    assert.equal(isolated.code, EXIT.done, isolated.stderr);
  });

  test('without image folders the inputs are synthetic and the table says so', async () => {
    const result = await runCli(['analyze', FIXTURE_MODEL, '--ep', 'cpu', '--pairs', '4']);
    assert.equal(result.code, EXIT.done, result.stderr);
    assert.match(result.stdout, /^Inputs\s+4 pairs, SYNTHETIC/m);
    assert.equal(tableBlockRows(result.stdout).length, 3);
  });

  // The usage calls analyze the default command, and `plasticity-lens --pairs 4 MODEL` works.
  test('a model path without the word analyze is analysed', async () => {
    const result = await runCli([FIXTURE_MODEL, '--ep', 'cpu', '--pairs', '2']);
    assert.equal(result.code, EXIT.done, result.stderr);
  });

  test('--help and analyze --help exit 0 with usage on stdout', async () => {
    for (const args of [['--help'], ['analyze', '--help']]) {
      const result = await runCli(args);
      assert.equal(result.code, EXIT.done, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stdout, /Usage: plasticity-lens/);
      assert.equal(result.stderr, '');
    }
  });
});

describe('usage errors exit 2 with one line', () => {
  const cases: { name: string; args: string[]; mentions: RegExp }[] = [
    { name: '--mode sideways', args: ['analyze', FIXTURE_MODEL, '--mode', 'sideways'], mentions: /--mode.*sideways/ },
    { name: '--pairs 0', args: ['analyze', FIXTURE_MODEL, '--pairs', '0'], mentions: /--pairs/ },
    { name: '--ep nonsense', args: ['analyze', FIXTURE_MODEL, '--ep', 'nonsense'], mentions: /--ep.*nonsense/ },
    { name: 'an unknown option', args: ['analyze', FIXTURE_MODEL, '--frobnicate'], mentions: /--frobnicate/ },
    { name: 'two models', args: ['analyze', FIXTURE_MODEL, modelPath('timm_op11.onnx')], mentions: /one model/ },
  ];
  for (const { name, args, mentions } of cases) {
    test(name, async () => assertOneLineError(await runCli(args), EXIT.usage, mentions));
  }
});

describe('an execution provider that cannot run exits 3 with one line saying what to do', () => {
  test('--ep webgpu with no Vulkan driver names webgpu and the way out', async (context) => {
    if (process.platform !== 'linux') return context.skip('the Vulkan driver is chosen through the environment on Linux only');
    // A driver manifest that does not exist: WebGPU finds no adapter, whatever the machine has.
    const result = await runCli(['analyze', FIXTURE_MODEL, '--ep', 'webgpu', '--pairs', '2'], {
      env: { VK_ICD_FILENAMES: path.join(scratch, 'no-driver.json'), VK_DRIVER_FILES: path.join(scratch, 'no-driver.json') },
    });
    assertOneLineError(result, EXIT.model, /'webgpu' cannot run here: no usable GPU adapter.*--ep auto.*--ep cpu/);
  });

  test('--ep cuda without its provider libraries says how to install them', async (context) => {
    if (process.platform !== 'linux' || process.arch !== 'x64') return context.skip('CUDA is a Linux x64 provider of onnxruntime-node');
    const result = await runCli(['analyze', FIXTURE_MODEL, '--ep', 'cuda', '--pairs', '2']);
    if (result.code === EXIT.done) return context.skip('CUDA runs on this machine');
    assertOneLineError(result, EXIT.model, /'cuda' cannot run here: .*(ONNXRUNTIME_NODE_INSTALL=cuda12|CUDA 12|NVIDIA driver)/);
  });
});

describe('unusable models exit 3 naming the file', () => {
  test('missing file', async () => {
    const missing = path.join(scratch, 'missing-model.onnx');
    assertOneLineError(await runCli(['analyze', missing]), EXIT.model, /missing-model\.onnx/);
  });

  test('truncated file', async () => {
    const truncated = path.join(scratch, 'truncated-model.onnx');
    const bytes = fs.readFileSync(FIXTURE_MODEL);
    fs.writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
    assertOneLineError(await runCli(['analyze', truncated]), EXIT.model, /truncated-model\.onnx/);
  });

  test('a model that is not a ViT', async () => {
    assertOneLineError(await runCli(['analyze', modelPath('cnn_op13.onnx')]), EXIT.model, /cnn_op13\.onnx/);
  });

  test('a text file named .onnx', async () => {
    const text = path.join(scratch, 'notes-not-a-model.onnx');
    fs.writeFileSync(text, 'These are my notes about the model, not the model.\n');
    assertOneLineError(await runCli(['analyze', text]), EXIT.model, /notes-not-a-model\.onnx/);
  });
});

describe('unusable input data exits 4 naming the path', () => {
  test('missing reference folder', async () => {
    const missing = path.join(scratch, 'no-such-folder');
    assertOneLineError(await runCli(['analyze', FIXTURE_MODEL, '--reference', missing, '--target', PAIRS.target]), EXIT.input, new RegExp(escapeRegExp(missing)));
  });

  test('empty folder', async () => {
    const empty = fs.mkdtempSync(path.join(scratch, 'empty-'));
    assertOneLineError(await runCli(['analyze', FIXTURE_MODEL, '--reference', empty, '--target', PAIRS.target]), EXIT.input, new RegExp(escapeRegExp(empty)));
  });

  test('a corrupt PNG', async () => {
    const folder = fs.mkdtempSync(path.join(scratch, 'corrupt-'));
    const corrupt = path.join(folder, '000.png');
    // A PNG signature followed by garbage: looks like an image by name and by first bytes.
    fs.writeFileSync(corrupt, Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('not really an image')]));
    assertOneLineError(await runCli(['analyze', FIXTURE_MODEL, '--reference', folder, '--target', PAIRS.target]), EXIT.input, new RegExp(escapeRegExp(corrupt)));
  });
});

interface RunningCli {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts a long synthetic run; `ownGroup` puts it in its own process group, as a shell does with a job. */
function startLongRun(ownGroup: boolean): RunningCli {
  const args = [CLI, 'analyze', FIXTURE_MODEL, '--pairs', '5000', '--ep', 'cpu', '--verbose'];
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: ownGroup });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  child.stdout!.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, stderr: () => stderr, exited };
}

/** Waits until the run is past start-up (verbose phase lines say so), or ~1.5 s at most. */
async function waitUntilMeasuring(run: RunningCli): Promise<void> {
  for (let waited = 0; waited < 1500 && !/Preparing the probe/.test(run.stderr()); waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await new Promise((resolve) => setTimeout(resolve, 200)); // into the measuring loop
}

async function interruptAndCheck(run: RunningCli, target: number): Promise<void> {
  const cliPid = run.child.pid!;
  // Safety net only: a CLI that ignores Ctrl-C would otherwise hang the suite.
  const safety = setTimeout(() => run.child.kill('SIGKILL'), 15_000);
  try {
    await waitUntilMeasuring(run);
    const workers = childProcessesMatching(cliPid, 'workerMain.js');
    assert.equal(workers.length, 1, `one worker under the CLI before Ctrl-C; stderr: ${run.stderr()}`);
    process.kill(target, 'SIGINT');
    const { code, signal } = await run.exited;
    assert.equal(signal, null, `exited by itself, not killed (${signal})`);
    assert.equal(code, EXIT.cancelled, `stderr: ${run.stderr()}`);
    assert.match(run.stderr(), /^plasticity-lens: .*cancel/im);
    for (const worker of workers) assert.ok(await waitForProcessExit(worker), `worker ${worker} still runs after the CLI exited`);
  } finally {
    clearTimeout(safety);
    if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
  }
}

describe('Ctrl-C', () => {
  test('SIGINT to the command line exits 130 and leaves no worker behind', async () => {
    const run = startLongRun(false);
    await interruptAndCheck(run, run.child.pid!);
  });

  // A terminal's Ctrl-C signals the whole foreground process group, the worker included.
  test("SIGINT to the whole process group (a terminal's Ctrl-C) exits 130", async () => {
    const run = startLongRun(true);
    try {
      await interruptAndCheck(run, -run.child.pid!);
    } finally {
      try {
        process.kill(-run.child.pid!, 'SIGKILL'); // whatever is left of the group
      } catch {
        // Group already gone.
      }
    }
  });
});
