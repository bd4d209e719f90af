// Pieces of Python source for the generated configuration files: string and list literals and
// comment blocks. JSON string syntax is valid Python string syntax, so strings go through JSON.
export function pythonString(text: string): string {
  return JSON.stringify(text);
}

/** A list of strings, one per line, indented by `indent` spaces inside the brackets. */
export function pythonStringList(items: readonly string[], indent = 4): string {
  if (items.length === 0) return '[]';
  const pad = ' '.repeat(indent);
  return `[\n${items.map((item) => `${pad}${pythonString(item)},`).join('\n')}\n${' '.repeat(Math.max(0, indent - 4))}]`;
}

/** Wraps text into '# ' comment lines of at most `width` characters. */
export function pythonComment(text: string, width = 100, prefix = '# '): string {
  const lines: string[] = [];
  for (const paragraph of text.split('\n')) {
    let line = '';
    for (const word of paragraph.split(/\s+/).filter(Boolean)) {
      if (line && prefix.length + line.length + 1 + word.length > width) {
        lines.push(line);
        line = word;
      } else {
        line = line ? `${line} ${word}` : word;
      }
    }
    lines.push(line);
  }
  return lines.map((line) => `${prefix}${line}`.trimEnd()).join('\n');
}

/** Comment paragraphs: lines of a section wrapped one after another, sections apart by a bare '#'. */
export function pythonCommentSections(sections: readonly (readonly string[])[]): string {
  return sections
    .filter((section) => section.length > 0)
    .map((section) => section.map((line) => pythonComment(line)).join('\n'))
    .join('\n#\n');
}
