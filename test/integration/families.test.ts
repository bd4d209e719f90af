// The ViT families beyond the plain ViT (test/fixtures/models/families/, written in PyTorch after
// each family's published architecture by generate_families.py): measured through the real worker
// and command line against their PyTorch goldens in both modes, the parameters of no component
// listed with their block, and freeze plans assigning them by the stated rule.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { MeasureMode, PlasticityReport } from '../../extension/core/report/reportSchema';
import { readOnnxModel } from '../../extension/core/onnx/onnxModel';
import { buildInContextProbe } from '../../extension/core/probe/probeModels';
import { discoverVit } from '../../extension/core/vit/discoverVit';
import { EXTRA_PARAMETER_RULE } from '../../extension/core/vocabulary';
import { runOnce } from '../../extension/worker/probeSessions';
import { WorkerSupervisor } from '../../extension/worker/workerSupervisor';
import { writeReplacedNodesModel } from '../support/derivedModels';
import { pythonWith, runPythonHelper } from '../support/pythonScripts';
import { FAMILY_MODELS, familyGoldens, Golden, GOLDEN_COMPONENTS, goldenBlockStatistics, PAIRS, relativeError, runCli, tempDir } from '../support/fixtures';

const FAMILIES = FAMILY_MODELS;
/** The family each fixture is recognised as (the report's, the table's and the overview's family line). */
const FAMILY_NAMES: Record<string, string> = {
  'dinov2_reg_op17_dyn.onnx': 'DINOv2 (LayerScale, 4 register tokens)',
  'hf_dinov2_reg_op14_dyn.onnx': 'DINOv2 (LayerScale, 4 register tokens)',
  'siglip_op17_dyn.onnx': 'SigLIP (attention-pooling head)',
  'hf_dinov3_op17_dyn.onnx': 'DINOv3 (rotary position embedding, LayerScale, 4 register tokens)',
  'hf_dinov3_op14.onnx': 'DINOv3 (rotary position embedding, LayerScale, 4 register tokens)',
  'eva_swiglu_op17_dyn.onnx': 'EVA-02 (SwiGLU MLP with its inner norm)',
  'eva_swiglu_packed_op17_dyn.onnx': 'ViT with SwiGLU MLP (packed fc1)',
  'eva_swiglu_eva02_names_op14_dyn.onnx': 'EVA-02 (SwiGLU MLP with its inner norm)',
  'hf_dinov2_swiglu_op14_dyn.onnx': 'DINOv2 (LayerScale, SwiGLU MLP (packed fc1), 4 register tokens)',
  'timm_shape_scale_op17_dyn.onnx': 'plain ViT',
  'beit_op17_dyn.onnx': 'BEiT (relative position bias, LayerScale)',
  'hf_beit_op14_dyn.onnx': 'BEiT (relative position bias, LayerScale)',
  'beit_shared_op17_dyn.onnx': 'BEiT (relative position bias, LayerScale)',
};

const supervisor = new WorkerSupervisor();
const python = pythonWith(['torch', 'torchvision', 'numpy']);
after(() => supervisor.dispose());

/** The worst relative difference of the report's per-block means from the golden's. */
function worstDifference(report: PlasticityReport, golden: Golden, mode: MeasureMode): number {
  const expected = goldenBlockStatistics(mode === 'isolated' ? golden.isolated : golden.inContext);
  assert.equal(report.blocks.length, expected.length, 'block count');
  let worst = 0;
  report.blocks.forEach((block, b) => GOLDEN_COMPONENTS.forEach((component, c) => (worst = Math.max(worst, relativeError(block.components[component].mean, expected[b][c].mean)))));
  return worst;
}

