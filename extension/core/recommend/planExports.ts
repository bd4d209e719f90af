// One entry point for the freeze plan's file formats.
import { FreezePlan } from './freezePlan';
import { freezePlanToPeft } from './peftExport';
import { freezePlanToPytorch } from './pytorchExport';
import { freezePlanToYaml } from './yamlExport';

import { PlanFormat } from '../vocabulary';

export { PLAN_FORMATS } from '../vocabulary';
export type { PlanFormat } from '../vocabulary';

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
