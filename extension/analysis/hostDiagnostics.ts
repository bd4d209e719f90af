// Measures what the extension costs the editor: its activation time, and the extension host's
// event-loop stalls while analyses run (the worker keeps onnxruntime off this thread; this
// shows it). Read by the hidden command plasticityLens.diagnostics and the benchmarks.
import { IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

export interface AnalysisLag {
  model: string;
  durationMs: number;
  /** Longest event-loop stall seen during the analysis. */
  maxStallMs: number;
  p99StallMs: number;
}

export interface HostDiagnosticsSnapshot {
  /** Time spent in activate() itself. */
  activationMs: number;
  analyses: AnalysisLag[];
}

export class HostDiagnostics {
  private readonly analyses: AnalysisLag[] = [];

  constructor(public activationMs: number) {}

  /** Starts watching the event loop; the returned function stops and records. */
  watchAnalysis(model: string): () => AnalysisLag {
    const histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
    histogram.enable();
    const started = performance.now();
    return () => {
      histogram.disable();
      // The histogram counts the delay beyond the 10 ms sampling interval, in nanoseconds.
      const entry = { model, durationMs: performance.now() - started, maxStallMs: histogram.max / 1e6, p99StallMs: histogram.percentile(99) / 1e6 };
      this.analyses.push(entry);
      return entry;
    };
  }

  snapshot(): HostDiagnosticsSnapshot {
    return { activationMs: this.activationMs, analyses: [...this.analyses] };
  }
}
