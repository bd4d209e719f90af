import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { ModelFileError } from '../../extension/core/errors';
import { defaultOpset, parseOnnxModel, readOnnxModel, releaseFileBytes, TensorDataType } from '../../extension/core/onnx/onnxModel';
import { OnnxGraphBuilder } from '../../extension/core/onnx/onnxWriter';
import { readFloats, readInts } from '../../extension/core/onnx/tensorValues';
import { goldenFixtures, modelPath, tempDir } from '../support/fixtures';

test('reads inputs, outputs, opset, producer and weights of every exported fixture', () => {
  for (const golden of goldenFixtures()) {
    const model = readOnnxModel(modelPath(golden.model));
    assert.equal(defaultOpset(model), golden.opset, golden.model);
    assert.equal(model.producerName, 'pytorch', golden.model);
    const imageInput = model.inputs.find((input) => !model.initializers.has(input.name));
    assert.equal(imageInput?.name, golden.inputName, golden.model);
    assert.equal(imageInput?.shape?.[1].value, 3);
    assert.ok(model.nodes.length > 20 && model.initializers.size > 10, golden.model);
  }
});

test('weights are views into the file bytes, not copies', () => {
  const model = readOnnxModel(modelPath('timm_op17_dyn.onnx'));
  const tensor = [...model.initializers.values()].find((candidate) => candidate.name === 'blocks.0.norm1.weight');
  assert.ok(tensor && tensor.data.kind === 'raw');
  assert.equal(tensor.data.file, model.filePath);
  const values = readFloats(model, tensor);
  const bytes = fs.readFileSync(modelPath('timm_op17_dyn.onnx'));
  assert.equal(values[0], bytes.readFloatLE(tensor.data.offset));
  assert.equal(values.length, 32);
});

test('external data: weights are located in the data file next to the model', () => {
  const model = readOnnxModel(modelPath('timm_op17_external.onnx'));
  const external = [...model.initializers.values()].filter((tensor) => tensor.external);
  assert.ok(external.length > 10);
  for (const tensor of external) {
    assert.equal(tensor.data.kind === 'raw' && path.basename(tensor.data.file), 'timm_op17_external.onnx.data');
  }
  const inline = readOnnxModel(modelPath('timm_op17_dyn.onnx'));
  const gamma = (m: typeof model) => readFloats(m, m.initializers.get('blocks.1.norm2.weight')!);
  assert.deepEqual(gamma(model), gamma(inline));
});

test('a missing or short external data file is a clear error', () => {
  const dir = tempDir('external');
  fs.copyFileSync(modelPath('timm_op17_external.onnx'), path.join(dir, 'model.onnx'));
  // The model names its data file, which is absent here.
  assert.throws(
    () => readOnnxModel(path.join(dir, 'model.onnx')),
    (error: Error) => error instanceof ModelFileError && /timm_op17_external\.onnx\.data', which is missing; put that file next to the model/.test(error.message),
  );
  const data = fs.readFileSync(modelPath('timm_op17_external.onnx.data'));
  fs.writeFileSync(path.join(dir, 'timm_op17_external.onnx.data'), data.subarray(0, data.length - 100));
  assert.throws(
    () => readOnnxModel(path.join(dir, 'model.onnx')),
    (error: Error) => error instanceof ModelFileError && /shorter than model\.onnx expects/.test(error.message),
  );
});

test('truncated, empty, non-ONNX and missing files give one-line errors', () => {
  const dir = tempDir('bad');
  const bytes = fs.readFileSync(modelPath('timm_op14.onnx'));
  const cases: [string, Buffer | undefined, RegExp][] = [
    ['truncated.onnx', bytes.subarray(0, Math.floor(bytes.length * 0.6)), /truncated or corrupt|holds no ONNX graph/],
    ['empty.onnx', Buffer.alloc(0), /holds no ONNX graph/],
    ['text.onnx', Buffer.from('this is not a model\n'.repeat(20)), /not an ONNX model|truncated or corrupt|holds no ONNX graph/],
    ['missing.onnx', undefined, /does not exist/],
  ];
  for (const [name, content, pattern] of cases) {
    const file = path.join(dir, name);
    if (content) fs.writeFileSync(file, content);
    assert.throws(
      () => readOnnxModel(file),
      (error: Error) => error instanceof ModelFileError && pattern.test(error.message) && !error.message.includes('\n'),
      name,
    );
  }
  assert.throws(() => readOnnxModel(dir), /is a folder/);
});

test('the writer makes models the reader parses back, and copies nodes byte for byte', () => {
  const source = readOnnxModel(modelPath('hf_vit_op17.onnx'));
  const builder = new OnnxGraphBuilder(17);
  builder.input('x', TensorDataType.FLOAT, ['batch', 4]);
  const weight = builder.floatConstant([1, 2, 3, 4, 5, 6, 7, 8], [4, 2], 'w');
  builder.op('MatMul', ['x', weight], {}, 'y');
  builder.op('Softmax', ['y'], { axis: -1 }, 'z');
  const copied = source.nodes.find((node) => node.opType === 'LayerNormalization')!;
  builder.copyNode(source, copied);
  builder.output('z', TensorDataType.FLOAT, ['batch', 2]);
  const parsed = parseOnnxModel(builder.encode(), 'built.onnx');
  assert.deepEqual(
    parsed.nodes.map((node) => node.opType),
    ['MatMul', 'Softmax', 'LayerNormalization'],
  );
  assert.equal(parsed.nodes[1].attributes.get('axis')?.i, -1);
  assert.deepEqual(parsed.inputs[0].shape, [{ param: 'batch' }, { value: 4 }]);
  const copy = parsed.nodes[2];
  assert.deepEqual(
    Buffer.from(parsed.bytes.subarray(copy.message.offset, copy.message.offset + copy.message.length)),
    Buffer.from(source.bytes.subarray(copied.message.offset, copied.message.offset + copied.message.length)),
  );
  assert.deepEqual(Array.from(readFloats(parsed, parsed.initializers.get(weight)!)), [1, 2, 3, 4, 5, 6, 7, 8]);
});

test('after the file bytes are released, copied nodes, small initializers and tensor values come from disk unchanged', () => {
  const model = readOnnxModel(modelPath('hf_clip_op17_dyn.onnx')); // it also keeps an int64 initializer
  const small = [...model.initializers.values()].filter((tensor) => tensor.data.kind === 'raw' && tensor.data.length < 1024 && tensor.dataType === TensorDataType.FLOAT);
  const integer = [...model.initializers.values()].filter((tensor) => tensor.dataType === TensorDataType.INT64 && tensor.data.kind !== 'empty');
  assert.ok(small.length > 0 && integer.length > 0, 'the fixture has small float and int64 initializers');
  const encode = () => {
    const builder = new OnnxGraphBuilder(defaultOpset(model));
    for (const tensor of [...small, ...integer]) builder.useInitializer(model, tensor);
    for (const node of model.nodes.slice(0, 20)) builder.copyNode(model, node);
    return builder.encode();
  };
  const values = () => [...small.map((tensor) => Array.from(readFloats(model, tensor))), ...integer.map((tensor) => readInts(model, tensor))];
  const held = { bytes: encode(), values: values() };
  releaseFileBytes(model);
  assert.equal(model.bytes.length, 0);
  assert.deepEqual(encode(), held.bytes);
  assert.deepEqual(values(), held.values);
});
