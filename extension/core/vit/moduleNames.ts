// Names of what discovery found, as the model's framework names them: module and parameter names
// read from the file (initializer and node names), the framework told by their shape, and its
// template where the file's own names do not name a module.
import { ConstantTensor } from '../graph/constantTensor';
import { elementCount } from '../onnx/onnxModel';
import { NAMING_TEMPLATES, templateBlockModule, templateComponentModule } from './namingTemplates';
import type { BlockParts } from './patterns/block';
import { AttentionLayer, COMPONENTS, ComponentName, ExtraParameter, LayerNormLayer, LinearLayer, Naming, TransformerBlock } from './vitStructure';

/** The framework module and parameter names of a block's components, as the file names them. */
export function blockNames(parts: BlockParts) {
  const attentionLinears = uniqueLinears(parts.attention);
  const parameters: Record<ComponentName, string[]> = {
    LN1: layerNormParameters(parts.ln1),
    MHA: attentionLinears.flatMap(linearParameters),
    LN2: layerNormParameters(parts.ln2),
    FC1: parts.fc1.flatMap(linearParameters),
    FC2: linearParameters(parts.fc2),
  };
  const parameterCounts: Record<ComponentName, number> = {
    LN1: layerNormTensors(parts.ln1).reduce((sum, tensor) => sum + elementCount(tensor.dims), 0),
    MHA: attentionLinears.reduce((sum, linear) => sum + linearTensors(linear).reduce((total, tensor) => total + elementCount(tensor.dims), 0), 0),
    LN2: layerNormTensors(parts.ln2).reduce((sum, tensor) => sum + elementCount(tensor.dims), 0),
    FC1: parts.fc1.flatMap(linearTensors).reduce((sum, tensor) => sum + elementCount(tensor.dims), 0),
    FC2: linearTensors(parts.fc2).reduce((sum, tensor) => sum + elementCount(tensor.dims), 0),
  };
  const modules = {} as Record<ComponentName, string>;
  for (const component of COMPONENTS) modules[component] = componentModule(parameters[component].map(moduleOfParameter), component);
  const module = commonModule(COMPONENTS.map((component) => modules[component]));
  return { modules, parameters, parameterCounts, module };
}

/**
 * A component's module: the one its parameters lie under; for FC1 made of a gated MLP's gate and
 * value layers, which share only the MLP's module (FC2's too), both named: "blocks.0.mlp.{fc1_g,fc1_x}".
 */
function componentModule(parameterModules: string[], component: ComponentName): string {
  const common = commonModule(parameterModules);
  const distinct = [...new Set(parameterModules)];
  if (component !== 'FC1' || distinct.length < 2) return common;
  const prefix = common === '' ? 0 : common.length + 1;
  return `${common === '' ? '' : `${common}.`}{${distinct.map((module) => module.slice(prefix)).join(',')}}`;
}

/** True for a module name that names several modules ("blocks.0.mlp.{fc1_g,fc1_x}"). */
export function isModuleGroup(module: string): boolean {
  return module.endsWith('}');
}

/** The real modules a component's module name stands for: itself, or a group's members (from its parameter names). */
export function modulesOfComponent(module: string, parameters: readonly string[]): string[] {
  return isModuleGroup(module) ? [...new Set(parameters.map(moduleOfParameter))] : [module];
}

/**
 * The templates name a plain MLP's fc1 and fc2. A gated MLP's layers keep the file's names when
 * they sit in one MLP module: timm's `fc1_g`, `fc1_x`, `fc2`, EVA-02's `w1`, `w2`, `w3`, HF
 * Dinov2's `weights_in`, `weights_out`.
 */
function keepsGatedMlpNames(block: TransformerBlock, component: ComponentName): boolean {
  if (!block.gatedMlp || (component !== 'FC1' && component !== 'FC2')) return false;
  const parent = (module: string) => module.slice(0, Math.max(0, module.lastIndexOf('.')));
  return parent(block.modules.FC1) !== '' && parent(block.modules.FC1) === parent(block.modules.FC2);
}

/** The inner norm of a block's gated MLP: parameters of no component, trained with FC2 (whose input it normalises). */
export function mlpNormParameters(block: Pick<TransformerBlock, 'index' | 'gatedMlp'>): ExtraParameter[] {
  const norm = block.gatedMlp?.norm;
  if (!norm) return [];
  return layerNormTensors(norm).map((tensor) => ({ name: parameterName(tensor), kind: 'mlp norm', block: block.index, follows: 'FC2', count: elementCount(tensor.dims) }));
}

