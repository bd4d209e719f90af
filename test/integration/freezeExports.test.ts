// Freeze configurations end to end: the real analysis of each fixture style (worker process,
// onnxruntime on cpu), a recommendation, the PyTorch and PEFT exports, then Debian's Python runs
// them on the PyTorch model the fixture was exported from (built with test/fixtures/generate.py):
// exactly the intended parameters must be trainable, and every PEFT name must exist in the model.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readOnnxModel } from '../../extension/core/onnx/onnxModel';
import { FrameworkNaming, resolveNaming } from '../../extension/core/recommend/frameworkNaming';
import { buildFreezePlan, FreezePlan } from '../../extension/core/recommend/freezePlan';
import { onnxModuleParameterLookup } from '../../extension/core/recommend/onnxScopes';
import { exportFreezePlan } from '../../extension/core/recommend/planExports';
import { recommend, RecommendOptions } from '../../extension/core/recommend/recommend';
import { PlasticityReport } from '../../extension/core/report/reportSchema';
import { WorkerSupervisor } from '../../extension/worker/workerSupervisor';
import { modelPath, PAIRS, tempDir } from '../support/fixtures';
import { pythonWith, runPythonHelper } from '../support/pythonScripts';

/** Each fixture style: its ONNX file, a budget, and the head / final-norm parameters PyTorch has. */
const STYLES: { style: string; model: string; options: RecommendOptions; head: string[]; finalNorm: string[] }[] = [
  { style: 'timm', model: 'timm_op17_dyn.onnx', options: { budget: { kind: 'types', count: 2 } }, head: ['head.weight', 'head.bias'], finalNorm: ['norm.weight', 'norm.bias'] },
  {
    style: 'hf_vit',
    model: 'hf_vit_op14_dyn.onnx',
    options: { budget: { kind: 'share', percent: 30 } },
    head: ['classifier.weight', 'classifier.bias'],
    finalNorm: ['layernorm.weight', 'layernorm.bias'],
  },
  {
    style: 'torchvision',
    model: 'torchvision_op17_dyn.onnx',
    options: { budget: { kind: 'parameters', count: 9000 }, unit: 'cells' },
    head: ['heads.head.weight', 'heads.head.bias'],
    finalNorm: ['encoder.ln.weight', 'encoder.ln.bias'],
  },
  { style: 'openai_clip', model: 'openai_clip_op14.onnx', options: { budget: { kind: 'types', count: 1 } }, head: ['proj'], finalNorm: ['ln_post.weight', 'ln_post.bias'] },
  {
    style: 'hf_clip',
    model: 'hf_clip_op17_dyn.onnx',
    options: { budget: { kind: 'share', percent: 10 }, unit: 'cells' },
    head: [],
    finalNorm: ['vision_model.post_layernorm.weight', 'vision_model.post_layernorm.bias'],
  },
  {
    style: 'deit_distilled',
    model: 'deit_distilled_op13.onnx',
    options: { budget: { kind: 'types', count: 3 } },
    head: ['head.weight', 'head.bias', 'head_dist.weight', 'head_dist.bias'],
    finalNorm: ['norm.weight', 'norm.bias'],
  },
];

/** A timm report written in another framework's names, applied to that framework's model. */
const CROSS_NAMINGS: { id: string; naming: FrameworkNaming; style: string; options: RecommendOptions; extras: string[] }[] = [
  {
    id: 'timm-as-torchvision',
    naming: 'torchvision',
    style: 'torchvision',
    options: { budget: { kind: 'types', count: 2 } },
    extras: ['heads.head.weight', 'heads.head.bias', 'encoder.ln.weight', 'encoder.ln.bias'],
  },
  {
    id: 'timm-as-clip',
    naming: 'clip',
    style: 'openai_clip',
    options: { budget: { kind: 'share', percent: 10 }, unit: 'cells' },
    extras: ['proj', 'ln_post.weight', 'ln_post.bias'],
  },
  { id: 'timm-as-hf-clip', naming: 'hf-clip', style: 'hf_clip', options: { budget: { kind: 'types', count: 5 }, includeHead: false }, extras: [] },
];

