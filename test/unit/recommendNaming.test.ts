// Module and parameter names per framework: the report's own names when the naming is the one
// the model was exported with, the framework templates otherwise, checked against the names
// PyTorch gave the fixture models (test/fixtures/generate.py, recorded in the goldens).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UsageError } from '../../extension/core/errors';
import { readOnnxModel } from '../../extension/core/onnx/onnxModel';
import { allCells, FRAMEWORK_NAMINGS, FrameworkNaming, NAMING_TEMPLATES, resolveNaming } from '../../extension/core/recommend/frameworkNaming';
import { isUnder, moduleOfScopedNodeName, onnxModuleParameterLookup } from '../../extension/core/recommend/onnxScopes';
import { COMPONENTS } from '../../extension/core/vit/vitStructure';
import { familyGoldens, Golden, modelPath } from '../support/fixtures';
import { goldenByStyle, reportFromGolden } from '../support/goldenReports';

const goldens = goldenByStyle();
/** Goldens of the families, for the templates only (their reports are not built from goldens here). */
const templateGoldens = new Map<string, Golden>([...goldens, ...familyGoldens().map((golden) => [golden.style, golden] as const)]);
const STYLE_NAMING: Record<string, FrameworkNaming> = { timm: 'timm', deit_distilled: 'timm', hf_vit: 'hf', torchvision: 'torchvision', openai_clip: 'clip', hf_clip: 'hf-clip' };
/** The fixture style whose PyTorch names each template must reproduce, and the prefix the template adds. */
const TEMPLATE_CHECK: Record<Exclude<FrameworkNaming, 'onnx'>, { style: string; root: string }> = {
  timm: { style: 'timm', root: '' },
  hf: { style: 'hf_vit', root: 'vit.' }, // the fixture is ViTModel's tree plus a classifier, without the 'vit.' wrapper
  torchvision: { style: 'torchvision', root: '' },
  clip: { style: 'openai_clip', root: '' },
  'hf-clip': { style: 'hf_clip', root: '' }, // CLIPVisionModel already has the 'vision_model.' level
  'hf-dinov2': { style: 'hf_dinov2', root: 'dinov2.' }, // the fixture is Dinov2WithRegistersModel's tree, without Dinov2ForImageClassification's 'dinov2.'
  'hf-dinov3': { style: 'hf_dinov3', root: '' }, // DINOv3ViTModel: its blocks at the top (`layer.N`), k_proj without a bias
  'timm-beit': { style: 'beit', root: '' },
  'hf-beit': { style: 'hf_beit', root: '' }, // the fixture is BeitForImageClassification's tree, 'beit.' included
};

const sorted = (names: string[]) => [...names].sort();

describe("the model's own naming uses the report's names", () => {
  for (const [style, golden] of goldens) {
    test(`${style}: detected ${STYLE_NAMING[style]}, cells are PyTorch's module and parameter names`, () => {
      const report = reportFromGolden(golden);
      const naming = resolveNaming(report);
      assert.equal(naming.naming, STYLE_NAMING[style]);
      assert.equal(naming.source, 'report');
      for (const { block, component, names } of allCells(report, naming)) {
        assert.equal(names.module, golden.modules[block][component], `${style} ${block} ${component}`);
        assert.deepEqual(sorted(names.parameters), sorted(golden.parameters[block][component].names));
      }
      // Asking for the detected naming by name, or for 'onnx', gives the same names.
      for (const requested of [STYLE_NAMING[style], 'onnx'] as FrameworkNaming[]) {
        const again = resolveNaming(report, requested);
        assert.equal(again.source, 'report');
        assert.deepEqual(
          allCells(report, again).map((cell) => cell.names),
          allCells(report, naming).map((cell) => cell.names),
        );
      }
    });
  }

  test('a model without a known naming is written in its ONNX names, head and final norm unnamed', () => {
    const report = reportFromGolden(goldens.get('timm')!);
    report.model.architecture.naming = 'generic';
    const naming = resolveNaming(report);
    assert.equal(naming.naming, 'onnx');
    assert.equal(naming.cell(1, 'MHA').module, 'blocks.1.attn');
    assert.deepEqual(naming.headCandidates, []);
    assert.deepEqual(naming.finalNormCandidates, []);
  });

  test('an unknown naming is a usage error', () => {
    assert.throws(() => resolveNaming(reportFromGolden(goldens.get('timm')!), 'keras' as FrameworkNaming), UsageError);
    assert.deepEqual([...FRAMEWORK_NAMINGS], ['timm', 'hf', 'hf-dinov2', 'hf-dinov3', 'torchvision', 'clip', 'hf-clip', 'timm-beit', 'hf-beit', 'onnx']);
  });
});