describe('every ViT family matches its PyTorch goldens in both modes', () => {
  for (const golden of familyGoldens()) {
    for (const mode of ['isolated', 'in-context'] as MeasureMode[]) {
      test(`${golden.model} ${mode}`, async (t) => {
        const report = await supervisor.analyze({
          modelPath: path.join(FAMILIES, golden.model),
          mode,
          executionProvider: 'cpu',
          reference: PAIRS.reference,
          target: PAIRS.target,
          seed: 0,
        });
        const worst = worstDifference(report, golden, mode);
        t.diagnostic(`worst relative difference against the PyTorch golden: ${worst.toExponential(1)}`);
        assert.ok(worst < 1e-4, `${golden.model} ${mode}: worst relative difference ${worst.toExponential(2)}`);
        assert.equal(report.model.architecture.tokens, golden.architecture.tokens, 'tokens (class and register tokens included)');
        // What the overview states before any run: the same count, or none ("found when run"), never another.
        const staticTokens = discoverVit(readOnnxModel(path.join(FAMILIES, golden.model))).tokens;
        assert.ok(staticTokens === undefined || staticTokens === golden.architecture.tokens, `tokens read from the graph: ${staticTokens}`);
        // Parameters the forward pass never reads (DINOv3's mask token) are not in the file to count.
        const notExported = Object.values((golden as Golden & { parametersNotExported?: Record<string, number> }).parametersNotExported ?? {}).reduce(
          (sum, count) => sum + count,
          0,
        );
        assert.equal(
          report.model.parameterCount,
          golden.totalParameters - notExported,
          "the model's parameters as PyTorch counts them (BEiT's folded attention constants counted as its parameters)",
        );
        report.blocks.forEach((block, b) => {
          assert.deepEqual(block.modules, golden.modules[b], `module names of block ${b}`);
          for (const component of GOLDEN_COMPONENTS)
            assert.deepEqual([...block.components[component].parameters].sort(), [...golden.parameters[b][component].names].sort(), `parameters of block ${b} ${component}`);
        });
        assert.equal(report.model.architecture.family?.family, FAMILY_NAMES[golden.model], 'the family discovery recognised');
        // A plain ViT (the shape-scaled one) is measured as the paper says; every family says what it adds.
        if (FAMILY_NAMES[golden.model] !== 'plain ViT') assert.ok(report.model.architecture.family.measured.length > 1, 'what is measured beyond the plain ViT is stated');
        const extras = report.model.architecture.extraParameters;
        // A report lists parameters of no component, with their rule, only for a model that has some.
        assert.equal(extras?.rule, golden.extraParameters.length > 0 ? EXTRA_PARAMETER_RULE : undefined);
        assert.deepEqual(
          (extras?.parameters ?? []).map(({ name, block, follows }) => ({ name, block, follows })),
          golden.extraParameters,
          'parameters of no component, with their block and the component they follow',
        );
      });
    }
  }
});

/** Per block and head (golden of a rotary family): the logits' bilinear-form norms, see family_dinov3.rotary_score_norms. */
type RotaryScoreNorms = { paper: number; largestPair: number; bound: number }[][];

describe("rotary attention's data-free MHA bound covers every rotated pair of tokens", () => {
  for (const golden of familyGoldens()) {
    const norms = (golden as Golden & { rotaryScoreNorms?: RotaryScoreNorms }).rotaryScoreNorms;
    if (!norms) continue;
    test(golden.model, async () => {
      const report = await supervisor.analyze({
        modelPath: path.join(FAMILIES, golden.model),
        mode: 'isolated',
        executionProvider: 'cpu',
        reference: PAIRS.reference,
        target: PAIRS.target,
        seed: 0,
      });
      norms.forEach((heads, b) => {
        const mha = report.bounds!.blocks[b].MHA!;
        assert.equal(mha.detail.rotaryScoreNorm, 1, 'the bound says it takes the rotary score norm');
        heads.forEach(({ paper, largestPair, bound }, h) => {
          const used = mha.detail[`head${h}.score`];
          assert.ok(relativeError(used, bound) < 1e-4, `block ${b} head ${h}: score norm ${used} vs ||W_Q^h|| ||W_K^h|| / sqrt(dh) = ${bound}`);
          assert.ok(used >= largestPair * (1 - 1e-4), `block ${b} head ${h}: ${used} bounds the largest rotated form ${largestPair}`);
          // Why the paper's ||A_h|| is not used: a rotated pair's form exceeds it in this model.
          assert.ok(largestPair > paper, `block ${b} head ${h}: rotated form ${largestPair} > ||A_h|| ${paper}`);
        });
        const measured = report.blocks[b].components.MHA.mean;
        assert.ok(measured <= mha.bound, `block ${b}: measured MHA ${measured} within the bound ${mha.bound}`);
      });
    });
  }
});

