// What the Plasticity tree view lists under a report: component types in rank order, and under
// each the blocks' values. Pure (no vscode), so it is unit-tested.
import { PlasticityReport } from '../core/report/reportSchema';
import { ComponentName } from '../core/vit/vitStructure';

export interface ComponentTypeRow {
  component: ComponentName;
  rank: number;
  /** "1. MHA" */
  label: string;
  /** The mean over blocks. */
  description: string;
  tooltip: string;
}

export interface BlockRow {
  component: ComponentName;
  block: number;
  /** "block 3" */
  label: string;
  /** The block's mean. */
  description: string;
  tooltip: string;
}

export function formatPlasticity(value: number): string {
  return Number.isFinite(value) ? value.toFixed(3) : '–';
}

export function componentTypeRows(report: PlasticityReport): ComponentTypeRow[] {
  return [...report.components]
    .sort((a, b) => report.summary[a].rank - report.summary[b].rank)
    .map((component) => {
      const summary = report.summary[component];
      return {
        component,
        rank: summary.rank,
        label: `${summary.rank}. ${component}`,
        description: formatPlasticity(summary.mean),
        tooltip: `${component}: mean plasticity ${formatPlasticity(summary.mean)} over ${report.blocks.length} blocks, ${summary.parameterCount.toLocaleString('en-US')} parameters`,
      };
    });
}

/** The blocks in depth order (the tree mirrors the table; the ranking is the parent's). */
export function blockRows(report: PlasticityReport, component: ComponentName): BlockRow[] {
  return report.blocks.map((block) => {
    const statistics = block.components[component];
    return {
      component,
      block: block.index,
      label: `block ${block.index}`,
      description: formatPlasticity(statistics.mean),
      tooltip: `${block.modules[component]}: ${formatPlasticity(statistics.mean)} (95% ${formatPlasticity(statistics.ci95[0])} – ${formatPlasticity(statistics.ci95[1])}, n=${statistics.n})`,
    };
  });
}
