// Every export of a freeze plan: the JSON plan's contents, the PyTorch module's apply() (run by
// Python on a stand-in model, no PyTorch needed), the PEFT LoraConfig (with a stand-in peft), and
// the YAML (read back with PyYAML when present).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { readOnnxModel } from '../../extension/core/onnx/onnxModel';
import { resolveNaming } from '../../extension/core/recommend/frameworkNaming';
import { buildFreezePlan, FreezePlan, FREEZE_PLAN_FORMAT } from '../../extension/core/recommend/freezePlan';
import { onnxModuleParameterLookup } from '../../extension/core/recommend/onnxScopes';
import { exportFreezePlan } from '../../extension/core/recommend/planExports';
import { recommend, RecommendOptions } from '../../extension/core/recommend/recommend';
import { reportSource } from '../../extension/core/recommend/reportInput';
import { toYaml } from '../../extension/core/recommend/yamlExport';
import { COMPONENTS } from '../../extension/core/vit/vitStructure';
import { tempDir } from '../support/fixtures';
import { goldenByStyle, reportFromGolden } from '../support/goldenReports';
import { pythonWith, runPython, runPythonHelper, PYTHON_HELPERS } from '../support/pythonScripts';

const goldens = goldenByStyle();
const python = pythonWith();
const pyyaml = python ? pythonWith(['yaml'], [python]) : null;
const scratch = tempDir('recommend-exports');
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

const PAPER_LIKE = [
  [0.24, 7.5, 0.32, 4.4, 2.1],
  [0.25, 7.9, 0.3, 4.6, 2.0],
  [0.23, 7.1, 0.34, 4.2, 2.2],
];

function planFor(style: string, options: RecommendOptions, naming?: Parameters<typeof resolveNaming>[1], withModel = true): FreezePlan {
  const golden = goldens.get(style)!;
  const report = reportFromGolden(golden, { means: PAPER_LIKE });
  const text = JSON.stringify(report);
  return buildFreezePlan({
    report,
    recommendation: recommend(report, options),
    naming: resolveNaming(report, naming),
    source: reportSource('/reports/report.json', text),
    modelParameters: withModel ? onnxModuleParameterLookup(readOnnxModel(report.model.path)) : undefined,
    createdAt: '2026-02-02T00:00:00.000Z',
  });
}

/** Every parameter name of a fixture model, as PyTorch lists them (from the golden, plus the rest). */
function modelParameterNames(style: string, extra: string[]): string[] {
  const golden = goldens.get(style)!;
  const blocks = golden.parameters.flatMap((block) => COMPONENTS.flatMap((component) => block[component].names));
  return ['cls_token', 'pos_embed', 'patch_embed.proj.weight', ...blocks, ...extra];
}

function writeTemp(name: string, text: string): string {
  const file = path.join(scratch, name);
  fs.writeFileSync(file, text);
  return file;
}

