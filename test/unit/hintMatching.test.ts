// Inline hints: which module a line of Python, JSON, YAML or TOML names, for every framework's
// naming (on reports built from the fixtures' PyTorch names), what must not match, and the text
// the hint and its hover show.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PlasticityReport } from '../../extension/core/report/reportSchema';
import { ComponentName } from '../../extension/core/vocabulary';
import { escapeMarkdown, formatPlasticity, hintText, hoverMarkdown, openReportCommandLink } from '../../extension/hints/hintText';
import { buildModuleIndex, matchLine, matchLines, ModuleIndex, ModuleMatch, moduleListLines, strongestMatch } from '../../extension/hints/moduleMatcher';
import { goldenByStyle, reportFromGolden } from '../support/goldenReports';

const goldens = goldenByStyle();
const reportOf = (style: string, overrides = {}) => reportFromGolden(goldens.get(style)!, overrides);
const indexes = new Map<string, ModuleIndex>([...goldens.keys()].map((style) => [style, buildModuleIndex(reportOf(style))]));

/** Matches of a line, as "component@block" / "component" with the matched text. */
function found(style: string, line: string, inModuleList = false): string[] {
  return matchLine(line, indexes.get(style)!, inModuleList).map((match) => describeMatch(line, match));
}

function describeMatch(line: string, match: ModuleMatch): string {
  const what = match.kind === 'cell' ? `${match.component}@${match.block}` : match.component;
  return `${what} ${line.slice(match.start, match.end)}`;
}

// The fixture models have three blocks (0 to 2).
describe('timm names', () => {
  const cases: [string, string[]][] = [
    ['model.blocks[2].attn.qkv.weight.requires_grad = False', ['MHA@2 blocks[2].attn.qkv.weight.requires_grad']],
    ['for p in model.blocks[1].mlp.fc2.parameters():', ['FC2@1 blocks[1].mlp.fc2.parameters']],
    ['    "blocks.2.norm1": {"lr": 1e-4},', ['LN1@2 blocks.2.norm1']],
    ['  - blocks.0.mlp.fc1', ['FC1@0 blocks.0.mlp.fc1']],
    ['modules = ["mlp.fc1"]', ['FC1 mlp.fc1']],
    ['target_modules=["qkv", "proj"]', ['MHA qkv', 'MHA proj']],
    ['state_dict["blocks.1.norm2.weight"] = w', ['LN2@1 blocks.1.norm2.weight']],
    ['name = f"blocks.{i}.attn"', ['MHA attn']],
    ['blocks.*.mlp.fc2: 1e-3', ['FC2 mlp.fc2']],
    ['block = model.blocks[i].norm2', ['LN2 norm2']],
    ['x = x + self.drop_path(self.attn(self.norm1(x)))', ['LN1 norm1']],
    ['self.qkv = nn.Linear(dim, dim * 3)', ['MHA qkv']],
  ];
  for (const [line, expected] of cases) test(line, () => assert.deepEqual(found('timm', line), expected));

  test('the distilled DeiT export uses the same names', () => {
    assert.deepEqual(found('deit_distilled', 'model.blocks[0].attn.proj'), ['MHA@0 blocks[0].attn.proj']);
  });
});

