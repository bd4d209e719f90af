// SwiGLU MLPs (timm's Eva: EVA-02's SwiGLU with separate gate and value layers and a norm inside
// the MLP; timm's packed GluMlp): what discovery finds in the real exports of the family fixtures.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { readOnnxModel } from '../../extension/core/onnx/onnxModel';
import { describeFamily } from '../../extension/core/vit/familyDescription';
import { discoverVit } from '../../extension/core/vit/discoverVit';
import { assignNodesToComponents } from '../../extension/core/recommend/graphOverlays';
import { buildModuleIndex, matchLine } from '../../extension/hints/moduleMatcher';
import { FAMILY_MODELS, familyGoldens } from '../support/fixtures';
import { reportFromGolden } from '../support/goldenReports';

const EVA_HIDDEN = 85; // timm eva02's mlp_ratio 4 * 2 / 3 at d = 32

test('EVA-02 SwiGLU: gate and value layers read LN2, silu(gate) * value through the MLP norm reaches FC2', () => {
  const structure = discoverVit(readOnnxModel(path.join(FAMILY_MODELS, 'eva_swiglu_op17_dyn.onnx')));
  assert.equal(structure.blocks.length, 3);
  assert.equal(structure.mlpSize, EVA_HIDDEN, 'the hidden width is what FC2 reads');
  assert.equal(structure.activation, 'silu');
  for (const block of structure.blocks) {
    const gated = block.gatedMlp;
    assert.ok(gated, `block ${block.index} has a gated MLP`);
    assert.match(gated.gate.linear.nodeName, new RegExp(`/blocks\\.${block.index}/mlp/fc1_g/`), 'the gate is the layer SiLU reads');
    assert.match(gated.value.linear.nodeName, new RegExp(`/blocks\\.${block.index}/mlp/fc1_x/`));
    assert.equal(gated.gate.half, undefined);
    assert.deepEqual(block.fc1, [gated.gate.linear, gated.value.linear], 'FC1 is both layers, gate first');
    assert.equal(gated.norm?.width, EVA_HIDDEN, 'the norm inside the MLP');
    assert.equal(block.fc2.inFeatures, EVA_HIDDEN);
    assert.equal(block.modules.FC1, `blocks.${block.index}.mlp.{fc1_g,fc1_x}`);
    assert.deepEqual(
      block.parameters.FC1,
      ['fc1_g.weight', 'fc1_g.bias', 'fc1_x.weight', 'fc1_x.bias'].map((name) => `blocks.${block.index}.mlp.${name}`),
    );
    assert.equal(block.parameterCounts.FC1, 2 * (32 * EVA_HIDDEN + EVA_HIDDEN));
    assert.equal(block.modules.FC2, `blocks.${block.index}.mlp.fc2`);
  }
  assert.deepEqual(
    structure.extraParameters.map(({ name, kind, block, follows }) => ({ name, kind, block, follows })),
    [0, 1, 2].flatMap((block) => ['weight', 'bias'].map((part) => ({ name: `blocks.${block}.mlp.norm.${part}`, kind: 'mlp norm', block, follows: 'FC2' }))),
  );
  const family = describeFamily(structure);
  assert.equal(family.family, 'EVA-02 (SwiGLU MLP with its inner norm)');
  assert.ok(family.measured.some((line) => line.includes('x -> [x W_gate + b_gate, x W_value + b_value]')));
});

