// The paper's published figures (Odonnat, Chapel, Tavenard, Redko, "Vision Transformer Finetuning
// Benefits from Non-Smooth Components", ICML 2026), quoted beside recommendations. They describe
// ViT-B/16 pretrained on ImageNet-21k; they are never a prediction for the user's model.
import { ComponentName } from '../vit/vitStructure';

export const PAPER_SETTING = 'ViT-B/16 pretrained on ImageNet-21k, 11 target datasets, 3 seeds, best learning rate';

/** Mean test accuracy when finetuning one component type alone in all blocks. */
export const PAPER_ACCURACY: Record<ComponentName, number> = { MHA: 90.75, FC1: 90.68, FC2: 90.31, LN2: 89.93, LN1: 89.82 };
export const PAPER_FULL_FINETUNING_ACCURACY = 90.85;
export const PAPER_LINEAR_PROBING_ACCURACY = 64.22;

/** Parameters of one component type over ViT-B's 12 blocks, as the paper states them. */
export const PAPER_VIT_B_COST: Record<ComponentName, string> = {
  MHA: 'about 28.3M parameters (a third of the backbone)',
  FC1: 'about 28.3M parameters (a third of the backbone)',
  FC2: 'about 28.3M parameters (a third of the backbone)',
  LN1: 'about 18k parameters',
  LN2: 'about 18k parameters',
};

/** Per-layer plasticity medians read from the paper's figure. */
export const PAPER_MEDIAN_PLASTICITY: Record<ComponentName, number> = { MHA: 7.5, FC1: 4.4, FC2: 2.1, LN2: 0.32, LN1: 0.24 };

/** The order the paper's theory predicts and its measurements confirm. */
export const PAPER_ORDER: readonly ComponentName[] = ['MHA', 'FC1', 'FC2', 'LN2', 'LN1'];

const NOT_A_PREDICTION = "These are the paper's results, not a prediction for this model.";

/** The paper's figures on finetuning this component type alone. */
export function paperNoteFor(component: ComponentName): string {
  const others = component === 'LN1' ? `MHA alone ${PAPER_ACCURACY.MHA}` : `LN1 alone ${PAPER_ACCURACY.LN1}`;
  const shift = component === 'LN1' || component === 'LN2' ? ' The gap to MHA or FC layers was largest under strong domain shift (DomainNet: 3 to 4 points).' : '';
  return (
    `Paper (${PAPER_SETTING}): finetuning ${component} alone in all blocks reached ${PAPER_ACCURACY[component]} mean test accuracy, ` +
    `against ${PAPER_FULL_FINETUNING_ACCURACY} for full finetuning, ${others} and ${PAPER_LINEAR_PROBING_ACCURACY} for linear probing; ` +
    `on ViT-B, ${component} in all blocks is ${PAPER_VIT_B_COST[component]}.${shift} ${NOT_A_PREDICTION}`
  );
}

export const PAPER_COMBINATION_NOTE = 'The paper finetuned one component type at a time (with the final norm and head); it reports no result for combinations of types.';
export const PAPER_CELLS_NOTE = "The paper's results are for one component type in all blocks; it reports none for choosing single blocks.";
export const PAPER_PROTOCOL_NOTE = "In the paper's protocol the final norm and the new classification head are always trained.";

/** A note when this model's measured order differs from the paper's, else null. */
export function orderNote(measuredOrder: readonly ComponentName[]): string | null {
  if (measuredOrder.every((component, index) => component === PAPER_ORDER[index])) return null;
  return `This model's measured order (${measuredOrder.join(' > ')}) differs from the paper's order for ViT-B/16 (${PAPER_ORDER.join(' > ')}).`;
}

/** One line with the paper's accuracies for the given types, for compact summaries. */
export function paperAccuracyLine(components: readonly ComponentName[]): string {
  const chosen = components.map((component) => `${component} ${PAPER_ACCURACY[component]}`).join(', ');
  return `finetuning one type alone (ViT-B/16, ImageNet-21k, 11 datasets): ${chosen}; full finetuning ${PAPER_FULL_FINETUNING_ACCURACY}, linear probing ${PAPER_LINEAR_PROBING_ACCURACY}. ${NOT_A_PREDICTION}`;
}