describe('Hugging Face ViT names', () => {
  const cases: [string, string[]][] = [
    ['model.vit.encoder.layer[2].attention.attention.query.weight', ['MHA@2 layer[2].attention.attention.query.weight']],
    ['"encoder.layer.1.attention.output.dense"', ['MHA@1 layer.1.attention.output.dense']],
    ['"encoder.layer.1.output.dense"', ['FC2@1 layer.1.output.dense']],
    ['encoder.layer[0].intermediate', ['FC1@0 layer[0].intermediate']],
    ['vit.encoder.layer.0.layernorm_after.bias', ['LN2@0 layer.0.layernorm_after.bias']],
    ['config = LoraConfig(r=8, target_modules=["query", "value"])', ['MHA query', 'MHA value']],
    ['"target_modules": ["query", "key", "value"],', ['MHA query', 'MHA key', 'MHA value']],
    ['target_modules: [query, value]', ['MHA query', 'MHA value']],
    ['modules_to_save = ["output.dense", "attention.output.dense"]', ['FC2 output.dense', 'MHA attention.output.dense']],
    ['norm = self.layernorm_before(hidden_states)', ['LN1 layernorm_before']],
    ['target_modules=["dense"]', []], // dense is in MHA, FC1 and FC2: it names no one component
    ['trainable = ["query", "value"]  # a list of quoted names, whatever its key', ['MHA query', 'MHA value']],
    ['  - "key"', ['MHA key']],
  ];
  for (const [line, expected] of cases) test(line, () => assert.deepEqual(found('hf_vit', line), expected));

  test('a multi-line Python list after target_modules', () => {
    const lines = ['config = LoraConfig(', '    target_modules=[', '        "query",', '        value,', '    ],', '    key=value,', ')'];
    const matches = matchLines(lines, indexes.get('hf_vit')!).map((line, at) => line.map((match) => describeMatch(lines[at], match)));
    assert.deepEqual(matches, [[], [], ['MHA query'], ['MHA value'], [], [], []]);
  });

  test('a YAML block list under target_modules', () => {
    const lines = ['lora:', '  r: 8', '  target_modules:', '    - query', '', '    - value  # values too', '  lora_alpha: 16', 'value: 3'];
    assert.deepEqual(moduleListLines(lines), [false, false, false, true, true, true, false, false]);
    const matches = matchLines(lines, indexes.get('hf_vit')!).map((line) => line.map((match) => match.component));
    assert.deepEqual(matches, [[], [], [], ['MHA'], [], ['MHA'], [], []]);
  });

  test('a TOML array across lines', () => {
    const lines = ['[tool.finetune]', 'target_modules = [', '  "query",', '  "intermediate.dense",', ']', 'value = 1'];
    const matches = matchLines(lines, indexes.get('hf_vit')!).map((line) => line.map((match) => match.component));
    assert.deepEqual(matches, [[], [], ['MHA'], ['FC1'], [], []]);
  });
});

describe('torchvision names', () => {
  const cases: [string, string[]][] = [
    ['model.encoder.layers.encoder_layer_2.mlp[3].weight', ['FC2@2 layers.encoder_layer_2.mlp[3].weight']],
    ['model.encoder.layers[0].self_attention.out_proj', ['MHA@0 layers[0].self_attention.out_proj']],
    ['"encoder.layers.encoder_layer_1.ln_2"', ['LN2@1 layers.encoder_layer_1.ln_2']],
    // torchvision before MLPBlock became a Sequential (state dicts with these names still load)
    ['"encoder.layers.encoder_layer_1.mlp.linear_1"', ['FC1@1 layers.encoder_layer_1.mlp.linear_1']],
    ['modules: ["mlp.0", "ln_1", "self_attention"]', ['FC1 mlp.0', 'LN1 ln_1', 'MHA self_attention']],
  ];
  for (const [line, expected] of cases) test(line, () => assert.deepEqual(found('torchvision', line), expected));
});

describe('OpenAI CLIP names', () => {
  const cases: [string, string[]][] = [
    ['transformer.resblocks.2.mlp.c_fc', ['FC1@2 resblocks.2.mlp.c_fc']],
    ['model.visual.transformer.resblocks[1].attn.out_proj.weight', ['MHA@1 resblocks[1].attn.out_proj.weight']],
    ['x = self.c_proj(self.gelu(self.c_fc(x)))', ['FC2 c_proj', 'FC1 c_fc']],
    ['  - ln_2', ['LN2 ln_2']],
  ];
  for (const [line, expected] of cases) test(line, () => assert.deepEqual(found('openai_clip', line), expected));
});

describe('Hugging Face CLIP names', () => {
  const cases: [string, string[]][] = [
    ['"vision_model.encoder.layers.2.self_attn"', ['MHA@2 layers.2.self_attn']],
    ['model.vision_model.encoder.layers[1].layer_norm2', ['LN2@1 layers[1].layer_norm2']],
    ['target_modules=["q_proj", "v_proj"]', ['MHA q_proj', 'MHA v_proj']],
    ['hidden = self.mlp.fc1(hidden)', ['FC1 mlp.fc1']],
    ['encoder.layers[0].mlp.fc2', ['FC2@0 layers[0].mlp.fc2']],
  ];
  for (const [line, expected] of cases) test(line, () => assert.deepEqual(found('hf_clip', line), expected));
});

