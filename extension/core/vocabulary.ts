// The fixed lists of the product, each an `as const` array with its type derived from it: the one
// place the engine, the command line, the webviews and the manifest's setting enums take them
// from. Free of imports, so that webviews can share it.

/** The five components of a transformer block, in report order. */
export const COMPONENTS = ['LN1', 'MHA', 'LN2', 'FC1', 'FC2'] as const;
export type ComponentName = (typeof COMPONENTS)[number];

/** What each component is fed: 'isolated' is the paper's measure. */
export const MEASURE_MODES = ['isolated', 'in-context'] as const;
export type MeasureMode = (typeof MEASURE_MODES)[number];

/** Execution providers of onnxruntime-node the engine can run on. */
export const EXECUTION_PROVIDERS = ['cpu', 'webgpu', 'cuda', 'dml', 'coreml'] as const;
export type ExecutionProviderName = (typeof EXECUTION_PROVIDERS)[number];
/** What a user may ask for: a provider, or 'auto' (the fastest that agrees with cpu). */
export const EXECUTION_PROVIDER_REQUESTS = ['auto', ...EXECUTION_PROVIDERS] as const;
export type ExecutionProviderRequest = (typeof EXECUTION_PROVIDER_REQUESTS)[number];

/** Module namings discovery recognises in a model ('generic' when none). */
export const NAMINGS = ['timm', 'hf', 'hf-dinov2', 'hf-dinov3', 'torchvision', 'clip', 'hf-clip', 'timm-beit', 'hf-beit', 'generic'] as const;
export type Naming = (typeof NAMINGS)[number];
/** Namings a freeze configuration can be written in: the frameworks', or the ONNX file's own names. */
export const FRAMEWORK_NAMINGS = ['timm', 'hf', 'hf-dinov2', 'hf-dinov3', 'torchvision', 'clip', 'hf-clip', 'timm-beit', 'hf-beit', 'onnx'] as const;
export type FrameworkNaming = (typeof FRAMEWORK_NAMINGS)[number];

/** Formats a freeze plan is exported in. */
export const PLAN_FORMATS = ['json', 'pytorch', 'peft', 'yaml'] as const;
export type PlanFormat = (typeof PLAN_FORMATS)[number];

/**
 * A parameter that belongs to no component (LayerScale γ, register tokens, an MLP's inner norm, a
 * relative position table shared by every block): listed in the report with its block, and
 * assigned by EXTRA_PARAMETER_RULE in every freeze plan.
 */
export interface ExtraParameter {
  /** Framework parameter name, e.g. "blocks.3.ls1.gamma", "reg_token"; a module for a pooling head ("vision_model.head"). */
  name: string;
  kind: 'layer scale' | 'register tokens' | 'pooling head' | 'mlp norm' | 'relative position table';
  /** The block it belongs to; null for the embedding's (register tokens), the head's and one every block shares. */
  block: number | null;
  /** The component it is trained with (MHA for ls1 and a shared relative position table, FC2 for ls2 and an MLP norm); null: stays with the embedding. */
  follows: ComponentName | null;
  count: number;
}

export const EXTRA_PARAMETER_RULE =
  'Parameters of no component: a LayerScale γ is trained when the component whose output it scales is (MHA for the attention branch, FC2 for the MLP branch); register tokens stay frozen with the embedding; an attention-pooling head is the head, trainable with it; a norm inside the MLP (EVA-02 SwiGLU) is trained with FC2, whose input it normalises; a relative position table shared by every block is trained when MHA is, in any block.';

export type Activation = 'gelu' | 'gelu_tanh' | 'quick_gelu' | 'relu' | 'silu';
export type NormPlacement = 'pre' | 'post';

/** True when `value` is one of `list`: narrows a string read from outside (options, settings, files). */
export function isOneOf<T extends string>(list: readonly T[], value: string | undefined): value is T {
  return value !== undefined && (list as readonly string[]).includes(value);
}