describe('JSON freeze plan', () => {
  test('names, budget, counts, provenance and the LoRA split', () => {
    const plan = JSON.parse(exportFreezePlan(planFor('timm', { budget: { kind: 'types', count: 2 } }), 'json')) as FreezePlan;
    assert.equal(plan.format, FREEZE_PLAN_FORMAT);
    assert.equal(plan.version, 1);
    assert.equal(plan.createdAt, '2026-02-02T00:00:00.000Z');
    assert.match(plan.source.reportSha256!, /^[0-9a-f]{64}$/);
    assert.equal(plan.source.report, '/reports/report.json');
    assert.equal(plan.source.model.fileChecked, true);
    assert.equal(plan.source.settings.mode, 'isolated');
    assert.deepEqual(plan.naming, { used: 'timm', detected: 'timm', names: 'report', root: '', label: 'timm VisionTransformer' });
    assert.deepEqual({ kind: plan.budget.kind, unit: plan.budget.unit, parameterLimit: plan.budget.parameterLimit }, { kind: 'types', unit: 'types', parameterLimit: null });
    assert.deepEqual(
      plan.choices.map((choice) => [choice.component, choice.rank, choice.parameterCount]),
      [
        ['MHA', 1, 12672],
        ['FC1', 2, 12672],
      ],
    );
    assert.deepEqual(plan.choices[0].modules, ['blocks.0.attn', 'blocks.1.attn', 'blocks.2.attn']);
    assert.deepEqual(
      plan.trainable.map((group) => [group.role, group.label, group.match]),
      [
        ['component', 'MHA in blocks 0-2', 'all'],
        ['component', 'FC1 in blocks 0-2', 'all'],
        ['final-norm', 'final norm', 'all'],
        ['head', 'classification head', 'all'],
      ],
    );
    assert.equal(plan.trainableParameters.length, 3 * 4 + 3 * 2 + 2 + 2);
    assert.ok(plan.trainableParameters.includes('blocks.2.attn.qkv.weight') && plan.trainableParameters.includes('head.bias'));
    assert.deepEqual(plan.counts, { selectedBlockParameters: 25344, head: 330, finalNorm: 64, trainable: 25738, model: 45258, trainableShare: 25738 / 45258 });
    assert.deepEqual(plan.frozen.modules.slice(0, 3), ['blocks.0.norm1', 'blocks.0.norm2', 'blocks.0.mlp.fc2']);
    assert.equal(plan.frozen.modules.length, 9);
    assert.deepEqual(plan.lora.targetModules, [
      'blocks.0.attn.qkv',
      'blocks.0.attn.proj',
      'blocks.1.attn.qkv',
      'blocks.1.attn.proj',
      'blocks.2.attn.qkv',
      'blocks.2.attn.proj',
      'blocks.0.mlp.fc1',
      'blocks.1.mlp.fc1',
      'blocks.2.mlp.fc1',
    ]);
    assert.deepEqual(plan.lora.modulesToSave, ['norm', 'head']);
    assert.equal(plan.ranking.length, 5);
  });

  test('without the model file the head and final norm are alternatives with unknown counts', () => {
    const plan = planFor('timm', { budget: { kind: 'types', count: 1 } }, undefined, false);
    const extras = plan.trainable.filter((group) => group.role !== 'component');
    assert.deepEqual(
      extras.map((group) => [group.role, group.match, group.modules, group.parameterCount]),
      [
        ['final-norm', 'any', ['norm', 'fc_norm'], null],
        ['head', 'any', ['head', 'head_dist'], null],
      ],
    );
    assert.equal(plan.counts.trainable, null);
    assert.equal(plan.source.model.fileChecked, false);
    assert.ok(plan.notes.some((note) => /does not cover the classification head; without the model file its name is one of head, head_dist/.test(note)));
  });

  test('a model without a head says so, and --no-head freezes head and final norm', () => {
    const hfClip = planFor('hf_clip', { budget: { kind: 'types', count: 1 } });
    assert.deepEqual(
      hfClip.trainable.filter((group) => group.role !== 'component').map((group) => group.modules),
      [['vision_model.post_layernorm']],
    );
    assert.ok(hfClip.notes.some((note) => /The model has no classification head \(no parameters under classifier or visual_projection or vision_model.head\)/.test(note)));
    assert.equal(hfClip.counts.head, 0);
    const frozenHead = planFor('timm', { budget: { kind: 'types', count: 1 }, includeHead: false });
    assert.ok(frozenHead.trainable.every((group) => group.role === 'component'));
    assert.deepEqual(frozenHead.frozen.modules.slice(-2), ['norm', 'head']);
    assert.deepEqual(frozenHead.counts, { ...frozenHead.counts, head: 0, finalNorm: 0, trainable: 12672 });
  });

  test('packed attention goes to modules_to_save, with the reason', () => {
    const plan = planFor('torchvision', { budget: { kind: 'types', count: 1 } });
    assert.deepEqual(plan.lora.targetModules, []);
    assert.deepEqual(plan.lora.modulesToSave, [
      'encoder.layers.encoder_layer_0.self_attention',
      'encoder.layers.encoder_layer_1.self_attention',
      'encoder.layers.encoder_layer_2.self_attention',
      'encoder.ln',
      'heads',
    ]);
    assert.ok(plan.lora.notes.some((note) => /MHA: LoRA cannot target the packed q\/k\/v projection/.test(note)));
    assert.ok(plan.lora.notes.some((note) => /PEFT needs at least one target module/.test(note)));
  });
});

test("CLIP's proj is a bare parameter: PEFT cannot save it as a module, so it is listed apart", () => {
  const fromModel = planFor('openai_clip', { budget: { kind: 'types', count: 1 } });
  // MHA (packed nn.MultiheadAttention) comes first, then the final norm; proj stays out.
  assert.deepEqual(fromModel.lora.modulesToSave, ['transformer.resblocks.0.attn', 'transformer.resblocks.1.attn', 'transformer.resblocks.2.attn', 'ln_post']);
  assert.deepEqual(fromModel.lora.trainableParameters, ['proj']);
  assert.ok(fromModel.lora.notes.some((note) => /'proj' is a parameter, not a module/.test(note)));
  const fromTemplate = planFor('timm', { budget: { kind: 'types', count: 1 } }, 'clip');
  assert.deepEqual(fromTemplate.lora.modulesToSave.slice(-1), ['ln_post']);
  assert.deepEqual(fromTemplate.lora.trainableParameters, ['proj']);
  assert.match(exportFreezePlan(fromModel, 'peft'), /^TRAINABLE_PARAMETERS = \[\n {4}"proj",\n\]$/m);
});

