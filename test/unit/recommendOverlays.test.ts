// Plasticity on the graph: ONNX nodes of the fixture models assigned to their (block, component)
// by module scope, and the two viewer formats (Model Explorer node data, Netron attachment).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ModelFileError } from '../../extension/core/errors';
import { readOnnxModel } from '../../extension/core/onnx/onnxModel';
import { assignNodesToComponents, exportOverlay, modelExplorerNodeData, netronAttachment } from '../../extension/core/recommend/graphOverlays';
import { isUnder, moduleOfScopedNodeName } from '../../extension/core/recommend/onnxScopes';
import { COMPONENTS } from '../../extension/core/vit/vitStructure';
import { modelPath } from '../support/fixtures';
import { goldenByStyle, reportFromGolden } from '../support/goldenReports';
import type { ModelExplorerNodeData } from '../../extension/core/recommend/graphOverlays';

const goldens = goldenByStyle();

/** A node of each kind the assignment must get right, per fixture. */
const KNOWN_NODES: Record<string, [string, number, string | null][]> = {
  timm: [
    ['/blocks/blocks.1/attn/qkv/MatMul', 1, 'MHA'],
    ['/blocks/blocks.1/attn/Softmax', 1, 'MHA'],
    ['/blocks/blocks.2/norm1/ReduceMean', 2, 'LN1'],
    ['/blocks/blocks.0/mlp/fc2/MatMul', 0, 'FC2'],
    ['/blocks/blocks.0/mlp/act/Erf', 0, null], // the activation belongs to no component
    ['/blocks/blocks.1/Add', 1, null], // residual add
    ['/head/Gemm', 0, null],
  ],
  hf_vit: [
    ['/encoder/layer.0/attention/attention/query/MatMul', 0, 'MHA'],
    ['/encoder/layer.0/attention/output/dense/MatMul', 0, 'MHA'],
    ['/encoder/layer.2/intermediate/dense/MatMul', 2, 'FC1'],
    ['/encoder/layer.2/output/dense/MatMul', 2, 'FC2'],
    ['/layernorm/ReduceMean', 0, null],
  ],
  torchvision: [
    ['/encoder/layers/encoder_layer_1/mlp/mlp.0/MatMul', 1, 'FC1'],
    ['/encoder/layers/encoder_layer_1/mlp/mlp.3/MatMul', 1, 'FC2'],
    ['/encoder/layers/encoder_layer_1/ln_2/ReduceMean', 1, 'LN2'],
    ['/encoder/ln/ReduceMean', 0, null],
  ],
  openai_clip: [
    ['/transformer/resblocks/resblocks.2/mlp/c_proj/MatMul', 2, 'FC2'],
    ['/ln_post/ReduceMean', 0, null],
  ],
  hf_clip: [
    ['/vision_model/encoder/layers.1/self_attn/out_proj/MatMul', 1, 'MHA'],
    ['/vision_model/encoder/layers.1/layer_norm2/LayerNormalization', 1, 'LN2'],
    ['/vision_model/pre_layrnorm/LayerNormalization', 0, null],
  ],
};

describe('nodes assigned to components', () => {
  for (const [style, golden] of goldens) {
    test(`${style}: every component of every block has nodes, each under its module`, () => {
      const report = reportFromGolden(golden);
      const nodes = readOnnxModel(modelPath(golden.model)).nodes;
      const assignments = assignNodesToComponents(report, nodes);
      const byNode = new Map(assignments.map((assignment) => [assignment.node, assignment]));
      for (const block of report.blocks) {
        for (const component of COMPONENTS) {
          const mine = assignments.filter((assignment) => assignment.block === block.index && assignment.component === component);
          assert.ok(mine.length > 0, `${style} block ${block.index} ${component} has no node`);
          for (const { node } of mine) {
            assert.ok(isUnder(moduleOfScopedNodeName(node)!, block.modules[component]), `${style}: ${node} under ${block.modules[component]}`);
          }
        }
      }
      for (const [node, block, component] of KNOWN_NODES[style] ?? []) {
        assert.ok(
          nodes.some((candidate) => candidate.name === node),
          `${style} has node ${node}`,
        );
        const assignment = byNode.get(node);
        if (component === null) assert.equal(assignment, undefined, node);
        else assert.deepEqual(assignment && [assignment.block, assignment.component], [block, component], node);
      }
    });
  }

  test('unscoped nodes are placed by the component parameters they read', () => {
    const report = reportFromGolden(goldens.get('timm')!);
    const nodes = [
      { name: 'node_12', inputs: ['x', 'blocks.1.norm2.weight', 'blocks.1.norm2.bias'] },
      { name: 'node_13', inputs: ['x', 'onnx::MatMul_9'] },
      { name: '', inputs: ['blocks.0.norm1.weight'] },
    ];
    assert.deepEqual(assignNodesToComponents(report, nodes), [{ node: 'node_12', block: 1, component: 'LN2' }]);
  });

  test('a graph without module scopes is refused with a sentence', () => {
    const report = reportFromGolden(goldens.get('timm')!);
    assert.throws(
      () => modelExplorerNodeData(report, [{ name: 'node_1', inputs: ['x'] }]),
      (error: Error) => error instanceof ModelFileError && /^timm_op11\.onnx has no node named after its modules/.test(error.message),
    );
  });
});

