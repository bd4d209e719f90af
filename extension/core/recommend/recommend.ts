// What to finetune under a budget, ranked by measured plasticity (most plastic first). Pure:
// reads only the report. Either whole component types across all blocks (the paper's protocol)
// or single (block, component) cells.
import { UsageError } from '../errors';
import { MeasureMode, PlasticityReport } from '../report/reportSchema';
import { COMPONENTS } from '../vit/vitStructure';
import { Budget, describeBudget, formatParameterCount, shareLimit } from './budget';
import { AcrossRule, acrossNeedsTargets, AcrossTargets, acrossTargetsSummary, multipleTargets, rankAcrossTargets, reportOfTarget } from './acrossTargets';
import { RankedOption, SelectionUnit } from './rankedOption';
import { orderNote, paperNoteFor, PAPER_CELLS_NOTE, PAPER_COMBINATION_NOTE, PAPER_PROTOCOL_NOTE } from './paperResults';

export type { RankedOption, SelectionUnit } from './rankedOption';

export interface RecommendOptions {
  budget: Budget;
  /** 'types' (default): a component type in every block; 'cells': single (block, component) cells. */
  unit?: SelectionUnit;
  /** Keep the classification head and final norm trainable (default true, as in the paper). */
  includeHead?: boolean;
  /**
   * A multi-target report: rank by the mean rank across targets (default) or by the worst rank
   * in any target. Only for multi-target reports.
   */
  across?: AcrossRule;
}

export interface Recommendation {
  unit: SelectionUnit;
  budget: Budget;
  budgetDescription: string;
  /** Block parameters the budget allows; null for a number of types. */
  parameterLimit: number | null;
  /** Every option, most plastic first. */
  options: RankedOption[];
  /** The chosen options, most plastic first. */
  selected: RankedOption[];
  selectedParameterCount: number;
  /** Parameters of all five components in all blocks. */
  blockParameterCount: number;
  modelParameterCount: number;
  includeHead: boolean;
  mode: MeasureMode;
  pairs: number;
  notes: string[];
  /** Reasons to distrust the numbers; every output built from this recommendation repeats them. */
  warnings: string[];
  /** A multi-target report: the rule that chose across its targets and where they disagree. */
  across?: AcrossTargets;
}

export const SYNTHETIC_WARNING =
  "The report was measured on synthetic images, not on your data: its plasticity ranking says little about real images; rerun 'plasticity-lens analyze' with --reference and --target folders before relying on this recommendation.";
export const IN_CONTEXT_WARNING = "The report was measured in in-context mode, not the paper's isolated measure: the paper's figures quoted here do not describe this ranking.";

export function optionLabel(option: Pick<RankedOption, 'component' | 'block'>): string {
  return option.block === null ? `${option.component} (all blocks)` : `${option.component} of block ${option.block}`;
}

function typeOptions(report: PlasticityReport): RankedOption[] {
  return COMPONENTS.map((component) => ({
    component,
    block: null,
    plasticity: report.summary[component].mean,
    ci95: null,
    rank: report.summary[component].rank,
    parameterCount: report.summary[component].parameterCount,
    selected: false,
    paperNote: paperNoteFor(component),
  })).sort((a, b) => a.rank - b.rank);
}

function cellOptions(report: PlasticityReport): RankedOption[] {
  const cells = report.blocks.flatMap((block) =>
    COMPONENTS.map((component) => {
      const statistics = block.components[component];
      return { component, block: block.index, plasticity: statistics.mean, ci95: statistics.ci95, parameterCount: statistics.parameterCount };
    }),
  );
  // Ties keep block order, then component order, so plans are reproducible.
  const order = cells.map((cell, index) => ({ cell, index })).sort((a, b) => b.cell.plasticity - a.cell.plasticity || a.index - b.index);
  return order.map(({ cell }, position) => ({ ...cell, rank: position + 1, selected: false, paperNote: null }));
}

function parameterLimitOf(budget: Budget, modelParameters: number): number | null {
  if (budget.kind === 'parameters') return budget.count;
  if (budget.kind === 'share') return shareLimit(budget.percent, modelParameters);
  return null;
}

