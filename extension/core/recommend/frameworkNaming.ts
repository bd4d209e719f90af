// How each training framework names a ViT's modules, so that freeze configurations use the names
// the user's own code sees. When the requested naming is the one the model was exported with, the
// report's names are the truth (they come from the ONNX file); the templates below are used only
// for a naming the user asks for instead, and for the head and final norm (not in the report).
import { UsageError } from '../errors';
import { BlockReport, PlasticityReport } from '../report/reportSchema';
import { COMPONENTS, ComponentName, Naming } from '../vit/vitStructure';

/** Namings a freeze configuration can be written in: the frameworks', or the ONNX file's own names. */
export type FrameworkNaming = 'timm' | 'hf' | 'torchvision' | 'clip' | 'hf-clip' | 'onnx';
export const FRAMEWORK_NAMINGS: readonly FrameworkNaming[] = ['timm', 'hf', 'torchvision', 'clip', 'hf-clip', 'onnx'];

export interface NamingTemplate {
  naming: Exclude<FrameworkNaming, 'onnx'>;
  /** Who uses these names, for messages. */
  label: string;
  /** Prefix of every backbone module in the framework's usual model class ('vit.' for HF ViTForImageClassification). */
  root: string;
  /** Block i's module, relative to the root; '{i}' stands for the index. */
  block: string;
  /** Each component's module, relative to its block. */
  components: Record<ComponentName, string>;
  /** Parameter names of each component, relative to the component's module. */
  parameters: Record<ComponentName, string[]>;
  /**
   * The attention's nn.Linear submodules (relative to the MHA module), the ones LoRA can wrap;
   * null when the projections are packed inside torch.nn.MultiheadAttention.
   */
  attentionLinears: string[] | null;
  /** Final norm after the last block: alternatives relative to the root (timm has norm or fc_norm). */
  finalNorm: string[];
  /** Classification head (or output projection): alternatives, full names from the model's top. */
  head: string[];
  /** Set when the head is relative to the root rather than the model's top (timm, torchvision, CLIP keep it inside). */
  headInsideRoot: boolean;
  /** Head names that are bare nn.Parameters, not modules (CLIP's output projection `proj`). */
  bareParameters: string[];
}

const LINEAR = ['weight', 'bias'];
const LAYER_NORM = ['weight', 'bias'];
const PACKED_ATTENTION = ['in_proj_weight', 'in_proj_bias', 'out_proj.weight', 'out_proj.bias'];

function linearParameters(modules: string[]): string[] {
  return modules.flatMap((module) => LINEAR.map((name) => `${module}.${name}`));
}

/** A naming's parameter names, which follow from how its attention holds the projections. */
function withParameters(template: Omit<NamingTemplate, 'parameters'>): NamingTemplate {
  const attention = template.attentionLinears ? linearParameters(template.attentionLinears) : PACKED_ATTENTION;
  return { ...template, parameters: { LN1: LAYER_NORM, MHA: attention, LN2: LAYER_NORM, FC1: LINEAR, FC2: LINEAR } };
}