describe('Model Explorer node data', () => {
  test('one graph, results keyed by ONNX node name, valued by the block mean, with a gradient', () => {
    const golden = goldens.get('hf_vit')!;
    const report = reportFromGolden(golden);
    const nodes = readOnnxModel(modelPath(golden.model)).nodes;
    const data = JSON.parse(exportOverlay(report, nodes, 'model-explorer')) as ModelExplorerNodeData & { results: { results?: unknown } };
    assert.deepEqual(Object.keys(data).sort(), ['gradient', 'name', 'results']);
    // Without graph ids the UI applies the file to the graph on screen (its 'results' has no 'results').
    assert.equal(data.results.results, undefined);
    assert.equal(data.name, 'Plasticity (isolated, 8 pairs)');
    assert.deepEqual(data.results['/encoder/layer.1/attention/attention/query/MatMul'], { value: report.blocks[1].components.MHA.mean });
    assert.deepEqual(data.results['/encoder/layer.2/layernorm_after/ReduceMean'], { value: report.blocks[2].components.LN2.mean });
    const names = new Set(nodes.map((node) => node.name));
    assert.ok(Object.keys(data.results).every((node) => names.has(node)));
    assert.deepEqual(
      data.gradient.map((item) => item.stop),
      [0, 0.5, 1],
    );
    assert.ok(data.gradient.every((item) => /^#[0-9a-f]{6}$/.test(item.bgColor)));
  });

  test('synthetic inputs are named in the node data', () => {
    const golden = goldens.get('timm')!;
    const data = modelExplorerNodeData(reportFromGolden(golden, { synthetic: true }), readOnnxModel(modelPath(golden.model)).nodes);
    assert.match(data.name, /SYNTHETIC inputs/);
  });
});

describe('Netron attachment', () => {
  test("netron:attachment entries target node names with the cell's plasticity and rank", () => {
    const golden = goldens.get('torchvision')!;
    const report = reportFromGolden(golden);
    const nodes = readOnnxModel(modelPath(golden.model)).nodes;
    const attachment = netronAttachment(report, nodes);
    assert.equal(attachment.signature, 'netron:attachment');
    const names = new Set(nodes.map((node) => node.name));
    for (const entry of [...attachment.metadata, ...attachment.metrics]) {
      assert.equal(entry.kind, 'node');
      assert.ok(names.has(entry.target), entry.target);
    }
    const node = '/encoder/layers/encoder_layer_1/mlp/mlp.0/MatMul';
    const metrics = attachment.metrics.filter((entry) => entry.target === node);
    const stats = report.blocks[1].components.FC1;
    assert.deepEqual(
      metrics.map((entry) => entry.name),
      ['plasticity', 'plasticity 95% interval', 'FC1 rank (mean over blocks)'],
    );
    assert.equal(metrics[0].value, stats.mean);
    assert.equal(metrics[1].value, `${stats.ci95[0].toFixed(4)} to ${stats.ci95[1].toFixed(4)}`);
    assert.equal(metrics[2].value, `${report.summary.FC1.rank} of 5, mean ${report.summary.FC1.mean.toFixed(4)}`);
    const metadata = attachment.metadata.filter((entry) => entry.target === node);
    assert.deepEqual(
      metadata.map((entry) => entry.value),
      ['block 1 FC1 (Plasticity Lens, isolated measure, 8 pairs)'],
    );
  });
});