describe('PyTorch configuration', { skip: python ? false : 'no python3 on this machine' }, () => {
  test('apply() trains exactly the plan, freezes the rest, returns the trainable names', () => {
    const plan = planFor('timm', { budget: { kind: 'parameters', count: 4224 * 2 + 64 }, unit: 'cells' });
    const file = writeTemp('timm_cells.py', exportFreezePlan(plan, 'pytorch'));
    const names = writeTemp('timm_names.json', JSON.stringify(modelParameterNames('timm', ['norm.weight', 'norm.bias', 'head.weight', 'head.bias'])));
    const result = runPythonHelper<{ returned: string[]; trainable: string[] }>(python!, 'exercise_exports.py', ['apply', file, names]);
    assert.deepEqual(sorted(result.returned), sorted(plan.trainableParameters));
    assert.deepEqual(sorted(result.trainable), sorted(plan.trainableParameters));
    assert.deepEqual(
      sorted(plan.trainableParameters),
      sorted([
        'blocks.1.attn.qkv.weight',
        'blocks.1.attn.qkv.bias',
        'blocks.1.attn.proj.weight',
        'blocks.1.attn.proj.bias',
        'blocks.0.attn.qkv.weight',
        'blocks.0.attn.qkv.bias',
        'blocks.0.attn.proj.weight',
        'blocks.0.attn.proj.bias',
        'blocks.2.norm2.weight',
        'blocks.2.norm2.bias',
        'norm.weight',
        'norm.bias',
        'head.weight',
        'head.bias',
      ]),
    );
  });

  test('apply() raises, naming the module, when a trainable module owns no parameter', () => {
    const plan = planFor('timm', { budget: { kind: 'types', count: 1 } });
    const file = writeTemp('timm_types.py', exportFreezePlan(plan, 'pytorch'));
    const names = writeTemp('hf_names.json', JSON.stringify(modelParameterNames('hf_vit', ['classifier.weight'])));
    const result = runPythonHelper<{ error: string; trainable: string[] }>(python!, 'exercise_exports.py', ['apply', file, names]);
    assert.match(
      result.error,
      /no parameter of the model lies under 'blocks\.0\.attn' nor under 2 more of its modules \(MHA in blocks 0-2\); the plan's names do not fit this model/,
    );
    assert.equal(result.trainable.length, (JSON.parse(fs.readFileSync(names, 'utf8')) as string[]).length, 'nothing was changed');
  });

  test("'any' groups need one alternative; prefix= reaches a wrapped model", () => {
    const plan = planFor('timm', { budget: { kind: 'types', count: 1 } }, undefined, false);
    const file = writeTemp('timm_any.py', exportFreezePlan(plan, 'pytorch'));
    const wrapped = modelParameterNames('timm', ['fc_norm.weight', 'fc_norm.bias', 'head.weight', 'head.bias']).map((name) => `model.${name}`);
    const names = writeTemp('wrapped_names.json', JSON.stringify(wrapped));
    const result = runPythonHelper<{ returned: string[] }>(python!, 'exercise_exports.py', ['apply', file, names, 'model.']);
    assert.ok(result.returned.includes('model.fc_norm.weight') && result.returned.includes('model.head.bias'));
    assert.ok(result.returned.includes('model.blocks.1.attn.qkv.weight'));
    assert.equal(result.returned.length, 12 + 4);
    const headless = writeTemp('headless_names.json', JSON.stringify(modelParameterNames('timm', ['norm.weight'])));
    const missing = runPythonHelper<{ error: string }>(python!, 'exercise_exports.py', ['apply', file, headless]);
    assert.match(missing.error, /under 'head' or 'head_dist' \(classification head\)/);
  });

  test('names with quotes and non-ASCII characters survive as Python literals', () => {
    const plan = planFor('timm', { budget: { kind: 'types', count: 1 } });
    const odd = 'blocks.0.attn "quoted" \\ é ±';
    plan.trainable[0].modules = [odd];
    plan.trainable[0].label = 'label with "quotes"\nand a newline';
    const file = writeTemp('odd.py', exportFreezePlan(plan, 'pytorch'));
    const names = writeTemp('odd_names.json', JSON.stringify([`${odd}.weight`, 'norm.weight', 'head.weight']));
    const result = runPythonHelper<{ returned: string[] }>(python!, 'exercise_exports.py', ['apply', file, names]);
    assert.deepEqual(result.returned, [`${odd}.weight`, 'norm.weight', 'head.weight']);
  });
});

