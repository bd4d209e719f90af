// How each training framework names a ViT's modules and parameters. Discovery uses these names
// where the file's own are missing or shared (fused q/k/v weights, deduplicated parameters);
// freeze configurations use them for a naming the user asks for.
import { ComponentName, Naming } from '../vocabulary';

/** Namings that have a framework template (all but 'generic'). */
export type FrameworkTemplateNaming = Exclude<Naming, 'generic'>;

export interface NamingTemplate {
  naming: FrameworkTemplateNaming;
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
  /** Attention linears created without a bias (HF DINOv3's k_proj: key_bias=False). */
  unbiasedLinears?: string[];
  /** Final norm after the last block: alternatives relative to the root (timm has norm or fc_norm). */
  finalNorm: string[];
  /** Classification head (or output projection): alternatives, full names from the model's top. */
  head: string[];
  /** Set when the head is relative to the root rather than the model's top (timm, torchvision, CLIP keep it inside). */
  headInsideRoot: boolean;
  /** Head names that are bare nn.Parameters, not modules (CLIP's output projection `proj`). */
  bareParameters: string[];
  /**
   * Components whose parameters the exporter folds into unnamed constants, so their names always
   * come from the template (timm Beit's MHA: q_bias and v_bias concatenated with a zero key bias,
   * the relative position table gathered into a [heads, N, N] bias).
   */
  parametersNotInFile?: ComponentName[];
  /**
   * BEiT's relative position table: its name in each attention (relative to the MHA module, one of
   * its parameters), and where the model keeps the one every block shares instead (relative to
   * the root: timm's use_shared_rel_pos_bias, Hugging Face's use_shared_relative_position_bias).
   */
  relativePositionTable?: { perBlock: string; shared: string };
}

/** A template before its parameter names: those follow from its attention, or are listed. */
type TemplateWithoutParameters = Omit<NamingTemplate, 'parameters'> & { attentionParameters?: string[] };

const LINEAR = ['weight', 'bias'];
const LAYER_NORM = ['weight', 'bias'];
const PACKED_ATTENTION = ['in_proj_weight', 'in_proj_bias', 'out_proj.weight', 'out_proj.bias'];

function linearParameters(modules: string[]): string[] {
  return modules.flatMap((module) => LINEAR.map((name) => `${module}.${name}`));
}

/** A naming's parameter names, which follow from how its attention holds the projections. */
function withParameters({ attentionParameters, ...template }: TemplateWithoutParameters): NamingTemplate {
  const unbiased = new Set(template.unbiasedLinears ?? []);
  const attention =
    attentionParameters ??
    (template.attentionLinears
      ? linearParameters(template.attentionLinears).filter((name) => !(name.endsWith('.bias') && unbiased.has(name.slice(0, -'.bias'.length))))
      : PACKED_ATTENTION);
  return { ...template, parameters: { LN1: LAYER_NORM, MHA: attention, LN2: LAYER_NORM, FC1: LINEAR, FC2: LINEAR } };
}

