// The Node versions the project says it runs on are the ones its dependencies accept: `npm ci`
// on the oldest Node that package.json and the README name prints no EBADENGINE warning.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as semver from 'semver';
import { REPO_ROOT } from '../support/fixtures';

interface LockedPackage {
  engines?: { node?: string } | string[];
}

const manifest = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
const lock = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockedPackage> };
const oldest = semver.minVersion(manifest.engines.node)!.version;

test('every locked package accepts the oldest Node that package.json names, and this one', () => {
  const refusing: string[] = [];
  for (const [name, entry] of Object.entries(lock.packages)) {
    const range = entry.engines && !Array.isArray(entry.engines) ? entry.engines.node : undefined;
    if (!name || !range) continue;
    for (const version of [oldest, process.versions.node]) {
      if (!semver.satisfies(version, range)) refusing.push(`${name} wants node ${range}, not ${version}`);
    }
  }
  assert.deepEqual(refusing, []);
});

test("the README's Node requirement is package.json's", () => {
  const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const [major, minor] = oldest.split('.');
  assert.match(readme, new RegExp(`^Node\\.js ${major}\\.${minor} or later`, 'm'));
});
