// The vocabulary of a ViT's parts, free of imports so that webviews can share it.
export const COMPONENTS = ['LN1', 'MHA', 'LN2', 'FC1', 'FC2'] as const;
export type ComponentName = (typeof COMPONENTS)[number];

export type Naming = 'timm' | 'hf' | 'torchvision' | 'clip' | 'hf-clip' | 'generic';
export type Activation = 'gelu' | 'gelu_tanh' | 'quick_gelu' | 'relu' | 'silu';
export type NormPlacement = 'pre' | 'post';
