// `plasticity-lens recommend`: what to finetune under a budget, as a freeze configuration, from a
// saved report.
import { parseArgs } from 'node:util';
import { UsageError } from '../core/errors';
import { Budget, formatParameterCount, parseParameterBudget, parseTypeBudget } from '../core/recommend/budget';
import { FRAMEWORK_NAMINGS, isFrameworkNaming, resolveNaming } from '../core/recommend/frameworkNaming';
import { buildFreezePlan, FreezePlan } from '../core/recommend/freezePlan';
import { headAndFinalNormModules, measuredModuleParameters, planModelParameters, withoutModelFile } from '../core/recommend/measuredModel';
import { paperAccuracyLine } from '../core/recommend/paperResults';
import { ACROSS_RULES, AcrossRule, isAcrossRule } from '../core/recommend/acrossTargets';
import { exportFreezePlan, PLAN_FORMATS } from '../core/recommend/planExports';
import { optionLabel, Recommendation, recommend } from '../core/recommend/recommend';
import { parseOptions } from './commandLineOptions';
import { isOneOf } from '../core/vocabulary';
import { EXIT, VERBOSE_OPTION } from './exitCodes';
import { loadMeasuredModel, onePositional, protectOutput, readReportFile, writeOutput } from './reportFiles';

export const RECOMMEND_USAGE = `Usage: plasticity-lens recommend REPORT.json (--types N | --params N|P%) [options]

Ranks what to finetune by measured plasticity (most plastic first) under a budget, and writes a
freeze configuration named the way your framework names modules.

Budget (one of):
  --types N           the N most plastic component types, each in all blocks (the paper's protocol)
  --params N|P%       at most N trainable block parameters (120000, 18k, 28.3M), or P% of the
                      model's parameters; the most plastic choices that fit are taken in rank order

Options:
  --cells             choose single (block, component) cells instead of whole types (needs --params)
  --format F          json (default: the freeze plan), pytorch (apply(model) sets requires_grad),
                      peft (a LoraConfig), yaml (for config-driven trainers)
  --naming N          timm, hf, hf-dinov2, hf-dinov3, torchvision, clip, hf-clip, timm-beit, hf-beit
                      or onnx (default: the naming found in the model; the report's own names
                      are then used as they are)
  --no-head           freeze the classification head and final norm too (default: trainable)
  --across R          a multi-target report: choose by mean-rank (default: the mean of each
                      option's ranks over the targets) or worst-case (its worst rank in any
                      target); the output states the rule and where the targets disagree
  --model FILE        the ONNX model the report measured (default: the report's model.path); read
                      to name the head and final norm exactly; skipped when absent or different
  --out FILE          write to FILE instead of standard output (never the report or the model)
  --verbose           with an error, its stack trace
  -h, --help          show this help

A budget below the cheapest choice is an error (exit 2) naming the least it must be; a budget above
everything selects everything. The head and final norm are not counted in the budget.
Exit codes: 0 done, 1 internal error, 2 usage, 3 model file not usable, 4 report not readable.`;

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

/** The readable summary beside the written configuration. */
export function formatRecommendation(recommendation: Recommendation, plan: FreezePlan): string {
  const lines: string[] = [];
  const unit = recommendation.unit === 'types' ? 'component type in all blocks' : '(block, component) cell';
  lines.push(`Budget    ${recommendation.budgetDescription}, by ${unit}`);
  lines.push(`Naming    ${plan.naming.label}${plan.naming.names === 'template' ? " (built from the framework's pattern)" : ''}`);
  const across = recommendation.across;
  if (across) lines.push(`Across    ${across.statement}`);
  lines.push('');
  // Across targets: plasticity is the mean over targets, followed by the option's rank in each.
  const targetWidth = across ? Math.max(...across.targets.map((name) => name.length)) + 2 : 0;
  const targetHeader = across ? across.targets.map((name) => pad(name, Math.max(6, targetWidth), true)).join('') : '';
  lines.push(`${pad('rank', 6)}${pad('choice', 24)}${pad(across ? 'mean plast.' : 'plasticity', 12, true)}${pad('parameters', 12, true)}${targetHeader}`);
  const options = recommendation.options;
  const shown = options.length <= 15 ? options : options.filter((option, index) => option.selected || option.skipped || index < 5);
  for (const option of shown) {
    const status = option.selected ? '  chosen' : option.skipped ? `  skipped: ${option.skipped}` : '';
    const ranks = option.targetRanks ? option.targetRanks.map((rank) => pad(`#${rank}`, Math.max(6, targetWidth), true)).join('') : '';
    lines.push(
      `${pad(`${option.rank}.`, 6)}${pad(optionLabel(option), 24)}${pad(option.plasticity.toFixed(3), 12, true)}${pad(formatParameterCount(option.parameterCount), 12, true)}${ranks}${status}`,
    );
  }
  if (across) {
    lines.push('');
    lines.push(across.allAgree ? `Targets   agree: each alone would choose ${across.perTarget[0].selected.join(', ')}` : 'Targets   disagree:');
    for (const sentence of across.disagreements) lines.push(`  - ${sentence}`);
  }
  if (shown.length < options.length) lines.push(`      ... ${options.length - shown.length} more options, not chosen`);
  lines.push('');
  const counts = plan.counts;
  const extra =
    counts.trainable === null
      ? 'head and final norm: count unknown'
      : `${formatParameterCount(counts.trainable)} trainable in all (${(100 * counts.trainableShare!).toFixed(2)}% of ${formatParameterCount(counts.model)})`;
  lines.push(`Trainable ${formatParameterCount(recommendation.selectedParameterCount)} block parameters; ${extra}`);
  const paperTypes = plan.choices.filter((choice) => choice.paperNote !== null).map((choice) => choice.component);
  if (paperTypes.length > 0) lines.push(`Paper     ${paperAccuracyLine(paperTypes)}`);
  for (const note of plan.notes) if (note !== across?.statement) lines.push(`Note      ${note}`);
  for (const warning of plan.warnings) lines.push(`! ${warning}`);
  return lines.join('\n');
}