describe('framework templates reproduce PyTorch names', () => {
  // A report from one framework, written in another's names: the template alone decides.
  const source = reportFromGolden(goldens.get('timm')!);
  for (const [naming, { style, root }] of Object.entries(TEMPLATE_CHECK) as [Exclude<FrameworkNaming, 'onnx'>, { style: string; root: string }][]) {
    test(`${naming} names match the ${style} fixture model`, () => {
      const golden = templateGoldens.get(style) as Golden;
      const resolved = resolveNaming(naming === 'timm' ? reportFromGolden(goldens.get('hf_vit')!) : source, naming);
      assert.equal(resolved.source, 'template');
      assert.equal(resolved.root, NAMING_TEMPLATES[naming].root);
      for (let block = 0; block < golden.modules.length; block++) {
        for (const component of COMPONENTS) {
          const cell = resolved.cell(block, component);
          assert.equal(cell.module, `${root}${golden.modules[block][component]}`, `${naming} ${block} ${component}`);
          assert.deepEqual(sorted(cell.parameters), sorted(golden.parameters[block][component].names.map((name) => `${root}${name}`)), `${naming} ${block} ${component}`);
        }
      }
    });
  }

  test("the brief's module patterns, spelled out", () => {
    const report = reportFromGolden(goldens.get('timm')!);
    const names = (naming: FrameworkNaming) => COMPONENTS.map((component) => resolveNaming(report, naming).cell(2, component).module);
    assert.deepEqual(names('hf'), [
      'vit.encoder.layer.2.layernorm_before',
      'vit.encoder.layer.2.attention',
      'vit.encoder.layer.2.layernorm_after',
      'vit.encoder.layer.2.intermediate.dense',
      'vit.encoder.layer.2.output.dense',
    ]);
    assert.deepEqual(names('torchvision'), [
      'encoder.layers.encoder_layer_2.ln_1',
      'encoder.layers.encoder_layer_2.self_attention',
      'encoder.layers.encoder_layer_2.ln_2',
      'encoder.layers.encoder_layer_2.mlp.0',
      'encoder.layers.encoder_layer_2.mlp.3',
    ]);
    assert.deepEqual(names('clip'), [
      'transformer.resblocks.2.ln_1',
      'transformer.resblocks.2.attn',
      'transformer.resblocks.2.ln_2',
      'transformer.resblocks.2.mlp.c_fc',
      'transformer.resblocks.2.mlp.c_proj',
    ]);
    assert.deepEqual(names('hf-clip'), [
      'vision_model.encoder.layers.2.layer_norm1',
      'vision_model.encoder.layers.2.self_attn',
      'vision_model.encoder.layers.2.layer_norm2',
      'vision_model.encoder.layers.2.mlp.fc1',
      'vision_model.encoder.layers.2.mlp.fc2',
    ]);
    assert.deepEqual(names('timm').slice(0, 2), ['blocks.2.norm1', 'blocks.2.attn']);
  });
});

describe('LoRA targets are the nn.Linear layers', () => {
  const expected: Record<string, string[]> = {
    timm: ['blocks.1.attn.qkv', 'blocks.1.attn.proj'],
    hf_vit: [
      'encoder.layer.1.attention.attention.query',
      'encoder.layer.1.attention.attention.key',
      'encoder.layer.1.attention.attention.value',
      'encoder.layer.1.attention.output.dense',
    ],
    hf_clip: [
      'vision_model.encoder.layers.1.self_attn.q_proj',
      'vision_model.encoder.layers.1.self_attn.k_proj',
      'vision_model.encoder.layers.1.self_attn.v_proj',
      'vision_model.encoder.layers.1.self_attn.out_proj',
    ],
    torchvision: [],
    openai_clip: [],
  };
  for (const [style, targets] of Object.entries(expected)) {
    test(`${style}: MHA targets from the report's parameters equal the template's`, () => {
      const report = reportFromGolden(goldens.get(style)!);
      const fromReport = resolveNaming(report).cell(1, 'MHA');
      assert.deepEqual(sorted(fromReport.loraTargets), sorted(targets));
      const template = resolveNaming(reportFromGolden(goldens.get(style === 'timm' ? 'hf_vit' : 'timm')!), STYLE_NAMING[style]).cell(1, 'MHA');
      const root = TEMPLATE_CHECK[STYLE_NAMING[style] as Exclude<FrameworkNaming, 'onnx'>].root;
      assert.deepEqual(sorted(template.loraTargets), sorted(targets.map((target) => `${root}${target}`)));
      if (targets.length === 0) {
        assert.match(fromReport.loraLimitation!, /packed q\/k\/v projection \(in_proj_weight\) of torch\.nn\.MultiheadAttention/);
        assert.match(template.loraLimitation!, /modules_to_save/);
      }
      const fc1 = resolveNaming(report).cell(1, 'FC1');
      assert.deepEqual(fc1.loraTargets, [fc1.module]);
      const ln2 = resolveNaming(report).cell(1, 'LN2');
      assert.deepEqual(ln2.loraTargets, []);
      assert.match(ln2.loraLimitation!, /LayerNorm/);
    });
  }
});

