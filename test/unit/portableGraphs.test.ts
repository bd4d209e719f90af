// Every graph the engine builds stays within WebGPU's guaranteed limits, however deep the model:
// a node touching more tensors than an adapter's storage buffers fails only at run time, on the
// user's GPU (a 12-block ViT-S did, at a 24-output Split).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { buildBoundsModel } from '../../extension/core/bounds/boundsModel';
import { OnnxModel, parseOnnxModel, readOnnxModel } from '../../extension/core/onnx/onnxModel';
import { MAX_NODE_TENSORS, OnnxGraphBuilder } from '../../extension/core/onnx/onnxWriter';
import { buildEmbedderModel, buildInContextProbe, buildIsolatedProbe } from '../../extension/core/probe/probeModels';
import { discoverVit } from '../../extension/core/vit/discoverVit';
import { FAMILY_MODELS, familyGoldens, goldenFixtures, modelPath, tempDir } from '../support/fixtures';
import { writeStackedBlocksModel } from '../support/derivedModels';

const scratch = tempDir('portable');
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

/**
 * Nodes touching more than MAX_NODE_TENSORS tensors, as "opType name (n tensors)". Loop is not a
 * shader: onnxruntime runs control flow itself, and the bounds' Loop runs on cpu (see
 * modelBounds), so only its body's nodes would reach a GPU, and those are narrow.
 */
function wideNodes(bytes: Uint8Array): string[] {
  const graph = parseOnnxModel(bytes, 'built.onnx');
  return graph.nodes
    .filter((node) => node.opType !== 'Loop')
    .map((node) => ({ node, tensors: node.inputs.filter((name) => name !== '').length + node.outputs.filter((name) => name !== '').length }))
    .filter(({ tensors }) => tensors > MAX_NODE_TENSORS)
    .map(({ node, tensors }) => `${node.opType} ${node.name} (${tensors} tensors)`);
}

function builtGraphs(model: OnnxModel): Record<string, Uint8Array> {
  const structure = discoverVit(model);
  const isolated = buildIsolatedProbe(model, structure);
  const inContext = buildInContextProbe(model, structure);
  return {
    embedder: buildEmbedderModel(model, structure, [structure.blocks[structure.blocks.length - 1].output]),
    isolated: isolated.bytes,
    weightGrams: isolated.precompute![0],
    inContext: inContext.bytes,
    // The model's own nodes computing a rotary model's tables (DINOv3), when it has them.
    ...(inContext.precompute ? { rotaryTables: inContext.precompute[0] } : {}),
    bounds: buildBoundsModel(model, structure),
  };
}

test('no node of any built graph touches more tensors than WebGPU guarantees buffers for, on every fixture, every family and a 12-block ViT', () => {
  const stacked = path.join(scratch, 'timm_12_blocks.onnx');
  writeStackedBlocksModel(modelPath('timm_op17_dyn.onnx'), 4, stacked);
  const files = [...goldenFixtures().map((golden) => modelPath(golden.model)), ...familyGoldens().map((golden) => path.join(FAMILY_MODELS, golden.model)), stacked];
  for (const file of files) {
    const model = readOnnxModel(file);
    if (file === stacked) assert.equal(discoverVit(model).blocks.length, 12, 'the stacked model has 12 blocks');
    for (const [name, bytes] of Object.entries(builtGraphs(model))) {
      assert.deepEqual(wideNodes(bytes), [], `${path.basename(file)} ${name}`);
    }
  }
});

test('a concat of many tensors is a tree of narrow Concats in the original order', () => {
  const builder = new OnnxGraphBuilder(17);
  const parts = Array.from({ length: 60 }, (_, i) => builder.floatConstant([i], [1]));
  builder.concat(parts, 0, 'joined');
  builder.output('joined', 1, [60]);
  const bytes = builder.encode();
  assert.deepEqual(wideNodes(bytes), []);
  const graph = parseOnnxModel(bytes, 'concat.onnx');
  // The leaves appear in order, left to right, across the first level of the tree.
  const firstLevel = graph.nodes.filter((node) => node.inputs.every((input) => graph.initializers.has(input)));
  assert.deepEqual(
    firstLevel.flatMap((node) => node.inputs),
    parts,
  );
});