const TEMPLATES_WITHOUT_PARAMETERS: Record<FrameworkTemplateNaming, TemplateWithoutParameters> = {
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
  'hf-dinov2': {
    naming: 'hf-dinov2',
    label: 'Hugging Face transformers Dinov2ForImageClassification (Dinov2Model and Dinov2WithRegisters without the dinov2. prefix)',
    root: 'dinov2.',
    block: 'encoder.layer.{i}',
    components: { LN1: 'norm1', MHA: 'attention', LN2: 'norm2', FC1: 'mlp.fc1', FC2: 'mlp.fc2' },
    attentionLinears: ['attention.query', 'attention.key', 'attention.value', 'output.dense'],
    finalNorm: ['layernorm'],
    head: ['classifier'],
    headInsideRoot: false,
    bareParameters: [],
  },
  'hf-dinov3': {
    naming: 'hf-dinov3',
    label: 'Hugging Face transformers DINOv3ViTModel',
    root: '',
    block: 'layer.{i}',
    components: { LN1: 'norm1', MHA: 'attention', LN2: 'norm2', FC1: 'mlp.up_proj', FC2: 'mlp.down_proj' },
    attentionLinears: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
    unbiasedLinears: ['k_proj'],
    finalNorm: ['norm'],
    // DINOv3ViTModel has no head: a classifier put on top is named as HF's *ForImageClassification name theirs.
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
    label: 'Hugging Face transformers CLIP / SigLIP vision model',
    root: 'vision_model.',
    block: 'encoder.layers.{i}',
    components: { LN1: 'layer_norm1', MHA: 'self_attn', LN2: 'layer_norm2', FC1: 'mlp.fc1', FC2: 'mlp.fc2' },
    attentionLinears: ['q_proj', 'k_proj', 'v_proj', 'out_proj'],
    finalNorm: ['post_layernorm'],
    // CLIPForImageClassification has `classifier`, CLIPVisionModelWithProjection `visual_projection`;
    // SigLIP's vision model (the same names) its attention-pooling head.
    head: ['classifier', 'visual_projection', 'vision_model.head'],
    headInsideRoot: false,
    bareParameters: [],
  },
  'timm-beit': {
    naming: 'timm-beit',
    label: 'timm Beit (BEiT, BEiT v2, data2vec-vision)',
    root: '',
    block: 'blocks.{i}',
    components: { LN1: 'norm1', MHA: 'attn', LN2: 'norm2', FC1: 'mlp.fc1', FC2: 'mlp.fc2' },
    attentionLinears: ['qkv', 'proj'],
    // No qkv.bias: q_bias and v_bias are the attention's own parameters, the key's bias a zero buffer.
    attentionParameters: ['qkv.weight', 'q_bias', 'v_bias', 'relative_position_bias_table', 'proj.weight', 'proj.bias'],
    parametersNotInFile: ['MHA'],
    relativePositionTable: { perBlock: 'relative_position_bias_table', shared: 'rel_pos_bias.relative_position_bias_table' },
    // `norm` is an Identity under mean pooling, which normalises with `fc_norm` instead.
    finalNorm: ['norm', 'fc_norm'],
    head: ['head'],
    headInsideRoot: true,
    bareParameters: [],
  },
  'hf-beit': {
    naming: 'hf-beit',
    label: 'Hugging Face transformers BeitForImageClassification (BEiT, BEiT v2; data2vec-vision the same under data2vec_vision.)',
    root: 'beit.',
    block: 'encoder.layer.{i}',
    components: { LN1: 'layernorm_before', MHA: 'attention', LN2: 'layernorm_after', FC1: 'intermediate.dense', FC2: 'output.dense' },
    attentionLinears: ['attention.query', 'attention.key', 'attention.value', 'output.dense'],
    // The key has no bias; the table sits in the self-attention's relative_position_bias module.
    attentionParameters: [
      'attention.query.weight',
      'attention.query.bias',
      'attention.key.weight',
      'attention.value.weight',
      'attention.value.bias',
      'attention.relative_position_bias.relative_position_bias_table',
      'output.dense.weight',
      'output.dense.bias',
    ],
    parametersNotInFile: ['MHA'],
    relativePositionTable: {
      perBlock: 'attention.relative_position_bias.relative_position_bias_table',
      shared: 'encoder.relative_position_bias.relative_position_bias_table',
    },
    // `layernorm` is an Identity under mean pooling, which normalises with the pooler's.
    finalNorm: ['pooler.layernorm', 'layernorm'],
    head: ['classifier'],
    headInsideRoot: false,
    bareParameters: [],
  },
};

export const NAMING_TEMPLATES = Object.fromEntries(Object.entries(TEMPLATES_WITHOUT_PARAMETERS).map(([naming, template]) => [naming, withParameters(template)])) as Record<
  FrameworkTemplateNaming,
  NamingTemplate
>;

/** Block i's module in a template, under `root`. */
export function templateBlockModule(template: NamingTemplate, root: string, block: number): string {
  return `${root}${template.block.replace('{i}', String(block))}`;
}

/** A component's module in a template, under `root`. */
export function templateComponentModule(template: NamingTemplate, root: string, block: number, component: ComponentName): string {
  return `${templateBlockModule(template, root, block)}.${template.components[component]}`;
}
