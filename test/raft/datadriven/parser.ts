/**
 * Parser of the Raft interaction scripts (test/raft/testdata/*.txt), a small text format in the spirit of
 * etcd-io/raft's datadriven tests. A script is a sequence of blocks:
 *
 *   # a comment line (kept verbatim on rewrite)
 *   command pos1 pos2 key=value key=(a,b,c)
 *   optional input lines
 *   ----
 *   expected output lines (never blank)
 *
 * A blank line ends a block's output. Output lines are produced by the interpreter, which never emits a blank line,
 * so no escaping is needed. Throws ScriptSyntaxError with the 1-based line number on malformed input.
 */

/** One argument: `word` (key=word, vals=[]), `key=v` (vals=[v]) or `key=(a,b)` (vals=[a,b]). */
export interface Arg {
  key: string;
  vals: string[];
}

/** One command block of a script. */
export interface Directive {
  /** 1-based line number of the command line. */
  line: number;
  /** The command line as written (kept verbatim on rewrite). */
  header: string;
  cmd: string;
  args: Arg[];
  /** Lines between the command and the `----` separator. */
  input: string[];
  /** Expected output (lines joined by \n; '' if none). */
  expected: string;
}

/** A script: verbatim text (comments, blank lines) interleaved with directives, in file order. */
export type Chunk = { kind: 'text'; text: string } | { kind: 'directive'; d: Directive };

/** Malformed script. */
export class ScriptSyntaxError extends Error {
  constructor(file: string, line: number, msg: string) {
    super(`${file}:${line}: ${msg}`);
    this.name = 'ScriptSyntaxError';
  }
}

/** The line separating a command (and its input) from its expected output. */
export const SEPARATOR = '----';

/** Splits a command line into the command and its arguments. Throws ScriptSyntaxError on unbalanced parentheses. */
export function parseCommandLine(text: string, file = '<script>', line = 0): { cmd: string; args: Arg[] } {
  const words: string[] = [];
  let cur = '';
  let depth = 0;
  for (const ch of text.trim()) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (depth < 0) throw new ScriptSyntaxError(file, line, `unbalanced ')' in "${text}"`);
    if (/\s/.test(ch) && depth === 0) {
      if (cur !== '') words.push(cur);
      cur = '';
    } else {
      cur += ch;
    }
  }
  if (depth !== 0) throw new ScriptSyntaxError(file, line, `unbalanced '(' in "${text}"`);
  if (cur !== '') words.push(cur);
  if (words.length === 0) throw new ScriptSyntaxError(file, line, 'empty command');
  const [cmd, ...rest] = words;
  const args = rest.map((w): Arg => {
    const eq = w.indexOf('=');
    if (eq < 0) return { key: w, vals: [] };
    const key = w.slice(0, eq);
    let v = w.slice(eq + 1);
    if (v.startsWith('(') && v.endsWith(')')) {
      v = v.slice(1, -1).trim();
      return { key, vals: v === '' ? [] : v.split(',').map((s) => s.trim()) };
    }
    return { key, vals: [v] };
  });
  return { cmd: cmd!, args };
}

/** Parses a whole script. Throws ScriptSyntaxError for a command without `----` or input after EOF. */
export function parseScript(source: string, file = '<script>'): Chunk[] {
  const lines = source.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const chunks: Chunk[] = [];
  let text: string[] = [];
  const flushText = (): void => {
    if (text.length > 0) chunks.push({ kind: 'text', text: text.join('\n') });
    text = [];
  };
  let i = 0;
  while (i < lines.length) {
    const l = lines[i]!;
    if (l.trim() === '' || l.trimStart().startsWith('#')) {
      text.push(l);
      i++;
      continue;
    }
    flushText();
    const line = i + 1;
    const { cmd, args } = parseCommandLine(l, file, line);
    i++;
    const input: string[] = [];
    while (i < lines.length && lines[i] !== SEPARATOR) {
      if (lines[i]!.trim() === '') throw new ScriptSyntaxError(file, line, `command "${cmd}" has no ${SEPARATOR} line`);
      input.push(lines[i]!);
      i++;
    }
    if (i >= lines.length) throw new ScriptSyntaxError(file, line, `command "${cmd}" has no ${SEPARATOR} line`);
    i++; // separator
    const out: string[] = [];
    while (i < lines.length && lines[i]!.trim() !== '') {
      out.push(lines[i]!);
      i++;
    }
    chunks.push({ kind: 'directive', d: { line, header: l, cmd, args, input, expected: out.join('\n') } });
  }
  flushText();
  return chunks;
}

/** Writes chunks back as a script, each directive with `outputs.get(d)` (or its expected output) below `----`. */
export function renderScript(chunks: Chunk[], outputs: Map<Directive, string>): string {
  const parts: string[] = [];
  for (const c of chunks) {
    if (c.kind === 'text') {
      parts.push(c.text);
      continue;
    }
    const out = outputs.get(c.d) ?? c.d.expected;
    parts.push([c.d.header, ...c.d.input, SEPARATOR, ...(out === '' ? [] : [out])].join('\n'));
  }
  return parts.join('\n') + '\n';
}
