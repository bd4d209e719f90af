// Which external-data locations a model file may name: inside its own folder or a subfolder,
// checked lexically before anything is opened (the integration test untrustedModel.test.ts runs
// real models that name the refused ones).
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { ModelFileError } from '../../extension/core/errors';
import { externalDataPlace } from '../../extension/core/onnx/externalData';

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
