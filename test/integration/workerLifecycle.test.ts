// The worker process seen from its host: progress, cancel, a crash mid-run, recovery with a
// fresh process, and no process left behind after dispose().
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CancelledError } from '../../extension/core/errors';
import { WorkerCrashError, WorkerSupervisor } from '../../extension/worker/workerSupervisor';
import { AnalysisProgress, AnalysisRequest } from '../../extension/worker/workerProtocol';
import { modelPath, PAIRS, processIsAlive, waitForProcessExit } from '../support/fixtures';

/** Synthetic inputs: no files needed, and as many pairs as a test wants to run for. */
function syntheticRequest(pairs: number, batchPairs: number): AnalysisRequest {
  return { modelPath: modelPath('timm_op14.onnx'), mode: 'isolated', executionProvider: 'cpu', pairs, batchPairs, seed: 0 };
}

/** A short real run: proves the supervisor (and its current worker) still works. */
const SMALL_REQUEST: AnalysisRequest = {
  modelPath: modelPath('timm_op14.onnx'),
  mode: 'isolated',
  executionProvider: 'cpu',
  reference: PAIRS.reference,
  target: PAIRS.target,
  seed: 0,
};

/** Long enough that it is still measuring when the test acts on the first progress event. */
const LONG_RUN = syntheticRequest(5000, 4);

test('progress reports each phase, then measuring with pairsDone rising to pairsTotal', async () => {
  const supervisor = new WorkerSupervisor();
  try {
    const events: AnalysisProgress[] = [];
    const report = await supervisor.analyze(syntheticRequest(40, 8), (progress) => events.push({ ...progress }));
    const measuring = events.filter((event) => event.phase === 'measuring');
    assert.deepEqual(
      measuring.map((event) => event.pairsDone),
      [8, 16, 24, 32, 40],
    );
    for (const event of measuring) {
      assert.equal(event.pairsTotal, 40);
      assert.equal(event.executionProvider, 'cpu');
      assert.ok(event.pairsPerSecond > 0, 'a rate once pairs are done');
    }
    assert.equal(measuring.at(-1)!.etaSeconds, 0);
    // Set-up phases come first, in the order the runner goes through them.
    const firstMeasuring = events.findIndex((event) => event.phase === 'measuring');
    // The weights' bounds run before the probe's sessions load the weights (peak memory).
    assert.deepEqual([...new Set(events.slice(0, firstMeasuring).map((event) => event.phase))], ['loading', 'discovering', 'inputs', 'providers', 'bounds', 'compiling']);
    // Measuring is the last phase.
    assert.deepEqual([...new Set(events.slice(firstMeasuring).map((event) => event.phase))], ['measuring']);
    assert.equal(report.settings.pairs, 40);
  } finally {
    supervisor.dispose();
  }
});

test('aborting mid-run rejects with CancelledError, and the supervisor then runs the next request', async () => {
  const supervisor = new WorkerSupervisor();
  try {
    const abort = new AbortController();
    let measuringEvents = 0;
    const cancelled = supervisor.analyze(
      LONG_RUN,
      (progress) => {
        if (progress.phase !== 'measuring') return;
        measuringEvents++;
        abort.abort();
      },
      abort.signal,
    );
    await assert.rejects(cancelled, (error: Error) => {
      assert.ok(error instanceof CancelledError, `expected CancelledError, got ${error.name}: ${error.message}`);
      return true;
    });
    assert.ok(measuringEvents >= 1, 'the abort happened while measuring');
    const report = await supervisor.analyze(SMALL_REQUEST);
    assert.equal(report.settings.pairs, 8);
  } finally {
    supervisor.dispose();
  }
});

test('a signal aborted before the request is sent still rejects with CancelledError', async () => {
  const supervisor = new WorkerSupervisor();
  try {
    // No follow-up request here: on a slow start the grace period runs out (see the next test).
    await assert.rejects(supervisor.analyze(LONG_RUN, undefined, AbortSignal.abort()), CancelledError);
  } finally {
    supervisor.dispose();
  }
});

// cancelGraceMs: 1 makes the supervisor stop the worker itself, as it does when a native call
// outlasts the grace period; a just-forked worker cannot answer within 1 ms.
test('a cancel that has to kill the worker leaves the supervisor ready for the next request', async () => {
  const supervisor = new WorkerSupervisor({ cancelGraceMs: 1 });
  try {
    await assert.rejects(supervisor.analyze(LONG_RUN, undefined, AbortSignal.abort()), CancelledError);
    const report = await supervisor.analyze(SMALL_REQUEST);
    assert.equal(report.settings.pairs, 8);
  } finally {
    supervisor.dispose();
  }
});

test('a worker killed mid-run gives WorkerCrashError saying what to try; the next request gets a fresh worker', async () => {
  const supervisor = new WorkerSupervisor();
  try {
    let killedPid: number | undefined;
    const crashed = supervisor.analyze(LONG_RUN, (progress) => {
      if (progress.phase !== 'measuring' || killedPid !== undefined) return;
      killedPid = supervisor.workerPid!;
      process.kill(killedPid, 'SIGKILL'); // what the kernel's out-of-memory killer does
    });
    await assert.rejects(crashed, (error: Error) => {
      assert.ok(error instanceof WorkerCrashError, `expected WorkerCrashError, got ${error.name}: ${error.message}`);
      assert.match(error.message, /SIGKILL/, 'says how the process ended');
      assert.match(error.message, /close other programs|lower the pairs|smaller model|run it again/, 'says what to try');
      return true;
    });
    assert.ok(killedPid !== undefined);
    assert.ok(await waitForProcessExit(killedPid), 'the killed worker is gone');

    const next = supervisor.analyze(SMALL_REQUEST);
    const freshPid = supervisor.workerPid;
    assert.ok(freshPid !== undefined && freshPid !== killedPid, `a fresh worker (${freshPid}) replaces the killed one (${killedPid})`);
    const report = await next;
    assert.equal(report.settings.pairs, 8);
    assert.equal(supervisor.workerPid, freshPid, 'the fresh worker served the request and stays');
  } finally {
    supervisor.dispose();
  }
});

test('dispose() stops the worker process', async () => {
  const supervisor = new WorkerSupervisor();
  await supervisor.analyze(SMALL_REQUEST);
  const pid = supervisor.workerPid!;
  assert.ok(processIsAlive(pid), 'the worker stays up between requests');
  supervisor.dispose();
  assert.equal(supervisor.workerPid, undefined);
  assert.ok(await waitForProcessExit(pid), `worker ${pid} still runs after dispose()`);
});

test('dispose() during a run rejects the pending request as cancelled and stops the worker', async () => {
  const supervisor = new WorkerSupervisor();
  let pid: number | undefined;
  const running = supervisor.analyze(LONG_RUN, (progress) => {
    if (progress.phase !== 'measuring' || pid !== undefined) return;
    pid = supervisor.workerPid!;
    supervisor.dispose();
  });
  await assert.rejects(running, CancelledError);
  assert.ok(pid !== undefined);
  assert.ok(await waitForProcessExit(pid), `worker ${pid} still runs after dispose()`);
});
