// A freeze plan: which modules and parameters to train, in the user's framework's names, with
// the budget, counts and provenance. Every export format (JSON, PyTorch, PEFT, YAML) is written
// from this one object.
import { PlasticityReport } from '../report/reportSchema';
import { TOOL_VERSION } from '../toolVersion';
import { EXTRA_PARAMETER_RULE } from '../vocabulary';
import { ComponentName } from '../vit/vitStructure';
import { Budget } from './budget';
import { allCells, FrameworkNaming, ResolvedNaming } from './frameworkNaming';
import { ModuleParameterLookup } from './onnxScopes';
import { RankedOption, Recommendation, SelectionUnit } from './recommend';
import { ReportSource } from './reportInput';

export const FREEZE_PLAN_FORMAT = 'plasticity-lens/freeze-plan';
export const FREEZE_PLAN_VERSION = 1;

export const MATCHING_RULE = "A parameter is trainable when its name equals one of the trainable module names or starts with it followed by '.'; every other parameter is frozen.";

export interface TrainableGroup {
  role: 'component' | 'layer-scale' | 'mlp-norm' | 'relative-position-table' | 'head' | 'final-norm';
  /** In words: "MHA in blocks 0-11", "classification head". */
  label: string;
  component?: ComponentName;
  blocks?: number[];
  /** Module names; what a parameter must lie under to be trained. */
  modules: string[];
  /** 'all': every module must own parameters; 'any': at least one of these alternatives must. */
  match: 'all' | 'any';
  /** Exact parameter names, when known. */
  parameters: string[] | null;
  /** Null when the report and model do not tell (head and final norm under another naming). */
  parameterCount: number | null;
  /** nn.Linear modules LoRA can wrap inside this group (empty when none). */
  loraTargets: string[];
  /** Why LoRA cannot wrap (some of) this group. */
  loraLimitation?: string;
}

/** A chosen option as the plan records it: the ranked option's facts and its module names. */
export type PlanChoice = Omit<RankedOption, 'selected' | 'skipped'> & { modules: string[] };

export interface FreezePlan {
  format: typeof FREEZE_PLAN_FORMAT;
  version: typeof FREEZE_PLAN_VERSION;
  tool: { name: 'plasticity-lens'; version: string };
  createdAt: string;
  source: {
    report: string | null;
    reportSha256: string | null;
    reportCreatedAt: string;
    model: { path: string; sha256: string; parameterCount: number; fileChecked: boolean };
    settings: PlasticityReport['settings'];
  };
  naming: { used: FrameworkNaming; detected: string; names: 'report' | 'template'; root: string; label: string };
  budget: Budget & { unit: SelectionUnit; description: string; parameterLimit: number | null };
  choices: PlanChoice[];
  /** All options, most plastic first, with what was chosen and why others were skipped. */
  ranking: RankedOption[];
  matching: string;
  trainable: TrainableGroup[];
  frozen: { modules: string[]; note: string };
  /** Exact names of the parameters to train, where known (see trainable[].parameters). */
  trainableParameters: string[];
  counts: {
    selectedBlockParameters: number;
    head: number | null;
    finalNorm: number | null;
    /** Null when the head or final norm count is unknown. */
    trainable: number | null;
    model: number;
    trainableShare: number | null;
  };
  /**
   * PEFT's view: LoRA on targetModules, full training for modulesToSave, and trainableParameters
   * for bare nn.Parameters (CLIP's proj) that modules_to_save cannot hold.
   */
  lora: { targetModules: string[]; modulesToSave: string[]; trainableParameters: string[]; notes: string[] };
  notes: string[];
  warnings: string[];
  /** A multi-target report: the rule that chose across its targets and where they disagree. */
  across?: Recommendation['across'];
}

export interface FreezePlanInputs {
  report: PlasticityReport;
  recommendation: Recommendation;
  naming: ResolvedNaming;
  /** The report file, when it came from one. */
  source?: ReportSource;
  /**
   * The measured model's parameters by module, when its file was read and matches the report;
   * names the head and final norm exactly.
   */
  modelParameters?: ModuleParameterLookup;
  createdAt?: string;
}