/** A block's LayerScale γ, each with the component it follows. */
export function layerScaleParameters(block: Pick<TransformerBlock, 'index' | 'layerScale'>): ExtraParameter[] {
  const entries: [ConstantTensor | undefined, ComponentName][] = [
    [block.layerScale.attention, 'MHA'],
    [block.layerScale.mlp, 'FC2'],
  ];
  return entries
    .filter((entry): entry is [ConstantTensor, ComponentName] => entry[0] !== undefined)
    .map(([gamma, follows]) => ({ name: parameterName(gamma), kind: 'layer scale', block: block.index, follows, count: elementCount(gamma.dims) }));
}

/** Register tokens among the embedding's constants, as timm (`reg_token`) and HF (`register_tokens`) name them. */
export function registerTokenParameters(constants: ConstantTensor[]): ExtraParameter[] {
  const seen = new Set<string>();
  return constants
    .filter((constant) => /(^|\.)(reg_token|register_tokens)$/.test(parameterName(constant)) && !seen.has(parameterName(constant)) && seen.add(parameterName(constant)))
    .map((constant) => ({ name: parameterName(constant), kind: 'register tokens', block: null, follows: null, count: elementCount(constant.dims) }));
}

function uniqueLinears(attention: AttentionLayer): LinearLayer[] {
  return [...new Set([attention.query.linear, attention.key.linear, attention.value.linear, attention.outProjection])];
}

function layerNormTensors(layerNorm: LayerNormLayer): ConstantTensor[] {
  return [layerNorm.gamma, layerNorm.beta].filter((tensor): tensor is ConstantTensor => tensor !== undefined);
}

function linearTensors(linear: LinearLayer): ConstantTensor[] {
  return [linear.weight, linear.bias].filter((tensor): tensor is ConstantTensor => tensor !== undefined);
}

const PARAMETER_SUFFIX = /\.(weight|bias|in_proj_weight|in_proj_bias)$/;

/** True for names that are a framework's parameter names (not exporter-made ones like onnx::MatMul_12). */
function isFrameworkName(name: string): boolean {
  return PARAMETER_SUFFIX.test(name) && !name.includes('::') && !name.startsWith('/');
}

/** "/blocks.0/attn/qkv/MatMul" -> "blocks.0.attn.qkv" */
function moduleOfNodeName(nodeName: string): string | undefined {
  if (!nodeName.startsWith('/')) return undefined;
  const parts = nodeName.split('/').filter(Boolean);
  parts.pop();
  return parts.length > 0 ? parts.join('.') : undefined;
}

/**
 * The file's name for a constant's values: its initializer's name, less the suffix quantization
 * tools add ("onnx::MatMul_12_quantized"); a rewritten constant keeps its canonical name.
 */
function parameterName(constant: ConstantTensor): string {
  if (isFrameworkName(constant.name)) return constant.name;
  if (constant.stored && constant.storedIn === 'initializer' && constant.stored.name) return constant.stored.name.replace(/_quantized$/, '');
  return constant.name;
}

function layerNormParameters(layerNorm: LayerNormLayer): string[] {
  return layerNormTensors(layerNorm).map(parameterName);
}

function linearParameters(linear: LinearLayer): string[] {
  const names: string[] = [];
  const biasName = linear.bias && isFrameworkName(parameterName(linear.bias)) ? parameterName(linear.bias) : undefined;
  const weightName = parameterName(linear.weight);
  if (isFrameworkName(weightName)) names.push(weightName);
  else if (biasName) names.push(biasName.replace(/bias$/, 'weight'));
  else {
    const module = moduleOfNodeName(linear.nodeName);
    names.push(module ? `${module}.weight` : weightName);
  }
  if (linear.bias) names.push(biasName ?? parameterName(linear.bias));
  return names;
}

function moduleOfParameter(name: string): string {
  return PARAMETER_SUFFIX.test(name) ? name.replace(PARAMETER_SUFFIX, '') : name;
}

