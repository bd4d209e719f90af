// Recommendations for a multi-target report: one choice for every target, ranked by the mean of
// each option's ranks across the targets or by its worst rank (the rule is stated in every
// output), and where the targets disagree: the options whose rank differs between targets, and
// the targets whose own ranking, under the same budget, would choose otherwise.
import { UsageError } from '../errors';
import { PlasticityReport, TargetReport } from '../report/reportSchema';
import { COMPONENTS } from '../vit/vitStructure';
import type { RankedOption, SelectionUnit } from './rankedOption';

export type AcrossRule = 'mean-rank' | 'worst-case';
export const ACROSS_RULES: readonly AcrossRule[] = ['mean-rank', 'worst-case'];

export function isAcrossRule(value: unknown): value is AcrossRule {
  return typeof value === 'string' && (ACROSS_RULES as readonly string[]).includes(value);
}

/** What a recommendation across targets says about them. */
export interface AcrossTargets {
  rule: AcrossRule;
  /** The rule in words, as every output states it. */
  statement: string;
  targets: string[];
  /** Per target: what the same budget would choose by that target's ranking alone. */
  perTarget: { name: string; selected: string[]; agrees: boolean }[];
  /** True when every target's own choice is the one made across targets. */
  allAgree: boolean;
  /** Sentences naming where the targets disagree (empty when they do not). */
  disagreements: string[];
}

/** The targets of a report that has several; null for a single-target report. */
export function multipleTargets(report: PlasticityReport): TargetReport[] | null {
  return report.targets && report.targets.length > 1 ? report.targets : null;
}

/** The report as one target would make it alone (its blocks and summary, no targets). */
export function reportOfTarget(report: PlasticityReport, target: TargetReport): PlasticityReport {
  const { targets: _targets, ...rest } = report;
  return { ...rest, blocks: target.blocks, summary: target.summary, settings: { ...report.settings, pairs: target.pairs, pairIndices: target.pairIndices } };
}

export function describeRule(rule: AcrossRule, targets: string[]): string {
  const list = `${targets.length} targets (${targets.join(', ')})`;
  return rule === 'mean-rank'
    ? `Chosen across ${list} by mean rank: options ordered by the mean of their ranks over the targets (ties: the better worst rank, then the higher mean plasticity).`
    : `Chosen across ${list} by the worst case: options ordered by the worst rank they have in any target (ties: the better mean rank, then the higher mean plasticity).`;
}

/**
 * Every option ordered by `rule` over the targets' own rankings (`rankedPerTarget[k]`: what
 * target k alone ranks, most plastic first). Plasticity is the mean over targets; a cell's
 * interval is not kept (it would mix targets).
 */
export function rankAcrossTargets(rankedPerTarget: RankedOption[][], rule: AcrossRule): RankedOption[] {
  const key = (option: Pick<RankedOption, 'component' | 'block'>) => `${option.block ?? 'all'}:${option.component}`;
  const first = rankedPerTarget[0];
  const entries = first.map((option, position) => {
    const ranks = rankedPerTarget.map((ranked) => ranked.find((other) => key(other) === key(option))!.rank);
    const plasticities = rankedPerTarget.map((ranked) => ranked.find((other) => key(other) === key(option))!.plasticity);
    const meanRank = ranks.reduce((sum, rank) => sum + rank, 0) / ranks.length;
    const worstRank = Math.max(...ranks);
    const plasticity = plasticities.reduce((sum, value) => sum + value, 0) / plasticities.length;
    // Reports order ties by block, then component: the fixed order of the options.
    const fixedOrder = (option.block ?? -1) * COMPONENTS.length + COMPONENTS.indexOf(option.component);
    return { option, ranks, plasticities, meanRank, worstRank, plasticity, fixedOrder, position };
  });
  const [primary, secondary] = rule === 'mean-rank' ? (['meanRank', 'worstRank'] as const) : (['worstRank', 'meanRank'] as const);
  entries.sort((a, b) => a[primary] - b[primary] || a[secondary] - b[secondary] || b.plasticity - a.plasticity || a.fixedOrder - b.fixedOrder);
  return entries.map((entry, index) => ({
    component: entry.option.component,
    block: entry.option.block,
    plasticity: entry.plasticity,
    ci95: null,
    rank: index + 1,
    parameterCount: entry.option.parameterCount,
    selected: false,
    paperNote: entry.option.paperNote,
    targetRanks: entry.ranks,
    targetPlasticity: entry.plasticities,
    meanRank: entry.meanRank,
    worstRank: entry.worstRank,
  }));
}

/**
 * Where the targets disagree: per target, its own choice against the one made across targets;
 * for types, every type whose rank differs between targets.
 */
export function acrossTargetsSummary(
  rule: AcrossRule,
  names: string[],
  unit: SelectionUnit,
  ranked: RankedOption[],
  selectedLabels: string[],
  perTargetSelected: string[][],
  label: (option: RankedOption) => string,
): AcrossTargets {
  const same = (a: string[], b: string[]) => a.length === b.length && a.every((item) => b.includes(item));
  const perTarget = names.map((name, k) => ({ name, selected: perTargetSelected[k], agrees: same(perTargetSelected[k], selectedLabels) }));
  const disagreements: string[] = [];
  for (const target of perTarget) {
    if (!target.agrees) disagreements.push(`On ${target.name} alone, this budget would choose ${target.selected.join(', ')} instead of ${selectedLabels.join(', ')}.`);
  }
  if (unit === 'types') {
    for (const option of ranked) {
      const ranks = option.targetRanks!;
      if (new Set(ranks).size > 1) disagreements.push(`${option.component} ranks ${ranks.map((rank, k) => `${rank} on ${names[k]}`).join(', ')}.`);
    }
  } else {
    // Cells: only the chosen ones, whose ranks matter here.
    for (const option of ranked.filter((candidate) => candidate.selected)) {
      const ranks = option.targetRanks!;
      if (new Set(ranks).size > 1) disagreements.push(`${label(option)} ranks ${ranks.map((rank, k) => `${rank} on ${names[k]}`).join(', ')} among cells.`);
    }
  }
  return { rule, statement: describeRule(rule, names), targets: names, perTarget, allAgree: perTarget.every((target) => target.agrees), disagreements };
}

/** `--across` or the panel's choice given for a report of one target. */
export function acrossNeedsTargets(): UsageError {
  return new UsageError('Choosing across targets (--across) needs a multi-target report (analyze --target A --target B ...); this report measured one target.');
}
