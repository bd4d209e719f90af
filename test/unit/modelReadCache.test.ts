// The worker's one-model cache: handed over once, and never when the file changed since.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { ModelReadCache } from '../../extension/worker/modelReadCache';
import { modelPath, tempDir } from '../support/fixtures';

test('the cached model is handed over once, to a request for the same unchanged file', (t) => {
  const folder = tempDir('model-cache');
  t.after(() => fs.rmSync(folder, { recursive: true, force: true }));
  const file = path.join(folder, 'vit.onnx');
  fs.copyFileSync(modelPath('timm_op14.onnx'), file);
  const cache = new ModelReadCache();

  const { model, readMs } = cache.read(file);
  assert.ok(readMs >= 0);
  assert.equal(cache.take(path.join(folder, 'other.onnx')), undefined, 'another file');
  assert.equal(cache.take(file), undefined, 'a miss empties the cache too');

  cache.read(file);
  assert.equal(cache.take(file)?.filePath, model.filePath);
  assert.equal(cache.take(file), undefined, 'handed over once');

  cache.read(file);
  const later = new Date(Date.now() + 5000);
  fs.utimesSync(file, later, later);
  assert.equal(cache.take(file), undefined, 'the file changed since it was read');

  cache.read(file);
  cache.clear();
  assert.equal(cache.take(file), undefined);
});
