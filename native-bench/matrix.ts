/**
 * native-bench/matrix.ts — etcd's performance-guide matrix against 3-member loopback clusters of etcd and of
 * etcetera, written out as a Markdown table. See native-bench/README.md.
 *
 *   node dist/native-bench/matrix.js [--systems etcd,etcetera[,etcetera-grpcjs,etcetera-h2]] [--client gobench|bench] [--scale 0.1]
 *       [--cells put-1x1-leader,...] [--rounds 1] [--out native-bench/results.md]
 *       [--etcd /usr/bin/etcd] [--etcetera "node dist/src/cli/etcetera.js"] [--gobench /tmp/gobench/bin/gobench]
 *       [--members 3|1]   (1: single-member clusters, leader cells only, default --out native-bench/results-single.md)
 *
 * Every cell gets a fresh cluster (temp data dirs, free loopback ports; members are killed by their own pid).
 * Both servers are started with etcd's flags. Range cells first write the key once (256-byte value). Peak RSS
 * is sampled from /proc/PID/status (VmRSS) every 200 ms during the load. The load client is gobench (Go,
 * ../shared/tools/gobench) when built, else our `bench`; both print etcd's report, which is parsed here.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { pb } from '../src/wire/codec';
import { callUnary, newClient } from '../src/bench/wire';

/** One cell of etcd's performance guide (key 8 B, value 256 B). */
export interface Cell {
  id: string;
  op: 'put' | 'range';
  consistency?: 'l' | 's';
  total: number;
  conns: number;
  clients: number;
  target: 'leader' | 'all';
  /**
   * 'http': the v3 JSON gateway (`etcetera-bench gateway-put/gateway-range`, autocannon), 'v2': the v2 keys API
   * (`etcetera-bench v2-set/v2-get`, autocannon; put = set, range = get, consistency l = quorum=true), whatever
   * --client says.
   */
  proto?: 'grpc' | 'http' | 'v2';
}

/** The matrix: put and range (l, s) × (10k × 1 × 1, 100k × 100 × 1000) × (leader, all members). */
export const CELLS: Cell[] = (() => {
  const out: Cell[] = [];
  const sizes = [
    { total: 10000, conns: 1, clients: 1, tag: '1x1' },
    { total: 100000, conns: 100, clients: 1000, tag: '100x1000' },
  ];
  for (const op of ['put', 'range-l', 'range-s'] as const) {
    for (const s of sizes) {
      for (const target of ['leader', 'all'] as const) {
        const cons = op === 'put' ? undefined : (op.slice(-1) as 'l' | 's');
        out.push({ id: `${op}-${s.tag}-${target}`, op: op === 'put' ? 'put' : 'range', consistency: cons, total: s.total, conns: s.conns, clients: s.clients, target });
      }
    }
  }
  // The v3 JSON gateway (HTTP/1.1): 100 connections, one request in flight on each, leader only.
  for (const op of ['put', 'range-l', 'range-s'] as const) {
    const cons = op === 'put' ? undefined : (op.slice(-1) as 'l' | 's');
    out.push({ id: `http-${op}-100x100-leader`, op: op === 'put' ? 'put' : 'range', consistency: cons, total: 100000, conns: 100, clients: 100, target: 'leader', proto: 'http' });
  }
  // The v2 keys API (--enable-v2=true), same shape: set, a local get of one key, and a quorum get of it.
  out.push({ id: 'http-v2-set-100x100-leader', op: 'put', total: 100000, conns: 100, clients: 100, target: 'leader', proto: 'v2' });
  out.push({ id: 'http-v2-get-100x100-leader', op: 'range', consistency: 's', total: 100000, conns: 100, clients: 100, target: 'leader', proto: 'v2' });
  // quorum=true: a ReadIndex round before the read (etcd 3.4: a QGET through Raft).
  out.push({ id: 'http-v2-qget-100x100-leader', op: 'range', consistency: 'l', total: 100000, conns: 100, clients: 100, target: 'leader', proto: 'v2' });
  return out;
})();

interface Opts {
  systems: string[]; client: 'gobench' | 'bench'; scale: number; cells: Cell[]; rounds: number; out: string;
  etcd: string; etcetera: string; gobench: string; keep: boolean; members: number;
}

