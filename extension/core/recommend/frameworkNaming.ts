// How each training framework names a ViT's modules, so that freeze configurations use the names
// the user's own code sees. When the requested naming is the one the model was exported with, the
// report's names are the truth (they come from the ONNX file); the templates below are used only
// for a naming the user asks for instead, and for the head and final norm (not in the report).
import { UsageError } from '../errors';
import { BlockReport, PlasticityReport } from '../report/reportSchema';
import { NamingTemplate, NAMING_TEMPLATES } from '../vit/namingTemplates';
import { FRAMEWORK_NAMINGS, FrameworkNaming, isOneOf } from '../vocabulary';
import { COMPONENTS, ComponentName, Naming } from '../vit/vitStructure';

export { NAMING_TEMPLATES } from '../vit/namingTemplates';
export type { NamingTemplate } from '../vit/namingTemplates';

export { FRAMEWORK_NAMINGS } from '../vocabulary';
export type { FrameworkNaming } from '../vocabulary';

/** Names of one (block, component) cell in a naming. */
export interface CellNames {
  /** The component's module name, as the report shows it. */
  module: string;
  /** What its parameters lie under: the module, or a gated MLP's FC1 layers ("blocks.0.mlp.{fc1_g,fc1_x}" is no module of its own). */
  modules: string[];
  parameters: string[];
  /** nn.Linear submodules LoRA can wrap; empty for LayerNorms and packed attention. */
  loraTargets: string[];
  /** Why LoRA cannot target this cell, when it cannot. */
  loraLimitation?: string;
}

/** A naming chosen for a report: where its names come from and how to name every part. */
export interface ResolvedNaming {
  naming: FrameworkNaming;
  /** The naming found in the model file. */
  detected: Naming;
  /** 'report': block names are the report's own (from the ONNX); 'template': built from the framework's pattern. */
  source: 'report' | 'template';
  /** Prefix in front of the framework's usual module names ('' when none). */
  root: string;
  template: NamingTemplate | null;
  cell(block: number, component: ComponentName): CellNames;
  /** Alternatives for the final norm's module; empty when the naming cannot tell. */
  finalNormCandidates: string[];
  /** Alternatives for the head's module; empty when the naming cannot tell. */
  headCandidates: string[];
  /** Head candidates that are bare parameters, not modules. */
  bareParameters: string[];
}

const PARAMETER_SUFFIX = /\.(weight|bias)$/;

/**
 * The nn.Linear modules among a component's parameter names: those owning "<module>.weight".
 * Packed nn.MultiheadAttention weights (in_proj_weight) belong to no Linear.
 */
function linearModulesOf(parameters: string[]): string[] {
  const modules = parameters.filter((name) => name.endsWith('.weight')).map((name) => name.replace(PARAMETER_SUFFIX, ''));
  return [...new Set(modules)];
}

function hasPackedAttention(parameters: string[]): boolean {
  return parameters.some((name) => /(^|\.)in_proj_(weight|bias)$/.test(name));
}

const PACKED_LIMITATION =
  'LoRA cannot target the packed q/k/v projection (in_proj_weight) of torch.nn.MultiheadAttention, and its out_proj is applied without calling the module, so the whole attention is trained instead (modules_to_save)';
const LAYER_NORM_LIMITATION = 'LoRA has no adapter for LayerNorm, so it is trained in full (modules_to_save)';

function isLayerNorm(component: ComponentName): boolean {
  return component === 'LN1' || component === 'LN2';
}

function reportCell(block: BlockReport, component: ComponentName): CellNames {
  const parameters = [...block.components[component].parameters];
  const module = block.modules[component];
  const modules = [module];
  if (isLayerNorm(component)) return { module, modules, parameters, loraTargets: [], loraLimitation: LAYER_NORM_LIMITATION };
  if (component === 'MHA') {
    if (hasPackedAttention(parameters)) return { module, modules, parameters, loraTargets: [], loraLimitation: PACKED_LIMITATION };
    return { module, modules, parameters, loraTargets: linearModulesOf(parameters) };
  }
  // FC1 of a gated MLP with separate gate and value layers: both are trained and wrapped.
  const linears = linearModulesOf(parameters);
  if (linears.length > 1) return { module, modules: linears, parameters, loraTargets: linears };
  return { module, modules, parameters, loraTargets: [module] };
}

