// --until-settled through the worker: a run stops once the ranking of component types is
// settled and says why, or measures up to its maximum; its running statistics are those of a
// plain run over the same pairs; and a long run stops on cancel at the next batch.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { CancelledError } from '../../extension/core/errors';
import { MIN_SETTLED_PAIRS } from '../../extension/core/report/settledRanking';
import { COMPONENTS } from '../../extension/core/vit/vitStructure';
import { WorkerSupervisor } from '../../extension/worker/workerSupervisor';
import { AnalysisRequest } from '../../extension/worker/workerProtocol';
import { modelPath, processIsAlive, tempDir, writeNpyFile } from '../support/fixtures';

function request(model: string, extra: Partial<AnalysisRequest>): AnalysisRequest {
  return { modelPath: modelPath(model), mode: 'isolated', executionProvider: 'cpu', seed: 0, batchPairs: 8, ...extra };
}

test('until settled: clearly separated types stop the run early, and the report says why and after how many pairs', async () => {
  const supervisor = new WorkerSupervisor();
  try {
    // On synthetic inputs this fixture's types stand apart (FC1 > MHA > LN2 > LN1 > FC2, by margins far above their intervals).
    const report = await supervisor.analyze(request('openai_clip_op14.onnx', { untilSettled: true, pairs: 400 }));
    const stopping = report.stopping!;
    assert.equal(stopping.rule, 'until-settled');
    assert.equal(stopping.reason, 'ranking-separated');
    assert.equal(stopping.maxPairs, 400);
    assert.ok(stopping.pairsMeasured >= MIN_SETTLED_PAIRS && stopping.pairsMeasured < 400, `stopped after ${stopping.pairsMeasured} pairs`);
    assert.equal(stopping.minPairs, MIN_SETTLED_PAIRS);
    assert.equal(report.settings.pairs, stopping.pairsMeasured);
    assert.deepEqual(report.settings.pairIndices, [[0, stopping.pairsMeasured]]);
    assert.match(stopping.message, /settled after \d+ pairs/);
    // The ranking it names is the report's.
    const ranking = [...COMPONENTS].sort((a, b) => report.summary[a].rank - report.summary[b].rank).join(' > ');
    assert.ok(stopping.message.includes(ranking), `${stopping.message} names ${ranking}`);

    // The same pairs measured plainly give the same statistics (running sums against the batch-by-batch run before).
    const plain = await supervisor.analyze(request('openai_clip_op14.onnx', { pairs: stopping.pairsMeasured }));
    assert.equal(plain.stopping?.rule, 'all-pairs');
    assert.equal(plain.stopping?.reason, 'all-pairs');
    report.blocks.forEach((block, b) =>
      COMPONENTS.forEach((component) => {
        const a = block.components[component];
        const p = plain.blocks[b].components[component];
        assert.equal(a.n, p.n);
        assert.ok(Math.abs(a.mean - p.mean) <= 1e-9 * Math.abs(p.mean) && Math.abs(a.std - p.std) <= 1e-9 * p.std, `block ${b} ${component}`);
      }),
    );
  } finally {
    supervisor.dispose();
  }
});

test('until settled: types that do not separate are measured up to the maximum of pairs, which the report gives as the reason', async () => {
  const supervisor = new WorkerSupervisor();
  try {
    // This fixture's LN1 and LN2 are nearly equal on synthetic inputs: they do not separate in 96 pairs.
    const report = await supervisor.analyze(request('hf_vit_op17.onnx', { untilSettled: true, pairs: 96 }));
    assert.equal(report.stopping?.reason, 'max-pairs');
    assert.equal(report.stopping?.pairsMeasured, 96);
    assert.equal(report.settings.pairs, 96);
    assert.match(report.stopping!.message, /not settled within the maximum of 96 pairs/);
    // A tolerance loose enough is reached instead.
    const tolerant = await supervisor.analyze(request('hf_vit_op17.onnx', { untilSettled: true, tolerance: 0.5, pairs: 96 }));
    assert.equal(tolerant.stopping?.reason, 'tolerance-reached');
    assert.equal(tolerant.stopping?.tolerance, 0.5);
    assert.equal(tolerant.stopping?.pairsMeasured, MIN_SETTLED_PAIRS);
  } finally {
    supervisor.dispose();
  }
});

/**
 * A reference folder and two target folders of `count` 3x32x32 .npy images (seeded): target
 * `a` unrelated to the reference, target `b` the reference with noise added.
 */
