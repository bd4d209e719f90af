// Messages between the extension host and its webviews (report panel, model overview editor).
// Type definitions only: the webview bundles import this file and nothing else from extension/.
import type { ModelOverview, PlasticityReport } from '../core/report/reportSchema';

/** What the report panel persists through VS Code's webview state (restored after a reload). */
export interface ReportPanelState {
  modelPath: string;
  scale?: 'linear' | 'log';
}

export type HostToReportPanel =
  | { type: 'showReport'; report: PlasticityReport; stale: boolean }
  | { type: 'markStale'; reason: string }
  | { type: 'analysisState'; running: boolean; message?: string };

export type ReportPanelToHost =
  | { type: 'ready' }
  | { type: 'rerun' }
  | { type: 'exportPng'; chart: string; dataUrl: string }
  | { type: 'exportCsv' }
  | { type: 'exportJson' };

export type HostToModelOverview =
  | { type: 'showOverview'; overview: ModelOverview; lastReport?: ReportHeadline }
  | { type: 'overviewError'; message: string }
  | { type: 'analysisState'; running: boolean; message?: string };

export type ModelOverviewToHost = { type: 'ready' } | { type: 'analyze' } | { type: 'showReport' };

/** The last report's one-line summary shown in the model overview. */
export interface ReportHeadline {
  createdAt: string;
  mode: PlasticityReport['settings']['mode'];
  pairs: number;
  synthetic: boolean;
  ranking: { component: string; mean: number }[];
  stale: boolean;
}