function commonModule(modules: string[]): string {
  const split = modules.map((module) => module.split('.'));
  const first = split[0] ?? [];
  let length = first.length;
  for (const parts of split) {
    let shared = 0;
    while (shared < Math.min(length, parts.length) && parts[shared] === first[shared]) shared++;
    length = shared;
  }
  return first.slice(0, length).join('.');
}

/** Module paths that show each framework's naming (any block, any component). */
const NAMING_PATTERNS: [Naming, RegExp][] = [
  ['timm', /(^|\.)blocks\.\d+\.(norm1|norm2|attn|mlp)(\.|$)/],
  ['hf-dinov2', /(^|\.)encoder\.layer\.\d+\.(norm1|norm2|mlp)(\.|$)/],
  ['hf', /(^|\.)encoder\.layer\.\d+\.(attention|layernorm_before|layernorm_after|intermediate|output)(\.|$)/],
  // DINOv3ViTModel's blocks are `layer.N` with no `encoder.` above them.
  ['hf-dinov3', /(^|(?<!encoder)\.)layer\.\d+\.(norm1|norm2|attention|mlp)(\.|$)/],
  ['torchvision', /(^|\.)encoder_layer_\d+\.(ln_1|ln_2|self_attention|mlp)(\.|$)/],
  ['clip', /(^|\.)resblocks\.\d+\.(ln_1|ln_2|attn|mlp)(\.|$)/],
  ['hf-clip', /(^|\.)layers\.\d+\.(self_attn|layer_norm1|layer_norm2|mlp)(\.|$)/],
];

/** The naming most of the blocks' module names follow (a fused or renamed module does not outvote the rest). */
export function detectNaming(blocks: TransformerBlock[]): Naming {
  const votes = new Map<Naming, number>();
  for (const block of blocks) {
    for (const component of COMPONENTS) {
      const naming = NAMING_PATTERNS.find(([, pattern]) => pattern.test(block.modules[component]))?.[0];
      if (naming) votes.set(naming, (votes.get(naming) ?? 0) + 1);
    }
  }
  const [best] = [...votes.entries()].sort((a, b) => b[1] - a[1]);
  // BEiT keeps the ViT's module names (timm's and Hugging Face's); its attention adds a relative position bias.
  const relativePositionBias = blocks.every((block) => block.attention.scoreBias);
  if (best?.[0] === 'timm' && relativePositionBias) return 'timm-beit';
  if (best?.[0] === 'hf' && relativePositionBias) return 'hf-beit';
  return best?.[0] ?? 'generic';
}

/**
 * Names from the framework's template where the file's own do not name the module: a fused
 * attention's packed weights, a parameter the exporter deduplicated into another module's. The
 * prefix in front of the template (e.g. 'vision_model.') is the one the well-named modules show.
 * Returns the parameters of no component it names: a relative position table every block shares.
 */
export function applyTemplateNames(blocks: TransformerBlock[], naming: Naming, patchGrid?: [number, number]): ExtraParameter[] {
  if (naming === 'generic') return [];
  const template = NAMING_TEMPLATES[naming];
  let root: string | undefined;
  for (const block of blocks) {
    for (const component of COMPONENTS) {
      const relative = templateComponentModule(template, '', block.index, component);
      const module = block.modules[component];
      if (root === undefined && (module === relative || module.endsWith(`.${relative}`))) root = module.slice(0, module.length - relative.length);
    }
  }
  if (root === undefined) return [];
  // One constant on every block's logits: the model's shared table (BEiT's rel_pos_bias), not each attention's.
  const table = template.relativePositionTable;
  const shared = table !== undefined && sharesOneScoreBias(blocks);
  for (const block of blocks) {
    const hasBias: Record<ComponentName, boolean> = {
      LN1: block.ln1.beta !== undefined,
      MHA: block.attention.query.linear.bias !== undefined,
      LN2: block.ln2.beta !== undefined,
      FC1: block.fc1[0].bias !== undefined,
      FC2: block.fc2.bias !== undefined,
    };
    // A bias is named when its layer has one; the attention's output projection (its last linear) may have one when q, k and v do not (BEiT without qkv bias).
    const outputLinear = template.attentionLinears?.[template.attentionLinears.length - 1];
    const named = (component: ComponentName, name: string) => {
      if (!/(^|[._])bias$/.test(name)) return true;
      if (component === 'MHA' && outputLinear && name.startsWith(`${outputLinear}.`)) return block.attention.outProjection.bias !== undefined;
      return hasBias[component];
    };
    for (const component of COMPONENTS) {
      const expected = templateComponentModule(template, root, block.index, component);
      const notInFile = template.parametersNotInFile?.includes(component) ?? false;
      if ((block.modules[component] === expected && !notInFile) || keepsGatedMlpNames(block, component)) continue;
      block.modules[component] = expected;
      block.parameters[component] = template.parameters[component]
        .filter((name) => named(component, name) && !(shared && name === table.perBlock))
        .map((name) => `${expected}.${name}`);
      if (notInFile && component === 'MHA') block.parameterCounts.MHA = beitAttentionParameterCount(block.attention, patchGrid, !shared);
    }
    block.module = templateBlockModule(template, root, block.index);
  }
  if (!shared) return [];
  const count = beitAttentionParameterCount(blocks[0].attention, patchGrid, true) - beitAttentionParameterCount(blocks[0].attention, patchGrid, false);
  return [{ name: `${root}${table.shared}`, kind: 'relative position table', block: null, follows: 'MHA', count }];
}