function multiTargetFolders(count: number): { reference: string; targets: string[] } {
  const root = tempDir('settled-targets');
  let state = 7;
  const uniform = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const normal = () => Math.sqrt(-2 * Math.log(uniform() + 1e-12)) * Math.cos(2 * Math.PI * uniform());
  const [reference, a, b] = ['reference', 'a', 'b'].map((name) => path.join(root, name));
  for (const folder of [reference, a, b]) fs.mkdirSync(folder);
  for (let i = 0; i < count; i++) {
    const name = `${String(i).padStart(3, '0')}.npy`;
    const image = Float32Array.from({ length: 3 * 32 * 32 }, normal);
    writeNpyFile(path.join(reference, name), image, [3, 32, 32]);
    writeNpyFile(path.join(a, name), Float32Array.from(image, normal), [3, 32, 32]);
    writeNpyFile(
      path.join(b, name),
      Float32Array.from(image, (value) => value + 0.5 * normal()),
      [3, 32, 32],
    );
  }
  return { reference, targets: [a, b] };
}

test('until settled with several targets: the run stops once every target is settled, and equals a plain run of as many pairs', async () => {
  const supervisor = new WorkerSupervisor();
  try {
    const folders = multiTargetFolders(64);
    const report = await supervisor.analyze(request('openai_clip_op14.onnx', { ...folders, untilSettled: true }));
    const stopping = report.stopping!;
    assert.equal(stopping.rule, 'until-settled');
    assert.equal(stopping.reason, 'ranking-separated');
    assert.equal(stopping.maxPairs, 64);
    assert.ok(stopping.pairsMeasured >= MIN_SETTLED_PAIRS && stopping.pairsMeasured < 64, `stopped after ${stopping.pairsMeasured} pairs`);
    assert.equal(report.targets?.length, 2);
    for (const target of report.targets!) {
      assert.equal(target.pairs, stopping.pairsMeasured);
      assert.deepEqual(target.pairIndices, [[0, stopping.pairsMeasured]]);
      // The message names every target with its own ranking.
      assert.ok(stopping.message.includes(`${target.name}: the ranking of component types (${target.ranking.join(' > ')})`), stopping.message);
    }

    const plain = await supervisor.analyze(request('openai_clip_op14.onnx', { ...folders, pairs: stopping.pairsMeasured }));
    assert.equal(plain.stopping?.reason, 'all-pairs');
    report.targets!.forEach((target, k) =>
      target.blocks.forEach((block, b) =>
        COMPONENTS.forEach((component) => {
          const settled = block.components[component];
          const full = plain.targets![k].blocks[b].components[component];
          assert.ok(Math.abs(settled.mean - full.mean) <= 1e-12 * Math.abs(full.mean), `${target.name} block ${b} ${component}`);
        }),
      ),
    );

    // Fewer pairs than a settled verdict needs: measured to the maximum, which the report gives as the reason.
    const short = await supervisor.analyze(request('openai_clip_op14.onnx', { ...folders, untilSettled: true, pairs: 24 }));
    assert.equal(short.stopping?.reason, 'max-pairs');
    assert.equal(short.stopping?.pairsMeasured, 24);
  } finally {
    supervisor.dispose();
  }
});

test("cancel: a long until-settled run (the paper's 12,800 synthetic pairs) stops at the next batch, in its own worker", async (t) => {
  // A grace period far beyond a batch: the worker must stop by itself, not be killed.
  const supervisor = new WorkerSupervisor({ cancelGraceMs: 60_000 });
  try {
    const abort = new AbortController();
    let abortedAt = 0;
    let total = 0;
    const running = supervisor.analyze(
      request('hf_vit_op17.onnx', { untilSettled: true }),
      (progress) => {
        if (progress.phase !== 'measuring' || progress.pairsDone < 64 || abortedAt) return;
        total = progress.pairsTotal;
        abortedAt = performance.now();
        abort.abort();
      },
      abort.signal,
    );
    const pid = await waitForPid(supervisor);
    await assert.rejects(running, CancelledError);
    const latency = performance.now() - abortedAt;
    t.diagnostic(`cancel answered by the worker ${latency.toFixed(0)} ms after the abort`);
    assert.equal(total, 12_800, "synthetic inputs under --until-settled run up to the paper's 12,800 pairs");
    assert.equal(supervisor.workerPid, pid, 'the worker stopped the run itself (it was not killed)');
    assert.ok(processIsAlive(pid));
  } finally {
    supervisor.dispose();
  }
});

async function waitForPid(supervisor: WorkerSupervisor): Promise<number> {
  for (;;) {
    if (supervisor.workerPid) return supervisor.workerPid;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
