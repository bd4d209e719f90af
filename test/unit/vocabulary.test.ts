// The manifest's setting enums are the vocabulary's lists: one source for each fixed list.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { EXECUTION_PROVIDER_REQUESTS, isOneOf, MEASURE_MODES } from '../../extension/core/vocabulary';
import { REPO_ROOT } from '../support/fixtures';

interface SettingSchema {
  enum?: string[];
}

const manifest = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { contributes: { configuration: { properties: Record<string, SettingSchema> } } };
const settings = manifest.contributes.configuration.properties;

test("package.json's setting enums equal the vocabulary's lists", () => {
  assert.deepEqual(settings['plasticityLens.executionProvider'].enum, [...EXECUTION_PROVIDER_REQUESTS]);
  assert.deepEqual(settings['plasticityLens.mode'].enum, [...MEASURE_MODES]);
});

test('isOneOf narrows only the listed values', () => {
  assert.equal(isOneOf(MEASURE_MODES, 'isolated'), true);
  assert.equal(isOneOf(MEASURE_MODES, 'Isolated'), false);
  assert.equal(isOneOf(MEASURE_MODES, undefined), false);
});
