// One sentence for a progress event, shown by the command line and the extension alike.
import { AnalysisProgress } from './workerProtocol';

export function describeProgress(progress: AnalysisProgress): string {
  if (progress.phase !== 'measuring') return progress.message;
  const eta = progress.etaSeconds !== undefined ? `, ${progress.untilSettled ? 'at most ' : ''}${formatDuration(progress.etaSeconds)} left` : '';
  const total = progress.untilSettled ? `${progress.pairsTotal} at most (until settled)` : `${progress.pairsTotal}`;
  return `${progress.pairsDone}/${total} pairs on ${progress.executionProvider ?? '?'}, ${progress.pairsPerSecond.toFixed(1)} pairs/s${eta}`;
}

/** Seconds as "42 s", "12 min 5 s" or "3 h 20 min". */
export function formatDuration(seconds: number): string {
  const whole = Math.ceil(seconds);
  if (whole < 60) return `${whole} s`;
  if (whole < 3600) return `${Math.floor(whole / 60)} min ${whole % 60} s`;
  return `${Math.floor(whole / 3600)} h ${Math.floor((whole % 3600) / 60)} min`;
}
