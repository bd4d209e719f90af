// Rotary position embedding (HF DINOv3): found on q and k between the projections and Q·Kᵀ, kept
// in MHA with the tables the model computes from the image's size, and refused in forms the
// probes would not rebuild faithfully (one of q, k rotated; tables from the image's values).
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { ModelFileError } from '../../extension/core/errors';
import { NodeInfo, readOnnxModel } from '../../extension/core/onnx/onnxModel';
import { OnnxGraphBuilder } from '../../extension/core/onnx/onnxWriter';
import { discoverVit } from '../../extension/core/vit/discoverVit';
import { describeFamily } from '../../extension/core/vit/familyDescription';
import { writeReplacedNodesModel } from '../support/derivedModels';
import { FAMILY_MODELS, tempDir } from '../support/fixtures';

const DINOV3 = path.join(FAMILY_MODELS, 'hf_dinov3_op17_dyn.onnx');

/** The fixture with nodes replaced (see writeReplacedNodesModel), written to a scratch folder. */
function rewritten(name: string, replace: (builder: OnnxGraphBuilder, node: NodeInfo) => boolean): string {
  const file = path.join(tempDir('rotary'), name);
  writeReplacedNodesModel(DINOV3, file, replace);
  return file;
}

describe('HF DINOv3: the rotary embedding of q and k is part of MHA', () => {
  const structure = discoverVit(readOnnxModel(DINOV3));

  test('every block rotates q and k by the same tables, heads-first, the prefix tokens unrotated', () => {
    assert.equal(structure.blocks.length, 3);
    const rotary = structure.blocks[0].attention.rotary;
    assert.ok(rotary, 'block 0 has a rotary embedding');
    assert.equal(rotary.layout, 'heads-first');
    assert.equal(rotary.prefixUnrotated, true);
    // The exporter keeps HF's table computation (from the image's shape) in the graph.
    assert.equal(structure.graph.constant(rotary.cos), undefined);
    for (const block of structure.blocks) assert.deepEqual(block.attention.rotary, rotary, `block ${block.index}`);
    assert.equal(structure.blocks[0].attention.headDim, 8);
  });

  test("HF's names: hf-dinov3, k_proj without a bias, no position table (tokens from block 0's input shape)", () => {
    assert.equal(structure.naming, 'hf-dinov3');
    assert.deepEqual(structure.blocks[1].modules, {
      LN1: 'layer.1.norm1',
      MHA: 'layer.1.attention',
      LN2: 'layer.1.norm2',
      FC1: 'layer.1.mlp.up_proj',
      FC2: 'layer.1.mlp.down_proj',
    });
    assert.ok(structure.blocks[1].parameters.MHA.includes('layer.1.attention.k_proj.weight'));
    assert.ok(!structure.blocks[1].parameters.MHA.some((name) => name.startsWith('layer.1.attention.k_proj.bias')));
    // Class, 4 registers and 16 patches: from the shape, not from the register tokens' [1, 4, d].
    assert.equal(structure.tokens, 21);
  });

  test('the family line names DINOv3 and says the rotary embedding is measured in MHA', () => {
    const family = describeFamily(structure);
    assert.equal(family.family, 'DINOv3 (rotary position embedding, LayerScale, 4 register tokens)');
    assert.ok(family.measured.some((line) => /MHA includes the rotary position embedding/.test(line) && /left unrotated/.test(line)));
  });
});

describe('rotary forms that are refused, with the reason', () => {
  test('only the query rotated', () => {
    // Block 1's key takes its heads unrotated: the Concat of its prefix and rotated patches becomes the heads themselves.
    const file = rewritten('key_unrotated.onnx', (builder, node) => {
      if (node.name !== '/layer.1/attention/Concat_6') return false;
      builder.op('Identity', ['/layer.1/attention/Transpose_1_output_0'], {}, node.outputs[0]);
      return true;
    });
    assert.throws(
      () => discoverVit(readOnnxModel(file)),
      (error: Error) => error instanceof ModelFileError && /block 1 could not be resolved: only its query is rotated by a rotary embedding/.test(error.message),
    );
  });

  test('tables computed from the image values', () => {
    const file = rewritten('tables_from_pixels.onnx', (builder, node) => {
      if (node.name !== '/rope_embeddings/Cast_8') return false;
      const mean = builder.op('ReduceMean', ['pixel_values'], { keepdims: 0 });
      builder.op('Add', [node.inputs[0], mean], {}, node.outputs[0]);
      return true;
    });
    assert.throws(
      () => discoverVit(readOnnxModel(file)),
      (error: Error) => error instanceof ModelFileError && /the cos table of its rotary embedding .* depends on the image's values, not only its size/.test(error.message),
    );
  });
});
