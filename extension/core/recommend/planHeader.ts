// The provenance and summary lines every text export of a freeze plan starts with.
import * as path from 'node:path';
import { formatParameterCount } from './budget';
import { FreezePlan } from './freezePlan';
import { optionLabel } from './recommend';

/** Sentences describing where a plan comes from, what it chose, and what to be wary of. */
export function planSummaryLines(plan: FreezePlan): string[] {
  const lines: string[] = [];
  const report = plan.source.report ? `${path.basename(plan.source.report)} (sha256 ${plan.source.reportSha256})` : 'a report';
  lines.push(`Written by Plasticity Lens ${plan.tool.version} on ${plan.createdAt} from ${report}, measured ${plan.source.reportCreatedAt}.`);
  lines.push(`Model: ${path.basename(plan.source.model.path)} (sha256 ${plan.source.model.sha256}); names: ${plan.naming.label}.`);
  const inputs = plan.source.settings.inputs;
  lines.push(
    `Measure: ${plan.source.settings.mode}, ${plan.source.settings.pairs} pairs, ${inputs.synthetic ? 'synthetic images' : `${inputs.reference ?? '?'} vs ${inputs.target ?? '?'}`}.`,
  );
  lines.push(`Budget: ${plan.budget.description}, by ${plan.budget.unit === 'types' ? 'component type in all blocks' : '(block, component) cell'}.`);
  for (const choice of plan.choices) {
    lines.push(`Chosen: ${optionLabel(choice)}, plasticity ${choice.plasticity.toFixed(3)}, rank ${choice.rank}, ${choice.parameterCount.toLocaleString('en-US')} parameters.`);
  }
  const counts = plan.counts;
  const extras = [
    counts.head === null ? 'head: count unknown' : counts.head > 0 ? `head ${counts.head.toLocaleString('en-US')}` : null,
    counts.finalNorm === null ? 'final norm: count unknown' : counts.finalNorm > 0 ? `final norm ${counts.finalNorm.toLocaleString('en-US')}` : null,
  ].filter((part): part is string => part !== null);
  const total =
    counts.trainable === null
      ? 'total unknown'
      : `${formatParameterCount(counts.trainable)} of ${formatParameterCount(counts.model)} (${(100 * counts.trainableShare!).toFixed(2)}%)`;
  lines.push(`Trainable: ${counts.selectedBlockParameters.toLocaleString('en-US')} block parameters${extras.length ? `, ${extras.join(', ')}` : ''}; ${total}.`);
  return lines;
}