/** Ranks the options and chooses those the budget allows. Throws UsageError when nothing fits. */
export function recommend(report: PlasticityReport, options: RecommendOptions): Recommendation {
  const unit = options.unit ?? 'types';
  const budget = options.budget;
  const includeHead = options.includeHead ?? true;
  const modelParameters = report.model.parameterCount;
  if (unit === 'cells' && budget.kind === 'types') {
    throw new UsageError('A number of component types chooses whole types in every block; to choose single (block, component) cells, give a parameter budget.');
  }
  const targets = multipleTargets(report);
  if (options.across && !targets) throw acrossNeedsTargets();
  const rule = options.across ?? 'mean-rank';
  const rankOf = (one: PlasticityReport) => (unit === 'types' ? typeOptions(one) : cellOptions(one));
  const ranked = targets
    ? rankAcrossTargets(
        targets.map((target) => rankOf(reportOfTarget(report, target))),
        rule,
      )
    : rankOf(report);
  const limit = parameterLimitOf(budget, modelParameters);
  const budgetDescription = describeBudget(budget, modelParameters);

  if (budget.kind === 'types') {
    ranked.slice(0, budget.count).forEach((option) => (option.selected = true));
  } else {
    // Greedy in rank order: take each option that still fits; a too costly one is skipped, not a stop.
    let remaining = limit!;
    for (const option of ranked) {
      if (option.parameterCount <= remaining) {
        option.selected = true;
        remaining -= option.parameterCount;
      } else {
        option.skipped = `needs ${formatParameterCount(option.parameterCount)} parameters, ${formatParameterCount(remaining)} left in the budget`;
      }
    }
    const lastChosen = ranked.reduce((last, option, index) => (option.selected ? index : last), -1);
    ranked.forEach((option, index) => {
      if (index > lastChosen) delete option.skipped;
    });
  }

  const selected = ranked.filter((option) => option.selected);
  if (selected.length === 0) {
    const cheapest = ranked.reduce((best, option) => (option.parameterCount < best.parameterCount ? option : best));
    const asShare = budget.kind === 'share' ? ` (${((100 * cheapest.parameterCount) / modelParameters).toPrecision(2)}% of the model)` : '';
    throw new UsageError(
      `The budget of ${budgetDescription} is smaller than the cheapest choice, ${optionLabel(cheapest)} with ${cheapest.parameterCount.toLocaleString('en-US')} parameters; raise it to at least ${cheapest.parameterCount.toLocaleString('en-US')} parameters${asShare}.`,
    );
  }

  const blockParameterCount = ranked.reduce((sum, option) => sum + option.parameterCount, 0);
  const selectedParameterCount = selected.reduce((sum, option) => sum + option.parameterCount, 0);
  const notes: string[] = [];
  if (selected.length === ranked.length) {
    notes.push(
      `The budget covers every ${unit === 'types' ? 'component type' : 'cell'} (${blockParameterCount.toLocaleString('en-US')} block parameters): this is finetuning all blocks in full.`,
    );
  }
  if (budget.kind === 'types' && budget.count > ranked.length) {
    notes.push(`Asked for ${budget.count} component types; a block has only ${ranked.length}.`);
  }
  let across: AcrossTargets | undefined;
  if (targets) {
    // What each target alone would choose under the same budget.
    const own = targets.map((target) => recommend(reportOfTarget(report, target), { ...options, across: undefined }).selected.map(optionLabel));
    across = acrossTargetsSummary(
      rule,
      targets.map((target) => target.name),
      unit,
      ranked,
      selected.map(optionLabel),
      own,
      optionLabel,
    );
    notes.unshift(
      across.statement,
      across.allAgree
        ? `Every target alone would make the same choice.`
        : `The targets disagree: ${across.perTarget
            .filter((target) => !target.agrees)
            .map((target) => target.name)
            .join(', ')} alone would choose otherwise.`,
    );
  }
  if (unit === 'types') {
    if (selected.length > 1) notes.push(PAPER_COMBINATION_NOTE);
    const measured = [...ranked].sort((a, b) => a.rank - b.rank).map((option) => option.component);
    const differs = orderNote(measured);
    if (differs) notes.push(differs);
  } else {
    notes.push(PAPER_CELLS_NOTE);
  }
  notes.push(
    includeHead
      ? `${PAPER_PROTOCOL_NOTE} They stay trainable here, on top of the budget (the budget counts block parameters only).`
      : `${PAPER_PROTOCOL_NOTE} They are frozen here, as asked.`,
  );

  const warnings: string[] = [];
  if (report.settings.inputs.synthetic) warnings.push(SYNTHETIC_WARNING);
  if (report.settings.mode !== 'isolated') warnings.push(IN_CONTEXT_WARNING);
  for (const warning of report.warnings) {
    // The report's own synthetic-input warning says what SYNTHETIC_WARNING already says.
    if (report.settings.inputs.synthetic && /synthetic/i.test(warning)) continue;
    warnings.push(`From the report: ${warning}`);
  }

  return {
    unit,
    budget,
    budgetDescription,
    parameterLimit: limit,
    options: ranked,
    selected,
    selectedParameterCount,
    blockParameterCount,
    modelParameterCount: modelParameters,
    includeHead,
    mode: report.settings.mode,
    pairs: report.settings.pairs,
    notes,
    warnings,
    ...(across ? { across } : {}),
  };
}
