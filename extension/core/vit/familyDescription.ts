// Which family a discovered ViT belongs to, and what is measured for it, in words: the report,
// the CLI table, the overview and the panel all show these lines. Each family feature adds one
// entry to FEATURES (what discovery found that a plain ViT lacks, and what that changes in the
// measure); the family's name is the first entry that names one, else "plain ViT".
import type { FamilyDescription } from '../report/reportSchema';
import { VitStructure } from './vitStructure';

export type { FamilyDescription };

interface FamilyFeature {
  /** True when the structure holds this feature. */
  present(structure: VitStructure): boolean;
  /** Short label for the family line, e.g. "LayerScale". */
  label(structure: VitStructure): string;
  /** The family this feature identifies, when it does on its own (tried in FEATURES' order). */
  family?(structure: VitStructure): string | undefined;
  /** What is measured, in one sentence. */
  measured(structure: VitStructure): string;
}

const PLAIN_VIT_MEASURE =
  "The paper's five components per block (LN1, MHA, LN2, FC1, FC2), each fed the tokens entering block 0 (class and any distillation or register tokens included).";

function registerTokens(structure: VitStructure): number {
  return structure.extraParameters.filter((parameter) => parameter.kind === 'register tokens').reduce((sum, parameter) => sum + parameter.count / structure.hiddenSize, 0);
}

const FEATURES: FamilyFeature[] = [
  {
    present: (structure) => structure.blocks.some((block) => block.attention.rotary),
    label: () => 'rotary position embedding',
    family: (structure) => (structure.naming === 'hf-dinov3' || registerTokens(structure) > 0 ? 'DINOv3' : undefined),
    measured: (structure) =>
      `MHA includes the rotary position embedding (part of the attention module): q and k of each token are rotated by its position before Q·Kᵀ${
        structure.blocks.some((block) => block.attention.rotary?.prefixUnrotated) ? ', the class and register tokens before the patches left unrotated' : ''
      }; the data-free MHA bound takes ‖W_Q^h‖·‖W_K^h‖ for ‖W_Q^hᵀ W_K^h‖, since rotations between the projections can raise the latter up to the former.`,
  },
  {
    present: (structure) => structure.extraParameters.some((parameter) => parameter.kind === 'pooling head'),
    label: () => 'attention-pooling head',
    family: (structure) => (structure.naming.startsWith('hf-') ? 'SigLIP' : 'ViT with an attention-pooling head'),
    measured: () => 'The attention-pooling head (a learned probe attending to the tokens) is the head, not a block: it is not measured and stays trainable with the head.',
  },
  {
    present: (structure) => structure.blocks.some((block) => block.attention.scoreBias),
    label: () => 'relative position bias',
    // BEiT, BEiT v2 and data2vec-vision: a bias on the logits and LayerScale in every block.
    family: (structure) =>
      structure.naming === 'timm-beit' || structure.naming === 'hf-beit' || structure.blocks.every((block) => block.attention.scoreBias && block.layerScale.attention)
        ? 'BEiT'
        : undefined,
    measured: (structure) =>
      structure.extraParameters.some((parameter) => parameter.kind === 'relative position table')
        ? 'The relative position bias every block shares is applied when MHA is measured (added to the attention logits); its table, outside the attention modules, is listed under extra parameters and trained when MHA is.'
        : "The relative position bias is part of MHA: each block's table, gathered into a bias added to the attention logits, is applied when MHA is measured and is trained with MHA.",
  },
  {
    present: (structure) => structure.blocks.some((block) => block.layerScale.attention || block.layerScale.mlp),
    label: () => 'LayerScale',
    family: (structure) => (registerTokens(structure) > 0 || structure.naming === 'hf-dinov2' ? 'DINOv2' : undefined),
    measured: () =>
      'LayerScale γ is not part of MHA or FC2: each component is measured before its γ, and γ is listed under extra parameters, trained with the component it scales.',
  },
  {
    present: (structure) => structure.blocks.some((block) => block.gatedMlp),
    label: (structure) => {
      const gated = structure.blocks.find((block) => block.gatedMlp)!.gatedMlp!;
      return `SwiGLU MLP${gated.gate.half !== undefined ? ' (packed fc1)' : ''}${gated.norm ? ' with its inner norm' : ''}`;
    },
    // EVA-02 (timm eva02_*) is the family whose SwiGLU holds a norm; the packed form alone also
    // serves DINOv2-giant, named by its LayerScale and registers above.
    family: (structure) => (structure.blocks.some((block) => block.gatedMlp?.norm) ? 'EVA-02' : undefined),
    measured: (structure) =>
      'SwiGLU MLP: FC1 is the gate and value layers as one linear map, x -> [x W_gate + b_gate, x W_value + b_value], without the SiLU gate (its data-free bound is σ_max of [W_gate W_value]; the gated product has none); FC2 is fed X zero-padded to the hidden width h' +
      (structure.blocks.some((block) => block.gatedMlp?.norm) ? '; the norm inside the MLP is no component: it is listed under extra parameters and trained with FC2.' : '.'),
  },
  {
    present: (structure) => registerTokens(structure) > 0,
    label: (structure) => `${registerTokens(structure)} register tokens`,
    measured: (structure) => `The ${registerTokens(structure)} register tokens are part of X, the token sequence every component is fed.`,
  },
];

export function describeFamily(structure: VitStructure): FamilyDescription {
  const present = FEATURES.filter((feature) => feature.present(structure));
  const name = present.map((feature) => feature.family?.(structure)).find((family) => family !== undefined);
  const labels = present.map((feature) => feature.label(structure));
  const family = name ? `${name} (${labels.join(', ')})` : labels.length > 0 ? `ViT with ${labels.join(', ')}` : 'plain ViT';
  return { family, measured: [PLAIN_VIT_MEASURE, ...present.map((feature) => feature.measured(structure))] };
}
