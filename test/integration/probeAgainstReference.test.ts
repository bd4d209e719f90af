// The probe graphs use exact shortcuts (shared differences, Gram matrices, LayerNorm identities,
// the attention's linear output projection applied to a difference). Here they are held against
// the plain float64 definition on fresh random inputs, for every exported style and the SwiGLU
// families (gate, value and the MLP's norm rebuilt).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readOnnxModel } from '../../extension/core/onnx/onnxModel';
import { buildInContextProbe, buildIsolatedProbe, PROBE_INPUTS, PROBE_OUTPUT, ProbeFlavor } from '../../extension/core/probe/probeModels';
import { discoverVit } from '../../extension/core/vit/discoverVit';
import { createSession, ort } from '../../extension/worker/onnxRuntime';
import { referenceFixtures, relativeError } from '../support/fixtures';
import { referenceRatios } from '../support/referencePlasticity';

/** Gaussian-ish embeddings of the scale real ViT embeddings have, from a seeded generator. */
function randomEmbedding(length: number, seed: number, scale: number): Float64Array {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Float64Array.from({ length }, () => scale * (next() + next() + next() - 1.5) * 2);
}

// Both flavors: the portable graph (any provider) and cpu's, with onnxruntime's fused attention.
for (const [mode, flavor] of [
  ['isolated', 'portable'],
  ['isolated', 'cpu'],
  ['in-context', 'portable'],
  ['in-context', 'cpu'],
] as const satisfies readonly (readonly [string, ProbeFlavor])[]) {
  test(`${mode} probe (${flavor} graph) equals the plain definition on fresh random inputs`, async () => {
    const seedBase = Date.now() % 100000; // fresh inputs on every run; printed on failure
    // The families too: LayerScale, register tokens, gated MLPs, BEiT's bias on the logits, no class token.
    for (const { golden, file } of referenceFixtures()) {
      const model = readOnnxModel(file);
      const structure = discoverVit(model);
      const probe = mode === 'isolated' ? buildIsolatedProbe(model, structure, { flavor }) : buildInContextProbe(model, structure, { flavor });
      const options = { provider: 'cpu' as const, externalDataFolder: model.dataFolder };
      const constants = {};
      for (const precompute of probe.precompute ?? []) Object.assign(constants, await (await createSession(precompute, options)).run({}));
      const session = await createSession(probe.bytes, options);
      const pairs = 3;
      const tokens = golden.architecture.tokens;
      const d = structure.hiddenSize;
      const xs = Array.from({ length: pairs }, (_, i) => randomEmbedding(tokens * d, seedBase + 2 * i, 1 + i));
      const ys = Array.from({ length: pairs }, (_, i) => randomEmbedding(tokens * d, seedBase + 2 * i + 1, 1 + i));
      const stack = (arrays: Float64Array[]) => new ort.Tensor('float32', Float32Array.from(arrays.flatMap((array) => Array.from(array))), [pairs, tokens, d]);
      const outputs = await session.run({ ...constants, [PROBE_INPUTS.reference]: stack(xs), [PROBE_INPUTS.target]: stack(ys) });
      const ratios = outputs[PROBE_OUTPUT].data as Float32Array;
      for (let pair = 0; pair < pairs; pair++) {
        // The reference sees the same float32-rounded inputs the probe sees.
        const x = Float64Array.from(Float32Array.from(xs[pair]));
        const y = Float64Array.from(Float32Array.from(ys[pair]));
        const expected = referenceRatios(model, structure, x, y, mode);
        probe.columns.forEach(({ block, component }, column) => {
          const actual = ratios[pair * probe.columns.length + column];
          const wanted = expected[block][['LN1', 'MHA', 'LN2', 'FC1', 'FC2'].indexOf(component)];
          assert.ok(relativeError(actual, wanted) < 1e-4, `${golden.model} (${flavor}) seed ${seedBase} pair ${pair} block ${block} ${component}: ${actual} vs ${wanted}`);
        });
      }
      await session.release();
    }
  });
}
