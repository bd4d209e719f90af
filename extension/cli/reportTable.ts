// The readable summary the command line prints for a report.
import * as path from 'node:path';
import { PlasticityReport } from '../core/report/reportSchema';
import { COMPONENTS } from '../core/vit/vitStructure';
import { ExtraParameter } from '../core/vocabulary';

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

function formatCount(count: number): string {
  if (count >= 1e6) return `${(count / 1e6).toFixed(1)}M`;
  if (count >= 1e3) return `${(count / 1e3).toFixed(1)}k`;
  return String(count);
}

export function formatReportTable(report: PlasticityReport): string {
  const lines: string[] = [];
  const architecture = report.model.architecture;
  const settings = report.settings;
  const modeLabel = settings.mode === 'isolated' ? "isolated (the paper's measure)" : "in-context (not the paper's measure)";
  lines.push(
    `Model     ${path.basename(report.model.path)}  (${architecture.blocks} blocks, d=${architecture.hiddenSize}, ${architecture.heads} heads, MLP ${architecture.mlpSize}, ${architecture.tokens} tokens, ${architecture.naming} naming)`,
  );
  lines.push(`Mode      ${modeLabel}`);
  // A plain ViT's table stays as it was; a family states what is measured beyond the paper.
  const family = architecture.family;
  if (family && family.measured.length > 1) lines.push(`Family    ${family.family}: ${family.measured.slice(1).join(' ')}`);
  const extras = architecture.extraParameters;
  if (extras) lines.push(`Extra     not in any component: ${extraParameterSummary(extras.parameters)}. ${extras.rule}`);
  const multi = report.targets && report.targets.length > 1 ? ` (the first of ${report.targets.length} targets; all below)` : '';
  const inputs = settings.inputs.synthetic
    ? 'SYNTHETIC images (not your data)'
    : settings.inputs.kind === 'split-folder'
      ? `${settings.inputs.reference ?? settings.inputs.target} split in halves`
      : `${settings.inputs.reference} vs ${settings.inputs.target}`;
  lines.push(`Inputs    ${settings.pairs} pairs, ${inputs}${multi}`);
  if (report.stopping?.rule === 'until-settled')
    lines.push(`Stopped   after ${report.stopping.pairsMeasured} of at most ${report.stopping.maxPairs} pairs: ${report.stopping.message}`);
  lines.push(
    `Provider  ${settings.executionProvider.used}${settings.executionProvider.tried
      .filter((attempt) => !attempt.ok)
      .map((attempt) => `; ${attempt.name}: ${attempt.reason}`)
      .join('')}`,
  );
  lines.push(`Time      ${(report.timing.totalMs / 1000).toFixed(1)} s total, ${report.timing.pairsPerSecond.toFixed(2)} pairs/s`);
  lines.push('');

  const cell = 18;
  lines.push('Plasticity per block: mean ± 95% half-interval');
  lines.push(pad('block', 8) + COMPONENTS.map((component) => pad(component, cell, true)).join(''));
  for (const block of report.blocks) {
    const cells = COMPONENTS.map((component) => {
      const stats = block.components[component];
      const half = (stats.ci95[1] - stats.ci95[0]) / 2;
      return pad(`${stats.mean.toFixed(3)} ± ${half.toFixed(3)}`, cell, true);
    });
    lines.push(pad(String(block.index), 8) + cells.join(''));
  }
  lines.push('');
  lines.push('Ranking (mean over blocks; 1 = most plastic, worth finetuning first)');
  const ranked = [...COMPONENTS].sort((a, b) => report.summary[a].rank - report.summary[b].rank);
  for (const component of ranked) {
    const summary = report.summary[component];
    lines.push(`  ${summary.rank}. ${pad(component, 4)} ${pad(summary.mean.toFixed(3), 9, true)}   ${pad(formatCount(summary.parameterCount), 7, true)} parameters`);
  }
  if (report.targets && report.targets.length > 1) lines.push('', ...targetsTable(report));
  if (report.bounds) {
    const bounds = report.bounds;
    const largest = (component: 'LN1' | 'MHA' | 'LN2' | 'FC1' | 'FC2') => {
      const values = bounds.blocks.flatMap((block) => (block[component] ? [block[component]!.bound] : []));
      return values.length > 0 ? Math.max(...values).toPrecision(4) : 'n/a';
    };
    const tokens = bounds.tokens ? `; r = ${bounds.tokens.radius.toFixed(2)}, s_min = ${bounds.tokens.minTokenStd.toFixed(3)} from the first ${bounds.tokens.images} images` : '';
    lines.push('');
    lines.push(
      `Data-free upper bounds (bounds, not plasticity), largest over blocks: LN1 ${largest('LN1')}, MHA ${largest('MHA')}, LN2 ${largest('LN2')}, FC1 ${largest('FC1')}, FC2 ${largest('FC2')}${tokens} (per block in the JSON report's "bounds")`,
    );
  }
  for (const warning of [...settings.inputs.notes, ...report.warnings]) lines.push(`! ${warning}`);
  return lines.join('\n');
}

/** A multi-target report's targets: shift from the reference, and each type's mean and rank. */
function targetsTable(report: PlasticityReport): string[] {
  const targets = report.targets!;
  const width = Math.max(8, ...targets.map((target) => target.name.length + 2));
  const lines = [`Targets against the same reference pairs: mean plasticity over blocks (rank); ||X-Y|| = mean input distance`];
  lines.push(pad('target', width) + pad('pairs', 7, true) + pad('||X-Y||', 10, true) + COMPONENTS.map((component) => pad(component, 13, true)).join(''));
  for (const target of targets) {
    const cells = COMPONENTS.map((component) => pad(`${target.summary[component].mean.toFixed(3)} (${target.summary[component].rank})`, 13, true));
    lines.push(pad(target.name, width) + pad(String(target.pairs), 7, true) + pad(target.meanInputDistance.toFixed(2), 10, true) + cells.join(''));
  }
  const tops = new Set(targets.map((target) => target.ranking[0]));
  lines.push(
    tops.size === 1
      ? `  Every target ranks ${targets[0].ranking[0]} most plastic.`
      : `  The most plastic type differs: ${targets.map((target) => `${target.name} ${target.ranking[0]}`).join(', ')}; see 'plasticity-lens recommend REPORT --across mean-rank|worst-case'.`,
  );
  return lines;
}

/** "LayerScale γ ×6 (blocks.N.ls1.gamma, ...), register tokens (reg_token)" */
function extraParameterSummary(parameters: ExtraParameter[]): string {
  const byKind = new Map<string, string[]>();
  for (const parameter of parameters) byKind.set(parameter.kind, [...(byKind.get(parameter.kind) ?? []), parameter.name]);
  return [...byKind.entries()].map(([kind, names]) => `${kind} ×${names.length} (${names.slice(0, 2).join(', ')}${names.length > 2 ? ', ...' : ''})`).join('; ');
}
