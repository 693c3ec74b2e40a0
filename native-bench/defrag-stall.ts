/**
 * Longest stall of reads and of writes while Maintenance.Defragment rewrites a large store, etcd 3.4 vs etcetera
 * (issue 10 item 6; etcd stops the world during a defrag, its issue #9222). Each system in turn, single member,
 * fresh data dir, same flags (`--quota-backend-bytes` 8 GiB):
 *
 *   1. fill: puts of random values (64 KiB–1 MiB) over a key space sized so about `--live` of the bytes written stay
 *      live, until `--size-mib` bytes were written; then Compact at the head revision (the overwritten half is
 *      garbage, so the defrag has work);
 *   2. load: `--readers` loops of linearizable Range on a small key and `--writers` loops of small Puts, each op's
 *      start time and latency recorded;
 *   3. after `--warm-ms` of load, Maintenance.Defragment; load continues `--cool-ms` after it answers.
 *
 * Reported per system: the defrag's duration, db size before/after, and for the ops that overlapped the defrag
 * window (started before it ended, ended after it started): count, p99 and max latency — the max is the stall —
 * plus the same for the warm-up period (baseline).
 *
 *   npm run build
 *   node dist/native-bench/defrag-stall.js [--size-mib 1024] [--systems etcd,etcetera]
 */
import { randomBytes } from 'node:crypto';
import { startEtcd, startEtcetera, type ServerHandle } from '../test/helpers/servers';
import { killAllChildren } from '../test/helpers/procs';
import { RawClient } from '../test/helpers/grpc';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
}

const MIN_VALUE_BYTES = 64 * 1024;
const MAX_VALUE_BYTES = 1024 * 1024;
/** Concurrent puts while filling. */
const FILL_CONCURRENCY = 4;

interface Op { startMs: number; latencyMs: number; ok: boolean }

interface Window { count: number; errors: number; p99Ms: number; maxMs: number }

interface Outcome {
  system: string;
  defragMs: number;
  dbBeforeBytes: number;
  dbAfterBytes: number;
  reads: { warm: Window; defrag: Window };
  writes: { warm: Window; defrag: Window };
  fillSeconds: number;
}

/** Ops that overlapped [fromMs, toMs]; `endedBy`: only those that ended before toMs (the baseline). */
function windowOf(ops: Op[], fromMs: number, toMs: number, endedBy = false): Window {
  const sel = ops.filter((o) => o.startMs < toMs && o.startMs + o.latencyMs > fromMs && (!endedBy || o.startMs + o.latencyMs <= toMs));
  const lat = sel.map((o) => o.latencyMs).sort((a, b) => a - b);
  const p99 = lat.length === 0 ? 0 : lat[Math.min(lat.length - 1, Math.floor(lat.length * 0.99))]!;
  return { count: sel.length, errors: sel.filter((o) => !o.ok).length, p99Ms: p99, maxMs: lat.length === 0 ? 0 : lat[lat.length - 1]! };
}

async function dbSize(c: RawClient): Promise<number> {
  return Number((await c.call('Maintenance', 'Status', {})).dbSize);
}

async function fill(c: RawClient, sizeBytes: number, live: number): Promise<void> {
  const avg = (MIN_VALUE_BYTES + MAX_VALUE_BYTES) / 2;
  const keys = Math.max(1, Math.round((sizeBytes * live) / avg));
  let written = 0;
  let n = 0;
  const pool = randomBytes(MAX_VALUE_BYTES * 2);
  await Promise.all(Array.from({ length: FILL_CONCURRENCY }, async () => {
    while (written < sizeBytes) {
      const len = MIN_VALUE_BYTES + Math.floor(Math.random() * (MAX_VALUE_BYTES - MIN_VALUE_BYTES));
      const off = Math.floor(Math.random() * MAX_VALUE_BYTES);
      written += len;
      const k = n++ % keys;
      await c.put({ key: Buffer.from(`fill/${String(k).padStart(6, '0')}`), value: pool.subarray(off, off + len) });
    }
  }));
  const { header } = await c.range({ key: Buffer.from('fill/') });
  await c.compact({ revision: header.revision });
}

