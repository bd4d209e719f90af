// What an inline hint and its hover say, from the report alone. Pure (no vscode) so the exact
// wording is unit-tested and end-to-end tests can look for it on screen.
import { PlasticityReport } from '../core/report/reportSchema';
import { COMPONENTS, ComponentName } from '../core/vocabulary';
import { ModuleMatch } from './moduleMatcher';

/** Three significant digits: plasticity runs from about 0.01 (LayerNorms) to tens (linears). */
export function formatPlasticity(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const magnitude = Math.abs(value);
  if (magnitude >= 1000) return value.toFixed(0);
  if (magnitude !== 0 && magnitude < 0.001) return value.toExponential(2);
  return value.toPrecision(3);
}

/** 1 = the most plastic of the block's components. */
export function rankInBlock(report: PlasticityReport, block: number, component: ComponentName): number {
  const cells = report.blocks.find((candidate) => candidate.index === block)?.components;
  if (!cells) return 0;
  const mean = cells[component].mean;
  return 1 + COMPONENTS.filter((other) => cells[other].mean > mean).length;
}

/** What the numbers rest on, when that is not the paper's measure on real images. */
function caveats(report: PlasticityReport): string[] {
  const notes: string[] = [];
  if (report.settings.inputs.synthetic) notes.push('synthetic inputs');
  if (report.settings.mode === 'in-context') notes.push('in-context');
  return notes;
}

/**
 * The end-of-line text: "← MHA block 3: 7.52 (rank 1/5)" for a cell (rank among the block's
 * components), "← MHA, mean of 12 blocks: 6.10 (rank 1/5)" for a component type.
 */
export function hintText(match: ModuleMatch, report: PlasticityReport): string | undefined {
  const suffix = caveats(report)
    .map((note) => ` · ${note}`)
    .join('');
  if (match.kind === 'cell' && match.block !== undefined) {
    const block = report.blocks.find((candidate) => candidate.index === match.block);
    if (!block) return undefined;
    const rank = rankInBlock(report, match.block, match.component);
    return `← ${match.component} block ${match.block}: ${formatPlasticity(block.components[match.component].mean)} (rank ${rank}/${COMPONENTS.length})${suffix}`;
  }
  const summary = report.summary[match.component];
  return `← ${match.component}, mean of ${report.blocks.length} blocks: ${formatPlasticity(summary.mean)} (rank ${summary.rank}/${COMPONENTS.length})${suffix}`;
}

/** Escapes text (a file name) for Markdown. */
export function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>~]/g, '\\$&');
}

/**
 * The hover: the component's plasticity in every block (the matched block in bold), its rank, and
 * a link to the report. `openReportLink` is the command URI the caller builds for this model.
 */
export function hoverMarkdown(match: ModuleMatch, report: PlasticityReport, modelFileName: string, openReportLink: string): string {
  const { component } = match;
  const summary = report.summary[component];
  const lines: string[] = [];
  const subject = match.kind === 'cell' ? `${component}, block ${match.block}` : `${component} (all blocks)`;
  lines.push(`**Plasticity Lens: ${subject}** in ${escapeMarkdown(modelFileName)}`);
  lines.push('');
  if (match.kind === 'cell' && match.block !== undefined) {
    const block = report.blocks.find((candidate) => candidate.index === match.block);
    if (block) {
      lines.push(`Plasticity ${formatPlasticity(block.components[component].mean)}, rank ${rankInBlock(report, match.block, component)} of ${COMPONENTS.length} in this block.`);
    }
  }
  lines.push(`${component} over all blocks: mean ${formatPlasticity(summary.mean)}, rank ${summary.rank} of ${COMPONENTS.length} (1 = most plastic, worth finetuning first).`);
  lines.push('');
  lines.push('| block | mean | 95% interval |');
  lines.push('|---:|---:|:---|');
  for (const block of report.blocks) {
    const statistics = block.components[component];
    const row = [String(block.index), formatPlasticity(statistics.mean), `${formatPlasticity(statistics.ci95[0])} to ${formatPlasticity(statistics.ci95[1])}`];
    const cells = block.index === match.block ? row.map((cell) => `**${cell}**`) : row;
    lines.push(`| ${cells.join(' | ')} |`);
  }
  lines.push('');
  const inputs = report.settings.inputs.synthetic ? 'synthetic images (not your data)' : 'images';
  const mode = report.settings.mode === 'isolated' ? "isolated, the paper's measure" : "in-context, not the paper's measure";
  lines.push(`Measured on ${report.settings.pairs} pairs of ${inputs}, ${mode}. [Open report](${openReportLink})`);
  return lines.join('\n');
}

/** The command URI that opens the report panel of a model; args are JSON, as command links require. */
export function openReportCommandLink(modelUri: unknown): string {
  return `command:plasticityLens.showReport?${encodeURIComponent(JSON.stringify([modelUri]))}`;
}
