// Finds where a line of Python or config names a module of an analysed ViT, for the inline hints.
// Pure (no vscode) so that every naming style is unit-tested; it runs on every debounced edit, so
// the index is built once per report and a line costs one scan plus map lookups.
//
// Rules, in order of strength:
// - Cell: a block container, an index and a component path, e.g. `model.blocks[3].attn`,
//   "encoder.layer.3.attention", `transformer.resblocks.2.mlp.c_fc`. Anything before the container
//   (`model.`, `vit.`, `self.backbone.`) and after the component (`.qkv.weight`) is allowed, so
//   only the container word must agree with the model's names. Indexes are normalised: `[3]`,
//   `.3` and torchvision's `encoder_layer_3` are the same. An index the report lacks matches nothing.
// - Type: a component path without a block, e.g. `mlp.fc1`, `norm1`, `qkv`, `c_fc`; the longest
//   known path wins, so "attention.output.dense" is MHA and "output.dense" is FC2.
// - Generic words (query, key, value, proj, attn, ...) name a component only where a list of module
//   names is expected: after a key like `target_modules` / `modules_to_save` (same line, or the
//   lines of a bracket list or YAML block list it opens), as a quoted list element
//   (`["query", "value"]`, not `d["value"]` nor `f(x="value")`), or after a block with a variable
//   index (`blocks[i].attn`). Elsewhere `value` or `key` is just a word.
// - Whole identifiers only: `fc1_drop`, `my_qkv` or `norm1x` never match.
// - Comments are matched like code: a note saying `# blocks.3.attn` refers to that module, and
//   prose words stay unmatched by the generic-word rule.
import { NAMING_TEMPLATES, resolveNaming } from '../core/recommend/frameworkNaming';
import { PlasticityReport } from '../core/report/reportSchema';
import { modulesOfComponent } from '../core/vit/moduleNames';
import { COMPONENTS, ComponentName } from '../core/vocabulary';

export interface ModuleMatch {
  /** Offsets in the line: from the block container (cells) or the component path (types) to the end of the dotted name. */
  start: number;
  end: number;
  /** The block's index, for cells. */
  block?: number;
  component: ComponentName;
  kind: 'cell' | 'type';
}

export interface ModuleIndex {
  /** "container.index.componentPath" (normalised segments) → component, e.g. "blocks.3.attn" → MHA. */
  readonly cells: ReadonlyMap<string, ComponentName>;
  /** Same keys cut short where the prefix belongs to one component only ("layer.3.intermediate" → FC1). */
  readonly cellPrefixes: ReadonlyMap<string, ComponentName>;
  /** Component paths without a block ("mlp.fc1", "qkv", "attention.output.dense") → component. */
  readonly types: ReadonlyMap<string, ComponentName>;
  /** Segment count of the longest component path, to bound lookups. */
  readonly longestPath: number;
  /** Segments that hold blocks ("blocks", "layer", "layers", "resblocks"). */
  readonly containers: ReadonlySet<string>;
  /** First segments of the type keys: most names in code start with none of them. */
  readonly typeStarts: ReadonlySet<string>;
  /** Finds a container or type start as a whole word: a line without one cannot match. */
  readonly worthScanning: RegExp;
}

/** Words too common in code to mean a module outside a list of module names. */
const GENERIC_WORDS = new Set(['query', 'key', 'value', 'attn', 'attention', 'proj', 'output', 'dense', 'intermediate', 'mlp', 'norm', 'linear', 'fc', 'layer', 'block']);

/**
 * Names older torchvision releases used for the MLP's linears (before MLPBlock became an
 * nn.Sequential); their state dicts are still loaded, so code may use either.
 */
const LEGACY_COMPONENT_PATHS: Record<string, string[]> = { 'mlp.0': ['mlp.linear_1'], 'mlp.3': ['mlp.linear_2'] };

/** A segment standing for an index that is not a literal number (`blocks[i]`, `{i}`, `*`). */
const ANY_INDEX = '*';
const INDEXED_SEGMENT = /^(?:encoder_layer|layer|block|resblock)_(\d+)$/;

function normaliseSegment(segment: string): string {
  const indexed = INDEXED_SEGMENT.exec(segment);
  return indexed ? indexed[1] : segment;
}