describe("other frameworks' names for the same architecture", () => {
  test('a timm model is also found under its Hugging Face, torchvision, CLIP and HF CLIP names', () => {
    assert.deepEqual(found('timm', 'vit.encoder.layer[1].attention'), ['MHA@1 layer[1].attention']);
    assert.deepEqual(found('timm', 'encoder.layers.encoder_layer_0.mlp.0'), ['FC1@0 layers.encoder_layer_0.mlp.0']);
    assert.deepEqual(found('timm', 'transformer.resblocks.2.ln_1'), ['LN1@2 resblocks.2.ln_1']);
    assert.deepEqual(found('timm', 'vision_model.encoder.layers.2.self_attn.q_proj'), ['MHA@2 layers.2.self_attn.q_proj']);
    assert.deepEqual(found('timm', 'target_modules=["query", "c_fc"]'), ['MHA query', 'FC1 c_fc']);
  });

  test('a model without a known naming is found under its own names only', () => {
    const report = reportOf('timm');
    report.model.architecture.naming = 'generic';
    const index = buildModuleIndex(report);
    assert.deepEqual(
      matchLine('"blocks.1.attn"', index).map((match) => `${match.component}@${match.block}`),
      ['MHA@1'],
    );
    assert.deepEqual(matchLine('"encoder.layer.1.attention"', index), []);
    assert.deepEqual(
      matchLine('target_modules=["query", "qkv"]', index).map((match) => match.component),
      ['MHA'],
    );
  });

  test('names that do not follow the detected framework are not mapped to other frameworks', () => {
    const report = reportOf('timm');
    for (const block of report.blocks) block.modules.MHA = `${block.module}.attention_module`;
    const index = buildModuleIndex(report);
    assert.deepEqual(
      matchLine('model.blocks[1].attention_module', index).map((match) => `${match.component}@${match.block}`),
      ['MHA@1'],
    );
    assert.deepEqual(matchLine('model.blocks[1].attn', index), []);
    assert.deepEqual(matchLine('vit.encoder.layer[1].attention', index), []);
  });
});

describe('what does not match', () => {
  const negatives: [string, string][] = [
    ['timm', 'self.fc1_drop = nn.Dropout(p)'],
    ['timm', 'my_qkv = norm1x + prefc2'],
    ['timm', 'model.blocks[7].attn'], // the model has 3 blocks
    ['timm', 'model.blocks[2].ls1.gamma'], // a block's part that is no component
    ['timm', 'model.blocks[2].norm1x'],
    ['timm', 'x = model.blocks[2]'],
    ['timm', 'model.blocks[2].mlp'], // FC1 or FC2
    ['timm', 'attn = attn.softmax(dim=-1)'], // a generic word outside a module list
    ['timm', 'x = self.proj(x)'],
    ['hf_vit', 'for key, value in config.items():'],
    ['hf_vit', 'return d["value"]'], // a subscript, not a list
    ['hf_vit', 'setattr(cfg, "value", 3)'],
    ['hf_vit', '{"key": "query", "value": 1}'], // JSON keys and values, not list elements
    ['hf_vit', 'the query, key and value projections'],
    ['hf_vit', 'output = self.output(hidden)'],
    ['openai_clip', 'model.transformer.resblocks[3].attn'],
  ];
  for (const [style, line] of negatives) test(`${style}: ${line}`, () => assert.deepEqual(found(style, line), []));
});

describe('comments are matched like code', () => {
  test('a module named in a comment gets its hint', () => {
    assert.deepEqual(found('timm', '# blocks.2.attn is the most plastic, so train it'), ['MHA@2 blocks.2.attn']);
    assert.deepEqual(found('timm', 'x = x  # fc1 first'), ['FC1 fc1']);
  });
  test('prose in a comment does not match generic words', () => {
    assert.deepEqual(found('hf_vit', '# freeze the query and value projections'), []);
  });
});

describe('the hint of a line', () => {
  test('the first cell beats an earlier type', () => {
    const line = '["mlp.fc1", "blocks.2.attn", "blocks.1.norm1"]';
    const matches = matchLine(line, indexes.get('timm')!);
    assert.equal(matches.length, 3);
    assert.equal(describeMatch(line, strongestMatch(matches)!), 'MHA@2 blocks.2.attn');
    assert.equal(strongestMatch([]), undefined);
  });
});

/** A timm report whose block 2 has the given means (LN1, MHA, LN2, FC1, FC2), the other blocks 1 to 5. */
function reportWithBlock2(means: number[], overrides: { synthetic?: boolean; mode?: 'isolated' | 'in-context' } = {}): PlasticityReport {
  return reportOf('timm', { ...overrides, means: [[1, 2, 3, 4, 5], [1, 2, 3, 4, 5], means] });
}

