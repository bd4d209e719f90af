// One sentence for a progress event, shown by the command line and the extension alike.
import { AnalysisProgress } from './workerProtocol';

export function describeProgress(progress: AnalysisProgress): string {
  if (progress.phase !== 'measuring') return progress.message;
  const eta = progress.etaSeconds !== undefined ? `, ${Math.ceil(progress.etaSeconds)} s left` : '';
  return `${progress.pairsDone}/${progress.pairsTotal} pairs on ${progress.executionProvider ?? '?'}, ${progress.pairsPerSecond.toFixed(1)} pairs/s${eta}`;
}