describe('a rotary model whose exporter folded its tables into constants measures the same', () => {
  test('hf_dinov3_op17_dyn.onnx with its cos and sin tables as initializers, both modes', async () => {
    const golden = familyGoldens().find((candidate) => candidate.model === 'hf_dinov3_op17_dyn.onnx')!;
    const source = path.join(FAMILIES, golden.model);
    const model = readOnnxModel(source);
    const rotary = discoverVit(model).blocks[0].attention.rotary!;
    // The tables the model's own nodes compute (the probe's tables model), cos then sin as the rotation reads them.
    const tables = await runOnce(buildInContextProbe(model, discoverVit(model)).precompute![0], { provider: 'cpu', externalDataFolder: model.dataFolder });
    const [cos, sin] = [tables.rotary_table_0, tables.rotary_table_1];
    assert.deepEqual([...cos.dims], [16, 8]);
    // HF's DINOv3 tables: patch centres (y, x) in [-1, 1] on the 4 x 4 grid, frequencies 100^-(4i/dh) = 1, 0.1, angles 2π c f, tiled twice.
    for (let patch = 0; patch < 16; patch++) {
      const centre = [Math.floor(patch / 4), patch % 4].map((index) => (2 * (index + 0.5)) / 4 - 1);
      const angles = centre.flatMap((c) => [1, 0.1].map((frequency) => 2 * Math.PI * c * frequency));
      [...angles, ...angles].forEach((angle, f) => {
        assert.ok(Math.abs((cos.data as Float32Array)[patch * 8 + f] - Math.cos(angle)) < 1e-6, `cos[${patch}, ${f}]`);
        assert.ok(Math.abs((sin.data as Float32Array)[patch * 8 + f] - Math.sin(angle)) < 1e-6, `sin[${patch}, ${f}]`);
      });
    }
    const file = path.join(tempDir('rotary-constants'), 'hf_dinov3_constant_tables.onnx');
    writeReplacedNodesModel(source, file, (builder, node) => {
      const table = node.outputs[0] === rotary.cos ? cos : node.outputs[0] === rotary.sin ? sin : undefined;
      if (table) builder.floatConstantNamed(node.outputs[0], table.data as Float32Array, [...table.dims]);
      return table !== undefined;
    });
    const folded = discoverVit(readOnnxModel(file));
    assert.ok(folded.graph.constant(folded.blocks[0].attention.rotary!.cos), 'the tables are constants of the rewritten file');
    for (const mode of ['isolated', 'in-context'] as MeasureMode[]) {
      const report = await supervisor.analyze({ modelPath: file, mode, executionProvider: 'cpu', reference: PAIRS.reference, target: PAIRS.target, seed: 0 });
      const worst = worstDifference(report, golden, mode);
      assert.ok(worst < 1e-4, `${mode}: worst relative difference ${worst.toExponential(2)}`);
    }
  });
});

