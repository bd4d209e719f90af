// The Getting Started walkthrough's steps complete on context keys (package.json's
// completionEvents), set here when the user has done each step, with the sample or a model of
// their own.
import * as vscode from 'vscode';
import { AnalysisService } from '../analysis/analysisService';
import { ReportPanels } from '../panel/reportPanels';

export const WALKTHROUGH_CONTEXT = {
  analysed: 'plasticityLens.walkthrough.analysed',
  reportShown: 'plasticityLens.walkthrough.reportShown',
  freezePlanExported: 'plasticityLens.walkthrough.freezePlanExported',
} as const;

function done(key: string): void {
  void vscode.commands.executeCommand('setContext', key, true);
}

export function trackWalkthroughSteps(service: AnalysisService, panels: ReportPanels): vscode.Disposable[] {
  return [
    service.onDidFinish(() => done(WALKTHROUGH_CONTEXT.analysed)),
    panels.onDidShowReport(() => done(WALKTHROUGH_CONTEXT.reportShown)),
    panels.onDidExportPlan(() => done(WALKTHROUGH_CONTEXT.freezePlanExported)),
  ];
}