interface PythonCheck {
  id: string;
  returned?: string[];
  applyError?: string;
  requiresGrad: string[];
  trainableCount: number;
  modelCount: number;
  peft?: {
    targetModules: string[];
    modulesToSave: string[];
    missingTargets: string[];
    nonLinearTargets: string[];
    missingModulesToSave: string[];
    trainableParameters: string[];
    missingTrainableParameters: string[];
  };
}

const python = pythonWith(['torch', 'torchvision', 'numpy'], ['/usr/bin/python3']);
const supervisor = new WorkerSupervisor();
const scratch = tempDir('freeze-exports');
const reports = new Map<string, PlasticityReport>();
const plans = new Map<string, FreezePlan>();
const expected = new Map<string, string[]>();
let checks = new Map<string, PythonCheck>();

after(() => {
  supervisor.dispose();
  fs.rmSync(scratch, { recursive: true, force: true });
});

function planOf(report: PlasticityReport, options: RecommendOptions, naming?: FrameworkNaming): FreezePlan {
  return buildFreezePlan({
    report,
    recommendation: recommend(report, options),
    naming: resolveNaming(report, naming),
    modelParameters: onnxModuleParameterLookup(readOnnxModel(report.model.path)),
  });
}

function selectedParameters(report: PlasticityReport, plan: FreezePlan): string[] {
  return plan.choices.flatMap((choice) =>
    report.blocks.filter((block) => choice.block === null || block.index === choice.block).flatMap((block) => block.components[choice.component].parameters),
  );
}

const sorted = (names: string[]) => [...names].sort();

function writeExports(id: string, plan: FreezePlan): { pytorch: string; peft: string } {
  const pytorch = path.join(scratch, `${id.replace(/-/g, '_')}_freeze.py`);
  const peft = path.join(scratch, `${id.replace(/-/g, '_')}_peft.py`);
  fs.writeFileSync(pytorch, exportFreezePlan(plan, 'pytorch'));
  fs.writeFileSync(peft, exportFreezePlan(plan, 'peft'));
  return { pytorch, peft };
}

before(async () => {
  for (const { style, model } of STYLES) {
    reports.set(
      style,
      await supervisor.analyze({ modelPath: modelPath(model), mode: 'isolated', executionProvider: 'cpu', reference: PAIRS.reference, target: PAIRS.target, seed: 0 }),
    );
  }
  const cases: { id: string; style: string; pytorch: string; peft?: string; prefix?: string; wrap?: boolean }[] = [];
  for (const { style, options, head, finalNorm } of STYLES) {
    const report = reports.get(style)!;
    const plan = planOf(report, options);
    plans.set(style, plan);
    expected.set(style, [...selectedParameters(report, plan), ...head, ...finalNorm]);
    cases.push({ id: style, style, ...writeExports(style, plan) });
  }
  for (const { id, naming, style, options, extras } of CROSS_NAMINGS) {
    const plan = planOf(reports.get('timm')!, options, naming);
    plans.set(id, plan);
    expected.set(id, [...plan.trainableParameters, ...extras]);
    cases.push({ id, style, ...writeExports(id, plan) });
  }
  // Names that do not fit must be refused: the HF pattern (with ViTForImageClassification's 'vit.'
  // wrapper) on the fixture's bare ViTModel tree, and a timm plan on the HF model.
  const hfTemplate = planOf(reports.get('timm')!, { budget: { kind: 'types', count: 1 } }, 'hf');
  cases.push({ id: 'hf-pattern-on-bare-tree', style: 'hf_vit', pytorch: writeExports('hf-pattern-on-bare-tree', hfTemplate).pytorch });
  cases.push({ id: 'timm-plan-on-hf-model', style: 'hf_vit', pytorch: writeExports('timm-again', plans.get('timm')!).pytorch });
  // A model inside a wrapper is reached with prefix=.
  cases.push({ id: 'timm-wrapped', style: 'timm', pytorch: writeExports('timm-wrapped', plans.get('timm')!).pytorch, wrap: true, prefix: 'model.' });

  if (!python) return;
  const manifest = path.join(scratch, 'manifest.json');
  fs.writeFileSync(manifest, JSON.stringify({ cases }));
  const results = runPythonHelper<PythonCheck[]>(python, 'check_freeze_exports.py', [manifest], 120_000);
  checks = new Map(results.map((result) => [result.id, result]));
});

