/**
 * The folder arrows of src/ (docs/architecture.md "Folders and arrows"), checked on the sources: every relative
 * `import` / `export … from` / `require` / dynamic `import()` under src/ is parsed, resolved to a file, and
 * attributed to the folders of importer and imported file. Files directly under src/ (errors.ts, log.ts) belong to
 * no folder and may be imported by any.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const SRC = path.join(__dirname, '..', '..', '..', 'src');

/** Folders that must not import the API, the server or the CLI. */
const BELOW_SERVER = ['raft', 'wal', 'ring', 'mvcc', 'apply'];
/** What the pure folders may import besides themselves (wal's worker hand-off is built on ring). */
const PURE: Record<string, string[]> = { raft: [], ring: [], wal: ['ring'], bbolt: [] };

interface Arrow { from: string; to: string; file: string; spec: string }

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = path.join(dir, d.name);
    return d.isDirectory() ? sourceFiles(p) : d.name.endsWith('.ts') ? [p] : [];
  });
}

/** The module specifiers of `text` (comments stripped so documentation mentioning imports does not count). */
export function specifiers(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
  const out: string[] = [];
  const re = /\b(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?['"]([^'"]+)['"]|\brequire\(\s*['"]([^'"]+)['"]\s*\)|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (let m = re.exec(code); m !== null; m = re.exec(code)) out.push((m[1] ?? m[2] ?? m[3]) as string);
  return out;
}

/** The top folder under src/ of `file` ('' for a file directly under src/). */
function folderOf(file: string): string {
  const rel = path.relative(SRC, file).split(path.sep);
  return rel.length > 1 ? (rel[0] as string) : '';
}

function resolve(from: string, spec: string): string {
  const base = path.resolve(path.dirname(from), spec);
  for (const c of [base, `${base}.ts`, path.join(base, 'index.ts')]) if (fs.existsSync(c) && fs.statSync(c).isFile()) return c;
  throw new Error(`${path.relative(SRC, from)}: cannot resolve ${spec}`);
}

function arrows(): Arrow[] {
  const out: Arrow[] = [];
  for (const file of sourceFiles(SRC)) {
    for (const spec of specifiers(fs.readFileSync(file, 'utf8'))) {
      if (!spec.startsWith('.')) continue;
      const from = folderOf(file);
      const to = folderOf(resolve(file, spec));
      if (from !== to && from !== '' && to !== '') out.push({ from, to, file: path.relative(SRC, file), spec });
    }
  }
  return out;
}

const show = (a: Arrow[]): string => a.map((x) => `${x.file} imports ${x.spec} (${x.from} -> ${x.to})`).join('\n');

test('the import parser sees every form and ignores comments', () => {
  const text = [
    "import { a } from './a';",
    "import type { B } from '../b';",
    "import * as c from './c';",
    "import './side-effect';",
    "export { d } from './d';",
    "export * from './e';",
    "const f = require('./f');",
    "const g = await import('./g');",
    "// import { x } from './commented';",
    "/* import { y } from './block'; */",
    "const url = 'http://example.com'; // not an import",
  ].join('\n');
  assert.deepEqual(specifiers(text), ['./a', '../b', './c', './side-effect', './d', './e', './f', './g']);
});

test('the checks see real arrows (the server imports raft, api imports wire)', () => {
  const all = arrows();
  assert.ok(all.some((a) => a.from === 'server' && a.to === 'raft'));
  assert.ok(all.some((a) => a.from === 'api' && a.to === 'wire'));
});

test('raft, wal, ring, mvcc and apply import neither api, server nor cli', () => {
  const bad = arrows().filter((a) => BELOW_SERVER.includes(a.from) && ['api', 'server', 'cli'].includes(a.to));
  assert.equal(bad.length, 0, show(bad));
});

test('raft, ring and bbolt import nothing of the project; wal only ring', () => {
  const bad = arrows().filter((a) => a.from in PURE && !(PURE[a.from] as string[]).includes(a.to));
  assert.equal(bad.length, 0, show(bad));
});

test('the wire schema imports no other folder', () => {
  const bad = arrows().filter((a) => a.from === 'wire');
  assert.equal(bad.length, 0, show(bad));
});

test('no two folders import each other, directly or through others (no folder cycle)', () => {
  const graph = new Map<string, Set<string>>();
  for (const a of arrows()) {
    if (!graph.has(a.from)) graph.set(a.from, new Set());
    graph.get(a.from)!.add(a.to);
  }
  // Depth-first search for a back edge; reports the first cycle found with the files behind each arrow.
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  let cycle: string[] | null = null;
  const visit = (n: string): void => {
    if (cycle !== null) return;
    state.set(n, 'open');
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      if (state.get(m) === 'open') {
        cycle = [...stack.slice(stack.indexOf(m)), m];
        return;
      }
      if (!state.has(m)) visit(m);
      if (cycle !== null) return;
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of [...graph.keys()].sort()) if (!state.has(n)) visit(n);
  const found = cycle as string[] | null;
  const detail = found === null ? '' : show(arrows().filter((a) => found.some((f, i) => f === a.from && found[i + 1] === a.to)));
  assert.equal(found, null, `folder cycle ${found?.join(' -> ')}\n${detail}`);
});

/** The arrows docs/architecture.md lists ("Folders and arrows" block: `from ──► a, b` lines, several froms per line). */
function documentedArrows(): Map<string, Set<string>> {
  const doc = fs.readFileSync(path.join(SRC, '..', 'docs', 'architecture.md'), 'utf8');
  const block = /## Folders and arrows[\s\S]*?```\n([\s\S]*?)```/.exec(doc);
  assert.ok(block, 'docs/architecture.md has no "Folders and arrows" code block');
  const out = new Map<string, Set<string>>();
  for (const line of (block[1] as string).split('\n')) {
    const m = /^(.+?)\s*──►\s*(.+)$/.exec(line.trim());
    if (!m) continue;
    const tos = (m[2] as string).startsWith('(nothing)') ? [] : (m[2] as string).split(',').map((s) => s.trim()).filter((s) => s !== '');
    for (const from of (m[1] as string).split(',').map((s) => s.trim())) out.set(from, new Set(tos));
  }
  return out;
}

test('docs/architecture.md lists every folder and exactly the arrows the imports draw', () => {
  const doc = documentedArrows();
  const folders = fs.readdirSync(SRC, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  assert.deepEqual(folders.filter((f) => !doc.has(f)), [], 'folders missing from the documented arrows');
  const actual = new Map<string, Set<string>>();
  for (const a of arrows()) {
    if (!actual.has(a.from)) actual.set(a.from, new Set());
    actual.get(a.from)!.add(a.to);
  }
  const undocumented = arrows().filter((a) => !doc.get(a.from)?.has(a.to));
  assert.equal(undocumented.length, 0, `arrows missing from docs/architecture.md:\n${show(undocumented)}`);
  const stale = [...doc].flatMap(([from, tos]) => [...tos].filter((to) => !actual.get(from)?.has(to)).map((to) => `${from} ──► ${to}`));
  assert.deepEqual(stale, [], 'arrows documented but not in the code');
});
