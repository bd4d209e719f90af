// The family discovery recognised and what is measured for it (architecture.family, written by
// core/vit/familyDescription.ts), with the parameters that belong to no component and the rule
// the freeze plans assign them by: the model overview and the report panel show the same section.
import type { Architecture } from '../../extension/core/report/reportSchema';
import { element } from './vscodeApi';

/** What the section reads: a report's architecture, or a model overview's. */
type FamilyFacts = Pick<Architecture, 'family' | 'extraParameters'>;

/** Kinds of parameters outside the five components, counted, e.g. "layer scale (6 parameters, 192 values)". */
function extraParameterLines(architecture: FamilyFacts): string[] {
  const byKind = new Map<string, { entries: number; values: number }>();
  for (const parameter of architecture.extraParameters?.parameters ?? []) {
    const kind = byKind.get(parameter.kind) ?? { entries: 0, values: 0 };
    kind.entries += 1;
    kind.values += parameter.count;
    byKind.set(parameter.kind, kind);
  }
  return [...byKind].map(([kind, { entries, values }]) => `${kind} (${entries} parameter${entries === 1 ? '' : 's'}, ${values.toLocaleString()} values)`);
}

/** The section, or undefined for a report written before families were named. */
export function familySection(architecture: FamilyFacts): HTMLElement | undefined {
  const family = architecture.family;
  if (!family) return undefined;
  const extras = extraParameterLines(architecture);
  return element(
    'section',
    { id: 'family' },
    element('h2', {}, 'What is measured'),
    element('p', {}, element('strong', {}, 'Family: '), family.family),
    element('ul', {}, ...family.measured.map((sentence) => element('li', {}, sentence))),
    ...(extras.length > 0 ? [element('p', {}, `Not in any component: ${extras.join('; ')}.`), element('p', { class: 'muted' }, architecture.extraParameters!.rule)] : []),
  );
}
