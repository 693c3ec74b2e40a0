/**
 * Helpers for the operations tests (test/ops): repository paths, a loose PromQL metric-name extractor,
 * a Prometheus text-format parser, and free-port search for deploy/local-cluster's port layout.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

/** Repository root (this file runs from dist/test/ops/). */
export const REPO = path.resolve(__dirname, '..', '..', '..');

/** Path inside the repository. */
export function repoPath(...p: string[]): string {
  return path.join(REPO, ...p);
}

/** PromQL functions, aggregations, keywords and operators-as-words that look like identifiers. */
const PROMQL_WORDS = new Set([
  // aggregations
  'sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile',
  // keywords / set operators / modifiers
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'atan2',
  'inf', 'nan',
]);

/**
 * The metric names a PromQL expression reads, parsed loosely: string literals, label matchers `{...}`, range and
 * subquery selectors `[...]` and grouping clauses `by (...)` etc. are removed; what is left of the identifiers
 * matching `[a-z_:][a-z0-9_:]*` that are not followed by `(` (functions) and are not PromQL words are metric names.
 */
export function promqlMetricNames(expr: string): string[] {
  let s = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  s = s.replace(/\{[^}]*\}/g, ' ');
  s = s.replace(/\[[^\]]*\]/g, ' ');
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, ' ');
  const out = new Set<string>();
  const re = /(?<![a-zA-Z0-9_:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![a-zA-Z0-9_:])(\s*\()?/g;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    const id = m[1]!;
    if (m[2]) continue; // a function call
    if (PROMQL_WORDS.has(id.toLowerCase())) continue;
    if (!/^[a-z_:][a-z0-9_:]*$/.test(id)) continue;
    out.add(id);
  }
  return [...out];
}

/** One parsed /metrics scrape. */
export interface Scrape {
  /** `# TYPE` declarations: metric family name → type. */
  types: Map<string, string>;
  /** Samples: `name{labels}` exactly as printed (labels in printed order) → value. */
  samples: Map<string, number>;
  /** Sample names (with _bucket/_sum/_count) that have at least one sample. */
  sampleNames: Set<string>;
}

/** Parse the Prometheus text exposition format (as prom-client writes it). */
export function parseScrape(text: string): Scrape {
  const types = new Map<string, string>();
  const samples = new Map<string, number>();
  const sampleNames = new Set<string>();
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      types.set(name!, type!);
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    samples.set(m[1]! + (m[2] ?? ''), Number(m[3]));
    sampleNames.add(m[1]!);
  }
  return { types, samples, sampleNames };
}

/**
 * Whether `name` (possibly a histogram/summary series name with _bucket/_sum/_count) is exported by the scrape:
 * declared by a `# TYPE` line (prom-client prints HELP/TYPE for labelled metrics without children too) or
 * present as a sample.
 */
export function scrapeHas(s: Scrape, name: string): boolean {
  if (s.types.has(name) || s.sampleNames.has(name)) return true;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  if (m) {
    const t = s.types.get(m[1]!);
    return t === 'histogram' || (t === 'summary' && m[2] !== 'bucket');
  }
  return false;
}

/** Sum of every sample of `name` whose labels include all of `labels` (0 when none). */
export function sampleSum(s: Scrape, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  let found = false;
  for (const [k, v] of s.samples) {
    const brace = k.indexOf('{');
    const n = brace < 0 ? k : k.slice(0, brace);
    if (n !== name) continue;
    const lbl = brace < 0 ? '' : k.slice(brace);
    if (!Object.entries(labels).every(([ln, lv]) => lbl.includes(`${ln}="${lv}"`))) continue;
    total += v;
    found = true;
  }
  return found ? total : NaN;
}

/** Metric names listed (uncommented) in src/metrics/etcd-3.4-metric-names.txt. */
export function etcd34MetricNames(): string[] {
  return fs
    .readFileSync(repoPath('src', 'metrics', 'etcd-3.4-metric-names.txt'), 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l !== '');
}

/** Every `expr` of every target of every panel (rows' nested panels included) of a Grafana dashboard. */
export function dashboardExprs(dashboard: unknown): Array<{ panel: string; expr: string }> {
  const out: Array<{ panel: string; expr: string }> = [];
  const walk = (panels: unknown): void => {
    if (!Array.isArray(panels)) return;
    for (const p of panels as Array<Record<string, unknown>>) {
      for (const t of (p.targets as Array<Record<string, unknown>> | undefined) ?? []) {
        if (typeof t.expr === 'string') out.push({ panel: String(p.title), expr: t.expr });
      }
      walk(p.panels);
    }
  };
  walk((dashboard as { panels?: unknown }).panels);
  return out;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** Ports deploy/local-cluster uses for a base port: member i gets base+100i (client), +1 (peer), +2 (metrics). */
export function localClusterPorts(base: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < 3; i++) out.push(base + 100 * i, base + 100 * i + 1, base + 100 * i + 2);
  return out;
}

/** A base port whose 9 local-cluster ports are all free on 127.0.0.1 right now. */
export async function freeLocalClusterBase(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    let ok = true;
    for (const p of localClusterPorts(base)) {
      if (!(await portFree(p))) { ok = false; break; }
    }
    if (ok) return base;
  }
  throw new Error('no free base port for deploy/local-cluster');
}

/** Pids of processes whose command line contains `needle` (read from /proc; this test's own process excluded). */
export function pidsWithCmdline(needle: string): Array<{ pid: number; cmdline: string }> {
  const out: Array<{ pid: number; cmdline: string }> = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(d) || Number(d) === process.pid) continue;
    let cmd: string;
    try {
      cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' ');
    } catch {
      continue;
    }
    if (cmd.includes(needle)) out.push({ pid: Number(d), cmdline: cmd });
  }
  return out;
}