describe('a rotary model that rotates every token, the prefix by identity rows, measures the same', () => {
  for (const layout of ['heads-first', 'tokens-first'] as const) {
    test(`hf_dinov3_op17_dyn.onnx with q and k rotated whole, ${layout} (no prefix split, the half width a constant)`, async () => {
      const golden = familyGoldens().find((candidate) => candidate.model === 'hf_dinov3_op17_dyn.onnx')!;
      const source = path.join(FAMILIES, golden.model);
      const rotary = discoverVit(readOnnxModel(source)).blocks[0].attention.rotary!;
      const file = path.join(tempDir('rotary-whole'), `hf_dinov3_whole_rotation_${layout}.onnx`);
      let padded: { cos: string; sin: string } | undefined;
      writeReplacedNodesModel(source, file, (builder, node) => {
        const match = /^\/layer\.\d+\/attention\/Concat_(5|6)$/.exec(node.name);
        if (!match) return false;
        // The 5 prefix tokens get rows cos = 1, sin = 0: x ⊙ 1 + rotate_half(x) ⊙ 0 = x, as unrotated;
        // [21, 8] against heads [batch, heads, 21, 8], [21, 1, 8] against [batch, 21, heads, 8].
        const shape = builder.intConstant(layout === 'heads-first' ? [21, 8] : [21, 1, 8]);
        const pad = (filler: number, table: string) =>
          builder.op('Reshape', [builder.op('Concat', [builder.floatConstant(new Float32Array(40).fill(filler), [5, 8], 'pad'), table], { axis: 0 }), shape]);
        padded ??= { cos: pad(1, rotary.cos), sin: pad(0, rotary.sin) };
        const suffix = match[1] === '5' ? '' : '_1';
        const tensor = (name: string) => node.name.replace(/Concat_(5|6)$/, `${name}${suffix}_output_0`);
        const heads = layout === 'heads-first' ? tensor('Transpose') : tensor('Reshape');
        const half = (start: number, end: number) => builder.op('Slice', [heads, builder.intConstant([start]), builder.intConstant([end]), builder.intConstant([-1])]);
        const rotatedHalf = builder.op('Concat', [builder.op('Neg', [half(4, 8)]), half(0, 4)], { axis: -1 });
        const rotated = builder.op('Add', [builder.op('Mul', [heads, padded.cos]), builder.op('Mul', [rotatedHalf, padded.sin])]);
        builder.op(layout === 'heads-first' ? 'Identity' : 'Transpose', [rotated], layout === 'heads-first' ? {} : { perm: [0, 2, 1, 3] }, node.outputs[0]);
        return true;
      });
      const whole = discoverVit(readOnnxModel(file)).blocks[0].attention.rotary!;
      assert.deepEqual({ layout: whole.layout, prefixUnrotated: whole.prefixUnrotated }, { layout, prefixUnrotated: false });
      for (const mode of ['isolated', 'in-context'] as MeasureMode[]) {
        const report = await supervisor.analyze({ modelPath: file, mode, executionProvider: 'cpu', reference: PAIRS.reference, target: PAIRS.target, seed: 0 });
        const worst = worstDifference(report, golden, mode);
        assert.ok(worst < 1e-4, `${mode}: worst relative difference ${worst.toExponential(2)}`);
      }
    });
  }
});

describe('a rotary model written with Split (torch.split of static sizes, chunk) measures the same', () => {
  test('hf_dinov3_op17_dyn.onnx with the prefix and the halves split off by Split nodes', async () => {
    const golden = familyGoldens().find((candidate) => candidate.model === 'hf_dinov3_op17_dyn.onnx')!;
    const source = path.join(FAMILIES, golden.model);
    const file = path.join(tempDir('rotary-split'), 'hf_dinov3_split.onnx');
    // In each attention: Slice / Slice_1 (q's prefix and patches), Slice_2 / Slice_3 (k's); Slice_4 / Slice_5 and Slice_6 / Slice_7 (q's and k's halves, second then first).
    const pairs: Record<string, { with: string; axis: number; sizes?: number[]; order: 'first-second' | 'second-first' }> = {
      Slice: { with: 'Slice_1', axis: -2, sizes: [5, 16], order: 'first-second' },
      Slice_2: { with: 'Slice_3', axis: -2, sizes: [5, 16], order: 'first-second' },
      Slice_4: { with: 'Slice_5', axis: -1, order: 'second-first' },
      Slice_6: { with: 'Slice_7', axis: -1, order: 'second-first' },
    };
    const partners = new Set(Object.values(pairs).map((pair) => pair.with));
    writeReplacedNodesModel(source, file, (builder, node) => {
      const match = /^(\/layer\.\d+\/attention\/)(Slice(_\d)?)$/.exec(node.name);
      if (!match) return false;
      if (partners.has(match[2])) return true; // written with its pair's Split
      const pair = pairs[match[2]];
      const partner = `${match[1]}${pair.with}_output_0`;
      const outputs = pair.order === 'first-second' ? [node.outputs[0], partner] : [partner, node.outputs[0]];
      const inputs = pair.sizes ? [node.inputs[0], builder.intConstant(pair.sizes)] : [node.inputs[0]];
      builder.node('Split', inputs, outputs, { axis: pair.axis });
      return true;
    });
    const structure = discoverVit(readOnnxModel(file));
    assert.equal(structure.blocks[0].attention.rotary?.prefixUnrotated, true);
    for (const mode of ['isolated', 'in-context'] as MeasureMode[]) {
      const report = await supervisor.analyze({ modelPath: file, mode, executionProvider: 'cpu', reference: PAIRS.reference, target: PAIRS.target, seed: 0 });
      const worst = worstDifference(report, golden, mode);
      assert.ok(worst < 1e-4, `${mode}: worst relative difference ${worst.toExponential(2)}`);
    }
  });
});