function blockRange(blocks: number[]): string {
  if (blocks.length === 1) return `block ${blocks[0]}`;
  const contiguous = blocks.every((block, index) => index === 0 || block === blocks[index - 1] + 1);
  return contiguous ? `blocks ${blocks[0]}-${blocks[blocks.length - 1]}` : `blocks ${blocks.join(', ')}`;
}

function componentGroups(report: PlasticityReport, recommendation: Recommendation, naming: ResolvedNaming): { groups: TrainableGroup[]; choices: PlanChoice[] } {
  const allBlocks = report.blocks.map((block) => block.index);
  const groups: TrainableGroup[] = [];
  const choices: PlanChoice[] = [];
  for (const option of recommendation.selected) {
    const blocks = option.block === null ? allBlocks : [option.block];
    const cells = blocks.map((block) => naming.cell(block, option.component));
    const modules = cells.flatMap((cell) => cell.modules);
    groups.push({
      role: 'component',
      label: `${option.component} in ${blockRange(blocks)}`,
      component: option.component,
      blocks,
      modules,
      match: 'all',
      parameters: cells.flatMap((cell) => cell.parameters),
      parameterCount: option.parameterCount,
      loraTargets: cells.flatMap((cell) => cell.loraTargets),
      ...(cells[0].loraLimitation ? { loraLimitation: cells[0].loraLimitation } : {}),
    });
    choices.push({
      component: option.component,
      block: option.block,
      plasticity: option.plasticity,
      ci95: option.ci95,
      rank: option.rank,
      parameterCount: option.parameterCount,
      modules,
      paperNote: option.paperNote,
    });
  }
  return { groups, choices };
}

/** Block parameters of no component that follow the chosen components (EXTRA_PARAMETER_RULE): LayerScale γ, MLP norms; one group per kind and component group that has any. */
function followingGroups(report: PlasticityReport, groups: TrainableGroup[]): TrainableGroup[] {
  const kinds = [
    { kind: 'layer scale', role: 'layer-scale' as const, label: 'LayerScale γ' },
    { kind: 'mlp norm', role: 'mlp-norm' as const, label: 'MLP norm' },
  ];
  const extras = report.model.architecture.extraParameters?.parameters ?? [];
  return groups.flatMap((group) =>
    kinds.flatMap(({ kind, role, label }) => {
      const following = extras.filter(
        (parameter) => parameter.kind === kind && parameter.follows === group.component && parameter.block !== null && group.blocks?.includes(parameter.block),
      );
      if (following.length === 0) return [];
      const names = following.map((parameter) => parameter.name);
      return [
        {
          role,
          label: `${label} of ${group.label}`,
          component: group.component,
          blocks: following.map((parameter) => parameter.block!),
          modules: names,
          match: 'all' as const,
          parameters: names,
          parameterCount: following.reduce((sum, parameter) => sum + parameter.count, 0),
          loraTargets: [],
        },
      ];
    }),
  );
}

/** A relative position table every block shares (BEiT's rel_pos_bias), trained once when MHA is in any block. */
function sharedTableGroups(report: PlasticityReport, groups: TrainableGroup[]): TrainableGroup[] {
  const tables = report.model.architecture.extraParameters?.parameters.filter((parameter) => parameter.kind === 'relative position table') ?? [];
  return tables
    .filter((table) => groups.some((group) => group.component === table.follows && (group.blocks?.length ?? 0) > 0))
    .map((table) => ({
      role: 'relative-position-table' as const,
      label: `relative position table shared by every block (trained with ${table.follows})`,
      component: table.follows ?? undefined,
      modules: [table.name],
      match: 'all' as const,
      parameters: [table.name],
      parameterCount: table.count,
      loraTargets: [],
    }));
}