describe('plans from real analyses name exactly the intended parameters', () => {
  for (const { style, head } of STYLES) {
    test(`${style}: chosen components, final norm and head`, () => {
      const plan = plans.get(style)!;
      assert.ok(plan.choices.length > 0);
      assert.deepEqual(sorted(plan.trainableParameters), sorted(expected.get(style)!));
      assert.equal(plan.source.model.fileChecked, true);
      assert.notEqual(plan.counts.trainable, null);
      if (head.length === 0) assert.ok(plan.notes.some((note) => /The model has no classification head/.test(note)));
    });
  }
});

describe('PyTorch runs the exports on the fixture models', { skip: python ? false : '/usr/bin/python3 cannot import torch, torchvision and numpy' }, () => {
  for (const { style } of STYLES) {
    test(`${style}: apply() makes exactly the plan trainable; PEFT names exist`, () => {
      const check = checks.get(style)!;
      const plan = plans.get(style)!;
      assert.equal(check.applyError, undefined);
      assert.deepEqual(sorted(check.returned!), sorted(expected.get(style)!));
      assert.deepEqual(sorted(check.requiresGrad), sorted(expected.get(style)!));
      assert.equal(check.trainableCount, plan.counts.trainable, 'the plan counts what PyTorch counts');
      assert.equal(check.modelCount, plan.counts.model, 'the report counts what PyTorch counts');
      const peft = check.peft!;
      assert.deepEqual(peft.targetModules, plan.lora.targetModules);
      assert.deepEqual(peft.missingTargets, []);
      assert.deepEqual(peft.nonLinearTargets, [], 'LoRA targets are nn.Linear');
      assert.deepEqual(peft.missingModulesToSave, []);
      assert.deepEqual(peft.missingTrainableParameters, []);
    });
  }

  for (const { id, style } of CROSS_NAMINGS) {
    test(`${id}: the ${style} model takes a timm report written in its names`, () => {
      const check = checks.get(id)!;
      assert.equal(check.applyError, undefined);
      assert.deepEqual(sorted(check.returned!), sorted(expected.get(id)!));
      assert.deepEqual(sorted(check.requiresGrad), sorted(expected.get(id)!));
      const peft = check.peft!;
      assert.deepEqual([...peft.missingTargets, ...peft.nonLinearTargets, ...peft.missingTrainableParameters], []);
      // An 'any' group lists alternatives; those the model has must be there.
      assert.ok(peft.modulesToSave.length === 0 || peft.missingModulesToSave.length < peft.modulesToSave.length);
    });
  }

  test('names that do not fit the model are refused, changing nothing', () => {
    assert.match(checks.get('hf-pattern-on-bare-tree')!.applyError!, /no parameter of the model lies under 'vit\.encoder\.layer\.0\.\S+' nor under 2 more/);
    assert.match(checks.get('timm-plan-on-hf-model')!.applyError!, /no parameter of the model lies under 'blocks\.0\./);
    for (const id of ['hf-pattern-on-bare-tree', 'timm-plan-on-hf-model']) {
      const check = checks.get(id)!;
      assert.equal(check.trainableCount, check.modelCount, `${id}: every parameter keeps requires_grad`);
    }
  });

  test('prefix= reaches a model inside a wrapper', () => {
    const check = checks.get('timm-wrapped')!;
    assert.equal(check.applyError, undefined);
    assert.deepEqual(sorted(check.returned!), sorted(expected.get('timm')!.map((name) => `model.${name}`)));
  });
});