describe('hint text', () => {
  const cell = (block: number, component: ComponentName): ModuleMatch => ({ start: 0, end: 1, block, component, kind: 'cell' });
  const type = (component: ComponentName): ModuleMatch => ({ start: 0, end: 1, component, kind: 'type' });

  test("a cell: component, block, plasticity and rank among the block's components", () => {
    const report = reportWithBlock2([0.8, 7.5234, 0.9, 3.2, 2.1]);
    assert.equal(hintText(cell(2, 'MHA'), report), '← MHA block 2: 7.52 (rank 1/5)');
    assert.equal(hintText(cell(2, 'LN1'), report), '← LN1 block 2: 0.800 (rank 5/5)');
    assert.equal(hintText(cell(0, 'FC2'), report), '← FC2 block 0: 5.00 (rank 1/5)');
    assert.equal(hintText(cell(9, 'FC2'), report), undefined);
  });

  test('a type: mean over blocks and its rank', () => {
    const report = reportWithBlock2([0.8, 7.5234, 0.9, 3.2, 2.1]);
    // FC2: (5 + 5 + 2.1) / 3 = 4.03, the highest mean; MHA: (2 + 2 + 7.5234) / 3 = 3.84, second.
    assert.equal(hintText(type('FC2'), report), '← FC2, mean of 3 blocks: 4.03 (rank 1/5)');
    assert.equal(hintText(type('MHA'), report), '← MHA, mean of 3 blocks: 3.84 (rank 2/5)');
  });

  test('synthetic inputs and the in-context mode are flagged', () => {
    const report = reportWithBlock2([0.8, 7.5234, 0.9, 3.2, 2.1], { synthetic: true, mode: 'in-context' });
    assert.equal(hintText(cell(2, 'MHA'), report), '← MHA block 2: 7.52 (rank 1/5) · synthetic inputs · in-context');
  });

  test('numbers keep three significant digits', () => {
    assert.deepEqual([7.5234, 15.27, 0.05123, 1234.4, 0.0001234, 0].map(formatPlasticity), ['7.52', '15.3', '0.0512', '1234', '1.23e-4', '0.00']);
  });
});

describe('hover', () => {
  const report = reportWithBlock2([0.8, 7.5234, 0.9, 3.2, 2.1]);
  const link = openReportCommandLink({ $mid: 1, scheme: 'file', path: '/models/my_vit.onnx' });

  test("a cell: every block's numbers for the component, its block in bold, a link to the report", () => {
    const markdown = hoverMarkdown({ start: 0, end: 1, block: 2, component: 'MHA', kind: 'cell' }, report, 'my_vit.onnx', link);
    const lines = markdown.split('\n');
    assert.equal(lines[0], '**Plasticity Lens: MHA, block 2** in my\\_vit\\.onnx');
    assert.ok(lines.includes('Plasticity 7.52, rank 1 of 5 in this block.'));
    assert.ok(lines.includes('| block | mean | 95% interval |'));
    assert.equal(lines.filter((line) => line.startsWith('| ') && !line.startsWith('| block')).length, 3);
    const ci = report.blocks[2].components.MHA.ci95;
    assert.ok(lines.includes(`| **2** | **7.52** | **${formatPlasticity(ci[0])} to ${formatPlasticity(ci[1])}** |`));
    assert.ok(lines.includes('| 0 | 2.00 | ' + `${formatPlasticity(report.blocks[0].components.MHA.ci95[0])} to ${formatPlasticity(report.blocks[0].components.MHA.ci95[1])} |`));
    assert.match(lines.at(-1)!, /\[Open report\]\(command:plasticityLens\.showReport\?%5B%7B%22%24mid%22%3A1.*%5D\)$/);
  });

  test('the command link carries the model as its only argument', () => {
    const query = link.slice('command:plasticityLens.showReport?'.length);
    assert.deepEqual(JSON.parse(decodeURIComponent(query)), [{ $mid: 1, scheme: 'file', path: '/models/my_vit.onnx' }]);
  });

  test('a type: no block in bold, and the rank over blocks', () => {
    const markdown = hoverMarkdown({ start: 0, end: 1, component: 'FC2', kind: 'type' }, report, 'vit.onnx', link);
    assert.ok(markdown.startsWith('**Plasticity Lens: FC2 (all blocks)**'));
    assert.ok(markdown.includes('FC2 over all blocks: mean 4.03, rank 1 of 5'));
    assert.ok(!markdown.includes('| **'));
  });

  test('file names are escaped for Markdown', () => {
    assert.equal(escapeMarkdown('a_b*[c].onnx'), 'a\\_b\\*\\[c\\]\\.onnx');
  });
});
