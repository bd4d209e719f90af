// Small hand-made reports for the compare and merge tests: per-pair values in, a schemaVersion 1
// report out, its statistics computed here (plain two-pass formulas), not by the code under test.
import { PlasticityReport, PairRange } from '../../extension/core/report/reportSchema';
import { GOLDEN_COMPONENTS, sampleStatistics } from './fixtures';

type Component = (typeof GOLDEN_COMPONENTS)[number];

export interface HandMadeReport {
  /** values[pair][block][component index] */
  values: number[][][];
  /** The pair indices of values' rows (default 0, 1, 2...). */
  pairIndices?: number[];
  sha256?: string;
  mode?: 'isolated' | 'in-context';
  blocksOverride?: number;
  activation?: PlasticityReport['model']['architecture']['activation'];
  createdAt?: string;
}

export function handMadeReport(spec: HandMadeReport): PlasticityReport {
  const blocks = spec.values[0].length;
  const indices = spec.pairIndices ?? spec.values.map((_, index) => index);
  const blockReports = Array.from({ length: blocks }, (_, b) => {
    const components = {} as PlasticityReport['blocks'][number]['components'];
    const modules = {} as PlasticityReport['blocks'][number]['modules'];
    GOLDEN_COMPONENTS.forEach((component, c) => {
      const { mean, std } = sampleStatistics(spec.values.map((pair) => pair[b][c]));
      const n = spec.values.length;
      const half = (1.96 * std) / Math.sqrt(n);
      components[component] = { mean, std, n, ci95: [mean - half, mean + half], parameters: [`blocks.${b}.${component}.weight`], parameterCount: 100 * (c + 1) };
      modules[component] = `blocks.${b}.${component.toLowerCase()}`;
    });
    return { index: b, module: `blocks.${b}`, modules, components };
  });
  const summary = {} as PlasticityReport['summary'];
  const means = GOLDEN_COMPONENTS.map((component) => blockReports.reduce((sum, block) => sum + block.components[component].mean, 0) / blocks);
  const order = [...means.keys()].sort((a, b) => means[b] - means[a]);
  GOLDEN_COMPONENTS.forEach((component: Component, c) => {
    summary[component] = { mean: means[c], rank: order.indexOf(c) + 1, parameterCount: 100 * (c + 1) * blocks };
  });
  const ranges: PairRange[] = [];
  for (const index of [...indices].sort((a, b) => a - b)) {
    const last = ranges[ranges.length - 1];
    if (last && last[1] === index) last[1]++;
    else ranges.push([index, index + 1]);
  }
  return {
    schemaVersion: 1,
    tool: { name: 'plasticity-lens', version: '0.1.0', onnxruntime: '1.30.0' },
    createdAt: spec.createdAt ?? '2026-01-01T00:00:00.000Z',
    model: {
      path: '/models/vit.onnx',
      sha256: spec.sha256 ?? 'a'.repeat(64),
      sizeBytes: 1000,
      opset: 17,
      irVersion: 8,
      producer: 'test',
      parameterCount: 5000,
      inputs: [],
      outputs: [],
      architecture: {
        blocks: spec.blocksOverride ?? blocks,
        hiddenSize: 32,
        heads: 4,
        mlpSize: 128,
        tokens: 17,
        imageSize: [32, 32],
        patchSize: [8, 8],
        norm: 'pre',
        activation: spec.activation ?? 'gelu',
        naming: 'timm',
        embeddingOutput: 'embeddings',
      },
    },
    settings: {
      mode: spec.mode ?? 'isolated',
      pairs: spec.values.length,
      pairIndices: ranges,
      seed: 0,
      inputs: { kind: 'folders', reference: '/data/reference', target: '/data/target', synthetic: false, notes: [] },
      preprocessing: { size: [32, 32], mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
      executionProvider: { requested: 'cpu', used: 'cpu', tried: [] },
    },
    components: [...GOLDEN_COMPONENTS],
    blocks: blockReports,
    summary,
    timing: { loadMs: 1, discoverMs: 1, measureMs: 10, totalMs: 12, pairsPerSecond: 100 },
    warnings: [],
  };
}

/** Deterministic pseudo-random per-pair values [pair][block][component] around `level[component]`. */
export function pairValues(pairs: number, blocks: number, level: number[], seed: number): number[][][] {
  let state = seed >>> 0 || 1;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  return Array.from({ length: pairs }, () => Array.from({ length: blocks }, (_, b) => level.map((value) => value * (1 + 0.1 * b) * (0.7 + 0.6 * next()))));
}
