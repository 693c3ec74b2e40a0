/**
 * Main-thread side of a bench run: splits conns and clients over piscina worker threads, releases them all at
 * once, shows progress, and merges their raw latency samples into Summaries (stats.ts).
 *
 * Layout (as in etcd's benchmark): conn i dials endpoint i mod E; client g uses conn g mod N. Worker w owns the
 * conns i with i mod W = w (and so their clients), W = min(conns, clients, --workers). With 1 conn × 1 client
 * there is one worker. For `watch`, stream s uses conn s mod N and its watchers watch keys[(s·perStream + j) mod K].
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { Piscina } from 'piscina';
import { pb } from '../wire/codec';
import { C, waitChange, type BenchKind, type PhaseResult, type PutParams, type RangeParams, type TxnParams, type WorkerResult, type WorkerTask } from './shared';
import { sortedCopy, summarize, timeSeries, type SecondPoint, type Summary } from './stats';
import { callUnary, errorText, newClient, type TlsFiles } from './wire';

/** Everything a run needs (already validated by the CLI). Durations in ms. */
export interface RunOptions {
  kind: BenchKind;
  endpoints: string[];
  conns: number;
  clients: number;
  /** Upper bound on worker threads (default: available cores). */
  workers?: number;
  targetLeader: boolean;
  dialTimeoutMs: number;
  requestTimeoutMs: number;
  tls: TlsFiles;
  sample: boolean;
  total: number;
  /** Requests/s over the whole run (0 = unlimited). */
  rate: number;
  put?: PutParams;
  range?: RangeParams;
  txn?: TxnParams;
  watch?: { streams: number; watchPerStream: number; keys: Uint8Array[]; putTotal: number; putRate: number; stallMs: number };
  /** Called with (done, total, phase label) while running, about 10× a second. */
  onProgress?: (done: number, total: number, phase: string) => void;
}

/** One phase's merged result. */
export interface PhaseReport { summary: Summary; samples?: SecondPoint[] }

/** A run's result: `main` for every kind; for watch, `main` is watch creation and `events` the events received. */
export interface RunResult { main: PhaseReport; events?: PhaseReport; endpoints: string[]; workers: number }

/**
 * --target-leader: asks Maintenance.Status on each endpoint and returns the one whose member ID is the leader
 * it reports. If no listed endpoint is the leader, the leader's first client URL from MemberList is used.
 * Throws when no endpoint answers.
 */
export async function findLeader(endpoints: string[], tls: TlsFiles, timeoutMs: number): Promise<string> {
  let lastErr: unknown = null;
  let leaderId: number | null = null;
  let asked: string | null = null;
  for (const ep of endpoints) {
    const c = newClient(ep, tls);
    try {
      const res = pb.StatusResponse.decode(await callUnary(c, 'Status', Buffer.alloc(0), timeoutMs)) as unknown as { header: { memberId: number }; leader: number };
      if (res.leader && res.header.memberId === res.leader) return ep;
      if (res.leader) { leaderId = res.leader; asked = ep; }
    } catch (e) {
      lastErr = e;
    } finally {
      c.close();
    }
  }
  if (leaderId !== null && asked) {
    const c = newClient(asked, tls);
    try {
      const ml = pb.MemberListResponse.decode(await callUnary(c, 'MemberList', Buffer.alloc(0), timeoutMs)) as unknown as { members: Array<{ ID: number; clientURLs: string[] }> };
      const m = ml.members.find((x) => x.ID === leaderId);
      if (m && m.clientURLs.length > 0) return m.clientURLs[0];
    } finally {
      c.close();
    }
    throw new Error(`leader ${leaderId} has no client URL`);
  }
  throw new Error(`no leader found on ${endpoints.join(',')}${lastErr ? `: ${errorText(lastErr)}` : ''}`);
}

/** Clients of conn i when `clients` are dealt round-robin over `conns`. */
export function clientsOfConn(i: number, conns: number, clients: number): number {
  return Math.floor(clients / conns) + (i < clients % conns ? 1 : 0);
}

function mergePhase(parts: PhaseResult[], goNs: number, anchorWallMs: number, sample: boolean): PhaseReport {
  let n = 0;
  for (const p of parts) n += p.latNs.length;
  const lat = new Float64Array(n);
  const starts = sample ? new Float64Array(n) : null;
  let off = 0;
  const errors: Record<string, number> = {};
  let end = goNs;
  for (const p of parts) {
    lat.set(p.latNs, off);
    if (starts && p.startNs) starts.set(p.startNs.map((s) => anchorWallMs + s / 1e6), off);
    off += p.latNs.length;
    for (const [m, k] of Object.entries(p.errors)) errors[m] = (errors[m] ?? 0) + k;
    if (p.endNs > end) end = p.endNs;
  }
  const samples = starts ? timeSeries(starts, lat) : undefined;
  const sec = sortedCopy(lat.map((x) => x / 1e9));
  return { summary: summarize(sec, (end - goNs) / 1e9, errors), samples };
}