async function run(system: string, opts: { sizeBytes: number; live: number; readers: number; writers: number; warmMs: number; coolMs: number }): Promise<Outcome> {
  const flags = ['--quota-backend-bytes=8589934592'];
  // etcd with its default timings (the test helper's are shortened).
  const h: ServerHandle = system === 'etcd'
    ? await startEtcd({ extraArgs: [...flags, '--heartbeat-interval=100', '--election-timeout=1000'] })
    : await startEtcetera({ extraArgs: flags });
  const c = new RawClient(h.clientUrl);
  const admin = new RawClient(h.clientUrl);
  const loadReaders = Array.from({ length: opts.readers }, () => new RawClient(h.clientUrl));
  const loadWriters = Array.from({ length: opts.writers }, () => new RawClient(h.clientUrl));
  try {
    const f0 = Date.now();
    await fill(c, opts.sizeBytes, opts.live);
    const fillSeconds = (Date.now() - f0) / 1000;
    await c.put({ key: Buffer.from('probe'), value: Buffer.from('p') });
    const dbBeforeBytes = await dbSize(admin);
    console.error(`${system}: filled ${(opts.sizeBytes / 2 ** 20).toFixed(0)} MiB in ${fillSeconds.toFixed(1)} s, db ${(dbBeforeBytes / 2 ** 20).toFixed(0)} MiB`);

    const reads: Op[] = [];
    const writes: Op[] = [];
    let stop = false;
    const t00 = performance.now();
    const loop = async (ops: Op[], f: () => Promise<unknown>): Promise<void> => {
      while (!stop) {
        const s = performance.now();
        let ok = true;
        try { await f(); } catch { ok = false; }
        ops.push({ startMs: s - t00, latencyMs: performance.now() - s, ok });
      }
    };
    const value = Buffer.alloc(256, 'w');
    let w = 0;
    const load = [
      ...loadReaders.map((r) => loop(reads, () => r.range({ key: Buffer.from('probe') }))),
      ...loadWriters.map((r) => loop(writes, () => r.put({ key: Buffer.from(`w/${w++ % 1000}`), value }))),
    ];
    await new Promise((r) => setTimeout(r, opts.warmMs));
    const d0 = performance.now() - t00;
    await admin.call('Maintenance', 'Defragment', {}, 600_000);
    const d1 = performance.now() - t00;
    await new Promise((r) => setTimeout(r, opts.coolMs));
    stop = true;
    await Promise.all(load);
    const dbAfterBytes = await dbSize(admin);
    for (const [what, ops] of [['read', reads], ['write', writes]] as const) {
      const top = ops.filter((o) => o.startMs < d1 && o.startMs + o.latencyMs > d0).sort((a, b) => b.latencyMs - a.latencyMs).slice(0, 3);
      console.error(`${system}: slowest ${what}s during the defrag (start after defrag start, ms): ${top.map((o) => `${o.latencyMs.toFixed(0)}@+${(o.startMs - d0).toFixed(0)}`).join(' ')} (defrag ${(d1 - d0).toFixed(0)})`);
    }
    return {
      system,
      defragMs: d1 - d0,
      dbBeforeBytes,
      dbAfterBytes,
      fillSeconds,
      reads: { warm: windowOf(reads, 0, d0, true), defrag: windowOf(reads, d0, d1) },
      writes: { warm: windowOf(writes, 0, d0, true), defrag: windowOf(writes, d0, d1) },
    };
  } finally {
    for (const x of [c, admin, ...loadReaders, ...loadWriters]) x.close();
    await h.stop();
  }
}

function mib(b: number): string {
  return (b / 2 ** 20).toFixed(0);
}

function ms(x: number): string {
  return x.toFixed(1);
}

async function main(): Promise<void> {
  const sizeBytes = Number(arg('size-mib', '1024')) * 2 ** 20;
  const opts = {
    sizeBytes,
    live: Number(arg('live', '0.5')),
    readers: Number(arg('readers', '2')),
    writers: Number(arg('writers', '2')),
    warmMs: Number(arg('warm-ms', '2000')),
    coolMs: Number(arg('cool-ms', '1000')),
  };
  const systems = arg('systems', 'etcd,etcetera').split(',');
  const rows = [
    '| system | db before → after (MiB) | defrag (ms) | reads during: n / p99 / **max** (ms) | writes during: n / p99 / **max** (ms) | baseline reads p99 / max | baseline writes p99 / max |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const s of systems) {
    const o = await run(s, opts);
    const r = o.reads.defrag;
    const wr = o.writes.defrag;
    const errs = r.errors + wr.errors > 0 ? ` (errors: ${r.errors} reads, ${wr.errors} writes)` : '';
    rows.push(`| ${s} | ${mib(o.dbBeforeBytes)} → ${mib(o.dbAfterBytes)} | ${o.defragMs.toFixed(0)} | ${r.count} / ${ms(r.p99Ms)} / **${ms(r.maxMs)}** | ${wr.count} / ${ms(wr.p99Ms)} / **${ms(wr.maxMs)}**${errs} | ${ms(o.reads.warm.p99Ms)} / ${ms(o.reads.warm.maxMs)} | ${ms(o.writes.warm.p99Ms)} / ${ms(o.writes.warm.maxMs)} |`);
    console.error(rows[rows.length - 1]);
  }
  console.log(rows.join('\n'));
}

main().then(
  async () => { await killAllChildren(); process.exit(0); },
  async (e) => { console.error(e); await killAllChildren(); process.exit(1); },
);