describe('PEFT configuration', { skip: python ? false : 'no python3 on this machine' }, () => {
  test('LoraConfig gets the Linear targets and modules_to_save of the plan', () => {
    const plan = planFor('hf_vit', { budget: { kind: 'types', count: 5 } });
    const text = exportFreezePlan(plan, 'peft');
    assert.match(text, /^from peft import LoraConfig$/m);
    const file = writeTemp('hf_peft.py', text);
    const config = runPythonHelper<{ target_modules: string[]; modules_to_save: string[] }>(python!, 'exercise_exports.py', ['peft', file]);
    assert.deepEqual(config.target_modules, plan.lora.targetModules);
    assert.deepEqual(config.modules_to_save, plan.lora.modulesToSave);
    assert.ok(config.target_modules.includes('encoder.layer.2.attention.attention.query'));
    assert.ok(config.target_modules.includes('encoder.layer.0.output.dense'));
    assert.ok(config.modules_to_save.includes('encoder.layer.1.layernorm_before') && config.modules_to_save.includes('classifier'));
    assert.ok(!config.target_modules.some((name) => /layernorm/.test(name)));
  });
});

describe('YAML configuration', () => {
  test('starts with comments and holds the freeze section', () => {
    const plan = planFor('openai_clip', { budget: { kind: 'share', percent: 30 } });
    const text = exportFreezePlan(plan, 'yaml');
    assert.match(text, /^# Freeze configuration for config-driven trainers\.\n/);
    assert.match(text, /^freeze:\n {2}default: "frozen"\n/m);
    assert.match(text, /^lora:$/m);
    assert.match(text, /^plasticity_lens:$/m);
  });

  test('PyYAML reads back exactly the plan', { skip: pyyaml ? false : 'PyYAML is not installed' }, () => {
    const plan = planFor('openai_clip', { budget: { kind: 'share', percent: 30 } });
    const file = writeTemp('plan.yaml', exportFreezePlan(plan, 'yaml'));
    const document = runPythonHelper<{
      freeze: { trainable_parameters: unknown; frozen_modules: unknown };
      lora: { modules_to_save: unknown };
      plasticity_lens: Record<string, unknown>;
    }>(pyyaml!, 'exercise_exports.py', ['yaml', file]);
    assert.deepEqual(document.freeze.trainable_parameters, plan.trainableParameters);
    assert.deepEqual(document.freeze.frozen_modules, plan.frozen.modules);
    assert.deepEqual(document.lora.modules_to_save, plan.lora.modulesToSave);
    const plain = JSON.parse(JSON.stringify(plan)) as Record<string, unknown>;
    for (const key of ['source', 'naming', 'budget', 'choices', 'counts', 'notes', 'warnings']) assert.deepEqual(document.plasticity_lens[key], plain[key], key);
  });

  test('awkward values round-trip through PyYAML', { skip: pyyaml ? false : 'PyYAML is not installed' }, () => {
    const value = {
      quotes: 'say "hi" \\ back',
      multiline: 'one\ntwo\tthree',
      unicode: 'é ± 漢',
      looksLikeBool: 'yes',
      looksLikeNumber: '1e5',
      tiny: 1e-7,
      huge: 1.5e300,
      negative: -0.25,
      integer: 45258,
      nothing: null,
      flag: false,
      empty: [],
      emptyObject: {},
      nested: [[1, 2], [], [{ a: 'b' }], { 'key with space': ['x'] }],
      yes: 'a key that YAML 1.1 would read as true',
    };
    const file = writeTemp('awkward.yaml', toYaml(value));
    const read = runPythonHelper<unknown>(pyyaml!, 'exercise_exports.py', ['yaml', file]);
    assert.deepEqual(read, value);
  });
});

test('the Python helpers are where the tests expect them', () => {
  assert.ok(fs.existsSync(path.join(PYTHON_HELPERS, 'exercise_exports.py')));
  if (python) assert.equal(runPython(python, ['-c', 'print(1)']).stdout.trim(), '1');
});

function sorted(names: string[]): string[] {
  return [...names].sort();
}