const TEMPLATES_WITHOUT_PARAMETERS: Record<NamingTemplate['naming'], Omit<NamingTemplate, 'parameters'>> = {
  timm: {
    naming: 'timm',
    label: 'timm VisionTransformer',
    root: '',
    block: 'blocks.{i}',
    components: { LN1: 'norm1', MHA: 'attn', LN2: 'norm2', FC1: 'mlp.fc1', FC2: 'mlp.fc2' },
    attentionLinears: ['qkv', 'proj'],
    finalNorm: ['norm', 'fc_norm'],
    head: ['head', 'head_dist'],
    headInsideRoot: true,
    bareParameters: [],
  },
  hf: {
    naming: 'hf',
    label: 'Hugging Face transformers ViTForImageClassification',
    root: 'vit.',
    block: 'encoder.layer.{i}',
    components: { LN1: 'layernorm_before', MHA: 'attention', LN2: 'layernorm_after', FC1: 'intermediate.dense', FC2: 'output.dense' },
    attentionLinears: ['attention.query', 'attention.key', 'attention.value', 'output.dense'],
    finalNorm: ['layernorm'],
    head: ['classifier'],
    headInsideRoot: false,
    bareParameters: [],
  },
  torchvision: {
    naming: 'torchvision',
    label: 'torchvision VisionTransformer',
    root: '',
    block: 'encoder.layers.encoder_layer_{i}',
    components: { LN1: 'ln_1', MHA: 'self_attention', LN2: 'ln_2', FC1: 'mlp.0', FC2: 'mlp.3' },
    attentionLinears: null,
    finalNorm: ['encoder.ln'],
    head: ['heads'],
    headInsideRoot: true,
    bareParameters: [],
  },
  clip: {
    naming: 'clip',
    label: 'OpenAI CLIP / OpenCLIP VisionTransformer',
    root: '',
    block: 'transformer.resblocks.{i}',
    components: { LN1: 'ln_1', MHA: 'attn', LN2: 'ln_2', FC1: 'mlp.c_fc', FC2: 'mlp.c_proj' },
    attentionLinears: null,
    finalNorm: ['ln_post'],
    head: ['proj'],
    headInsideRoot: true,
    bareParameters: ['proj'],
  },
  'hf-clip': {
    naming: 'hf-clip',
    label: 'Hugging Face transformers CLIP vision model',
    root: 'vision_model.',
    block: 'encoder.layers.{i}',
    components: { LN1: 'layer_norm1', MHA: 'self_attn', LN2: 'layer_norm2', FC1: 'mlp.fc1', FC2: 'mlp.fc2' },
    attentionLinears: ['q_proj', 'k_proj', 'v_proj', 'out_proj'],
    finalNorm: ['post_layernorm'],
    // CLIPForImageClassification has `classifier`, CLIPVisionModelWithProjection `visual_projection`.
    head: ['classifier', 'visual_projection'],
    headInsideRoot: false,
    bareParameters: [],
  },
};

export const NAMING_TEMPLATES = Object.fromEntries(
  Object.entries(TEMPLATES_WITHOUT_PARAMETERS).map(([naming, template]) => [naming, withParameters(template)]),
) as Record<NamingTemplate['naming'], NamingTemplate>;

/** Names of one (block, component) cell in a naming. */
export interface CellNames {
  module: string;
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
  "LoRA cannot target the packed q/k/v projection (in_proj_weight) of torch.nn.MultiheadAttention, and its out_proj is applied without calling the module, so the whole attention is trained instead (modules_to_save)";
const LAYER_NORM_LIMITATION = 'LoRA has no adapter for LayerNorm, so it is trained in full (modules_to_save)';

function isLayerNorm(component: ComponentName): boolean {
  return component === 'LN1' || component === 'LN2';
}

function reportCell(block: BlockReport, component: ComponentName): CellNames {
  const parameters = [...block.components[component].parameters];
  const module = block.modules[component];
  if (isLayerNorm(component)) return { module, parameters, loraTargets: [], loraLimitation: LAYER_NORM_LIMITATION };
  if (component === 'MHA') {
    if (hasPackedAttention(parameters)) return { module, parameters, loraTargets: [], loraLimitation: PACKED_LIMITATION };
    return { module, parameters, loraTargets: linearModulesOf(parameters) };
  }
  return { module, parameters, loraTargets: [module] };
}

function templateCell(template: NamingTemplate, root: string, block: number, component: ComponentName): CellNames {
  const module = `${root}${template.block.replace('{i}', String(block))}.${template.components[component]}`;
  const parameters = template.parameters[component].map((name) => `${module}.${name}`);
  if (isLayerNorm(component)) return { module, parameters, loraTargets: [], loraLimitation: LAYER_NORM_LIMITATION };
  if (component === 'MHA') {
    if (!template.attentionLinears) return { module, parameters, loraTargets: [], loraLimitation: PACKED_LIMITATION };
    return { module, parameters, loraTargets: template.attentionLinears.map((linear) => `${module}.${linear}`) };
  }
  return { module, parameters, loraTargets: [module] };
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

export function isFrameworkNaming(value: string): value is FrameworkNaming {
  return (FRAMEWORK_NAMINGS as readonly string[]).includes(value);
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
