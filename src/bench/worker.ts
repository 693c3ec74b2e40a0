/**
 * The bench load worker (a piscina task, one per worker thread).
 *
 * It opens its share of the conns (one grpc-js client each), starts its clients (concurrent request loops in
 * callback style: one request in flight per client), waits at the GO barrier, then takes request indexes from
 * the shared counter until --total is reached. Each request is timed alone with process.hrtime.bigint(), from
 * just before the call until its callback. Successful latencies (ns) go to a raw sample array; failures are
 * counted by message. See shared.ts for the control words.
 */
import * as grpc from '@grpc/grpc-js';
import { pb } from '../wire/codec';
import { C, Samples, waitChange, type PhaseResult, type WorkerResult, type WorkerTask } from './shared';
import { PutEncoder, encodeRange, encodeTxnPut, errorText, newClient, waitReady, type EtcdRawClient } from './wire';

type Cb = (err: grpc.ServiceError | null, res?: Buffer) => void;
type RawUnary = (req: Buffer, opts: grpc.CallOptions, cb: Cb) => void;

let anchor = 0n;
/** ns since the main thread's anchor. */
const now = (): number => Number(process.hrtime.bigint() - anchor);

/** Spaces out requests to `rate` per second (0 = no limit). Returns how long to wait before the next, ms. */
class Pacer {
  private next = 0;
  private readonly interval: number;
  constructor(rate: number) { this.interval = rate > 0 ? 1e9 / rate : 0; }
  delayMs(): number {
    if (this.interval === 0) return 0;
    const t = now();
    const slot = Math.max(t, this.next);
    this.next = slot + this.interval;
    return (slot - t) / 1e6;
  }
}

/** Records one phase's results. */
class Recorder {
  readonly lat: Samples;
  readonly starts: Samples | null;
  readonly errors: Record<string, number> = {};
  constructor(expect: number, sample: boolean) {
    this.lat = new Samples(Math.min(expect, 1 << 16));
    this.starts = sample ? new Samples(Math.min(expect, 1 << 16)) : null;
  }
  ok(startNs: number, latNs: number): void {
    this.lat.push(latNs);
    if (this.starts) this.starts.push(startNs);
  }
  fail(err: unknown): void {
    const m = errorText(err);
    this.errors[m] = (this.errors[m] ?? 0) + 1;
  }
  result(endNs: number): PhaseResult {
    return { latNs: this.lat.toArray(), startNs: this.starts?.toArray(), errors: this.errors, endNs };
  }
}

async function openConns(task: WorkerTask): Promise<EtcdRawClient[]> {
  const clients = task.conns.map((c) => newClient(c.endpoint, task.tls));
  if (task.dialTimeoutMs > 0) {
    await Promise.all(clients.map((c, i) => waitReady(c, task.dialTimeoutMs).catch((e: Error) => {
      throw new Error(`dial ${task.conns[i].endpoint}: ${e.message}`);
    })));
  }
  return clients;
}

async function barrier(ctrl: Int32Array, ready: number, go: number): Promise<boolean> {
  Atomics.add(ctrl, ready, 1);
  Atomics.notify(ctrl, ready);
  while (Atomics.load(ctrl, go) === 0) await waitChange(ctrl, go, 0);
  return Atomics.load(ctrl, C.ABORT) === 0;
}

/**
 * Runs `loops` concurrent request loops over the shared index counter `next` until `total`, each loop issuing
 * `issue(i, cb)` for request i. Resolves when every loop has stopped.
 */
function runLoops(
  loops: Array<(i: number, cb: Cb) => void>, ctrl: Int32Array, next: number, done: number, total: number,
  pacer: Pacer, rec: Recorder,
): Promise<void> {
  return new Promise((resolve) => {
    let live = loops.length;
    if (live === 0) { resolve(); return; }
    const step = (issue: (i: number, cb: Cb) => void): void => {
      const i = Atomics.add(ctrl, next, 1);
      if (i >= total) {
        if (--live === 0) resolve();
        return;
      }
      const fire = (): void => {
        const t0 = now();
        issue(i, (err) => {
          const t1 = now();
          if (err) rec.fail(err);
          else rec.ok(t0, t1 - t0);
          Atomics.add(ctrl, done, 1);
          step(issue);
        });
      };
      const d = pacer.delayMs();
      if (d > 0.05) setTimeout(fire, d);
      else fire();
    };
    for (const l of loops) step(l);
  });
}

