// The data-free bounds a view shows before any measurement (the model overview, a report panel
// with no report yet), as the message its webview takes: the bounds and how long they took, or the
// sentence saying why they were not computed. Pure (no vscode), so it is unit-tested.
import { CancelledError } from '../core/errors';
import { PlasticityBounds } from '../core/report/reportSchema';
import type { BoundsMessage } from './webviewProtocol';

/** How many times bounds are asked when the worker dropped them for a cancelled analysis. */
export const BOUNDS_ATTEMPTS = 3;

/**
 * Asks `compute` for the bounds and settles (never rejects) with the message to post. The worker
 * is stopped when an analysis is cancelled, and every request in it fails as cancelled: such a
 * failure is not the bounds' own, so they are asked again (of the fresh worker), up to `attempts`
 * times in all.
 */
export async function boundsMessage(compute: () => Promise<PlasticityBounds>, attempts = BOUNDS_ATTEMPTS, clock: () => number = Date.now): Promise<BoundsMessage> {
  for (let attempt = 1; ; attempt++) {
    const started = clock();
    try {
      const bounds = await compute();
      return { type: 'showBounds', bounds, elapsedMs: clock() - started };
    } catch (error) {
      if (error instanceof CancelledError && attempt < attempts) continue;
      return { type: 'boundsUnavailable', message: error instanceof Error ? error.message : String(error) };
    }
  }
}