/** Runs one benchmark. Rejects on setup failures (dial, leader, worker errors). */
export async function runBench(o: RunOptions): Promise<RunResult> {
  let endpoints = o.endpoints;
  if (o.targetLeader) endpoints = [await findLeader(o.endpoints, o.tls, o.dialTimeoutMs || 5000)];
  const maxWorkers = Math.max(1, o.workers ?? os.availableParallelism());
  const W = Math.max(1, Math.min(o.conns, o.clients, maxWorkers));
  const anchor = process.hrtime.bigint();
  const anchorWallMs = Date.now();
  const nowNs = (): number => Number(process.hrtime.bigint() - anchor);
  const sab = new SharedArrayBuffer(C.SIZE * 4);
  const ctrl = new Int32Array(sab);

  // Conns and clients per worker.
  const own: Array<Array<{ endpoint: string; clients: number; global: number }>> = Array.from({ length: W }, () => []);
  for (let i = 0; i < o.conns; i++) own[i % W].push({ endpoint: endpoints[i % endpoints.length], clients: clientsOfConn(i, o.conns, o.clients), global: i });

  // Watch: streams per worker and the events each worker must see.
  let expected: number[] = [];
  const streamsOf: Array<Array<{ global: number; conn: number }>> = Array.from({ length: W }, () => []);
  if (o.kind === 'watch') {
    const wt = o.watch!;
    const putsPerKey = new Map<string, number>();
    for (let i = 0; i < wt.putTotal; i++) {
      const k = Buffer.from(wt.keys[i % wt.keys.length]).toString('hex');
      putsPerKey.set(k, (putsPerKey.get(k) ?? 0) + 1);
    }
    expected = new Array(W).fill(0);
    for (let s = 0; s < wt.streams; s++) {
      const conn = s % o.conns;
      const w = conn % W;
      streamsOf[w].push({ global: s, conn: own[w].findIndex((c) => c.global === conn) });
      for (let j = 0; j < wt.watchPerStream; j++) {
        expected[w] += putsPerKey.get(Buffer.from(wt.keys[(s * wt.watchPerStream + j) % wt.keys.length]).toString('hex')) ?? 0;
      }
    }
  }

  const pool = new Piscina({
    filename: path.join(__dirname, 'worker.js'),
    minThreads: W,
    maxThreads: W,
    concurrentTasksPerWorker: 1,
    idleTimeout: 1000,
  });
  let failure: unknown = null;
  const tasks: Promise<WorkerResult>[] = own.map((conns, w) => {
    const myClients = conns.reduce((a, c) => a + c.clients, 0);
    const share = (r: number): number => (r > 0 ? (r * myClients) / o.clients : 0);
    const task: WorkerTask = {
      kind: o.kind,
      conns: conns.map((c) => ({ endpoint: c.endpoint, clients: c.clients })),
      tls: o.tls,
      dialTimeoutMs: o.dialTimeoutMs,
      requestTimeoutMs: o.requestTimeoutMs,
      ctrl: sab,
      total: o.total,
      rate: share(o.rate),
      sample: o.sample,
      anchorNs: anchor.toString(),
      put: o.put,
      range: o.range,
      txn: o.txn,
      watch: o.watch && {
        keys: o.watch.keys, watchPerStream: o.watch.watchPerStream, putTotal: o.watch.putTotal, putRate: share(o.watch.putRate),
        streams: streamsOf[w], expectedEvents: expected[w], stallMs: o.watch.stallMs,
      },
    };
    const p = pool.run(task) as Promise<WorkerResult>;
    p.catch((e) => {
      if (!failure) failure = e;
      Atomics.store(ctrl, C.ABORT, 1);
      Atomics.store(ctrl, C.GO, 1);
      Atomics.store(ctrl, C.GO2, 1);
      Atomics.notify(ctrl, C.GO);
      Atomics.notify(ctrl, C.GO2);
    });
    return p;
  });

  const progress = (doneIdx: number, total: number, label: string): (() => void) => {
    if (!o.onProgress) return () => {};
    const t = setInterval(() => o.onProgress!(Math.min(Atomics.load(ctrl, doneIdx), total), total, label), 100);
    return () => { clearInterval(t); o.onProgress!(Math.min(Atomics.load(ctrl, doneIdx), total), total, label); };
  };
  const awaitCount = async (idx: number, n: number): Promise<void> => {
    for (let v = Atomics.load(ctrl, idx); v < n && !failure; v = Atomics.load(ctrl, idx)) await waitChange(ctrl, idx, v, 50);
  };

  // Atomics.waitAsync and piscina's threads do not keep the event loop alive on their own.
  const keepAlive = setInterval(() => {}, 1000);
  try {
    await awaitCount(C.READY, W);
    if (failure) throw failure;
    const goNs = nowNs();
    Atomics.store(ctrl, C.GO, 1);
    Atomics.notify(ctrl, C.GO);
    const phase1Total = o.kind === 'watch' ? o.watch!.streams * o.watch!.watchPerStream : o.total;
    const stop1 = progress(C.DONE, phase1Total, o.kind === 'watch' ? 'watch create' : o.kind);
    let go2Ns = 0;
    let stop2 = (): void => {};
    if (o.kind === 'watch') {
      await awaitCount(C.READY2, W);
      stop1();
      if (failure) throw failure;
      go2Ns = nowNs();
      Atomics.store(ctrl, C.GO2, 1);
      Atomics.notify(ctrl, C.GO2);
      stop2 = progress(C.DONE2, expected.reduce((a, b) => a + b, 0), 'watch events');
    }
    let results: WorkerResult[];
    try {
      results = await Promise.all(tasks);
    } finally {
      stop1();
      stop2();
    }
    const main = mergePhase(results.map((r) => r.main), goNs, anchorWallMs, o.sample);
    const events = o.kind === 'watch' ? mergePhase(results.map((r) => r.events!), go2Ns, anchorWallMs, o.sample) : undefined;
    return { main, events, endpoints, workers: W };
  } finally {
    await Promise.allSettled(tasks);
    await pool.destroy();
    clearInterval(keepAlive);
  }
}
