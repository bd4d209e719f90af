// What the user may spend on finetuning: a number of component types, a number of trainable
// parameters, or a share of the model's parameters.
import { UsageError } from '../errors';

export type Budget = { kind: 'types'; count: number } | { kind: 'parameters'; count: number } | { kind: 'share'; percent: number };

const SUFFIXES: Record<string, number> = { '': 1, k: 1e3, K: 1e3, m: 1e6, M: 1e6, g: 1e9, G: 1e9, b: 1e9, B: 1e9 };

/**
 * Reads a parameter budget: "120000", "18k", "28.3M", "1.5e6", or a share "10%" / "0.5%".
 * Counts are rounded down to whole parameters.
 */
export function parseParameterBudget(text: string): Budget {
  const trimmed = text.trim();
  const share = /^(\d+(?:\.\d+)?|\.\d+)\s*%$/.exec(trimmed);
  if (share) {
    const percent = Number(share[1]);
    if (!(percent > 0 && percent <= 100)) throw new UsageError(`A parameter share must lie in (0%, 100%] (got '${text}').`);
    return { kind: 'share', percent };
  }
  const count = /^(\d+(?:\.\d+)?(?:e\d+)?|\.\d+)\s*([kKmMgGbB]?)$/.exec(trimmed);
  if (count) {
    const value = Math.floor(Number(count[1]) * SUFFIXES[count[2]]);
    if (value >= 1 && Number.isSafeInteger(value)) return { kind: 'parameters', count: value };
  }
  throw new UsageError(`A parameter budget is a count (120000, 18k, 28.3M) or a share of the model's parameters (10%); got '${text}'.`);
}

export function parseTypeBudget(text: string): Budget {
  const count = Number(text);
  if (!Number.isInteger(count) || count < 1) throw new UsageError(`A number of component types is a whole number of at least 1 (got '${text}').`);
  return { kind: 'types', count };
}

/** The budget in words, for plans and messages. */
export function describeBudget(budget: Budget, modelParameters: number): string {
  switch (budget.kind) {
    case 'types':
      return `${budget.count} component type${budget.count === 1 ? '' : 's'}`;
    case 'parameters':
      return `${budget.count.toLocaleString('en-US')} trainable block parameters`;
    case 'share':
      return `${budget.percent}% of the model's ${modelParameters.toLocaleString('en-US')} parameters (${shareLimit(budget.percent, modelParameters).toLocaleString('en-US')} block parameters)`;
  }
}

/** Parameters a share allows, rounded down. */
export function shareLimit(percent: number, modelParameters: number): number {
  return Math.floor((percent / 100) * modelParameters + 1e-9);
}

/** Compact count for tables: 18.4k, 28.3M. */
export function formatParameterCount(count: number): string {
  if (count >= 1e9) return `${(count / 1e9).toFixed(2)}G`;
  if (count >= 1e6) return `${(count / 1e6).toFixed(1)}M`;
  if (count >= 1e3) return `${(count / 1e3).toFixed(1)}k`;
  return String(count);
}
