// The data-free bounds (extension/core/bounds) held against a plain float64 reference (matrices
// built from the weights, spectral norms by Jacobi eigenvalues) on every fixture, and against
// the goldens' measured plasticity, which a linear map's bound must never be below.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test, TestContext } from 'node:test';
import { buildBoundsModel, DEFAULT_BOUNDS_STEPS } from '../../extension/core/bounds/boundsModel';
import { combineBounds, tokenStatistics } from '../../extension/core/bounds/plasticityBounds';
import { plainConstant } from '../../extension/core/graph/constantTensor';
import { OnnxModel, readOnnxModel, TensorDataType } from '../../extension/core/onnx/onnxModel';
import { OnnxGraphBuilder } from '../../extension/core/onnx/onnxWriter';
import { discoverVit } from '../../extension/core/vit/discoverVit';
import { LayerNormLayer, LinearLayer, Projection, VitStructure } from '../../extension/core/vit/vitStructure';
import { createSession } from '../../extension/worker/onnxRuntime';
import { GOLDEN_COMPONENTS, modelPath, referenceFixtures, relativeError, REPO_ROOT, tempDir } from '../support/fixtures';
import { referenceAttentionBound, referenceBounds, referenceTokenStatistics } from '../support/referenceBounds';

const VIT_B = path.join(REPO_ROOT, '.bench', 'vitb', 'vit_b16.onnx');
const TOLERANCE = 1e-4;