/** A dotted module name as normalised segments ("encoder.layers.encoder_layer_3.ln_1" → encoder, layers, 3, ln_1). */
function segmentsOf(moduleName: string): string[] {
  return moduleName
    .replace(/\[(\d+)\]/g, '.$1')
    .split('.')
    .filter((segment) => segment.length > 0)
    .map(normaliseSegment);
}

const isNumber = (segment: string) => /^\d+$/.test(segment);

/** One naming's names for a block: where its index sits and each component's paths below it. */
interface BlockNames {
  index: number;
  /** The segment just before the index ("blocks", "layer", "layers", "resblocks"). */
  container: string;
  /** Per component: its own path relative to the block, then its submodules' paths. */
  paths: { component: ComponentName; path: string[]; own: boolean }[];
}

/** Module paths (relative to `module`) of a component's parameters: "qkv" for "blocks.0.attn.qkv.weight". */
function submodulePaths(module: string, parameters: readonly string[]): string[] {
  const paths = parameters
    .filter((parameter) => parameter.startsWith(`${module}.`))
    .map((parameter) => {
      const relative = parameter.slice(module.length + 1);
      return relative.slice(0, Math.max(0, relative.lastIndexOf('.')));
    })
    .filter((path) => path.length > 0 && !path.includes('::'));
  return [...new Set(paths)];
}

interface CellModule {
  module: string;
  parameters: readonly string[];
}

function perComponent(cellOf: (component: ComponentName) => CellModule): Record<ComponentName, CellModule> {
  const cells = {} as Record<ComponentName, CellModule>;
  for (const component of COMPONENTS) cells[component] = cellOf(component);
  return cells;
}

function blockNames(index: number, blockModule: string, cells: Record<ComponentName, CellModule>): BlockNames | undefined {
  const blockSegments = segmentsOf(blockModule);
  const at = blockSegments.lastIndexOf(String(index));
  // Without a numbered container the block cannot be told apart from its neighbours.
  if (at < 1) return undefined;
  const paths: BlockNames['paths'] = [];
  for (const component of COMPONENTS) {
    // A gated MLP's FC1 ("mlp.{fc1_g,fc1_x}") is named in code by each of its layers.
    for (const module of modulesOfComponent(cells[component].module, cells[component].parameters)) {
      if (!module.startsWith(`${blockModule}.`)) continue;
      const relative = module.slice(blockModule.length + 1);
      for (const path of [relative, ...(LEGACY_COMPONENT_PATHS[relative] ?? [])]) paths.push({ component, path: segmentsOf(path), own: true });
      for (const sub of submodulePaths(module, cells[component].parameters)) paths.push({ component, path: segmentsOf(`${relative}.${sub}`), own: false });
    }
  }
  return { index, container: blockSegments[at - 1], paths };
}

/**
 * True when the report's module names are exactly its detected framework's (up to a prefix such as
 * "vit."), so that the same architecture's names in the other frameworks refer to the same cells.
 */
function followsDetectedFramework(report: PlasticityReport): boolean {
  const own = resolveNaming(report);
  const template = own.template;
  if (!template) return false;
  return report.blocks.every((block) =>
    COMPONENTS.every((component) => block.modules[component] === `${own.root}${template.block.replace('{i}', String(block.index))}.${template.components[component]}`),
  );
}

function allBlockNames(report: PlasticityReport): BlockNames[] {
  const names: (BlockNames | undefined)[] = report.blocks.map((block) =>
    blockNames(
      block.index,
      block.module,
      perComponent((component) => ({ module: block.modules[component], parameters: block.components[component].parameters })),
    ),
  );
  if (followsDetectedFramework(report)) {
    for (const template of Object.values(NAMING_TEMPLATES)) {
      if (template.naming === report.model.architecture.naming) continue;
      const resolved = resolveNaming(report, template.naming);
      for (const block of report.blocks) {
        const blockModule = `${resolved.root}${template.block.replace('{i}', String(block.index))}`;
        names.push(
          blockNames(
            block.index,
            blockModule,
            perComponent((component) => resolved.cell(block.index, component)),
          ),
        );
      }
    }
  }
  return names.filter((entry): entry is BlockNames => entry !== undefined);
}

/** Adds key → component; a key claimed by two components is ambiguous and kept as null. */
function claim(map: Map<string, ComponentName | null>, key: string, component: ComponentName): void {
  const existing = map.get(key);
  if (existing === undefined) map.set(key, component);
  else if (existing !== component) map.set(key, null);
}

