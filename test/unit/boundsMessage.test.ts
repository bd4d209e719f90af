// The data-free bounds as the model overview and a report panel with no report post them: the
// bounds and how long they took, or why not; asked again when a cancelled analysis stopped the
// worker under them, and never more often than that.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CancelledError, ModelFileError } from '../../extension/core/errors';
import { PlasticityBounds } from '../../extension/core/report/reportSchema';
import { BOUNDS_ATTEMPTS, boundsMessage } from '../../extension/panel/boundsMessage';

const BOUNDS: PlasticityBounds = {
  method: 'Lanczos',
  iterations: 64,
  lastStepChange: 0,
  tokens: null,
  blocks: [{ index: 0, LN1: { bound: 1 }, MHA: null, LN2: { bound: 2 }, FC1: { bound: 3 }, FC2: { bound: 4 } }],
} as unknown as PlasticityBounds;

/** A compute function that fails with `failures` in turn, then answers; counts its calls. */
function computeFailing(...failures: Error[]) {
  const calls = { count: 0 };
  const compute = async () => {
    const failure = failures[calls.count++];
    if (failure) throw failure;
    return BOUNDS;
  };
  return { compute, calls };
}

describe('boundsMessage', () => {
  test('the bounds, with the time they took', async () => {
    const times = [1000, 1250];
    const { compute, calls } = computeFailing();
    assert.deepEqual(await boundsMessage(compute, BOUNDS_ATTEMPTS, () => times.shift()!), { type: 'showBounds', bounds: BOUNDS, elapsedMs: 250 });
    assert.equal(calls.count, 1);
  });

  test("a failure of the bounds' own is said at once, in its sentence", async () => {
    const { compute, calls } = computeFailing(new ModelFileError('truncated.onnx is truncated or corrupt: export it again.'));
    assert.deepEqual(await boundsMessage(compute), { type: 'boundsUnavailable', message: 'truncated.onnx is truncated or corrupt: export it again.' });
    assert.equal(calls.count, 1);
  });

  test('a worker stopped by a cancelled analysis is asked again, and timed from the last try', async () => {
    const times = [0, 100, 130]; // started, started again, answered
    const { compute, calls } = computeFailing(new CancelledError());
    assert.deepEqual(await boundsMessage(compute, BOUNDS_ATTEMPTS, () => times.shift()!), { type: 'showBounds', bounds: BOUNDS, elapsedMs: 30 });
    assert.equal(calls.count, 2);
  });

  test('cancelled every time: asked at most `attempts` times, then the reason', async () => {
    const { compute, calls } = computeFailing(...Array.from({ length: 10 }, () => new CancelledError()));
    assert.deepEqual(await boundsMessage(compute, 3), { type: 'boundsUnavailable', message: 'Analysis cancelled.' });
    assert.equal(calls.count, 3);
  });

  test('never rejects, whatever is thrown', async () => {
    const message = await boundsMessage(() => Promise.reject('worker gone'));
    assert.deepEqual(message, { type: 'boundsUnavailable', message: 'worker gone' });
  });
});
