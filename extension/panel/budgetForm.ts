// The report panel's budget control on the host side: turns what the user typed into the
// recommendation core's inputs and the core's plan into the preview the webview shows. Pure (no
// vscode), so it is unit-tested; the ranking and naming themselves stay in core/recommend.
import { UsageError } from '../core/errors';
import { Budget, parseParameterBudget, parseTypeBudget } from '../core/recommend/budget';
import { FrameworkNaming, resolveNaming } from '../core/recommend/frameworkNaming';
import { buildFreezePlan, FreezePlan } from '../core/recommend/freezePlan';
import { PlanModelParameters } from '../core/recommend/measuredModel';
import { optionLabel, recommend } from '../core/recommend/recommend';
import { PlasticityReport } from '../core/report/reportSchema';
import { BudgetForm, PlanExportFormat, RecommendationPreview } from './webviewProtocol';

/** The core's budget for a form; throws UsageError with a sentence the preview shows. */
export function budgetFromForm(form: Pick<BudgetForm, 'kind' | 'value'>): Budget {
  const value = form.value.trim();
  if (value === '') throw new UsageError('Enter a budget.');
  switch (form.kind) {
    case 'types':
      return parseTypeBudget(value);
    case 'share': {
      // The field is labelled in percent; a trailing '%' is accepted too.
      return parseParameterBudget(`${value.replace(/\s*%$/, '')}%`);
    }
    case 'parameters': {
      if (value.endsWith('%')) throw new UsageError(`A number of parameters has no '%' (got '${value}'); choose "share of parameters" for a percentage.`);
      return parseParameterBudget(value);
    }
  }
}

export function namingFromForm(form: Pick<BudgetForm, 'naming'>): FrameworkNaming | undefined {
  return form.naming === 'detected' ? undefined : form.naming;
}

/**
 * The freeze plan a form asks for; throws UsageError when the budget is unusable or too small.
 * `fromModel`: the measured model's head and final-norm parameters (named exactly, and counted),
 * or the note why the plan goes without them (named by the framework's alternatives, count unknown).
 */
export function planFromForm(report: PlasticityReport, form: BudgetForm, fromModel: PlanModelParameters = {}, createdAt?: string): FreezePlan {
  // The across rule applies to multi-target reports only; a form kept from one is ignored on another report.
  const across = report.targets && report.targets.length > 1 ? (form.across ?? 'mean-rank') : undefined;
  const recommendation = recommend(report, { budget: budgetFromForm(form), unit: form.unit, includeHead: form.includeHead, across });
  const plan = buildFreezePlan({ report, recommendation, naming: resolveNaming(report, namingFromForm(form)), modelParameters: fromModel.modelParameters, createdAt });
  if (fromModel.note) plan.notes.push(fromModel.note);
  return plan;
}

export function previewOfPlan(plan: FreezePlan): RecommendationPreview {
  const lastChosenRank = Math.max(...plan.choices.map((choice) => choice.rank));
  return {
    budgetDescription: plan.budget.description,
    unit: plan.budget.unit,
    namingLabel: plan.naming.label,
    detectedNaming: plan.naming.detected,
    choices: plan.choices.map((choice) => ({
      rank: choice.rank,
      label: optionLabel(choice),
      plasticity: choice.plasticity,
      parameterCount: choice.parameterCount,
      modules: choice.modules,
    })),
    skipped: plan.ranking
      .filter((option) => !option.selected && option.skipped && option.rank < lastChosenRank)
      .map((option) => ({ rank: option.rank, label: optionLabel(option), reason: option.skipped! })),
    trainableModules: plan.trainable.flatMap((group) => (group.match === 'any' ? [group.modules.join(' or ')] : group.modules)),
    counts: {
      selectedBlockParameters: plan.counts.selectedBlockParameters,
      trainable: plan.counts.trainable,
      model: plan.counts.model,
      trainableShare: plan.counts.trainableShare,
    },
    paperNotes: plan.choices.flatMap((choice) => (choice.paperNote ? [choice.paperNote] : [])),
    notes: plan.across ? plan.notes.filter((note) => note !== plan.across!.statement) : plan.notes,
    warnings: plan.warnings,
    ...(plan.across
      ? { across: { statement: plan.across.statement, allAgree: plan.across.allAgree, disagreements: plan.across.disagreements, targets: plan.across.targets } }
      : {}),
  };
}

/** The default file name's ending for each export, after the model's base name. */
export const PLAN_EXPORT_FILES: Record<PlanExportFormat, { suffix: string; filters: Record<string, string[]> }> = {
  json: { suffix: 'freeze-plan.json', filters: { 'Freeze plan (JSON)': ['json'] } },
  pytorch: { suffix: 'freeze_plan.py', filters: { 'Python (PyTorch apply(model))': ['py'] } },
  peft: { suffix: 'lora_config.py', filters: { 'Python (PEFT LoraConfig)': ['py'] } },
  yaml: { suffix: 'freeze-plan.yaml', filters: { YAML: ['yaml', 'yml'] } },
};