function templateCell(template: NamingTemplate, root: string, block: number, component: ComponentName): CellNames {
  const module = `${root}${template.block.replace('{i}', String(block))}.${template.components[component]}`;
  const parameters = template.parameters[component].map((name) => `${module}.${name}`);
  const modules = [module];
  if (isLayerNorm(component)) return { module, modules, parameters, loraTargets: [], loraLimitation: LAYER_NORM_LIMITATION };
  if (component === 'MHA') {
    if (!template.attentionLinears) return { module, modules, parameters, loraTargets: [], loraLimitation: PACKED_LIMITATION };
    return { module, modules, parameters, loraTargets: template.attentionLinears.map((linear) => `${module}.${linear}`) };
  }
  return { module, modules, parameters, loraTargets: [module] };
}

/**
 * The prefix in front of the template's names in the report ('' for the fixture HF ViT, exported
 * without the 'vit.' wrapper), or null when the report's block names do not follow the template.
 */
function rootInReport(template: NamingTemplate, report: PlasticityReport): string | null {
  const blockName = template.block.replace('{i}', String(report.blocks[0].index));
  const actual = report.blocks[0].module;
  if (actual === blockName) return '';
  if (actual.endsWith(`.${blockName}`)) return actual.slice(0, actual.length - blockName.length);
  return null;
}

function headCandidates(template: NamingTemplate, root: string): string[] {
  return template.head.map((name) => (template.headInsideRoot ? `${root}${name}` : name));
}

export function isFrameworkNaming(value: string | undefined): value is FrameworkNaming {
  return isOneOf(FRAMEWORK_NAMINGS, value);
}

/**
 * Chooses the names a configuration is written in. Without a request, the model's own naming
 * (or the raw ONNX names when the model follows no known framework).
 */
export function resolveNaming(report: PlasticityReport, requested?: FrameworkNaming): ResolvedNaming {
  const detected = report.model.architecture.naming;
  const naming: FrameworkNaming = requested ?? (detected === 'generic' ? 'onnx' : detected);
  if (!isFrameworkNaming(naming)) throw new UsageError(`Unknown naming '${String(naming)}'; use one of ${FRAMEWORK_NAMINGS.join(', ')}.`);
  const blockOf = (index: number): BlockReport => {
    const block = report.blocks.find((candidate) => candidate.index === index);
    if (!block) throw new UsageError(`The report has no block ${index}.`);
    return block;
  };

  if (naming === 'onnx' || naming === detected) {
    // The report's names are what the exporter saw in the framework's module tree.
    const template = detected === 'generic' ? null : NAMING_TEMPLATES[detected];
    const root = template ? rootInReport(template, report) : null;
    return {
      naming,
      detected,
      source: 'report',
      root: root ?? '',
      template,
      cell: (block, component) => reportCell(blockOf(block), component),
      finalNormCandidates: template && root !== null ? template.finalNorm.map((name) => `${root}${name}`) : [],
      headCandidates: template && root !== null ? headCandidates(template, root) : [],
      bareParameters: template && root !== null ? template.bareParameters.map((name) => `${root}${name}`) : [],
    };
  }

  const template = NAMING_TEMPLATES[naming];
  return {
    naming,
    detected,
    source: 'template',
    root: template.root,
    template,
    cell: (block, component) => {
      blockOf(block);
      return templateCell(template, template.root, block, component);
    },
    finalNormCandidates: template.finalNorm.map((name) => `${template.root}${name}`),
    headCandidates: headCandidates(template, template.root),
    bareParameters: template.bareParameters.map((name) => `${template.root}${name}`),
  };
}

/** Every cell's names, block by block, in component order. */
export function allCells(report: PlasticityReport, naming: ResolvedNaming): { block: number; component: ComponentName; names: CellNames }[] {
  return report.blocks.flatMap((block) => COMPONENTS.map((component) => ({ block: block.index, component, names: naming.cell(block.index, component) })));
}