describe('head and final norm', () => {
  const cases: [string, FrameworkNaming | undefined, string[], string[]][] = [
    ['timm', undefined, ['head', 'head_dist'], ['norm', 'fc_norm']],
    ['hf_vit', undefined, ['classifier'], ['layernorm']],
    ['hf_vit', 'hf', ['classifier'], ['layernorm']],
    ['timm', 'hf', ['classifier'], ['vit.layernorm']],
    ['torchvision', undefined, ['heads'], ['encoder.ln']],
    ['openai_clip', undefined, ['proj'], ['ln_post']],
    ['hf_clip', undefined, ['classifier', 'visual_projection', 'vision_model.head'], ['vision_model.post_layernorm']],
    ['timm', 'hf-clip', ['classifier', 'visual_projection', 'vision_model.head'], ['vision_model.post_layernorm']],
  ];
  for (const [style, requested, head, finalNorm] of cases) {
    test(`${style} in ${requested ?? 'its own'} naming`, () => {
      const naming = resolveNaming(reportFromGolden(goldens.get(style)!), requested);
      assert.deepEqual(naming.headCandidates, head);
      assert.deepEqual(naming.finalNormCandidates, finalNorm);
    });
  }

  test('the ONNX file names them: initializers, and weights the exporter renamed (onnx::MatMul_N)', () => {
    const timm = onnxModuleParameterLookup(readOnnxModel(modelPath('timm_op17_dyn.onnx')));
    assert.deepEqual(timm('head'), { names: ['head.weight', 'head.bias'], count: 330 });
    assert.deepEqual(timm('norm'), { names: ['norm.weight', 'norm.bias'], count: 64 });
    assert.equal(timm('fc_norm'), null);
    assert.equal(timm('head_dist'), null);
    // fc1's weight is stored as onnx::MatMul_N: found by the node's scope.
    assert.deepEqual(timm('blocks.0.mlp.fc1'), { names: ['blocks.0.mlp.fc1.bias', 'blocks.0.mlp.fc1.weight'], count: 4224 });
    const clip = onnxModuleParameterLookup(readOnnxModel(modelPath('openai_clip_op14.onnx')));
    assert.deepEqual(clip('proj'), { names: ['proj'], count: 512 });
    assert.deepEqual(clip('ln_post')?.count, 64);
    const torchvision = onnxModuleParameterLookup(readOnnxModel(modelPath('torchvision_op14.onnx')));
    assert.deepEqual(torchvision('heads'), { names: ['heads.head.weight', 'heads.head.bias'], count: 330 });
    const deit = onnxModuleParameterLookup(readOnnxModel(modelPath('deit_distilled_op13.onnx')));
    assert.deepEqual(deit('head_dist')?.names, ['head_dist.weight', 'head_dist.bias']);
    const hfClip = onnxModuleParameterLookup(readOnnxModel(modelPath('hf_clip_op17_dyn.onnx')));
    assert.equal(hfClip('classifier'), null);
  });
});

describe('scoped node names', () => {
  test("PyTorch's exporter scopes map back to module names", () => {
    const cases: [string, string | null][] = [
      ['/blocks/blocks.1/attn/qkv/MatMul', 'blocks.1.attn.qkv'],
      ['/encoder/layer.0/attention/attention/query/MatMul', 'encoder.layer.0.attention.attention.query'],
      ['/encoder/layers/encoder_layer_2/mlp/mlp.3/Add', 'encoder.layers.encoder_layer_2.mlp.3'],
      ['/transformer/resblocks/resblocks.0/attn/Split', 'transformer.resblocks.0.attn'],
      ['/vision_model/encoder/layers.1/self_attn/out_proj/MatMul', 'vision_model.encoder.layers.1.self_attn.out_proj'],
      ['/Constant', null],
      ['Constant_49', null],
      ['', null],
    ];
    for (const [node, module] of cases) assert.equal(moduleOfScopedNodeName(node), module, node);
    assert.ok(isUnder('blocks.1.attn.qkv', 'blocks.1.attn'));
    assert.ok(!isUnder('blocks.11.attn', 'blocks.1'));
    assert.ok(!isUnder('blocks.0.norm1.weight', 'norm'));
  });
});
