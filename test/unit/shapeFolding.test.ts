// Shape computations constant for the model's static sizes (issue 15, item 6): a hand-written
// ViT exported by torch.onnx that takes its attention scale from q's traced shape.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { canonicalGraphOf } from '../../extension/core/graph/canonicalGraph';
import { GraphIndex } from '../../extension/core/graph/graphIndex';
import { readOnnxModel } from '../../extension/core/onnx/onnxModel';
import { discoverVit } from '../../extension/core/vit/discoverVit';
import { FAMILY_MODELS } from '../support/fixtures';

const MODEL = path.join(FAMILY_MODELS, 'timm_shape_scale_op17_dyn.onnx');

test('the scale q.shape[-1] ** -0.5 is folded to a constant, the batch is not', () => {
  const model = readOnnxModel(MODEL);
  const graph = new GraphIndex(canonicalGraphOf(model));
  const pow = graph.nodes.find((node) => node.opType === 'Pow')!;
  // float32, as the model computes it.
  assert.equal(graph.scalar(pow.outputs[0]), Math.fround(8 ** -0.5));
  // q is [batch, heads, tokens, head size], the batch dynamic.
  const q = graph.consumersOf(pow.outputs[0])[0].inputs.find((input) => input !== pow.outputs[0])!;
  assert.deepEqual(graph.shapes.dims(q), [undefined, 4, 17, 8]);
  // The Gather of the batch dimension stays a computed value: it is not constant.
  const batch = graph.nodes.find((node) => node.opType === 'Gather' && graph.shapes.value(node.outputs[0])?.data[0] === undefined)!;
  assert.ok(batch, 'a Gather reads the dynamic batch');
  assert.equal(graph.isConstant(batch.outputs[0]), false);
  // The shape vectors the Reshapes read stay what they are (folding gives float results only).
  const reshape = graph.nodes.find((node) => node.opType === 'Reshape' && node.outputs[0].includes('attn'))!;
  assert.equal(graph.isConstant(reshape.inputs[1]), false);
});

test('discovery reads the folded scale as the attention scale', () => {
  const structure = discoverVit(readOnnxModel(MODEL));
  assert.equal(structure.blocks.length, 3);
  for (const block of structure.blocks) {
    assert.ok(Math.abs(block.attention.scoreScale - 8 ** -0.5) < 1e-7, String(block.attention.scoreScale));
    assert.equal(block.attention.heads, 4);
  }
});