/** A seeded uniform generator on [0, 1). */
function seededUniform(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Seeded embeddings [count, tokens, d] with a per-token offset and scale, so token stds differ. */
function randomEmbeddings(count: number, tokens: number, d: number, seed: number): Float32Array {
  const uniform = seededUniform(seed);
  const values = new Float32Array(count * tokens * d);
  for (let token = 0; token < count * tokens; token++) {
    const offset = uniform() - 0.5;
    const scale = 0.5 + 2 * uniform();
    for (let f = 0; f < d; f++) values[token * d + f] = offset + scale * (uniform() + uniform() + uniform() - 1.5);
  }
  return values;
}

async function runBoundsModel(model: OnnxModel, structure: VitStructure): Promise<Record<string, Float32Array>> {
  const bytes = buildBoundsModel(model, structure);
  const session = await createSession(bytes, { provider: 'cpu', externalDataFolder: model.dataFolder, graphOptimizationLevel: 'disabled', prepackWeights: false });
  try {
    const results = await session.run({});
    return Object.fromEntries(Object.entries(results).map(([name, tensor]) => [name, tensor.data as Float32Array]));
  } finally {
    await session.release();
  }
}

test('bounds equal the float64 reference on every fixture and never fall below measured FC plasticity', async () => {
  let worstSpectral = 0;
  let worstChange = 0;
  // The families too: SwiGLU (FC1's bound is sigma_max of [W_gate W_value], the map it measures), BEiT's bias on the logits and query bias.
  for (const { golden, file } of referenceFixtures()) {
    const model = readOnnxModel(file);
    const structure = discoverVit(model);
    const d = structure.hiddenSize;
    const tokenCount = golden.architecture.tokens;
    const spectral = await runBoundsModel(model, structure);

    const embeddings = randomEmbeddings(3, tokenCount, d, 7);
    const tokens = tokenStatistics(embeddings, 3, tokenCount, d);
    const expectedTokens = referenceTokenStatistics(embeddings, d);
    assert.equal(tokens.tokens, tokenCount);
    assert.equal(tokens.images, 3);
    assert.ok(relativeError(tokens.radius, expectedTokens.radius) < 1e-12, `${golden.model}: radius ${tokens.radius} vs ${expectedTokens.radius}`);
    assert.ok(relativeError(tokens.minTokenStd, expectedTokens.minTokenStd) < 1e-12, `${golden.model}: s_min ${tokens.minTokenStd} vs ${expectedTokens.minTokenStd}`);

    const bounds = combineBounds(structure, model, spectral, tokens, DEFAULT_BOUNDS_STEPS);
    const reference = referenceBounds(model, structure);
    assert.equal(bounds.iterations, Math.min(DEFAULT_BOUNDS_STEPS, d)); // a matrix d wide takes at most d steps
    assert.equal(bounds.blocks.length, golden.architecture.blocks);
    assert.ok(bounds.lastStepChange >= 0 && bounds.lastStepChange < 1e-5, `${golden.model}: last step change ${bounds.lastStepChange}`);
    worstChange = Math.max(worstChange, bounds.lastStepChange);

    const close = (label: string, actual: number, expected: number) => {
      const error = relativeError(actual, expected);
      worstSpectral = Math.max(worstSpectral, error);
      assert.ok(error < TOLERANCE, `${golden.model} ${label}: ${actual} vs float64 ${expected}`);
    };
    bounds.blocks.forEach((block, b) => {
      const expected = reference[b];
      close(`block ${b} FC1 sigma_max`, block.FC1.bound, expected.fc1);
      close(`block ${b} FC2 sigma_max (first ${d} rows)`, block.FC2.bound, expected.fc2);

      assert.ok(block.MHA, `${golden.model} block ${b}: MHA bound missing with token statistics known`);
      expected.heads.forEach((head, h) => {
        close(`block ${b} head ${h} ||W_V^h||`, block.MHA!.detail[`head${h}.value`], head.value);
        close(`block ${b} head ${h} ||W_O^h||`, block.MHA!.detail[`head${h}.output`], head.output);
        close(`block ${b} head ${h} ||A_h||`, block.MHA!.detail[`head${h}.score`], head.score);
        close(`block ${b} head ${h} ||u_h||`, block.MHA!.detail[`head${h}.queryBias`] + 1, head.queryBias + 1); // 0 without a query bias
        close(`block ${b} head ${h} term`, block.MHA!.detail[`head${h}.term`], referenceAttentionBound([head], tokenCount, expectedTokens.radius));
      });
      close(`block ${b} MHA bound`, block.MHA!.bound, referenceAttentionBound(expected.heads, tokenCount, expectedTokens.radius));

      for (const [name, component, maxAbsGamma] of [
        ['LN1', block.LN1, expected.maxAbsGamma.ln1],
        ['LN2', block.LN2, expected.maxAbsGamma.ln2],
      ] as const) {
        assert.equal(component.detail.maxAbsGamma, maxAbsGamma, `${golden.model} block ${b} ${name} max|gamma|`);
        assert.ok(relativeError(component.bound, maxAbsGamma / expectedTokens.minTokenStd) < 1e-12, `${golden.model} block ${b} ${name} bound`);
      }

      // Theory: P <= sigma_max for a linear map, pair by pair (float32 slack only).
      for (const [component, bound] of [
        ['FC1', block.FC1.bound],
        ['FC2', block.FC2.bound],
      ] as const) {
        const column = GOLDEN_COMPONENTS.indexOf(component);
        golden.isolated.forEach((pair, p) => {
          const measured = pair[b][column];
          assert.ok(measured <= bound * (1 + 1e-6), `${golden.model} pair ${p} block ${b} ${component}: measured ${measured} above bound ${bound}`);
        });
      }
    });

    // Without token statistics: no MHA bound, LN bound = max|gamma| (the reference code's plot).
    const weightOnly = combineBounds(structure, model, spectral, null, DEFAULT_BOUNDS_STEPS);
    assert.equal(weightOnly.tokens, null);
    weightOnly.blocks.forEach((block, b) => {
      assert.equal(block.MHA, null);
      assert.equal(block.LN1.bound, reference[b].maxAbsGamma.ln1);
      assert.equal(block.LN2.bound, reference[b].maxAbsGamma.ln2);
      assert.equal(block.FC1.bound, bounds.blocks[b].FC1.bound);
    });
  }
  console.log(
    `bounds: worst relative error against float64 Jacobi ${worstSpectral.toExponential(2)}, worst last-step change ${worstChange.toExponential(2)} (${DEFAULT_BOUNDS_STEPS} steps)`,
  );
});

/** A linear layer of a hand-built file: its weight (and bias) the initializers named. */
function linearOf(model: OnnxModel, name: string, weightLayout: LinearLayer['weightLayout'], inFeatures: number, outFeatures: number, bias?: string): LinearLayer {
  const constant = (initializer: string) => plainConstant(model.initializers.get(initializer)!, 'initializer');
  return { input: 'x', output: 'y', weight: constant(name), bias: bias ? constant(bias) : undefined, weightLayout, inFeatures, outFeatures, nodeName: name };
}

function layerNormOf(model: OnnxModel, d: number, gamma?: string): LayerNormLayer {
  return { input: 'x', output: 'y', gamma: gamma ? plainConstant(model.initializers.get(gamma)!, 'initializer') : undefined, epsilon: 1e-6, width: d };
}

/** A file of initializers only (the bounds read weights, not the graph), removed after the test. */
function initializerFile(t: TestContext, name: string, fill: (builder: OnnxGraphBuilder) => void): OnnxModel {
  const builder = new OnnxGraphBuilder(17);
  fill(builder);
  builder.input('x', TensorDataType.FLOAT, [1]);
  builder.op('Identity', ['x'], {}, 'y');
  builder.output('y', TensorDataType.FLOAT, [1]);
  const folder = tempDir('bounds');
  t.after(() => fs.rmSync(folder, { recursive: true, force: true }));
  const file = path.join(folder, name);
  fs.writeFileSync(file, builder.encode());
  return readOnnxModel(file);
}

/**
 * A file holding random weights for two blocks, with a structure stating their layouts: block 0
 * all [out, in] with a fused [3d, d] qkv, block 1 a fused [d, 3d] qkv in the order k, v, q and
 * no LN2 gamma. Every exported fixture keeps its FC and qkv weights [in, out] (MatMul) and is
 * narrower than the Lanczos step count; these cover Gemm's [out, in] layout and, when wide,
 * matrices Lanczos does not span whole.
 */
function handBuiltModel(t: TestContext, shape: { d: number; heads: number; mlp: number; seed: number }): { model: OnnxModel; structure: VitStructure } {
  const { d, heads, mlp } = shape;
  const headDim = d / heads;
  const uniform = seededUniform(shape.seed);
  const layouts = (builder: OnnxGraphBuilder) => {
    const constant = (dims: number[], prefix: string) =>
      builder.floatConstant(
        Array.from({ length: dims[0] * (dims[1] ?? 1) }, () => 2 * uniform() - 1),
        dims,
        prefix,
      );
    const weights = (layout: LinearLayer['weightLayout']) => {
      const rows = (inFeatures: number, outFeatures: number) => (layout === 'inOut' ? [inFeatures, outFeatures] : [outFeatures, inFeatures]);
      return {
        qkv: constant(rows(d, 3 * d), 'qkv'),
        qkvBias: constant([3 * d], 'qkv_bias'),
        out: constant(rows(d, d), 'out'),
        fc1: constant(rows(d, mlp), 'fc1'),
        fc2: constant(rows(mlp, d), 'fc2'),
      };
    };
    return [
      { layout: 'outIn' as const, parts: [0, 1, 2], ...weights('outIn'), gamma1: constant([d], 'gamma'), gamma2: constant([d], 'gamma') },
      { layout: 'inOut' as const, parts: [2, 0, 1], ...weights('inOut'), gamma1: constant([d], 'gamma'), gamma2: undefined },
    ];
  };
  let names: ReturnType<typeof layouts> = [];
  const model = initializerFile(t, 'layouts.onnx', (builder) => (names = layouts(builder)));

  const linear = (name: string, weightLayout: LinearLayer['weightLayout'], inFeatures: number, outFeatures: number) => linearOf(model, name, weightLayout, inFeatures, outFeatures);
  const layerNorm = (gamma?: string) => layerNormOf(model, d, gamma);
  const blocks = names.map((block, index) => {
    const qkv = linearOf(model, block.qkv, block.layout, d, 3 * d, block.qkvBias);
    const projection = (part: number): Projection => ({ linear: qkv, part });
    return {
      index,
      ln1: layerNorm(block.gamma1),
      ln2: layerNorm(block.gamma2),
      attention: {
        query: projection(block.parts[0]),
        key: projection(block.parts[1]),
        value: projection(block.parts[2]),
        outProjection: linear(block.out, block.layout, d, d),
        heads,
        headDim,
        scoreScale: 1 / Math.sqrt(headDim),
      },
      fc1: [linear(block.fc1, block.layout, d, mlp)],
      fc2: linear(block.fc2, block.layout, mlp, d),
    };
  });
  // Only the fields the bounds read; the rest of a discovered structure does not matter here.
  const structure = { hiddenSize: d, heads, mlpSize: mlp, blocks } as unknown as VitStructure;
  return { model, structure };
}

/** What the ViT-B bounds script prints as its last line. */
interface BoundsBenchFigures {
  seconds: { total: number; readAndDiscover: number; build: number; session: number; run: number; combine: number };
  peakRssMiB: number;
  bytes: number;
  lastStepChange: number;
  fc1: number[];
  fc2: number[];
}

/** Bounds of a hand-built model against the float64 reference; returns the worst relative error. */
async function checkHandBuilt(model: OnnxModel, structure: VitStructure): Promise<number> {
  const d = structure.hiddenSize;
  const spectral = await runBoundsModel(model, structure);
  const embeddings = randomEmbeddings(2, 5, d, 3);
  const tokens = tokenStatistics(embeddings, 2, 5, d);
  const bounds = combineBounds(structure, model, spectral, tokens, DEFAULT_BOUNDS_STEPS);
  const reference = referenceBounds(model, structure);
  let worst = 0;
  const close = (label: string, actual: number, expected: number) => {
    const error = relativeError(actual, expected);
    worst = Math.max(worst, error);
    assert.ok(error < TOLERANCE, `${label}: ${actual} vs float64 ${expected}`);
  };
  bounds.blocks.forEach((result, b) => {
    const expected = reference[b];
    close(`block ${b} FC1`, result.FC1.bound, expected.fc1);
    close(`block ${b} FC2`, result.FC2.bound, expected.fc2);
    expected.heads.forEach((head, h) => {
      for (const key of ['value', 'output', 'score', 'queryBias'] as const) close(`block ${b} head ${h} ${key}`, result.MHA!.detail[`head${h}.${key}`], head[key]);
    });
    close(`block ${b} MHA`, result.MHA!.bound, referenceAttentionBound(expected.heads, 5, tokens.radius));
    assert.equal(result.LN1.detail.maxAbsGamma, expected.maxAbsGamma.ln1);
    assert.equal(result.LN2.detail.maxAbsGamma, expected.maxAbsGamma.ln2);
  });
  assert.equal(bounds.blocks[1].LN2.detail.maxAbsGamma, 1);
  return worst;
}

test('[out, in] weights, fused qkv in any order and missing gammas give the reference bounds too', async (t) => {
  const { model, structure } = handBuiltModel(t, { d: 16, heads: 2, mlp: 64, seed: 11 });
  await checkHandBuilt(model, structure);
});

test('random layers wider than the Lanczos step count (nearly equal top singular values) match the float64 reference', async (t) => {
  // Fresh weights each run: a seed from the clock, printed so a failure can be replayed.
  const seed = Number(process.env.BOUNDS_SEED ?? Date.now() % 100000);
  const { model, structure } = handBuiltModel(t, { d: 160, heads: 2, mlp: 640, seed });
  assert.ok(structure.hiddenSize > DEFAULT_BOUNDS_STEPS && structure.blocks[0].attention.headDim > DEFAULT_BOUNDS_STEPS);
  const worst = await checkHandBuilt(model, structure);
  console.log(
    `bounds of random 160-wide layers (seed ${seed}, BOUNDS_SEED to replay): worst relative error against float64 Jacobi ${worst.toExponential(2)} after ${DEFAULT_BOUNDS_STEPS} Lanczos steps`,
  );
});

/** One attention head's weights in PyTorch's (out, in) terms, row-major [d][d], and its query bias. */
interface HeadWeights {
  query: number[][];
  key: number[][];
  value: number[][];
  out: number[][];
  queryBias: number[];
}

/** A one-block, one-head model file holding `weights` (fused qkv [3d, d], its bias q, 0, 0) and its structure. */
function singleHeadModel(t: TestContext, weights: HeadWeights): { model: OnnxModel; structure: VitStructure } {
  const d = weights.out.length;
  const mlp = 2 * d;
  const names = { qkv: '', qkvBias: '', out: '', fc1: '', fc2: '' };
  const model = initializerFile(t, 'single-head.onnx', (builder) => {
    names.qkv = builder.floatConstant([...weights.query, ...weights.key, ...weights.value].flat(), [3 * d, d], 'qkv');
    names.qkvBias = builder.floatConstant([...weights.queryBias, ...new Array<number>(2 * d).fill(0)], [3 * d], 'qkv_bias');
    names.out = builder.floatConstant(weights.out.flat(), [d, d], 'out');
    names.fc1 = builder.floatConstant(
      Array.from({ length: mlp * d }, (_, i) => Math.sin(i)),
      [mlp, d],
      'fc1',
    );
    names.fc2 = builder.floatConstant(
      Array.from({ length: mlp * d }, (_, i) => Math.cos(i)),
      [d, mlp],
      'fc2',
    );
  });
  const qkv = linearOf(model, names.qkv, 'outIn', d, 3 * d, names.qkvBias);
  const attention = {
    query: { linear: qkv, part: 0 },
    key: { linear: qkv, part: 1 },
    value: { linear: qkv, part: 2 },
    outProjection: linearOf(model, names.out, 'outIn', d, d),
    heads: 1,
    headDim: d,
    scoreScale: 1 / Math.sqrt(d),
  };
  const block = {
    index: 0,
    ln1: layerNormOf(model, d),
    ln2: layerNormOf(model, d),
    attention,
    fc1: [linearOf(model, names.fc1, 'outIn', d, mlp)],
    fc2: linearOf(model, names.fc2, 'outIn', mlp, d),
  };
  return { model, structure: { hiddenSize: d, heads: 1, mlpSize: mlp, blocks: [block] } as unknown as VitStructure };
}

/** softmax((X W_Qᵀ + b_Q)(X W_Kᵀ)ᵀ / sqrt(dh) + B) X W_Vᵀ W_Oᵀ in float64, written out: the theory's attention plus a bias B on the logits. */
function attentionHead(x: number[][], w: HeadWeights, logitBias?: number[][]): number[][] {
  const apply = (m: number[][], row: number[], bias?: number[]) => m.map((weights, o) => weights.reduce((sum, weight, i) => sum + weight * row[i], bias?.[o] ?? 0));
  const q = x.map((row) => apply(w.query, row, w.queryBias));
  const k = x.map((row) => apply(w.key, row));
  const v = x.map((row) => apply(w.value, row));
  const scale = 1 / Math.sqrt(x[0].length);
  return q.map((qi, i) => {
    const logits = k.map((kj, j) => scale * qi.reduce((sum, value, c) => sum + value * kj[c], 0) + (logitBias?.[i][j] ?? 0));
    const max = Math.max(...logits);
    const weights = logits.map((logit) => Math.exp(logit - max));
    const total = weights.reduce((sum, value) => sum + value, 0);
    const context = v[0].map((_, c) => v.reduce((sum, vj, j) => sum + (weights[j] / total) * vj[c], 0));
    return apply(w.out, context);
  });
}

/** ||f(X) - f(Y)|| / ||X - Y||, Frobenius. */
function lipschitzRatio(f: (x: number[][]) => number[][], x: number[][], y: number[][]): number {
  const distance = (a: number[][], b: number[][]) => Math.sqrt(a.reduce((sum, row, i) => sum + row.reduce((rowSum, value, j) => rowSum + (value - b[i][j]) ** 2, 0), 0));
  return distance(f(x), f(y)) / distance(x, y);
}

const identity = (d: number) => Array.from({ length: d }, (_, i) => Array.from({ length: d }, (_, j) => (i === j ? 1 : 0)));

test("a query bias: the paper's attention bound is exceeded, the bound with its term is not", async (t) => {
  // W_Q = 0 (A = 0), W_K = W_V = W_O = I, b_Q = 20 e_0: the logits are b_Q · x_j / 2, which the
  // paper's A leaves out; its bound is then sqrt(3n) = 3, whatever the bias.
  const d = 4;
  const weights: HeadWeights = { query: identity(d).map((row) => row.map(() => 0)), key: identity(d), value: identity(d), out: identity(d), queryBias: [20, 0, 0, 0] };
  const { model, structure } = singleHeadModel(t, weights);
  const x = [
    [0, 0.99, 0, 0],
    [0, -0.99, 0, 0],
    [0, 0, 0, 0],
  ];
  const y = x.map((row, i) => (i === 0 ? [1e-4, ...row.slice(1)] : row));
  const radius = Math.max(...[...x, ...y].map((row) => Math.hypot(...row)));
  const tokens = { tokens: 3, radius, minTokenStd: 1, images: 1 };
  const bound = combineBounds(structure, model, await runBoundsModel(model, structure), tokens, DEFAULT_BOUNDS_STEPS).blocks[0].MHA!;
  const ratio = lipschitzRatio((input) => attentionHead(input, weights), x, y);
  const paper = referenceAttentionBound([{ value: 1, output: 1, score: 0, queryBias: 0 }], 3, radius);
  assert.ok(Math.abs(bound.detail['head0.queryBias'] - 10) < 1e-5, `||u|| = ||b_Q W_K|| / sqrt(dh) = 10, got ${bound.detail['head0.queryBias']}`);
  assert.ok(ratio > paper, `the measured ratio ${ratio} exceeds the paper's formula ${paper}`);
  assert.ok(ratio <= bound.bound, `the measured ratio ${ratio} is within the bound ${bound.bound}`);
});

test('a constant added to the logits (a relative position bias) keeps every measured ratio within the bound', async (t) => {
  // The bound does not read B: P stays row-stochastic and the logits' derivative in X is unchanged.
  // Random heads with and without a query bias, random B up to ±8 (trained BEiT tables reach a
  // few units), random pairs in the ball ||x_i|| <= r, each pushed towards a larger ratio.
  const uniform = seededUniform(17);
  const d = 4;
  const n = 5;
  const random = (rows: number, cols: number, scale: number) => Array.from({ length: rows }, () => Array.from({ length: cols }, () => scale * (2 * uniform() - 1)));
  let closest = 0;
  for (const [index, queryBiasScale] of [0, 0, 3].entries()) {
    const weights: HeadWeights = { query: random(d, d, 1.5), key: random(d, d, 1.5), value: random(d, d, 1), out: random(d, d, 1), queryBias: random(1, d, queryBiasScale)[0] };
    const { model, structure } = singleHeadModel(t, weights);
    const spectral = await runBoundsModel(model, structure);
    const radius = 1;
    const bound = combineBounds(structure, model, spectral, { tokens: n, radius, minTokenStd: 1, images: 1 }, DEFAULT_BOUNDS_STEPS).blocks[0].MHA!.bound;
    const inBall = (rows: number[][]) => rows.map((row) => row.map((value) => value / Math.max(1, Math.hypot(...row) / radius)));
    for (let trial = 0; trial < 40; trial++) {
      const logitBias = random(n, n, 8);
      const f = (input: number[][]) => attentionHead(input, weights, logitBias);
      let x = inBall(random(n, d, 1));
      let y = inBall(x.map((row) => row.map((value) => value + 1e-3 * (2 * uniform() - 1))));
      let best = lipschitzRatio(f, x, y);
      for (let step = 0; step < 60; step++) {
        const candidateX = inBall(x.map((row) => row.map((value) => value + 0.1 * (2 * uniform() - 1))));
        const candidateY = inBall(candidateX.map((row, i) => row.map((value, j) => value + (y[i][j] - x[i][j]) + 1e-4 * (2 * uniform() - 1))));
        const ratio = lipschitzRatio(f, candidateX, candidateY);
        if (ratio > best) [x, y, best] = [candidateX, candidateY, ratio];
      }
      assert.ok(best <= bound, `head ${index} trial ${trial}: ratio ${best} above the bound ${bound}`);
      closest = Math.max(closest, best / bound);
    }
  }
  console.log(`attention with a logit bias: largest measured ratio ${(100 * closest).toFixed(1)}% of its bound`);
});

/**
 * The whole computation on the benchmark ViT-B, in a fresh process so its peak memory is its own:
 * read + discover + build + session + run + combine. Prints the figures; asserts only sanity.
 */
test(
  'bounds on the benchmark ViT-B/16: time and peak memory',
  { skip: fs.existsSync(VIT_B) ? false : `${VIT_B} is absent (python3 bench/make_vit_b.py .bench/vitb)` },
  async () => {
    const out = (module: string) => JSON.stringify(path.join(REPO_ROOT, 'out', 'extension', module));
    const script = `
    const path = require('node:path');
    const { readOnnxModel } = require(${out('core/onnx/onnxModel.js')});
    const { discoverVit } = require(${out('core/vit/discoverVit.js')});
    const { buildBoundsModel } = require(${out('core/bounds/boundsModel.js')});
    const { combineBounds } = require(${out('core/bounds/plasticityBounds.js')});
    const { createSession } = require(${out('worker/onnxRuntime.js')});
    (async () => {
      const marks = [performance.now()];
      const model = readOnnxModel(${JSON.stringify(VIT_B)});
      const structure = discoverVit(model);
      marks.push(performance.now());
      const bytes = buildBoundsModel(model, structure);
      marks.push(performance.now());
      const session = await createSession(bytes, { provider: 'cpu', externalDataFolder: model.dataFolder, graphOptimizationLevel: 'disabled', prepackWeights: false });
      marks.push(performance.now());
      const results = await session.run({});
      marks.push(performance.now());
      const spectral = Object.fromEntries(Object.entries(results).map(([name, tensor]) => [name, tensor.data]));
      const bounds = combineBounds(structure, model, spectral, null, 64);
      marks.push(performance.now());
      const seconds = (i) => (marks[i + 1] - marks[i]) / 1000;
      console.log(JSON.stringify({
        seconds: { readAndDiscover: seconds(0), build: seconds(1), session: seconds(2), run: seconds(3), combine: seconds(4), total: (marks[5] - marks[0]) / 1000 },
        peakRssMiB: process.resourceUsage().maxRSS / 1024,
        lastStepChange: bounds.lastStepChange,
        fc1: bounds.blocks.map((block) => block.FC1.bound),
        fc2: bounds.blocks.map((block) => block.FC2.bound),
        bytes: bytes.length,
      }));
    })().catch((error) => { console.error(error); process.exit(1); });`;
    const child = spawn(process.execPath, ['-e', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, stderr);
    const figures = JSON.parse(stdout.trim().split('\n').pop()!) as BoundsBenchFigures;
    const { seconds } = figures;
    console.log(
      `ViT-B/16 bounds: ${seconds.total.toFixed(2)} s total (read+discover ${seconds.readAndDiscover.toFixed(2)}, build ${seconds.build.toFixed(2)}, ` +
        `session ${seconds.session.toFixed(2)}, run ${seconds.run.toFixed(2)}, combine ${seconds.combine.toFixed(3)}), peak RSS ${figures.peakRssMiB.toFixed(0)} MiB, ` +
        `model ${(figures.bytes / 1024).toFixed(0)} KiB, last-step change ${figures.lastStepChange.toExponential(1)}`,
    );
    for (const value of [...figures.fc1, ...figures.fc2]) assert.ok(Number.isFinite(value) && value > 0);
    assert.ok(figures.lastStepChange < 1e-4);
  },
);

test('every analysis report carries the data-free bounds, and no measured FC ratio exceeds them', async () => {
  const { WorkerSupervisor } = await import('../../extension/worker/workerSupervisor');
  const { PAIRS } = await import('../support/fixtures');
  const supervisor = new WorkerSupervisor();
  try {
    const report = await supervisor.analyze({
      modelPath: modelPath('hf_vit_op17.onnx'),
      mode: 'isolated',
      executionProvider: 'cpu',
      reference: PAIRS.reference,
      target: PAIRS.target,
      seed: 0,
    });
    const bounds = report.bounds;
    assert.ok(bounds, 'the report has bounds');
    assert.equal(bounds.blocks.length, report.blocks.length);
    assert.equal(bounds.tokens?.tokens, report.model.architecture.tokens);
    report.blocks.forEach((block, b) => {
      for (const component of ['FC1', 'FC2'] as const) {
        // Per pair P <= sigma_max for a linear map, so the mean too.
        assert.ok(block.components[component].ci95[1] <= bounds.blocks[b][component].bound * (1 + 1e-5), `block ${b} ${component}`);
      }
      assert.ok(bounds.blocks[b].MHA !== null && bounds.blocks[b].MHA!.bound > 0);
    });
  } finally {
    supervisor.dispose();
  }
});

test('bounds before measuring take r and s_min from the first pairs an analysis measures, so both give the same bounds', async (t) => {
  const { WorkerSupervisor } = await import('../../extension/worker/workerSupervisor');
  const { PAIRS } = await import('../support/fixtures');
  const { TOKEN_STATISTICS_PAIRS } = await import('../../extension/core/bounds/plasticityBounds');
  const supervisor = new WorkerSupervisor();
  const model = modelPath('openai_clip_op14.onnx'); // tokens first: the layout the embedder must undo
  const close = (actual: number, expected: number, label: string) => assert.ok(relativeError(actual, expected) < 1e-5, `${label}: ${actual} vs ${expected}`);
  try {
    const before = await supervisor.bounds({ modelPath: model, reference: PAIRS.reference, target: PAIRS.target, seed: 0 });
    assert.equal(before.tokens?.images, 2 * TOKEN_STATISTICS_PAIRS);
    assert.equal(before.tokens?.synthetic, false);
    // One pair per probe run gathers the statistics over four batches; the default over one.
    for (const batchPairs of [1, undefined]) {
      const report = await supervisor.analyze({
        modelPath: model,
        mode: 'isolated',
        executionProvider: 'cpu',
        reference: PAIRS.reference,
        target: PAIRS.target,
        seed: 0,
        batchPairs,
      });
      const after = report.bounds!;
      assert.equal(after.tokens?.images, before.tokens!.images);
      assert.equal(after.tokens?.tokens, before.tokens!.tokens);
      close(after.tokens!.radius, before.tokens!.radius, `radius, ${batchPairs ?? 'default'} pairs per run`);
      close(after.tokens!.minTokenStd, before.tokens!.minTokenStd, 's_min');
      after.blocks.forEach((block, b) => {
        for (const component of ['LN1', 'MHA', 'LN2', 'FC1', 'FC2'] as const) close(block[component]!.bound, before.blocks[b][component]!.bound, `block ${b} ${component}`);
      });
    }

    const synthetic = await supervisor.bounds({ modelPath: model, seed: 0 });
    assert.equal(synthetic.tokens?.synthetic, true);
    assert.ok(synthetic.blocks.every((block) => block.MHA !== null && block.MHA.bound > 0));

    // Inputs that cannot be read leave the weights' bounds, and say why there is no MHA bound.
    const folder = tempDir('bounds-inputs');
    t.after(() => fs.rmSync(folder, { recursive: true, force: true }));
    const missing = path.join(folder, 'no-such-folder');
    const weightsOnly = await supervisor.bounds({ modelPath: model, reference: missing, seed: 0 });
    assert.equal(weightsOnly.tokens, null);
    assert.match(weightsOnly.tokensUnavailable ?? '', /no-such-folder/);
    assert.ok(weightsOnly.blocks.every((block, b) => block.MHA === null && block.FC1.bound === before.blocks[b].FC1.bound));
  } finally {
    supervisor.dispose();
  }
});
