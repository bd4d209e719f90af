// The report's numbers as CSV: one row per (block, component).
import { PlasticityReport } from './reportSchema';

export function reportToCsv(report: PlasticityReport): string {
  const rows = [['block', 'module', 'component', 'mean', 'std', 'ci95_low', 'ci95_high', 'n', 'parameter_count', 'mode', 'synthetic_inputs']];
  for (const block of report.blocks) {
    for (const component of report.components) {
      const stats = block.components[component];
      rows.push([
        String(block.index),
        block.modules[component],
        component,
        String(stats.mean),
        String(stats.std),
        String(stats.ci95[0]),
        String(stats.ci95[1]),
        String(stats.n),
        String(stats.parameterCount),
        report.settings.mode,
        String(report.settings.inputs.synthetic),
      ]);
    }
  }
  return rows.map((row) => row.map(csvField).join(',')).join('\n') + '\n';
}

function csvField(value: string): string {
  return /[",\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}