function resolved(map: Map<string, ComponentName | null>): Map<string, ComponentName> {
  const out = new Map<string, ComponentName>();
  for (const [key, component] of map) if (component !== null) out.set(key, component);
  return out;
}

export function buildModuleIndex(report: PlasticityReport): ModuleIndex {
  const cells = new Map<string, ComponentName | null>();
  const prefixes = new Map<string, ComponentName | null>();
  const primaryTypes = new Map<string, ComponentName | null>();
  const suffixTypes = new Map<string, ComponentName | null>();
  const containers = new Set<string>();
  let longestPath = 1;
  for (const block of allBlockNames(report)) {
    containers.add(block.container);
    const head = `${block.container}.${block.index}`;
    for (const { component, path, own } of block.paths) {
      longestPath = Math.max(longestPath, path.length);
      claim(cells, `${head}.${path.join('.')}`, component);
      claim(primaryTypes, path.join('.'), component);
      for (let from = 1; from < path.length; from++) if (!isNumber(path[from])) claim(suffixTypes, path.slice(from).join('.'), component);
      if (own) for (let length = 1; length < path.length; length++) claim(prefixes, `${head}.${path.slice(0, length).join('.')}`, component);
    }
  }
  const types = resolved(primaryTypes);
  // A component's own path beats another's suffix ("output.dense" is FC2, not MHA's attention.output.dense).
  for (const [key, component] of resolved(suffixTypes)) if (!primaryTypes.has(key)) types.set(key, component);
  const cellPrefixes = resolved(prefixes);
  for (const key of cells.keys()) cellPrefixes.delete(key);
  const typeStarts = new Set([...types.keys()].map((key) => key.split('.')[0]));
  const words = [...new Set([...containers, ...typeStarts])].map((word) => word.replace(/[^A-Za-z0-9_]/g, '\\$&'));
  const worthScanning = new RegExp(`(?<![A-Za-z0-9_])(?:${words.join('|')})(?![A-Za-z0-9_])`);
  return { cells: resolved(cells), cellPrefixes, types, longestPath, containers, typeStarts, worthScanning };
}

// ---------------------------------------------------------------- scanning a line

interface Segment {
  /** Normalised: a number for any literal index, ANY_INDEX for a variable one. */
  name: string;
  start: number;
  end: number;
}

interface DottedName {
  segments: Segment[];
  start: number;
  end: number;
}

const IDENTIFIER = /[A-Za-z_][A-Za-z0-9_]*/y;
const WORD_PART = /\w+/y;
const PLACEHOLDER = /\{\w{1,40}\}/y;
const SUBSCRIPT = /\[\s*(\d+|-?\d+|[A-Za-z_][A-Za-z0-9_]*|\*)\s*\]/y;

function isIdentifierChar(code: number): boolean {
  return (code >= 97 && code <= 122) || (code >= 65 && code <= 90) || (code >= 48 && code <= 57) || code === 95;
}

/** Letters, `_`, `*` and `{` can start a dotted name. */
function startsDottedName(code: number): boolean {
  return (code >= 97 && code <= 122) || (code >= 65 && code <= 90) || code === 95 || code === 42 || code === 123;
}

function readAt(pattern: RegExp, line: string, at: number): string | undefined {
  pattern.lastIndex = at;
  return pattern.exec(line)?.[0];
}

/**
 * The dotted names in a line: identifiers joined by `.`, `[n]` subscripts, f-string placeholders
 * and `*` wildcards (`model.blocks[3].attn`, `blocks.{i}.attn`, `blocks.*.attn`).
 */
function dottedNames(line: string): DottedName[] {
  const names: DottedName[] = [];
  let at = 0;
  while (at < line.length) {
    const startsName = startsDottedName(line.charCodeAt(at)) && (at === 0 || !isIdentifierChar(line.charCodeAt(at - 1)));
    if (!startsName) {
      at++;
      continue;
    }
    const segments: Segment[] = [];
    let cursor = at;
    const first = readFirstSegment(line, cursor);
    if (!first) {
      at++;
      continue;
    }
    segments.push(first);
    cursor = first.end;
    for (;;) {
      if (line[cursor] === '.') {
        const next = readDottedSegment(line, cursor + 1);
        if (!next) break;
        segments.push(next);
        cursor = next.end;
      } else if (line[cursor] === '[') {
        const subscript = readAt(SUBSCRIPT, line, cursor);
        if (!subscript) break;
        const inner = subscript.slice(1, -1).trim();
        segments.push({ name: isNumber(inner) ? String(Number(inner)) : ANY_INDEX, start: cursor, end: cursor + subscript.length });
        cursor += subscript.length;
      } else break;
    }
    names.push({ segments, start: at, end: cursor });
    at = cursor;
  }
  return names;
}

