// Hand-made multi-target reports for the recommendation and comparison tests: per target, the
// per-block means of each component type; the report's statistics are those of the test's
// golden-based builder, its per-target section assembled here.
import { PlasticityReport, TargetReport } from '../../extension/core/report/reportSchema';
import { COMPONENTS } from '../../extension/core/vit/vitStructure';
import { goldenByStyle, reportFromGolden } from './goldenReports';

/** means[target][block][component index] for the timm fixture's 3 blocks. */
export function multiTargetReport(names: string[], means: number[][][]): PlasticityReport {
  const timm = goldenByStyle().get('timm')!;
  const targets: TargetReport[] = means.map((perBlock, k) => {
    const one = reportFromGolden(timm, { means: perBlock });
    return {
      name: names[k],
      folder: `/data/${names[k]}`,
      pairs: one.settings.pairs,
      pairIndices: [[0, one.settings.pairs]],
      blocks: one.blocks,
      summary: one.summary,
      ranking: [...COMPONENTS].sort((a, b) => one.summary[a].rank - one.summary[b].rank),
      meanInputDistance: 10 + k,
      inputDistanceStd: 1,
      warnings: [],
    };
  });
  const base = reportFromGolden(timm, { means: means[0] });
  return {
    ...base,
    settings: { ...base.settings, inputs: { ...base.settings.inputs, targets: targets.map((target) => target.folder), target: targets[0].folder } },
    targets,
  };
}

/** The same value for a type in every block: [LN1, MHA, LN2, FC1, FC2] -> 3 blocks. */
export const everyBlock = (types: number[]) => [types, types, types];