/** True when every block's logits get the same constant (more than one block). */
function sharesOneScoreBias(blocks: TransformerBlock[]): boolean {
  const names = new Set(blocks.map((block) => block.attention.scoreBias?.values.name));
  return blocks.length > 1 && names.size === 1 && !names.has(undefined);
}

/**
 * What a count of the file's constants needs to count the framework's parameters: where the
 * template names a component because the exporter folded its parameters (timm Beit's MHA), that
 * component's count, less the folded constants' elements (each once: the file holds it once).
 */
export function foldedParameterCorrection(blocks: TransformerBlock[], naming: Naming, extraParameters: ExtraParameter[]): number {
  if (naming === 'generic' || !NAMING_TEMPLATES[naming].parametersNotInFile?.includes('MHA')) return 0;
  const folded = new Map<string, number>();
  let framework = extraParameters.filter((parameter) => parameter.kind === 'relative position table').reduce((sum, parameter) => sum + parameter.count, 0);
  for (const block of blocks) {
    framework += block.parameterCounts.MHA;
    const tensors = uniqueLinears(block.attention).flatMap(linearTensors);
    if (block.attention.scoreBias) tensors.push(block.attention.scoreBias.values);
    for (const tensor of tensors) folded.set(tensor.name, elementCount(tensor.dims));
  }
  return framework - [...folded.values()].reduce((sum, count) => sum + count, 0);
}

/**
 * BEiT's attention parameters, counted from the constants the exporter folded them into: the
 * projections (timm's fused qkv: its weight, and q_bias and v_bias, two thirds of the folded qkv
 * bias, the key's third a zero buffer; Hugging Face's query, key and value as they are); the
 * relative position table, one row per offset between two patches of the grid, (2h - 1)(2w - 1),
 * plus 3 for the class token's row, column and itself, times the heads it has a column for
 * (`withTable` false: the projections alone, the table being the model's shared one).
 */
function beitAttentionParameterCount(attention: AttentionLayer, patchGrid: [number, number] | undefined, withTable: boolean): number {
  const { query, outProjection, scoreBias } = attention;
  const tensorsCount = (tensors: ConstantTensor[]) => tensors.reduce((sum, tensor) => sum + elementCount(tensor.dims), 0);
  const fusedQkv = query.linear === attention.key.linear;
  let count = fusedQkv
    ? elementCount(query.linear.weight.dims) + (query.linear.bias ? (2 * elementCount(query.linear.bias.dims)) / 3 : 0) + tensorsCount(linearTensors(outProjection))
    : tensorsCount(uniqueLinears(attention).flatMap(linearTensors));
  if (scoreBias && withTable) {
    const patches = scoreBias.tokens - 1;
    const side = Math.round(Math.sqrt(patches));
    const [h, w] = patchGrid && patchGrid[0] * patchGrid[1] === patches ? patchGrid : [side, side];
    if (h * w !== patches) throw new Error(`a relative position bias over ${scoreBias.tokens} tokens is not a class token and a ${h}x${w} patch grid`);
    count += ((2 * h - 1) * (2 * w - 1) + 3) * scoreBias.heads;
  }
  return count;
}
