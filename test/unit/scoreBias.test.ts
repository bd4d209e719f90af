// A constant added to the attention logits (BEiT's relative position bias, which the exporter folds
// into one [1, heads, N, N] initializer per block): read as part of the attention, with its shape
// checked, and named as timm's Beit names what it comes from.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test, TestContext } from 'node:test';
import { constantValues } from '../../extension/core/graph/constantTensor';
import { ModelFileError } from '../../extension/core/errors';
import { OnnxModel, readOnnxModel, TensorDataType } from '../../extension/core/onnx/onnxModel';
import { OnnxGraphBuilder } from '../../extension/core/onnx/onnxWriter';
import { describeFamily } from '../../extension/core/vit/familyDescription';
import { discoverVit } from '../../extension/core/vit/discoverVit';
import { applyTemplateNames } from '../../extension/core/vit/moduleNames';
import { COMPONENTS } from '../../extension/core/vit/vitStructure';
import { FAMILY_MODELS, familyGoldens, tempDir } from '../support/fixtures';

const BEIT = path.join(FAMILY_MODELS, 'beit_op17_dyn.onnx');
const golden = () => familyGoldens().find((entry) => entry.model === path.basename(BEIT))!;

test("BEiT: every block's attention holds its relative position bias, [heads, N, N], added after the scale", () => {
  const model = readOnnxModel(BEIT);
  const structure = discoverVit(model);
  const { architecture } = golden();
  assert.equal(structure.blocks.length, architecture.blocks);
  for (const block of structure.blocks) {
    const bias = block.attention.scoreBias;
    assert.ok(bias, `block ${block.index} has a score bias`);
    assert.deepEqual([bias.heads, bias.tokens, bias.factor], [architecture.heads, architecture.tokens, 1]);
    // The fixture's tables are N(0, 1.5): a bias that reshapes the attention, not zeros.
    assert.ok(Math.max(...Array.from(constantValues(model, bias.values), Math.abs)) > 1);
    assert.ok(Math.abs(block.attention.scoreScale * Math.sqrt(block.attention.headDim) - 1) < 1e-6, 'the scale is 1/sqrt(dh), the bias outside it');
  }
  // Blocks hold different tables.
  assert.notEqual(structure.blocks[0].attention.scoreBias!.values.name, structure.blocks[1].attention.scoreBias!.values.name);
  assert.equal(describeFamily(structure).family, 'BEiT (relative position bias, LayerScale)');
});

for (const [file, naming, framework] of [
  ['beit_op17_dyn.onnx', 'timm-beit', "timm's Beit"],
  ['beit_shared_op17_dyn.onnx', 'timm-beit', "timm's Beit with one table for every block"],
  ['hf_beit_op14_dyn.onnx', 'hf-beit', "Hugging Face's BeitForImageClassification"],
] as const) {
  test(`${file}: ${framework} names and counts, though the exporter folded the table (and timm's q_bias, v_bias) into unnamed constants`, () => {
    const structure = discoverVit(readOnnxModel(path.join(FAMILY_MODELS, file)));
    const expected = familyGoldens().find((entry) => entry.model === file)!;
    assert.equal(structure.naming, naming);
    structure.blocks.forEach((block, b) => {
      for (const component of COMPONENTS) {
        assert.equal(block.modules[component], expected.modules[b][component], `block ${b} ${component}`);
        assert.deepEqual([...block.parameters[component]].sort(), [...expected.parameters[b][component].names].sort(), `block ${b} ${component}`);
        assert.equal(block.parameterCounts[component], expected.parameters[b][component].count, `block ${b} ${component} count`);
      }
    });
  });
}

test("a table every block shares (timm's rel_pos_bias) is one constant on every block's logits, a parameter of no component trained with MHA", () => {
  const structure = discoverVit(readOnnxModel(path.join(FAMILY_MODELS, 'beit_shared_op17_dyn.onnx')));
  assert.equal(new Set(structure.blocks.map((block) => block.attention.scoreBias?.values.name)).size, 1);
  const { heads, tokens } = golden().architecture;
  const window = Math.sqrt(tokens - 1);
  assert.deepEqual(
    structure.extraParameters.filter((parameter) => parameter.kind === 'relative position table'),
    [{ name: 'rel_pos_bias.relative_position_bias_table', kind: 'relative position table', block: null, follows: 'MHA', count: ((2 * window - 1) ** 2 + 3) * heads }],
  );
  for (const block of structure.blocks) assert.ok(!block.parameters.MHA.some((name) => name.includes('relative_position')), `block ${block.index}'s MHA holds no table`);
});

test('BEiT without qkv bias (qkv_bias=False): no q_bias and v_bias, the output projection keeps its bias', () => {
  const structure = discoverVit(readOnnxModel(BEIT));
  for (const block of structure.blocks) block.attention.query.linear.bias = undefined;
  applyTemplateNames(structure.blocks, structure.naming, [4, 4]);
  assert.deepEqual(structure.blocks[1].parameters.MHA, [
    'blocks.1.attn.qkv.weight',
    'blocks.1.attn.relative_position_bias_table',
    'blocks.1.attn.proj.weight',
    'blocks.1.attn.proj.bias',
  ]);
});

/** The BEiT fixture with block 0's bias replaced by `values` shaped `dims` (weights read from the fixture's file). */
function withBlock0Bias(t: TestContext, model: OnnxModel, values: Float32Array, dims: number[]): string {
  const structure = discoverVit(model);
  const original = structure.blocks[0].attention.scoreBias!.values.name;
  const builder = new OnnxGraphBuilder(model.opsetImports);
  builder.input(structure.inputName, TensorDataType.FLOAT, structure.inputShape);
  const replacement = builder.floatConstant(values, dims, 'replaced_bias');
  for (const node of model.nodes) {
    if (node.inputs.includes(original))
      builder.op(
        node.opType,
        node.inputs.map((input) => (input === original ? replacement : input)),
        {},
        node.outputs[0],
      );
    else builder.copyNode(model, node);
    for (const input of node.inputs) if (model.initializers.has(input) && input !== original) builder.useInitializer(model, model.initializers.get(input)!);
  }
  for (const output of model.outputs) builder.output(output.name, TensorDataType.FLOAT);
  const dir = tempDir('score-bias');
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'beit_rewritten.onnx'), builder.encode());
  // Weights are referenced from the original file, so it sits next to the rewritten one.
  fs.copyFileSync(model.filePath, path.join(dir, path.basename(model.filePath)));
  return path.join(dir, 'beit_rewritten.onnx');
}

test('a bias shared by every head ([1, 1, N, N]) is one table for all heads', (t) => {
  const model = readOnnxModel(BEIT);
  const tokens = golden().architecture.tokens;
  const file = withBlock0Bias(
    t,
    model,
    Float32Array.from({ length: tokens * tokens }, (_, i) => Math.sin(i)),
    [1, 1, tokens, tokens],
  );
  const bias = discoverVit(readOnnxModel(file)).blocks[0].attention.scoreBias!;
  assert.deepEqual([bias.heads, bias.tokens], [1, tokens]);
});

test('a constant on the logits that is not [heads, N, N] is refused, naming the block and the shape', (t) => {
  const model = readOnnxModel(BEIT);
  const tokens = golden().architecture.tokens;
  const file = withBlock0Bias(t, model, new Float32Array(tokens).fill(0.5), [tokens]);
  assert.throws(
    () => discoverVit(readOnnxModel(file)),
    (error: Error) =>
      error instanceof ModelFileError && /beit_rewritten\.onnx: block 0 could not be resolved: the constant added to its attention logits has shape \[17\]/.test(error.message),
  );
});
