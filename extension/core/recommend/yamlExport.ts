// The freeze plan as YAML for config-driven trainers. Written by hand (no YAML dependency):
// block style, every string double-quoted (JSON string syntax is valid YAML double-quoted
// syntax), numbers always in a form YAML 1.1 and 1.2 readers both take as numbers.
import { FreezePlan } from './freezePlan';
import { planSummaryLines } from './planHeader';
import { pythonCommentSections } from './pythonSource';

type YamlValue = string | number | boolean | null | YamlValue[] | { [key: string]: YamlValue };

function yamlKey(key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) && !/^(true|false|null|yes|no|on|off|y|n)$/i.test(key) ? key : JSON.stringify(key);
}

/** YAML 1.1 readers (PyYAML) take 1e-7 for a string: floats get a '.' and a signed exponent. */
function yamlNumber(value: number): string {
  if (Number.isNaN(value)) return '.nan';
  if (!Number.isFinite(value)) return value > 0 ? '.inf' : '-.inf';
  if (Number.isInteger(value) && Math.abs(value) < 1e15) return String(value);
  const text = String(value);
  if (!/e/i.test(text)) return text.includes('.') ? text : `${text}.0`;
  const [mantissa, exponent] = value.toExponential().split('e');
  return `${mantissa.includes('.') ? mantissa : `${mantissa}.0`}e${exponent.startsWith('-') || exponent.startsWith('+') ? exponent : `+${exponent}`}`;
}

function yamlScalar(value: string | number | boolean | null): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') return yamlNumber(value);
  return JSON.stringify(value);
}

function isScalar(value: YamlValue): value is string | number | boolean | null {
  return value === null || typeof value !== 'object';
}

/** Lines of a value nested `depth` levels deep (two spaces a level). */
function yamlLines(value: YamlValue, depth: number): string[] {
  const pad = '  '.repeat(depth);
  if (isScalar(value)) return [`${pad}${yamlScalar(value)}`];
  if (Array.isArray(value)) {
    if (value.length === 0) return [`${pad}[]`];
    return value.flatMap((item) => {
      if (isScalar(item) || (Array.isArray(item) ? item.length === 0 : Object.keys(item).length === 0)) return [`${pad}- ${yamlInline(item)}`];
      const nested = yamlLines(item, depth + 1);
      return [`${pad}- ${nested[0].trimStart()}`, ...nested.slice(1)];
    });
  }
  const entries = Object.entries(value);
  if (entries.length === 0) return [`${pad}{}`];
  return entries.flatMap(([key, item]) => {
    if (isScalar(item) || (Array.isArray(item) ? item.length === 0 : Object.keys(item).length === 0)) return [`${pad}${yamlKey(key)}: ${yamlInline(item)}`];
    return [`${pad}${yamlKey(key)}:`, ...yamlLines(item, depth + 1)];
  });
}

function yamlInline(value: YamlValue): string {
  if (isScalar(value)) return yamlScalar(value);
  return Array.isArray(value) ? '[]' : '{}';
}

/** Any JSON value as a YAML document (undefined fields dropped, as JSON.stringify does). */
export function toYaml(value: unknown): string {
  const plain = JSON.parse(JSON.stringify(value)) as YamlValue;
  return `${yamlLines(plain, 0).join('\n')}\n`;
}

export function freezePlanToYaml(plan: FreezePlan): string {
  const document = {
    freeze: {
      default: 'frozen',
      matching: plan.matching,
      trainable_modules: [...new Set(plan.trainable.flatMap((group) => group.modules))],
      trainable_groups: plan.trainable.map((group) => ({ what: group.label, rule: group.match, modules: group.modules, parameter_count: group.parameterCount })),
      trainable_parameters: plan.trainableParameters,
      frozen_modules: plan.frozen.modules,
    },
    lora: { target_modules: plan.lora.targetModules, modules_to_save: plan.lora.modulesToSave, trainable_parameters: plan.lora.trainableParameters, notes: plan.lora.notes },
    plasticity_lens: {
      format: plan.format,
      version: plan.version,
      tool: plan.tool,
      created_at: plan.createdAt,
      source: plan.source,
      naming: plan.naming,
      budget: plan.budget,
      choices: plan.choices,
      counts: plan.counts,
      notes: plan.notes,
      warnings: plan.warnings,
    },
  };
  const header = pythonCommentSections([['Freeze configuration for config-driven trainers.', ...planSummaryLines(plan)], plan.warnings.map((warning) => `WARNING: ${warning}`)]);
  return `${header}\n${toYaml(document)}`;
}
