// Messages between the extension host and its webviews (report panel, comparison panel, model
// overview editor). Type definitions only: the webview bundles import this file and nothing else
// from extension/ but the dependency-free vocabulary.
import type { PlasticityComparison } from '../core/compare/reportComparison';
import type { ModelOverview, PlasticityBounds, PlasticityReport } from '../core/report/reportSchema';
import type { FrameworkNaming, PlanFormat } from '../core/vocabulary';

/** What the report panel persists through VS Code's webview state (restored after a reload). */
export interface ReportPanelState {
  modelPath: string;
  scale?: 'linear' | 'log';
  /** The budget control's last choices. */
  budget?: BudgetForm;
}

/**
 * The paper's data-free upper bounds before any measurement (model overview, and report panel
 * before its first report), or why they were not computed.
 */
export type BoundsMessage = { type: 'showBounds'; bounds: PlasticityBounds; elapsedMs: number } | { type: 'boundsUnavailable'; message: string };

/**
 * The analysis of the view's model: while running, `message` is its progress; once stopped, the
 * sentence saying why it ended without a report (cancelled, failed), absent after a report.
 */
export type AnalysisStateMessage = { type: 'analysisState'; running: boolean; message?: string };

export type HostToReportPanel =
  | { type: 'showReport'; report: PlasticityReport; stale: boolean }
  /** Nothing measured yet for the model: its name, an Analyze button, and the bounds when they come. */
  | { type: 'showPending'; modelPath: string }
  | BoundsMessage
  | { type: 'markStale'; reason: string }
  | AnalysisStateMessage
  | { type: 'recommendation'; requestId: number; preview: RecommendationPreview }
  | { type: 'recommendationError'; requestId: number; message: string }
  /** Scrolls the heatmap to a block's row and highlights it (and the component's cell, if given). */
  | { type: 'revealBlock'; block: number; component?: string };

export type ReportPanelToHost =
  | { type: 'ready' }
  /** Analyse the model (the pending state's Analyze button). */
  | { type: 'analyze' }
  | { type: 'rerun' }
  | { type: 'exportPng'; chart: string; dataUrl: string }
  | { type: 'exportCsv' }
  | { type: 'exportJson' }
  /** Compare this report with other reports (opens the comparison panel). */
  | { type: 'compare' }
  /** A multi-target report: open the comparison panel with its targets as the series. */
  | { type: 'compareTargets' }
  /** Asks for a preview of the recommendation; the answer carries the same requestId. */
  | { type: 'recommend'; requestId: number; form: BudgetForm }
  | { type: 'exportPlan'; form: BudgetForm; format: PlanExportFormat };

// The budget control's choices, as the user entered them. Kept free of the core's types so the
// webview bundle type-checks without Node: the host turns them into a Budget (budgetForm.ts).
export type BudgetFormKind = 'types' | 'share' | 'parameters';
export type BudgetFormUnit = 'types' | 'cells';
export type BudgetFormNaming = 'detected' | FrameworkNaming;
export type PlanExportFormat = PlanFormat;

export interface BudgetForm {
  kind: BudgetFormKind;
  /** As typed: "2", "10" (percent), "18k", "28.3M". */
  value: string;
  unit: BudgetFormUnit;
  naming: BudgetFormNaming;
  includeHead: boolean;
  /** A multi-target report: choose by the mean rank across targets (default) or the worst case. */
  across?: BudgetFormAcross;
}

export type BudgetFormAcross = 'mean-rank' | 'worst-case';

/** What the host computed for a budget form, shown live under the control. */
export interface RecommendationPreview {
  budgetDescription: string;
  unit: BudgetFormUnit;
  /** How module names are written ("timm VisionTransformer"), and the naming found in the model. */
  namingLabel: string;
  detectedNaming: string;
  choices: { rank: number; label: string; plasticity: number; parameterCount: number; modules: string[] }[];
  /** More plastic options left out because they did not fit, with why. */
  skipped: { rank: number; label: string; reason: string }[];
  /** Every module made trainable (components, head, final norm), in the chosen naming. */
  trainableModules: string[];
  counts: { selectedBlockParameters: number; trainable: number | null; model: number; trainableShare: number | null };
  /** The paper's figures on the chosen types, when it speaks to them. */
  paperNotes: string[];
  notes: string[];
  warnings: string[];
  /** A multi-target report: the rule stated, whether every target alone would choose the same, and where they disagree. */
  across?: { statement: string; allAgree: boolean; disagreements: string[]; targets: string[] };
}

/**
 * A comparison as a panel shows it: the comparison, and where its exports go. The panel keeps it
 * in its webview state, so a reload restores the panel without the compared reports.
 */
export interface ShownComparison {
  comparison: PlasticityComparison;
  /** Exports are offered beside this file (the baseline's model). */
  exportsBeside: string;
  /** Files an export may not overwrite (the compared report files). */
  protectedFiles: string[];
}

/** What the comparison panel persists through VS Code's webview state. */
export interface ComparisonPanelState {
  scale?: 'linear' | 'log';
  /** The component whose per-block curves are drawn. */
  component?: string;
  shown?: ShownComparison;
}

export type HostToComparisonPanel = { type: 'showComparison' } & ShownComparison;

export type ComparisonPanelToHost = { type: 'ready' } | { type: 'exportPng'; chart: string; dataUrl: string } | { type: 'exportCsv' } | { type: 'exportJson' };

export type HostToModelOverview =
  { type: 'showOverview'; overview: ModelOverview; lastReport?: ReportHeadline } | { type: 'overviewError'; message: string } | BoundsMessage | AnalysisStateMessage;

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