function readFirstSegment(line: string, at: number): Segment | undefined {
  const identifier = readAt(IDENTIFIER, line, at);
  if (identifier) return { name: normaliseSegment(identifier), start: at, end: at + identifier.length };
  return readWildcard(line, at);
}

function readDottedSegment(line: string, at: number): Segment | undefined {
  const word = readAt(WORD_PART, line, at);
  if (word) return { name: isNumber(word) ? String(Number(word)) : normaliseSegment(word), start: at, end: at + word.length };
  return readWildcard(line, at);
}

function readWildcard(line: string, at: number): Segment | undefined {
  if (line[at] === '*') return { name: ANY_INDEX, start: at, end: at + 1 };
  const placeholder = readAt(PLACEHOLDER, line, at);
  return placeholder ? { name: ANY_INDEX, start: at, end: at + placeholder.length } : undefined;
}

// ---------------------------------------------------------------- where generic words count

/** A key whose value is a list of module names: target_modules, modules_to_save, "modules", ... */
const MODULE_LIST_KEY = /(?<![A-Za-z0-9_])[A-Za-z0-9_]*modules[A-Za-z0-9_]*["']?\s*[:=]/;

/** Where the module-list part of a line starts (after its key), or undefined when the line has none. */
function moduleListStart(line: string): number | undefined {
  if (!line.includes('modules')) return undefined;
  const key = MODULE_LIST_KEY.exec(line);
  return key ? key.index + key[0].length : undefined;
}

/** The innermost bracket left open before `end` on the line, with its offset. */
function enclosingBracket(line: string, end: number): { bracket: string; at: number } | undefined {
  let depth = 0;
  for (let at = end - 1; at >= 0; at--) {
    const char = line[at];
    if (char === ']' || char === ')' || char === '}') depth++;
    else if (char === '[' || char === '(' || char === '{') {
      if (depth === 0) return { bracket: char, at };
      depth--;
    }
  }
  return undefined;
}

/**
 * A quoted string that is a list element: `["query", "value"]`, a line `  "value",` of a list
 * opened above, `- "value"`; not a subscript (`d["value"]`) nor a call's argument (`f(x, "value")`).
 */
function isQuotedListElement(line: string, name: DottedName): boolean {
  const quote = line[name.start - 1];
  if ((quote !== '"' && quote !== "'") || line[name.end] !== quote) return false;
  const after = line.slice(name.end + 1).replace(/^\s+/, '');
  if (!(after === '' || after.startsWith(',') || after.startsWith(']') || after.startsWith('#'))) return false;
  const before = line.slice(0, name.start - 1).replace(/\s+$/, '');
  const enclosing = enclosingBracket(line, name.start - 1);
  if (!enclosing) return before === '' || before.endsWith(',') || /^\s*-$/.test(before);
  if (enclosing.bracket !== '[') return false;
  const beforeBracket = line.slice(0, enclosing.at).replace(/\s+$/, '');
  const subscript = /[A-Za-z0-9_)\]]$/.test(beforeBracket);
  return !subscript && (before.endsWith('[') || before.endsWith(','));
}

// ---------------------------------------------------------------- matching

function cellMatch(name: DottedName, index: ModuleIndex): ModuleMatch | undefined {
  const { segments } = name;
  for (let at = 1; at < segments.length; at++) {
    if (!index.containers.has(segments[at - 1].name) || !isNumber(segments[at].name)) continue;
    const head = `${segments[at - 1].name}.${segments[at].name}`;
    const available = Math.min(index.longestPath, segments.length - at - 1);
    for (let length = available; length >= 1; length--) {
      const key = `${head}.${segments
        .slice(at + 1, at + 1 + length)
        .map((segment) => segment.name)
        .join('.')}`;
      const component = index.cells.get(key) ?? (at + 1 + length === segments.length ? index.cellPrefixes.get(key) : undefined);
      if (component) return { start: segments[at - 1].start, end: name.end, block: Number(segments[at].name), component, kind: 'cell' };
    }
  }
  return undefined;
}

