// The freeze plan as a Python module for PyTorch training code: `apply(model)` sets requires_grad
// from the plan, refuses names that fit no parameter, and returns the trainable names.
import { FreezePlan } from './freezePlan';
import { planSummaryLines } from './planHeader';
import { pythonCommentSections, pythonString, pythonStringList } from './pythonSource';

const APPLY_SOURCE = `def _under(name, module):
    return name == module or name.startswith(module + ".")


def apply(model, prefix=""):
    """Sets requires_grad on every parameter of \`model\` from the plan; returns the trainable names.

    A parameter is trainable when it lies under a trainable module (its name equals the module's
    name or starts with it followed by "."); all others are frozen. Raises ValueError, changing
    nothing, when a trainable module owns no parameter of the model. \`prefix\` goes in front of
    every module name, e.g. "model." when the network sits inside a wrapper.
    """
    names = [name for name, _ in model.named_parameters()]
    trainable = set()
    for what, rule, modules in TRAINABLE_GROUPS:
        owned = {module: [name for name in names if _under(name, prefix + module)] for module in modules}
        empty = [module for module, found in owned.items() if not found]
        where = None
        if rule == "all" and empty:
            where = repr(prefix + empty[0])
            if len(empty) > 1:
                where += " nor under %d more of its modules" % (len(empty) - 1)
        elif rule == "any" and len(empty) == len(modules):
            where = " or ".join(repr(prefix + module) for module in modules)
        if where:
            raise ValueError(
                "Plasticity Lens freeze plan: no parameter of the model lies under %s (%s); the plan's "
                "names do not fit this model: pass prefix= when it is wrapped, or write the plan with "
                "another --naming." % (where, what)
            )
        for found in owned.values():
            trainable.update(found)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name in trainable)
    return [name for name in names if name in trainable]
`;

function groupsLiteral(plan: FreezePlan): string {
  if (plan.trainable.length === 0) return 'TRAINABLE_GROUPS = []';
  const groups = plan.trainable.map((group) => `    (${pythonString(group.label)}, ${pythonString(group.match)}, ${pythonStringList(group.modules, 8)}),`);
  return `TRAINABLE_GROUPS = [\n${groups.join('\n')}\n]`;
}

export function freezePlanToPytorch(plan: FreezePlan): string {
  const header = pythonCommentSections([
    ['Freeze configuration for PyTorch.', ...planSummaryLines(plan)],
    plan.warnings.map((warning) => `WARNING: ${warning}`),
    plan.notes,
    ['Use: from this_file import apply; trainable_names = apply(model); then give the optimizer only the parameters with requires_grad.'],
  ]);
  return [
    header,
    '',
    `PLAN_FORMAT = ${pythonString(`${plan.format}@${plan.version}`)}`,
    `NAMING = ${pythonString(plan.naming.used)}`,
    `REPORT_SHA256 = ${plan.source.reportSha256 === null ? 'None' : pythonString(plan.source.reportSha256)}`,
    `MODEL_SHA256 = ${pythonString(plan.source.model.sha256)}`,
    `WARNINGS = ${pythonStringList(plan.warnings)}`,
    '',
    '# (what, rule, module names). Rule "all": every module must own parameters of the model;',
    '# "any": alternatives, at least one must (e.g. timm\'s norm or fc_norm).',
    groupsLiteral(plan),
    '',
    '# Block components left frozen (everything else not listed above is frozen too).',
    `FROZEN_MODULES = ${pythonStringList(plan.frozen.modules)}`,
    '',
    '# The parameters the plan expects to train, where the report and model name them.',
    `EXPECTED_TRAINABLE_PARAMETERS = ${pythonStringList(plan.trainableParameters)}`,
    '',
    '',
    APPLY_SOURCE,
  ].join('\n');
}
