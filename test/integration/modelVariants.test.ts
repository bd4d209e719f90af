// Exporter variants the fixtures do not show directly, made by rewriting a real export:
// deduplicated weights behind Identity nodes, and weights beyond 2 GB in an external data file.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { OnnxModel, readOnnxModel } from '../../extension/core/onnx/onnxModel';
import { OnnxGraphBuilder } from '../../extension/core/onnx/onnxWriter';
import { discoverVit } from '../../extension/core/vit/discoverVit';
import { COMPONENTS } from '../../extension/core/vit/vitStructure';
import { WorkerSupervisor } from '../../extension/worker/workerSupervisor';
import { goldenFixtures, modelPath, PAIRS, relativeError, tempDir } from '../support/fixtures';

const supervisor = new WorkerSupervisor();
after(() => supervisor.dispose());
const golden = goldenFixtures().find((entry) => entry.model === 'timm_op17_dyn.onnx')!;

/** Copies every node of `model` except those `rewrite` handles, and declares inputs and outputs. */
function rebuild(
  model: OnnxModel,
  rewrite: (builder: OnnxGraphBuilder, node: OnnxModel['nodes'][number]) => boolean,
  addInitializers: (builder: OnnxGraphBuilder) => void,
): Uint8Array {
  const builder = new OnnxGraphBuilder(model.opsetImports);
  const structure = discoverVit(model);
  builder.input(structure.inputName, 1, structure.inputShape);
  for (const node of model.nodes) if (!rewrite(builder, node)) builder.copyNode(model, node);
  addInitializers(builder);
  for (const output of model.outputs) builder.output(output.name, 1);
  return builder.encode();
}

async function isolatedMeans(file: string) {
  const report = await supervisor.analyze({ modelPath: file, mode: 'isolated', executionProvider: 'cpu', reference: PAIRS.reference, target: PAIRS.target, seed: 0 });
  return report.blocks.map((block) => COMPONENTS.map((component) => block.components[component].mean));
}

function assertGoldenMeans(means: number[][]) {
  means.forEach((row, b) =>
    row.forEach((mean, c) => {
      const expected = golden.isolated.reduce((sum, pair) => sum + pair[b][c], 0) / golden.isolated.length;
      assert.ok(relativeError(mean, expected) < 1e-4, `block ${b} ${COMPONENTS[c]}: ${mean} vs ${expected}`);
    }),
  );
}

test('weights deduplicated into Identity nodes are looked through', async () => {
  const model = readOnnxModel(modelPath(golden.model));
  const dir = tempDir('identity');
  let rerouted = 0;
  const bytes = rebuild(
    model,
    (builder, node) => {
      // Every MatMul reads its weight through an Identity, as exporters emit for shared weights.
      const weight = node.opType === 'MatMul' ? model.initializers.get(node.inputs[1]) : undefined;
      if (!weight) return false;
      const alias = builder.op('Identity', [weight.name], {}, `${weight.name}__alias`);
      builder.op('MatMul', [node.inputs[0], alias], {}, node.outputs[0]);
      rerouted++;
      return true;
    },
    (builder) => {
      for (const tensor of model.initializers.values()) builder.useInitializer(model, tensor);
    },
  );
  fs.writeFileSync(path.join(dir, 'identity.onnx'), bytes);
  fs.copyFileSync(model.filePath, path.join(dir, golden.model)); // the weights it references
  assert.ok(rerouted >= 12);
  const structure = discoverVit(readOnnxModel(path.join(dir, 'identity.onnx')));
  assert.equal(structure.blocks.length, 3);
  // The weight is read in place from the initializer behind the Identity, under the Identity's name.
  assert.equal(structure.blocks[0].fc1[0].weight.stored, model.initializers.get(structure.blocks[0].fc1[0].weight.stored?.name ?? '') && structure.blocks[0].fc1[0].weight.stored);
  assert.match(structure.blocks[0].fc1[0].weight.name, /__alias$/);
  assertGoldenMeans(await isolatedMeans(path.join(dir, 'identity.onnx')));
});

test('external weights stored beyond 2 GB in the data file are read in place', async () => {
  const model = readOnnxModel(modelPath(golden.model));
  const dir = tempDir('large');
  const dataFile = path.join(dir, 'large.onnx.data');
  const start = 2 ** 31 + 4096 * 3 + 12; // past 2 GiB, deliberately not page aligned
  const fd = fs.openSync(dataFile, 'w');
  const placements: { tensor: OnnxModel['initializers'] extends Map<string, infer T> ? T : never; offset: number; length: number }[] = [];
  let offset = start;
  for (const tensor of model.initializers.values()) {
    if (tensor.data.kind !== 'raw') continue;
    const bytes = model.bytes.subarray(tensor.data.offset, tensor.data.offset + tensor.data.length);
    fs.writeSync(fd, bytes, 0, bytes.length, offset); // the file is sparse below `start`
    placements.push({ tensor, offset, length: bytes.length });
    offset += bytes.length;
  }
  fs.closeSync(fd);
  assert.ok(fs.statSync(dataFile).size > 2 ** 31);
  const bytes = rebuild(
    model,
    () => false,
    (builder) => {
      for (const placement of placements) builder.externalInitializer(placement.tensor, 'large.onnx.data', placement.offset, placement.length);
      for (const tensor of model.initializers.values()) if (tensor.data.kind !== 'raw') builder.useInitializer(model, tensor);
    },
  );
  fs.writeFileSync(path.join(dir, 'large.onnx'), bytes);
  const reread = readOnnxModel(path.join(dir, 'large.onnx'));
  assert.ok([...reread.initializers.values()].every((tensor) => !(tensor.data.kind === 'raw' && tensor.external) || tensor.data.offset >= start));
  assertGoldenMeans(await isolatedMeans(path.join(dir, 'large.onnx')));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a model and its external data reached through symlinks (a Hugging Face cache layout) are read in place', async () => {
  const dir = tempDir('symlinks');
  // blobs/ holds the real files under content names; snapshots/main/ links to them by name.
  fs.mkdirSync(path.join(dir, 'blobs'));
  fs.mkdirSync(path.join(dir, 'snapshots', 'main'), { recursive: true });
  fs.copyFileSync(modelPath('timm_op17_external.onnx'), path.join(dir, 'blobs', 'a1b2'));
  fs.copyFileSync(modelPath('timm_op17_external.onnx.data'), path.join(dir, 'blobs', 'c3d4'));
  fs.symlinkSync(path.join('..', '..', 'blobs', 'a1b2'), path.join(dir, 'snapshots', 'main', 'model.onnx'));
  fs.symlinkSync(path.join('..', '..', 'blobs', 'c3d4'), path.join(dir, 'snapshots', 'main', 'timm_op17_external.onnx.data'));
  const model = readOnnxModel(path.join(dir, 'snapshots', 'main', 'model.onnx'));
  assert.equal(model.dataFolder, fs.realpathSync(path.join(dir, 'blobs')));
  assertGoldenMeans(await isolatedMeans(path.join(dir, 'snapshots', 'main', 'model.onnx')));
  fs.rmSync(dir, { recursive: true, force: true });
});