/** One unary-call issuer per client of each conn, bound to that conn. */
function unaryLoops(task: WorkerTask, conns: EtcdRawClient[], method: 'Put' | 'Range' | 'Txn', make: (i: number) => Buffer): Array<(i: number, cb: Cb) => void> {
  const loops: Array<(i: number, cb: Cb) => void> = [];
  const tmo = task.requestTimeoutMs;
  conns.forEach((client, ci) => {
    const fn = (client[method] as unknown as RawUnary).bind(client);
    for (let k = 0; k < task.conns[ci].clients; k++) {
      loops.push((i, cb) => fn(make(i), tmo > 0 ? { deadline: Date.now() + tmo } : {}, cb));
    }
  });
  return loops;
}

async function runUnary(task: WorkerTask, ctrl: Int32Array): Promise<WorkerResult> {
  const conns = await openConns(task);
  let make: (i: number) => Buffer;
  let method: 'Put' | 'Range' | 'Txn';
  if (task.kind === 'put') {
    const p = task.put!;
    const enc = new PutEncoder(p.keySize, p.value, p.keySpace);
    method = 'Put';
    make = p.sequential ? (i) => enc.encode(i % p.keySpace) : () => enc.encode(Math.floor(Math.random() * p.keySpace));
  } else if (task.kind === 'range') {
    const r = task.range!;
    const req = encodeRange(r.key, r.end, r.serializable);
    method = 'Range';
    make = () => req;
  } else {
    const t = task.txn!;
    const cache = new Map<number, Buffer>();
    method = 'Txn';
    make = (i) => {
      const first = (i * t.ops) % t.keySpace;
      let b = cache.get(first);
      if (!b) {
        const nums: number[] = [];
        for (let j = 0; j < t.ops; j++) nums.push((first + j) % t.keySpace);
        b = encodeTxnPut(t.keySize, nums, t.value);
        if (cache.size < 8192) cache.set(first, b);
      }
      return b;
    };
  }
  const loops = unaryLoops(task, conns, method, make);
  const rec = new Recorder(task.total, task.sample);
  try {
    if (!(await barrier(ctrl, C.READY, C.GO))) return { main: rec.result(now()) };
    await runLoops(loops, ctrl, C.NEXT, C.DONE, task.total, new Pacer(task.rate), rec);
    return { main: rec.result(now()) };
  } finally {
    conns.forEach((c) => c.close());
  }
}

async function runLeaseKeepAlive(task: WorkerTask, ctrl: Int32Array): Promise<WorkerResult> {
  const conns = await openConns(task);
  const loops: Array<(i: number, cb: Cb) => void> = [];
  const streams: grpc.ClientDuplexStream<Buffer, Buffer>[] = [];
  try {
    for (let ci = 0; ci < conns.length; ci++) {
      for (let k = 0; k < task.conns[ci].clients; k++) {
        const grant = await new Promise<Buffer>((res, rej) =>
          (conns[ci].LeaseGrant as unknown as RawUnary)(Buffer.from(pb.LeaseGrantRequest.encode({ TTL: 100 }).finish()), {}, (e, r) => (e ? rej(e) : res(r!))));
        const g = pb.LeaseGrantResponse.decode(grant) as unknown as { ID: number; error?: string };
        if (g.error) throw new Error(`lease grant: ${g.error}`);
        const req = Buffer.from(pb.LeaseKeepAliveRequest.encode({ ID: g.ID }).finish());
        const stream = conns[ci].LeaseKeepAlive();
        streams.push(stream);
        let pending: Cb | null = null;
        const settle = (err: grpc.ServiceError | null): void => {
          const cb = pending;
          pending = null;
          if (cb) cb(err);
        };
        stream.on('data', () => settle(null));
        stream.on('error', (e: grpc.ServiceError) => settle(e));
        stream.on('end', () => settle({ code: grpc.status.UNAVAILABLE, details: 'keepalive stream closed' } as grpc.ServiceError));
        loops.push((_i, cb) => {
          pending = cb;
          if (stream.destroyed || stream.writableEnded) { settle({ code: grpc.status.UNAVAILABLE, details: 'keepalive stream closed' } as grpc.ServiceError); return; }
          stream.write(req);
        });
      }
    }
    const rec = new Recorder(task.total, task.sample);
    if (!(await barrier(ctrl, C.READY, C.GO))) return { main: rec.result(now()) };
    await runLoops(loops, ctrl, C.NEXT, C.DONE, task.total, new Pacer(task.rate), rec);
    return { main: rec.result(now()) };
  } finally {
    streams.forEach((s) => s.cancel());
    conns.forEach((c) => c.close());
  }
}

interface DecodedWatchResponse { watchId: number; created: boolean; canceled: boolean; cancelReason?: string; events?: Array<{ kv?: { value?: Uint8Array } }> }