const ROOT = path.resolve(__dirname, '..', '..');

function parseArgs(argv: string[]): Opts {
  const get = (name: string): string | undefined => {
    const i = argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
    if (i < 0) return undefined;
    const a = argv[i];
    return a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[i + 1];
  };
  const known = new Set(['systems', 'client', 'scale', 'cells', 'rounds', 'out', 'etcd', 'etcetera', 'gobench', 'keep', 'help', 'members']);
  for (const a of argv) {
    if (a.startsWith('--') && !known.has(a.slice(2).split('=')[0])) { console.error(`matrix: unknown flag ${a}`); process.exit(2); }
  }
  if (argv.includes('--help')) {
    console.log(fs.readFileSync(path.join(ROOT, 'native-bench', 'matrix.ts'), 'utf8').split('*/')[0]);
    process.exit(0);
  }
  const gobench = get('gobench') ?? '/tmp/gobench/bin/gobench';
  const etceteraCli = path.join(ROOT, 'dist', 'src', 'cli', 'etcetera.js');
  const etcetera = get('etcetera') ?? `${process.execPath} ${etceteraCli}`;
  const systems = (get('systems') ?? (fs.existsSync(etceteraCli) ? 'etcd,etcetera' : 'etcd')).split(',').filter(Boolean);
  const client = (get('client') ?? (fs.existsSync(gobench) ? 'gobench' : 'bench')) as 'gobench' | 'bench';
  if (client !== 'gobench' && client !== 'bench') { console.error('matrix: --client is gobench or bench'); process.exit(2); }
  const members = Number(get('members') ?? '3');
  if (members !== 1 && members !== 3) { console.error('matrix: --members is 1 or 3'); process.exit(2); }
  const want = get('cells');
  // With one member "all members" is the leader: those cells would only repeat the leader ones.
  const pool = members === 1 ? CELLS.filter((c) => c.target === 'leader') : CELLS;
  const cells = want ? pool.filter((c) => want.split(',').some((w) => c.id === w || c.id.startsWith(w))) : pool;
  if (cells.length === 0) { console.error(`matrix: no cell matches --cells=${want}; cells: ${CELLS.map((c) => c.id).join(', ')}`); process.exit(2); }
  const scale = Number(get('scale') ?? '1');
  const rounds = Number(get('rounds') ?? '1');
  if (!(scale > 0) || !(rounds >= 1)) { console.error('matrix: --scale > 0 and --rounds ≥ 1'); process.exit(2); }
  return {
    systems, client, scale, cells, rounds, out: get('out') ?? path.join(ROOT, 'native-bench', members === 1 ? 'results-single.md' : 'results.md'),
    etcd: get('etcd') ?? 'etcd', etcetera, gobench, keep: argv.includes('--keep'), members,
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

interface Member { name: string; client: string; proc: ChildProcess; peakRssKb: number }
interface Cluster { members: Member[]; dir: string; stop(): Promise<void> }

/**
 * Environment of a system's members: `etcetera-grpcjs` / `etcetera-h2` are etcetera with its gRPC server chosen by
 * ETCETERA_GRPC_SERVER (src/api/grpc/server.ts), to compare the two side by side; plain `etcetera` uses the default.
 */
export function systemEnv(system: string): Record<string, string> {
  if (system === 'etcetera-grpcjs') return { ETCETERA_GRPC_SERVER: 'grpc-js' };
  if (system === 'etcetera-h2') return { ETCETERA_GRPC_SERVER: 'h2' };
  return {};
}

/** Starts an `n`-member cluster (1 or 3) of `system` with etcd's flags and waits until every member sees a leader. */
async function startCluster(system: string, cmd: string, keep: boolean, n = 3): Promise<Cluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `matrix-${system}-`));
  const ports = await Promise.all(Array.from({ length: 2 * n }, freePort));
  const names = Array.from({ length: n }, (_, i) => `m${i + 1}`);
  const peers = names.map((_, i) => `http://127.0.0.1:${ports[n + i]}`);
  const initial = names.map((n, i) => `${n}=${peers[i]}`).join(',');
  const [bin, ...pre] = cmd.split(' ').filter(Boolean);
  const members: Member[] = names.map((name, i) => {
    const client = `http://127.0.0.1:${ports[i]}`;
    const log = fs.openSync(path.join(dir, `${name}.log`), 'w');
    const proc = spawn(bin, [...pre,
      '--name', name, '--data-dir', path.join(dir, name),
      '--listen-client-urls', client, '--advertise-client-urls', client,
      '--listen-peer-urls', peers[i], '--initial-advertise-peer-urls', peers[i],
      '--initial-cluster', initial, '--initial-cluster-token', `matrix-${system}`, '--initial-cluster-state', 'new',
      // For the v2 cells; the v2 store costs nothing when unused.
      '--enable-v2=true',
    ], { stdio: ['ignore', log, log], env: { ...process.env, ...systemEnv(system) } });
    return { name, client, proc, peakRssKb: 0 };
  });
  const stop = async (): Promise<void> => {
    await Promise.all(members.map(async (m) => {
      if (m.proc.exitCode !== null || m.proc.signalCode !== null) return;
      const gone = new Promise((r) => m.proc.once('exit', r));
      m.proc.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
      if (m.proc.exitCode === null && m.proc.signalCode === null) m.proc.kill('SIGKILL');
    }));
    if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30000;
  for (;;) {
    const ok = await Promise.all(members.map(async (m) => {
      const c = newClient(m.client);
      try {
        const st = pb.StatusResponse.decode(await callUnary(c, 'Status', Buffer.alloc(0), 1000)) as unknown as { leader: number };
        return !!st.leader;
      } catch { return false; } finally { c.close(); }
    }));
    if (ok.every(Boolean)) break;
    if (Date.now() > deadline || members.some((m) => m.proc.exitCode !== null)) {
      await stop();
      throw new Error(`${system} cluster did not come up (logs under ${dir} with --keep)`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { members, dir, stop };
}

function rssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch { return 0; }
}

/** Figures parsed from etcd's report text: QPS, mean and p99 latency in ms, error count; CPU µs per request. */
export interface Figures { qps: number; meanMs: number; p99Ms: number; errors: number; cpuMainUs?: number; cpuProcUs?: number }

/** Linux clock tick (USER_HZ) in ms: /proc stat times are in these. */
const TICK_MS = 10;

/** utime + stime (clock ticks) of process `pid` and of its main thread (task `pid`); zeros once it is gone. */
function cpuTicks(pid: number): { main: number; proc: number } {
  const read = (file: string): number => {
    try {
      const f = fs.readFileSync(file, 'utf8');
      const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
      // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the ")" of the command name.
      return Number(rest[11]) + Number(rest[12]);
    } catch { return 0; }
  };
  return { main: read(`/proc/${pid}/task/${pid}/stat`), proc: read(`/proc/${pid}/stat`) };
}

/** Parses the report printed by etcd's benchmark, gobench or our bench. Missing fields → NaN. */
export function parseReport(text: string): Figures {
  const num = (re: RegExp): number => { const m = re.exec(text); return m ? Number(m[1]) : NaN; };
  let errors = 0;
  const ed = text.indexOf('Error distribution:');
  if (ed >= 0) for (const m of text.slice(ed).matchAll(/^\s+\[(\d+)\]/gm)) errors += Number(m[1]);
  return {
    qps: num(/Requests\/sec:\s+([\d.e+-]+)/),
    meanMs: num(/Average:\s+([\d.e+-]+) secs/) * 1000,
    p99Ms: num(/^\s+99% in ([\d.e+-]+) secs/m) * 1000,
    errors,
  };
}

function clientArgs(cell: Cell, total: number, endpoints: string[]): string[] {
  const a = [`--endpoints=${endpoints.join(',')}`, `--conns=${cell.conns}`, `--clients=${cell.clients}`];
  if (cell.target === 'leader') a.push('--target-leader');
  if (cell.proto === 'http') {
    if (cell.op === 'put') a.push('gateway-put', '--key-size=8', '--val-size=256', '--sequential-keys', `--total=${total}`);
    else a.push('gateway-range', 'foo', `--consistency=${cell.consistency}`, `--total=${total}`);
    return a;
  }
  if (cell.proto === 'v2') {
    if (cell.op === 'put') a.push('v2-set', '--key-size=8', '--val-size=256', '--sequential-keys', `--total=${total}`);
    else a.push('v2-get', 'foo', ...(cell.consistency === 'l' ? ['--quorum'] : []), `--total=${total}`);
    return a;
  }
  if (cell.op === 'put') a.push('put', '--key-size=8', '--val-size=256', '--sequential-keys', `--total=${total}`);
  else a.push('range', 'foo', `--consistency=${cell.consistency}`, `--total=${total}`);
  return a;
}

async function runClient(o: Opts, args: string[], members: Member[], http = false): Promise<string> {
  const [bin, pre] = o.client === 'gobench' && !http ? [o.gobench, [] as string[]] : [process.execPath, [path.join(ROOT, 'dist', 'src', 'bench', 'cli.js')]];
  const p = spawn(bin, [...pre, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout!.on('data', (d) => (out += d));
  p.stderr!.on('data', (d) => (err += d));
  const t = setInterval(() => { for (const m of members) m.peakRssKb = Math.max(m.peakRssKb, rssKb(m.proc.pid!)); }, 200);
  const code: number | null = await new Promise((r) => p.on('close', r));
  clearInterval(t);
  if (code !== 0 && !out.includes('Summary:')) throw new Error(`load client exited ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`);
  return out;
}

interface Row { cell: Cell; system: string; figs: Figures[]; rssMb: number[] }

function median(xs: number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function runCell(o: Opts, cell: Cell, system: string): Promise<{ figs: Figures; rssMb: number[] }> {
  const cmd = system === 'etcd' ? o.etcd : o.etcetera; // etcetera, etcetera-h2, etcetera-grpcjs
  const cl = await startCluster(system, cmd, o.keep, o.members);
  try {
    const endpoints = cl.members.map((m) => m.client.replace('http://', ''));
    if (cell.op === 'range' && cell.proto === 'v2') {
      const r = await fetch(`${cl.members[0]!.client}/v2/keys/foo`, { method: 'PUT', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `value=${'a'.repeat(256)}` });
      if (!r.ok) throw new Error(`v2 seed of foo: HTTP ${r.status} ${await r.text()}`);
    } else if (cell.op === 'range') {
      const c = newClient(endpoints[0]);
      try { await callUnary(c, 'Put', Buffer.from(pb.PutRequest.encode({ key: Buffer.from('foo'), value: Buffer.alloc(256, 0x61) }).finish()), 10000); } finally { c.close(); }
    }
    for (const m of cl.members) m.peakRssKb = rssKb(m.proc.pid!);
    const total = Math.max(1, Math.round(cell.total * o.scale));
    const before = cl.members.map((m) => cpuTicks(m.proc.pid!));
    const text = await runClient(o, clientArgs(cell, total, endpoints), cl.members, cell.proto === 'http' || cell.proto === 'v2');
    const figs = parseReport(text);
    // CPU of the busiest member (the leader) per successful request: its main thread, and the whole process.
    const used = cl.members.map((m, i) => {
      const a = cpuTicks(m.proc.pid!);
      return { main: a.main - before[i]!.main, proc: a.proc - before[i]!.proc };
    }).sort((x, y) => y.proc - x.proc)[0]!;
    const done = Number.isNaN(figs.qps) ? 0 : total - figs.errors;
    figs.cpuMainUs = done > 0 ? (used.main * TICK_MS * 1000) / done : NaN;
    figs.cpuProcUs = done > 0 ? (used.proc * TICK_MS * 1000) / done : NaN;
    return { figs, rssMb: cl.members.map((m) => m.peakRssKb / 1024) };
  } finally {
    await cl.stop();
  }
}

const f0 = (x: number): string => (Number.isNaN(x) ? '—' : Math.round(x).toLocaleString('en-US'));
const f2 = (x: number): string => (Number.isNaN(x) ? '—' : x.toFixed(2));

/** Renders rows as the Markdown table (one line per cell, one column group per system, ratio vs etcd). */
export function renderTable(rows: Row[], systems: string[], o: Pick<Opts, 'client' | 'scale' | 'rounds'> & { members?: number }): string {
  const head = ['cell', 'total × conns × clients → target'];
  const rssCol = (o.members ?? 3) === 1 ? 'peak RSS MB' : 'peak RSS MB (m1/m2/m3)';
  for (const s of systems) head.push(`${s} QPS`, `${s} mean ms`, `${s} p99 ms`, `${s} ${rssCol}`, `${s} leader CPU µs/req (main thread / process)`);
  const others = systems.filter((s) => s !== 'etcd');
  if (systems.includes('etcd')) for (const s of others) head.push(`${s}/etcd QPS`);
  let md = `| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|\n`;
  const cells = [...new Set(rows.map((r) => r.cell.id))];
  for (const id of cells) {
    const cellRows = rows.filter((r) => r.cell.id === id);
    const c = cellRows[0].cell;
    const line = [id, `${f0(Math.max(1, Math.round(c.total * o.scale)))} × ${c.conns} × ${c.clients} → ${c.target}`];
    const qps: Record<string, number> = {};
    for (const s of systems) {
      const r = cellRows.find((x) => x.system === s);
      if (!r) { line.push('—', '—', '—', '—', '—'); continue; }
      qps[s] = median(r.figs.map((f) => f.qps));
      const errs = r.figs.reduce((a, f) => a + f.errors, 0);
      line.push(f0(qps[s]) + (errs ? ` (${errs} errors)` : ''), f2(median(r.figs.map((f) => f.meanMs))), f2(median(r.figs.map((f) => f.p99Ms))), Number.isNaN(qps[s]) ? '—' : r.rssMb.map((x) => x.toFixed(0)).join('/'),
        `${f0(median(r.figs.map((f) => f.cpuMainUs ?? NaN)))} / ${f0(median(r.figs.map((f) => f.cpuProcUs ?? NaN)))}`);
    }
    if (systems.includes('etcd')) for (const s of others) line.push(qps[s] && qps.etcd ? (qps[s] / qps.etcd).toFixed(2) : '—');
    md += `| ${line.join(' | ')} |\n`;
  }
  md += `\nLoad client: ${o.client} (http-* cells: etcetera-bench gateway-put/gateway-range/v2-set/v2-get, autocannon); totals scaled by ${o.scale}; median of ${o.rounds} round(s), systems alternated per round; key 8 B, value 256 B, sequential keys (key space 1).\n`;
  return md;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (o.client === 'gobench' && !fs.existsSync(o.gobench)) { console.error(`matrix: ${o.gobench} not built (run ../shared/tools/gobench/build.sh) or use --client=bench`); process.exit(2); }
  if (o.systems.includes('etcd') && spawnSync('sh', ['-c', `command -v ${o.etcd.split(' ')[0]}`]).status !== 0) { console.error(`matrix: ${o.etcd} not found`); process.exit(2); }
  const rows: Row[] = [];
  for (const cell of o.cells) {
    for (let round = 0; round < o.rounds; round++) {
      const order = round % 2 === 0 ? o.systems : [...o.systems].reverse();
      for (const system of order) {
        process.stderr.write(`[matrix] ${cell.id} ${system} round ${round + 1}/${o.rounds} … `);
        let row = rows.find((r) => r.cell.id === cell.id && r.system === system);
        if (!row) { row = { cell, system, figs: [], rssMb: new Array<number>(o.members).fill(0) }; rows.push(row); }
        try {
          const r = await runCell(o, cell, system);
          row.figs.push(r.figs);
          row.rssMb = row.rssMb.map((x, i) => Math.max(x, r.rssMb[i] ?? 0));
          process.stderr.write(`${f0(r.figs.qps)} QPS, p99 ${f2(r.figs.p99Ms)} ms\n`);
        } catch (e) {
          row.figs.push({ qps: NaN, meanMs: NaN, p99Ms: NaN, errors: 0, cpuMainUs: NaN, cpuProcUs: NaN });
          process.stderr.write(`failed: ${(e as Error).message}\n`);
        }
      }
    }
  }
  const md = `# native-bench matrix (${new Date().toISOString()})\n\n${renderTable(rows, o.systems, o)}`;
  fs.mkdirSync(path.dirname(o.out), { recursive: true });
  fs.writeFileSync(o.out, md);
  process.stdout.write(md);
}

if (require.main === module) {
  main().catch((e) => { console.error(`matrix: ${(e as Error).message}`); process.exit(1); });
}