function budgetFrom(values: { types?: string; params?: string }): Budget {
  if (values.types !== undefined && values.params !== undefined) throw new UsageError('Give one budget: --types N or --params N|P%, not both.');
  if (values.types !== undefined) return parseTypeBudget(values.types);
  if (values.params !== undefined) {
    try {
      return parseParameterBudget(values.params);
    } catch (error) {
      throw new UsageError(`--params: ${(error as Error).message}`);
    }
  }
  throw new UsageError('recommend needs a budget: --types N (component types) or --params N|P% (parameters); see plasticity-lens recommend --help.');
}

export function runRecommendCommand(args: string[]): number {
  const { values, positionals } = parseOptions('recommend', () =>
    parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        types: { type: 'string' },
        params: { type: 'string' },
        cells: { type: 'boolean', default: false },
        format: { type: 'string' },
        naming: { type: 'string' },
        'no-head': { type: 'boolean', default: false },
        across: { type: 'string' },
        model: { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
        ...VERBOSE_OPTION,
      },
    }),
  );
  if (values.help) {
    process.stdout.write(`${RECOMMEND_USAGE}\n`);
    return EXIT.done;
  }
  const format = values.format ?? 'json';
  if (!isOneOf(PLAN_FORMATS, format)) throw new UsageError(`--format takes one of ${PLAN_FORMATS.join(', ')} (got '${values.format}').`);
  const naming = values.naming;
  if (naming !== undefined && !isFrameworkNaming(naming)) {
    throw new UsageError(`--naming takes one of ${FRAMEWORK_NAMINGS.join(', ')} (got '${naming}').`);
  }
  if (values.across !== undefined && !isAcrossRule(values.across)) throw new UsageError(`--across takes ${ACROSS_RULES.join(' or ')} (got '${values.across}').`);
  const budget = budgetFrom(values);
  const reportFile = onePositional('recommend', positionals);
  const out = values.out === undefined ? undefined : protectOutput(values.out, [reportFile]);
  const { report, source } = readReportFile(reportFile);
  if (out) protectOutput(out, [report.model.path, ...(values.model ? [values.model] : [])]);

  const recommendation = recommend(report, { budget, unit: values.cells ? 'cells' : 'types', includeHead: !values['no-head'], across: values.across as AcrossRule | undefined });
  const measured = loadMeasuredModel(report, values.model, false);
  // The same path as the report panel's: the head and final-norm modules' parameters, checked
  // against the report's sha256, or the note why the plan goes without them.
  const fromModel = measured.model
    ? planModelParameters(report, measured.model.filePath, measuredModuleParameters(measured.model, headAndFinalNormModules(report), measured.sha256))
    : withoutModelFile(measured.note!);
  const plan = buildFreezePlan({
    report,
    recommendation,
    naming: resolveNaming(report, naming),
    source,
    modelParameters: fromModel.modelParameters,
  });
  if (fromModel.note) plan.notes.push(fromModel.note);

  const text = exportFreezePlan(plan, format);
  const summary = formatRecommendation(recommendation, plan);
  if (out) {
    writeOutput(text, out);
    process.stdout.write(`${summary}\n${format} configuration written to ${out}\n`);
  } else {
    process.stdout.write(text);
    process.stderr.write(`${summary}\n`);
  }
  return EXIT.done;
}
