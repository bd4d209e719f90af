// The freeze plan as a Hugging Face PEFT LoraConfig: LoRA on the chosen nn.Linear layers, full
// training (modules_to_save) for what LoRA cannot wrap and for the head and final norm.
import { FreezePlan } from './freezePlan';
import { planSummaryLines } from './planHeader';
import { pythonCommentSections, pythonStringList } from './pythonSource';

const PEFT_TRAIN_PARAMETERS_SOURCE = `def train_parameters(peft_model):
    """Sets requires_grad on TRAINABLE_PARAMETERS; PEFT prefixes names with base_model.model."""
    for name, parameter in peft_model.named_parameters():
        if any(name == wanted or name.endswith("." + wanted) for wanted in TRAINABLE_PARAMETERS):
            parameter.requires_grad_(True)
`;

export function freezePlanToPeft(plan: FreezePlan): string {
  const header = pythonCommentSections([
    ['LoRA configuration for Hugging Face PEFT.', ...planSummaryLines(plan)],
    plan.warnings.map((warning) => `WARNING: ${warning}`),
    plan.lora.notes,
    [
      'Names are full module names of the model; PEFT matches target_modules exactly (or as a dotted suffix).',
      "Use: model = peft.get_peft_model(model, lora_config). r, lora_alpha and lora_dropout are left at PEFT's defaults: choose your own.",
    ],
  ]);
  return [
    header,
    '',
    'from peft import LoraConfig',
    '',
    `WARNINGS = ${pythonStringList(plan.warnings)}`,
    '',
    `TARGET_MODULES = ${pythonStringList(plan.lora.targetModules)}`,
    '',
    `MODULES_TO_SAVE = ${pythonStringList(plan.lora.modulesToSave)}`,
    '',
    'lora_config = LoraConfig(target_modules=TARGET_MODULES, modules_to_save=MODULES_TO_SAVE)',
    '',
    '# Parameters that are not modules (PEFT freezes them): train them with',
    '# train_parameters(peft_model) after peft.get_peft_model.',
    `TRAINABLE_PARAMETERS = ${pythonStringList(plan.lora.trainableParameters)}`,
    '',
    '',
    PEFT_TRAIN_PARAMETERS_SOURCE,
  ].join('\n');
}