async function runWatch(task: WorkerTask, ctrl: Int32Array): Promise<WorkerResult> {
  const w = task.watch!;
  const conns = await openConns(task);
  const created = new Recorder(w.streams.length * w.watchPerStream, task.sample);
  const events = new Recorder(w.expectedEvents, task.sample);
  const streams: grpc.ClientDuplexStream<Buffer, Buffer>[] = [];
  let received = 0;
  let lastEventAt = 0;
  let onEvent: (() => void) | null = null;
  try {
    // Phase 1: each stream creates its watchers one after the other; the streams run concurrently.
    const createOne: Array<(w: number) => Promise<void>> = [];
    for (const s of w.streams) {
      const stream = conns[s.conn].Watch();
      streams.push(stream);
      let waiting: ((r: DecodedWatchResponse | Error) => void) | null = null;
      stream.on('data', (buf: Buffer) => {
        const t = now();
        const r = pb.WatchResponse.decode(buf) as unknown as DecodedWatchResponse;
        if (r.created || r.canceled) {
          const cb = waiting;
          waiting = null;
          if (cb) cb(r);
          return;
        }
        const evs = r.events ?? [];
        for (const ev of evs) {
          const v = ev.kv?.value;
          if (v && v.length === 8) {
            const sent = Buffer.from(v.buffer, v.byteOffset, 8).readDoubleLE(0);
            events.ok(sent, t - sent);
          } else events.ok(t, 0);
          received++;
          Atomics.add(ctrl, C.DONE2, 1);
        }
        lastEventAt = t;
        if (onEvent) onEvent();
      });
      const failWaiter = (e: Error): void => {
        const cb = waiting;
        waiting = null;
        if (cb) cb(e);
      };
      stream.on('error', failWaiter);
      stream.on('end', () => failWaiter(new Error('watch stream closed')));
      createOne.push((wi: number) => new Promise<void>((resolve) => {
        const key = w.keys[wi % w.keys.length];
        const req = Buffer.from(pb.WatchRequest.encode({ createRequest: { key } }).finish());
        const t0 = now();
        waiting = (r) => {
          const t1 = now();
          if (r instanceof Error) created.fail(r);
          else if (r.canceled) created.fail(new Error(`watch canceled: ${r.cancelReason ?? ''}`));
          else created.ok(t0, t1 - t0);
          Atomics.add(ctrl, C.DONE, 1);
          resolve();
        };
        stream.write(req);
      }));
    }
    if (!(await barrier(ctrl, C.READY, C.GO))) return { main: created.result(now()), events: events.result(now()) };
    await Promise.all(w.streams.map(async (s, k) => {
      for (let j = 0; j < w.watchPerStream; j++) await createOne[k](s.global * w.watchPerStream + j);
    }));
    const createdEnd = now();

    // Phase 2: this worker's clients put; its watchers count the events. Each value carries its send time.
    const templates = w.keys.map((key) => Buffer.from(pb.PutRequest.encode({ key, value: Buffer.alloc(8) }).finish()));
    const putRec = new Recorder(0, false);
    const loops = unaryLoops(task, conns, 'Put', (i) => {
      const t = templates[i % templates.length];
      const b = Buffer.allocUnsafe(t.length);
      t.copy(b);
      b.writeDoubleLE(now(), b.length - 8);
      return b;
    });
    if (!(await barrier(ctrl, C.READY2, C.GO2))) return { main: created.result(createdEnd), events: events.result(now()) };
    lastEventAt = now();
    await runLoops(loops, ctrl, C.NEXT2, C.PUTDONE, w.putTotal, new Pacer(w.putRate), putRec);
    for (const [m, n] of Object.entries(putRec.errors)) events.errors[`put: ${m}`] = (events.errors[`put: ${m}`] ?? 0) + n;
    // Wait for the expected events, giving up after stallMs without any.
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (received >= w.expectedEvents) { onEvent = null; resolve(); return; }
        if (now() - lastEventAt > w.stallMs * 1e6) {
          onEvent = null;
          events.errors['watch events missing'] = w.expectedEvents - received;
          resolve();
          return;
        }
        setTimeout(check, 50);
      };
      onEvent = () => { if (received >= w.expectedEvents) check(); };
      check();
    });
    return { main: created.result(createdEnd), events: events.result(now()) };
  } finally {
    streams.forEach((s) => s.cancel());
    conns.forEach((c) => c.close());
  }
}

/** piscina entry point: runs one worker's share of a bench run. */
export default async function run(task: WorkerTask): Promise<WorkerResult> {
  anchor = BigInt(task.anchorNs);
  const ctrl = new Int32Array(task.ctrl);
  if (task.kind === 'lease-keepalive') return runLeaseKeepAlive(task, ctrl);
  if (task.kind === 'watch') return runWatch(task, ctrl);
  return runUnary(task, ctrl);
}
