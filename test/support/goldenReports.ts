// Reports built from the fixtures' goldens (PyTorch's own module and parameter names, float64
// plasticity), without running the engine: what recommend/overlay unit tests read.
import { summarize } from '../../extension/core/report/buildReport';
import { BlockReport, ComponentStatistics, PlasticityReport } from '../../extension/core/report/reportSchema';
import { COMPONENTS, ComponentName, Naming } from '../../extension/core/vit/vitStructure';
import { expectedNaming, Golden, goldenBlockStatistics, goldenFixtures, modelPath, sha256OfFile } from './fixtures';

export interface ReportOverrides {
  synthetic?: boolean;
  mode?: 'isolated' | 'in-context';
  warnings?: string[];
  /** Replaces the plasticity means: [block][component in COMPONENTS order]. */
  means?: number[][];
}

/** One golden per style (the first export of each), keyed by style. */
export function goldenByStyle(): Map<string, Golden> {
  const byStyle = new Map<string, Golden>();
  for (const golden of goldenFixtures()) {
    if (golden.model.includes('external')) continue;
    if (!byStyle.has(golden.style)) byStyle.set(golden.style, golden);
  }
  return byStyle;
}

export function reportFromGolden(golden: Golden, overrides: ReportOverrides = {}): PlasticityReport {
  const statistics = goldenBlockStatistics(golden.isolated);
  const pairs = golden.isolated.length;
  const blocks: BlockReport[] = golden.modules.map((modules, index) => {
    const components = {} as Record<ComponentName, ComponentStatistics>;
    COMPONENTS.forEach((component, c) => {
      const mean = overrides.means?.[index][c] ?? statistics[index][c].mean;
      const half = (1.96 * statistics[index][c].std) / Math.sqrt(pairs);
      components[component] = {
        mean,
        std: statistics[index][c].std,
        ci95: [mean - half, mean + half],
        n: pairs,
        parameters: golden.parameters[index][component].names,
        parameterCount: golden.parameters[index][component].count,
      };
    });
    const blockModule = modules.LN1.slice(0, modules.LN1.lastIndexOf('.'));
    return { index, module: blockModule, modules: modules as Record<ComponentName, string>, components };
  });
  const file = modelPath(golden.model);
  const architecture = golden.architecture;
  return {
    schemaVersion: 1,
    tool: { name: 'plasticity-lens', version: '0.1.0', onnxruntime: 'test' },
    createdAt: '2026-01-01T00:00:00.000Z',
    model: {
      path: file,
      sha256: sha256OfFile(file),
      sizeBytes: 0,
      opset: golden.opset,
      irVersion: 8,
      producer: 'pytorch',
      parameterCount: golden.totalParameters,
      inputs: [],
      outputs: [],
      architecture: {
        ...architecture,
        naming: expectedNaming(golden) as Naming,
        activation: architecture.activation as PlasticityReport['model']['architecture']['activation'],
        embeddingOutput: 'embedding',
      },
    },
    settings: {
      mode: overrides.mode ?? 'isolated',
      pairs,
      seed: 0,
      inputs: {
        kind: overrides.synthetic ? 'synthetic' : 'folders',
        reference: overrides.synthetic ? null : 'reference',
        target: overrides.synthetic ? null : 'target',
        synthetic: overrides.synthetic ?? false,
        notes: [],
      },
      preprocessing: { size: architecture.imageSize, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
      executionProvider: { requested: 'cpu', used: 'cpu', tried: [] },
    },
    components: [...COMPONENTS],
    blocks,
    summary: summarize(blocks),
    timing: { loadMs: 0, discoverMs: 0, measureMs: 0, totalMs: 0, pairsPerSecond: 0 },
    warnings: overrides.warnings ?? [],
  };
}
