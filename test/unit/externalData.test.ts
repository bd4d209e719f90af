// Which external-data locations a model file may name: inside its own folder or a subfolder,
// checked lexically before anything is opened (the integration test untrustedModel.test.ts runs
// real models that name the refused ones).
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { ModelFileError } from '../../extension/core/errors';
import { externalDataPlace } from '../../extension/core/onnx/externalData';
import { parseOnnxModel } from '../../extension/core/onnx/onnxModel';
import { Writer } from 'protobufjs/minimal';

const MODEL = path.join(path.sep, 'models', 'vit', 'model.onnx');

test('locations inside the model folder resolve there, with their byte range', () => {
  assert.deepEqual(externalDataPlace(MODEL, 'w', { location: 'model.onnx.data', offset: '128', length: '64' }), {
    file: path.join(path.sep, 'models', 'vit', 'model.onnx.data'),
    location: 'model.onnx.data',
    offset: 128,
    length: 64,
  });
  assert.equal(externalDataPlace(MODEL, 'w', { location: 'weights/part-1.bin' }).file, path.join(path.sep, 'models', 'vit', 'weights', 'part-1.bin'));
  assert.equal(externalDataPlace(MODEL, 'w', { location: './model.onnx.data' }).file, path.join(path.sep, 'models', 'vit', 'model.onnx.data'));
  const open = externalDataPlace(MODEL, 'w', { location: 'model.onnx.data' });
  assert.equal(open.offset, 0);
  assert.equal(open.length, -1, 'no length: to the end of the file');
});

const REFUSED: [string, RegExp][] = [
  ['../secret/w.data', /leaves the model's folder/],
  ['weights/../../w.data', /leaves the model's folder/],
  ['..', /leaves the model's folder/],
  ['..\\secret\\w.data', /leaves the model's folder/],
  ['../../../../etc/passwd', /leaves the model's folder/],
  ['/etc/passwd', /an absolute path/],
  ['//server/share/w.data', /an absolute path/],
  ['C:\\Users\\me\\w.data', /an absolute path/],
  ['C:w.data', /an absolute path/],
  ['\\\\server\\share\\w.data', /an absolute path/],
  ['w.data:hidden', /names a drive or a stream/],
  ['w.data\u0000.png', /control characters/],
  ['.', /names no file/],
  ['./', /names no file/],
];

for (const [location, reason] of REFUSED) {
  test(`refused: ${JSON.stringify(location)}, in one line naming the tensor and the location`, () => {
    assert.throws(
      () => externalDataPlace(MODEL, 'blocks.0.attn.qkv.weight', { location }),
      (error: unknown) => {
        assert.ok(error instanceof ModelFileError);
        assert.match(error.message, /^model\.onnx: tensor 'blocks\.0\.attn\.qkv\.weight' keeps its data at '/);
        assert.match(error.message, reason);
        assert.ok(!error.message.includes('\n') && !error.message.includes('\u0000'), 'one printable line');
        return true;
      },
    );
  });
}

test('a location missing, or an offset or length that is not a byte count, is refused', () => {
  assert.throws(() => externalDataPlace(MODEL, 'w', {}), /tensor 'w' is marked external but names no location/);
  assert.throws(() => externalDataPlace(MODEL, 'w', { location: 'model.onnx.data', offset: '-8' }), /gives its external data offset as '-8', not a byte count/);
  assert.throws(() => externalDataPlace(MODEL, 'w', { location: 'model.onnx.data', length: '1e3' }), /length as '1e3'/);
  assert.throws(() => externalDataPlace(MODEL, 'w', { location: 'model.onnx.data', offset: '99999999999999999999' }), /not a byte count/);
});

// ---- tensors the engine does not read, but onnxruntime would: external data refused outright ----

/** A length-delimited field holding `build`'s message. */
function message(writer: Writer, field: number, build: (inner: Writer) => void): void {
  const inner = new Writer();
  build(inner);
  writer.uint32((field << 3) | 2).bytes(inner.finish());
}

/** TensorProto `w` [1] float, data in the external file 'w.data' (inside the model's folder). */
function externalTensor(writer: Writer, field: number): void {
  message(writer, field, (tensor) => {
    tensor.uint32((1 << 3) | 0).int64(1); // dims
    tensor.uint32((2 << 3) | 0).int32(1); // data_type FLOAT
    tensor.uint32((8 << 3) | 2).string('w'); // name
    message(tensor, 13, (entry) =>
      entry
        .uint32((1 << 3) | 2)
        .string('location')
        .uint32((2 << 3) | 2)
        .string('w.data'),
    );
    tensor.uint32((14 << 3) | 0).int32(1); // data_location EXTERNAL
  });
}

/** ModelProto with one If node whose attribute holds `attribute`'s content. */
function modelWithAttribute(attribute: (writer: Writer) => void): Uint8Array {
  const model = new Writer();
  model.uint32((1 << 3) | 0).int64(8); // ir_version
  message(model, 7, (graph) => {
    message(graph, 1, (node) => {
      node.uint32((1 << 3) | 2).string('cond');
      node.uint32((2 << 3) | 2).string('out');
      node.uint32((4 << 3) | 2).string('If');
      message(node, 5, attribute);
    });
  });
  message(model, 8, (opset) => opset.uint32((2 << 3) | 0).int64(17));
  return model.finish();
}

const NESTED: [string, (writer: Writer) => void][] = [
  [
    'an initializer of a subgraph (If then_branch)',
    (attribute) => {
      attribute.uint32((1 << 3) | 2).string('then_branch');
      message(attribute, 6, (graph) => externalTensor(graph, 5));
      attribute.uint32((20 << 3) | 0).int32(5); // GRAPH
    },
  ],
  [
    'a tensor list attribute',
    (attribute) => {
      attribute.uint32((1 << 3) | 2).string('values');
      externalTensor(attribute, 9);
      attribute.uint32((20 << 3) | 0).int32(9); // TENSORS
    },
  ],
  [
    'a sparse tensor attribute',
    (attribute) => {
      attribute.uint32((1 << 3) | 2).string('sparse_value');
      message(attribute, 22, (sparse) => externalTensor(sparse, 1));
      attribute.uint32((20 << 3) | 0).int32(11); // SPARSE_TENSOR
    },
  ],
];

for (const [where, attribute] of NESTED) {
  test(`external data in ${where} is refused whatever its location`, () => {
    assert.throws(
      () => parseOnnxModel(modelWithAttribute(attribute), MODEL),
      (error: unknown) => error instanceof ModelFileError && /^model\.onnx: tensor 'w' in .+ keeps its data in an external file/.test(error.message),
    );
  });
}