test('packed SwiGLU: one fc1 [d, 2h] sliced in two (chunk), its first half the gate, no MLP norm', () => {
  const structure = discoverVit(readOnnxModel(path.join(FAMILY_MODELS, 'eva_swiglu_packed_op17_dyn.onnx')));
  assert.equal(structure.mlpSize, EVA_HIDDEN);
  for (const block of structure.blocks) {
    const gated = block.gatedMlp;
    assert.ok(gated, `block ${block.index} has a gated MLP`);
    assert.equal(block.fc1.length, 1);
    assert.equal(block.fc1[0].outFeatures, 2 * EVA_HIDDEN);
    assert.equal(gated.gate.linear, block.fc1[0]);
    assert.equal(gated.value.linear, block.fc1[0]);
    assert.deepEqual([gated.gate.half, gated.value.half], [0, 1], 'timm GluMlp(gate_last=False): silu(x1) * x2');
    assert.equal(gated.norm, undefined);
    assert.equal(block.modules.FC1, `blocks.${block.index}.mlp.fc1`);
  }
  assert.deepEqual(structure.extraParameters, []);
  assert.equal(describeFamily(structure).family, 'ViT with SwiGLU MLP (packed fc1)');
});

test("EVA-02's own MLP names (w1, w2, ffn_ln, w3) are kept where timm's template names a plain fc1 and fc2; the decomposed norm is found", () => {
  const structure = discoverVit(readOnnxModel(path.join(FAMILY_MODELS, 'eva_swiglu_eva02_names_op14_dyn.onnx')));
  assert.equal(structure.naming, 'timm');
  for (const block of structure.blocks) {
    assert.equal(block.gatedMlp?.norm?.width, EVA_HIDDEN, `block ${block.index}: ffn_ln, decomposed at opset 14`);
    assert.equal(block.modules.FC1, `blocks.${block.index}.mlp.{w1,w2}`);
    assert.equal(block.modules.FC2, `blocks.${block.index}.mlp.w3`);
    assert.deepEqual(block.parameters.FC2, [`blocks.${block.index}.mlp.w3.weight`, `blocks.${block.index}.mlp.w3.bias`]);
  }
  assert.deepEqual(
    structure.extraParameters.map(({ name }) => name),
    [0, 1, 2].flatMap((block) => [`blocks.${block}.mlp.ffn_ln.weight`, `blocks.${block}.mlp.ffn_ln.bias`]),
  );
});

test('plasticity on the graph: both FC1 layers are FC1, the MLP norm and the gate belong to no component', () => {
  const golden = familyGoldens().find((candidate) => candidate.model === 'eva_swiglu_op17_dyn.onnx')!;
  const nodes = readOnnxModel(path.join(FAMILY_MODELS, golden.model)).nodes;
  const assigned = new Map(
    assignNodesToComponents(reportFromGolden({ ...golden, model: path.join('families', golden.model) }), nodes).map((entry) => [entry.node, `${entry.block} ${entry.component}`]),
  );
  assert.equal(assigned.get('/blocks.1/mlp/fc1_g/MatMul'), '1 FC1');
  assert.equal(assigned.get('/blocks.1/mlp/fc1_x/MatMul'), '1 FC1');
  assert.equal(assigned.get('/blocks.1/mlp/fc2/MatMul'), '1 FC2');
  assert.equal(assigned.get('/blocks.1/mlp/norm/LayerNormalization'), undefined);
  assert.equal(assigned.get('/blocks.1/mlp/act/Sigmoid'), undefined);
});

test('inline hints: code naming either FC1 layer of a gated MLP is FC1', () => {
  const golden = familyGoldens().find((candidate) => candidate.model === 'eva_swiglu_op17_dyn.onnx')!;
  const index = buildModuleIndex(reportFromGolden({ ...golden, model: path.join('families', golden.model) }));
  const found = (line: string) => matchLine(line, index).map((match) => `${match.component}@${match.block ?? '-'} ${line.slice(match.start, match.end)}`);
  assert.deepEqual(found('model.blocks[1].mlp.fc1_g.weight.requires_grad = True'), ['FC1@1 blocks[1].mlp.fc1_g.weight.requires_grad']);
  assert.deepEqual(found('model.blocks[2].mlp.fc1_x(x)'), ['FC1@2 blocks[2].mlp.fc1_x']);
  assert.deepEqual(found('model.blocks[0].mlp.fc2'), ['FC2@0 blocks[0].mlp.fc2']);
});