/** True when the segments before `at` are a block with a variable index (`blocks[i]`, `blocks.{i}`, `blocks.*`). */
function followsVariableIndex(segments: Segment[], at: number, index: ModuleIndex): boolean {
  return at >= 2 && segments[at - 1].name === ANY_INDEX && index.containers.has(segments[at - 2].name);
}

/** True when the name holds a literal block index (`blocks.40`): then only a cell may match, not a type. */
function namesLiteralBlock(name: DottedName, index: ModuleIndex): boolean {
  return name.segments.some((segment, at) => at >= 1 && isNumber(segment.name) && index.containers.has(name.segments[at - 1].name));
}

function typeMatch(line: string, name: DottedName, index: ModuleIndex, genericAllowedFrom: number | undefined): ModuleMatch | undefined {
  const { segments } = name;
  for (let at = 0; at < segments.length; at++) {
    if (!index.typeStarts.has(segments[at].name)) continue;
    const available = Math.min(index.longestPath, segments.length - at);
    for (let length = available; length >= 1; length--) {
      const key = segments
        .slice(at, at + length)
        .map((segment) => segment.name)
        .join('.');
      const component = index.types.get(key);
      if (!component) continue;
      const generic = length === 1 && GENERIC_WORDS.has(key);
      const allowed =
        !generic || (genericAllowedFrom !== undefined && name.start >= genericAllowedFrom) || isQuotedListElement(line, name) || followsVariableIndex(segments, at, index);
      if (allowed) return { start: segments[at].start, end: name.end, component, kind: 'type' };
    }
  }
  return undefined;
}

/**
 * The module names in one line. `inModuleList`: the line continues a list of module names opened on
 * an earlier line (see `moduleListLines`), so generic words count anywhere in it.
 */
export function matchLine(line: string, index: ModuleIndex, inModuleList = false): ModuleMatch[] {
  const matches: ModuleMatch[] = [];
  if (!index.worthScanning.test(line)) return matches;
  const genericAllowedFrom = inModuleList ? 0 : moduleListStart(line);
  for (const name of dottedNames(line)) {
    const cell = cellMatch(name, index);
    // A block the report lacks, or a part of a block that is no component (`blocks.3.ls1`), is no type either.
    const match = cell ?? (namesLiteralBlock(name, index) ? undefined : typeMatch(line, name, index, genericAllowedFrom));
    if (match) matches.push(match);
  }
  return matches;
}

const BRACKET_OPEN = /[[({]/g;
const BRACKET_CLOSE = /[\])}]/g;

function bracketBalance(text: string): number {
  return (text.match(BRACKET_OPEN)?.length ?? 0) - (text.match(BRACKET_CLOSE)?.length ?? 0);
}

const indentOf = (line: string) => /^\s*/.exec(line)![0].length;

/**
 * For each line, whether it continues a list of module names opened on an earlier line: a bracket
 * list left open after a module-list key (Python, JSON, TOML), or the `- item` lines of a YAML
 * block sequence under such a key.
 */
export function moduleListLines(lines: readonly string[]): boolean[] {
  const inList: boolean[] = [];
  let openBrackets = 0;
  let yamlKeyIndent: number | undefined;
  for (const line of lines) {
    if (yamlKeyIndent !== undefined) {
      const blankOrComment = /^\s*(#.*)?$/.test(line);
      const item = /^\s*-(\s|$)/.test(line) && indentOf(line) >= yamlKeyIndent;
      if (!blankOrComment && !item) yamlKeyIndent = undefined;
    }
    inList.push(openBrackets > 0 || yamlKeyIndent !== undefined);
    if (openBrackets > 0) {
      openBrackets = Math.max(0, openBrackets + bracketBalance(line));
      continue;
    }
    const listStart = moduleListStart(line);
    if (listStart === undefined) continue;
    const rest = line.slice(listStart);
    const balance = bracketBalance(rest);
    if (balance > 0) openBrackets = balance;
    else if (/^\s*(#.*)?$/.test(rest)) yamlKeyIndent = indentOf(line);
  }
  return inList;
}

/** Matches of every line of a document, generic words counted inside multi-line module lists. */
export function matchLines(lines: readonly string[], index: ModuleIndex): ModuleMatch[][] {
  const inList = moduleListLines(lines);
  return lines.map((line, at) => matchLine(line, index, inList[at]));
}

/** The match a line's hint shows: its first cell, else its first type. */
export function strongestMatch(matches: readonly ModuleMatch[]): ModuleMatch | undefined {
  return matches.find((match) => match.kind === 'cell') ?? matches[0];
}
