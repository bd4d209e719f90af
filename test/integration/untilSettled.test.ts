// --until-settled through the worker: a run stops once the ranking of component types is
// settled and says why, or measures up to its maximum; its running statistics are those of a
// plain run over the same pairs; and a long run stops on cancel at the next batch.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CancelledError } from '../../extension/core/errors';
import { MIN_SETTLED_PAIRS } from '../../extension/core/report/settledRanking';
import { COMPONENTS } from '../../extension/core/vit/vitStructure';
import { WorkerSupervisor } from '../../extension/worker/workerSupervisor';
import { AnalysisRequest } from '../../extension/worker/workerProtocol';
import { modelPath, processIsAlive } from '../support/fixtures';

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