interface ExtraPart {
  group: TrainableGroup | null;
  /** Modules to freeze when the head is not trained. */
  modules: string[];
  /** 0 when the model has none; null when unknown. */
  parameterCount: number | null;
  note: string | null;
}

/** The head or final norm: exact when the model file names it, else the framework's alternatives. */
function extraPart(role: 'head' | 'final-norm', candidates: string[], naming: ResolvedNaming, lookup: ModuleParameterLookup | undefined): ExtraPart {
  const label = role === 'head' ? 'classification head' : 'final norm';
  if (candidates.length === 0) {
    return {
      group: null,
      modules: [],
      parameterCount: null,
      note: `The ${label} cannot be named for this model (its module names follow no known framework); add its module name to the trainable modules yourself.`,
    };
  }
  if (lookup && naming.source === 'report') {
    const found = candidates.map((module) => ({ module, parameters: lookup(module) })).filter((entry) => entry.parameters !== null);
    if (found.length === 0) {
      const addYourOwn = role === 'head' ? ' If you add a head for finetuning, make it trainable.' : '';
      return { group: null, modules: [], parameterCount: 0, note: `The model has no ${label} (no parameters under ${candidates.join(' or ')}).${addYourOwn}` };
    }
    const parameters = found.flatMap((entry) => entry.parameters!.names);
    const parameterCount = found.reduce((sum, entry) => sum + entry.parameters!.count, 0);
    return {
      group: {
        role,
        label,
        modules: found.map((entry) => entry.module),
        match: 'all',
        parameters,
        parameterCount,
        loraTargets: [],
      },
      modules: found.map((entry) => entry.module),
      parameterCount,
      note: null,
    };
  }
  const why = naming.source === 'template' ? `under the ${naming.naming} naming` : 'without the model file';
  return {
    group: { role, label, modules: candidates, match: 'any', parameters: null, parameterCount: null, loraTargets: [] },
    modules: candidates,
    parameterCount: null,
    note: `The report does not cover the ${label}; ${why} its name is one of ${candidates.join(', ')} (whichever your model has) and its parameter count is unknown.`,
  };
}

function loraSection(trainable: TrainableGroup[], bareParameters: string[]): FreezePlan['lora'] {
  const targetModules = trainable.flatMap((group) => group.loraTargets);
  const modulesToSave: string[] = [];
  const trainableParameters: string[] = [];
  const notes = new Set<string>();
  for (const group of trainable) {
    if (group.role === 'component') {
      if (group.loraTargets.length === 0) modulesToSave.push(...group.modules);
      if (group.loraLimitation) notes.add(`${group.component}: ${group.loraLimitation}.`);
      continue;
    }
    for (const module of group.modules) {
      // A parameter named like the module is the module itself: a bare nn.Parameter.
      const bare = group.parameters !== null ? group.parameters.includes(module) : bareParameters.includes(module);
      (bare ? trainableParameters : modulesToSave).push(module);
    }
  }
  if (trainableParameters.length > 0) {
    const names = trainableParameters.map((name) => `'${name}'`).join(', ');
    notes.add(
      `${names} ${trainableParameters.length === 1 ? 'is a parameter, not a module' : 'are parameters, not modules'}: modules_to_save cannot hold it, so train_parameters() sets it trainable after get_peft_model (TRAINABLE_PARAMETERS).`,
    );
  }
  notes.add('LoRA trains low-rank adapters on target_modules instead of their full weights; the parameter counts of this plan are for full finetuning.');
  if (targetModules.length === 0) {
    notes.add('No chosen component has an nn.Linear layer LoRA can wrap, and PEFT needs at least one target module: train this plan in full with the pytorch format instead.');
  }
  const dotless = modulesToSave.filter((module) => !module.includes('.'));
  if (dotless.length > 0) {
    const examples = dotless.map((name) => `'${name}' also matches any module whose name ends in '${name}'${name === 'norm' ? " (timm's fc_norm, q_norm, k_norm)" : ''}`);
    notes.add(`PEFT matches modules_to_save by plain name suffix: ${examples.join('; ')}.`);
  }
  return { targetModules, modulesToSave, trainableParameters, notes: [...notes] };
}