describe('the command line lists the parameters of no component and freeze plans assign them by the rule', () => {
  for (const golden of familyGoldens()) {
    test(golden.model, async () => {
      const dir = tempDir('family');
      const reportFile = path.join(dir, 'report.json');
      const analyzed = await runCli(['analyze', path.join(FAMILIES, golden.model), '--reference', PAIRS.reference, '--target', PAIRS.target, '--ep', 'cpu', '--json', reportFile]);
      assert.equal(analyzed.code, 0, analyzed.stderr);
      const hasExtras = golden.extraParameters.length > 0;
      assert.equal(/^Extra +not in any component: /m.test(analyzed.stdout), hasExtras, 'the parameters of no component are listed when the model has any');
      assert.equal(analyzed.stdout.includes(EXTRA_PARAMETER_RULE), hasExtras, 'the rule is printed with the table when it applies');
      const report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as PlasticityReport;
      assert.ok(worstDifference(report, golden, 'isolated') < 1e-4);
      const cases: { id: string; style: string; pytorch: string; peft: string; trainable: string[] }[] = [];
      for (const types of [2, 4]) {
        const planFile = path.join(dir, `plan-${types}.json`);
        const recommended = await runCli(['recommend', reportFile, '--types', String(types), '--out', planFile]);
        assert.equal(recommended.code, 0, recommended.stderr);
        assert.equal(recommended.stdout.includes(EXTRA_PARAMETER_RULE), hasExtras, 'the rule is printed with the plan when it applies');
        const plan = JSON.parse(fs.readFileSync(planFile, 'utf8')) as {
          choices: { component: string }[];
          trainable: { role: string; modules: string[] }[];
          trainableParameters: string[];
          notes: string[];
        };
        assert.equal(plan.notes.includes(EXTRA_PARAMETER_RULE), hasExtras);
        const chosen = new Set(plan.choices.map((choice) => choice.component));
        for (const extra of report.model.architecture.extraParameters?.parameters ?? []) {
          if (extra.kind === 'pooling head') {
            assert.ok(
              plan.trainable.some((group) => group.role === 'head' && group.modules.includes(extra.name)),
              `the pooling head ${extra.name} is trained as the head`,
            );
            continue;
          }
          const trained = extra.follows !== null && chosen.has(extra.follows);
          assert.equal(plan.trainableParameters.includes(extra.name), trained, `${extra.name} (follows ${extra.follows ?? 'the embedding'}) with ${[...chosen].join(', ')} chosen`);
        }
        const exports = { pytorch: path.join(dir, `plan_${types}_freeze.py`), peft: path.join(dir, `plan_${types}_peft.py`) };
        for (const format of ['pytorch', 'peft'] as const) {
          const written = await runCli(['recommend', reportFile, '--types', String(types), '--format', format, '--out', exports[format]]);
          assert.equal(written.code, 0, written.stderr);
        }
        cases.push({ id: `${golden.style}-${types}`, style: golden.style, ...exports, trainable: plan.trainableParameters });
      }
      if (!python) return;
      // The real PyTorch model the fixture came from takes the exports: exactly the plan is trainable.
      const manifest = path.join(dir, 'manifest.json');
      fs.writeFileSync(manifest, JSON.stringify({ cases }));
      const checks = runPythonHelper<{ id: string; requiresGrad: string[]; applyError?: string; peft: Record<string, string[]> }[]>(
        python,
        'check_freeze_exports.py',
        [manifest],
        120_000,
      );
      for (const [index, check] of checks.entries()) {
        assert.equal(check.applyError, undefined, check.id);
        assert.deepEqual([...check.requiresGrad].sort(), [...cases[index].trainable].sort(), `${check.id}: apply(model) trains exactly the plan`);
        assert.deepEqual(
          [...check.peft.missingTargets, ...check.peft.nonLinearTargets, ...check.peft.missingModulesToSave, ...check.peft.missingTrainableParameters],
          [],
          `${check.id}: PEFT names exist`,
        );
      }
    });
  }
});
