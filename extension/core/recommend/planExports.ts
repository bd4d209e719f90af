// One entry point for the freeze plan's file formats.
import { FreezePlan } from './freezePlan';
import { freezePlanToPeft } from './peftExport';
import { freezePlanToPytorch } from './pytorchExport';
import { freezePlanToYaml } from './yamlExport';

export type PlanFormat = 'json' | 'pytorch' | 'peft' | 'yaml';
export const PLAN_FORMATS: readonly PlanFormat[] = ['json', 'pytorch', 'peft', 'yaml'];

export function exportFreezePlan(plan: FreezePlan, format: PlanFormat): string {
  switch (format) {
    case 'json':
      return `${JSON.stringify(plan, null, 2)}\n`;
    case 'pytorch':
      return freezePlanToPytorch(plan);
    case 'peft':
      return freezePlanToPeft(plan);
    case 'yaml':
      return freezePlanToYaml(plan);
  }
}