export function buildFreezePlan(inputs: FreezePlanInputs): FreezePlan {
  const { report, recommendation, naming } = inputs;
  const { groups, choices } = componentGroups(report, recommendation, naming);
  const head = extraPart('head', naming.headCandidates, naming, inputs.modelParameters);
  const finalNorm = extraPart('final-norm', naming.finalNormCandidates, naming, inputs.modelParameters);
  const notes = [...recommendation.notes];
  const trainedExtras = [...followingGroups(report, groups), ...sharedTableGroups(report, groups)];
  if ((report.model.architecture.extraParameters?.parameters.length ?? 0) > 0) notes.push(EXTRA_PARAMETER_RULE);
  const trainable = [...groups, ...trainedExtras];
  const frozenExtras: string[] = [];
  for (const part of [finalNorm, head]) {
    if (recommendation.includeHead) {
      if (part.group) trainable.push(part.group);
      if (part.note) notes.push(part.note);
    } else {
      frozenExtras.push(...part.modules);
    }
  }

  const selectedModules = new Set(groups.flatMap((group) => group.modules));
  const frozenModules = allCells(report, naming)
    .flatMap((cell) => cell.names.modules)
    .filter((module) => !selectedModules.has(module));
  const trainableParameters = trainable.flatMap((group) => group.parameters ?? []);

  const headCount = recommendation.includeHead ? head.parameterCount : 0;
  const normCount = recommendation.includeHead ? finalNorm.parameterCount : 0;
  const extrasCount = trainedExtras.reduce((sum, group) => sum + (group.parameterCount ?? 0), 0);
  const trainableCount = headCount === null || normCount === null ? null : recommendation.selectedParameterCount + extrasCount + headCount + normCount;

  if (naming.source === 'template') {
    notes.push(
      `Names follow the ${naming.template!.label} pattern (the model was exported with ${naming.detected} names); parameter names are the ones that pattern gives, counts are the report's.`,
    );
  }

  return {
    format: FREEZE_PLAN_FORMAT,
    version: FREEZE_PLAN_VERSION,
    tool: { name: 'plasticity-lens', version: TOOL_VERSION },
    createdAt: inputs.createdAt ?? new Date().toISOString(),
    source: {
      report: inputs.source?.file ?? null,
      reportSha256: inputs.source?.sha256 ?? null,
      reportCreatedAt: report.createdAt,
      model: { path: report.model.path, sha256: report.model.sha256, parameterCount: report.model.parameterCount, fileChecked: inputs.modelParameters !== undefined },
      settings: report.settings,
    },
    naming: {
      used: naming.naming,
      detected: naming.detected,
      names: naming.source,
      root: naming.root,
      label: naming.template ? (naming.source === 'report' && naming.naming === 'onnx' ? `ONNX names (${naming.template.label})` : naming.template.label) : 'ONNX names',
    },
    budget: { ...recommendation.budget, unit: recommendation.unit, description: recommendation.budgetDescription, parameterLimit: recommendation.parameterLimit },
    choices,
    ranking: recommendation.options,
    matching: MATCHING_RULE,
    trainable,
    frozen: {
      modules: [...frozenModules, ...frozenExtras],
      note: 'These block components (and every parameter not under a trainable module: embeddings, and the head and final norm when frozen) are frozen.',
    },
    trainableParameters,
    counts: {
      selectedBlockParameters: recommendation.selectedParameterCount,
      head: headCount,
      finalNorm: normCount,
      trainable: trainableCount,
      model: report.model.parameterCount,
      trainableShare: trainableCount === null ? null : trainableCount / report.model.parameterCount,
    },
    lora: loraSection(trainable, naming.bareParameters),
    notes,
    warnings: [...recommendation.warnings],
    ...(recommendation.across ? { across: recommendation.across } : {}),
  };
}
