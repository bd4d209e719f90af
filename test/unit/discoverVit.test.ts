import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { ModelFileError } from '../../extension/core/errors';
import { readOnnxModel } from '../../extension/core/onnx/onnxModel';
import { OnnxGraphBuilder } from '../../extension/core/onnx/onnxWriter';
import { discoverVit } from '../../extension/core/vit/discoverVit';
import { COMPONENTS } from '../../extension/core/vit/vitStructure';
import { goldenFixtures, modelPath, tempDir } from '../support/fixtures';

const EXPECTED_NAMING: Record<string, string> = { timm: 'timm', deit_distilled: 'timm', hf_vit: 'hf', torchvision: 'torchvision', openai_clip: 'clip', hf_clip: 'hf-clip' };

// One test per fixture, so one failure does not hide the others.
describe('finds the architecture of every exported ViT as PyTorch describes it', () => {
  for (const golden of goldenFixtures())
    test(golden.model, () => {
      const structure = discoverVit(readOnnxModel(modelPath(golden.model)));
      const expected = golden.architecture;
      assert.equal(structure.blocks.length, expected.blocks, golden.model);
      assert.equal(structure.hiddenSize, expected.hiddenSize, golden.model);
      assert.equal(structure.heads, expected.heads, golden.model);
      assert.equal(structure.mlpSize, expected.mlpSize, golden.model);
      assert.equal(structure.tokens, expected.tokens, golden.model);
      assert.deepEqual(structure.imageSize, expected.imageSize, golden.model);
      assert.deepEqual(structure.patchSize, expected.patchSize, golden.model);
      assert.equal(structure.norm, expected.norm, golden.model);
      assert.equal(structure.activation, expected.activation, golden.model);
      assert.equal(structure.naming, EXPECTED_NAMING[golden.style], golden.model);
      assert.equal(structure.dynamicBatch, golden.dynamicBatch, golden.model);
      assert.equal(structure.inputName, golden.inputName, golden.model);
    });
});

describe('names each component with its framework module and parameter names', () => {
  for (const golden of goldenFixtures())
    test(golden.model, () => {
      const structure = discoverVit(readOnnxModel(modelPath(golden.model)));
      structure.blocks.forEach((block, b) => {
        for (const component of COMPONENTS) {
          assert.equal(block.modules[component], golden.modules[b][component], `${golden.model} block ${b} ${component}`);
          assert.deepEqual([...block.parameters[component]].sort(), [...golden.parameters[b][component].names].sort(), `${golden.model} block ${b} ${component}`);
          assert.equal(block.parameterCounts[component], golden.parameters[b][component].count, `${golden.model} block ${b} ${component}`);
        }
      });
    });
});

test('a CNN is reported as not a ViT, with what was found', () => {
  assert.throws(
    () => discoverVit(readOnnxModel(modelPath('cnn_op13.onnx'))),
    (error: Error) => error instanceof ModelFileError && /cnn_op13\.onnx is not a Vision Transformer: found .*Conv.*no self-attention/.test(error.message),
  );
});

test("torchvision's Swin (windowed attention, not read yet) is refused in one line that says so, not as a model without attention", () => {
  assert.throws(
    () => discoverVit(readOnnxModel(modelPath(path.join('not_read', 'swin_t_op17_dyn.onnx')))),
    (error: Error) =>
      error instanceof ModelFileError &&
      !error.message.includes('\n') &&
      /swin_t_op17_dyn\.onnx is not a Vision Transformer Plasticity Lens reads: its LayerNorms work on a grid of tokens \[batch, 8, 8, 16\], as Swin's windowed attention/.test(
        error.message,
      ),
  );
});

test('a block that cannot be resolved is named, with what is missing', () => {
  // Rebuild the timm model with block 1's second LayerNorm replaced by an Identity.
  const model = readOnnxModel(modelPath('timm_op17_dyn.onnx'));
  const structure = discoverVit(model);
  const dir = tempDir('broken');
  const builder = new OnnxGraphBuilder(model.opsetImports);
  builder.input(structure.inputName, 1, structure.inputShape);
  for (const node of model.nodes) {
    if (node.opType === 'LayerNormalization' && node.outputs[0] === structure.blocks[1].ln2.output) {
      builder.op('Identity', [node.inputs[0]], {}, node.outputs[0]);
    } else {
      builder.copyNode(model, node);
    }
    for (const input of node.inputs) if (model.initializers.has(input)) builder.useInitializer(model, model.initializers.get(input)!);
  }
  for (const output of model.outputs) builder.output(output.name, 1);
  fs.writeFileSync(path.join(dir, 'broken.onnx'), builder.encode());
  // Weights are referenced from the original file, so read it from the fixtures' folder.
  fs.copyFileSync(model.filePath, path.join(dir, path.basename(model.filePath)));
  assert.throws(
    () => discoverVit(readOnnxModel(path.join(dir, 'broken.onnx'))),
    (error: Error) => error instanceof ModelFileError && /block 1 could not be resolved: .*no single LayerNorm \(LN2\)/.test(error.message),
  );
});
