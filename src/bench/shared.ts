/**
 * What the bench main thread and its piscina workers share: the task/result shapes and the control words.
 *
 * Control words live in an Int32Array over a SharedArrayBuffer. Workers connect, then count themselves in
 * READY and wait for GO; the main thread flips GO for all at once, so connection setup stays outside the
 * measured window. Request indexes are handed out with Atomics.add on NEXT (one global sequence across all
 * workers and clients, so --total is exact); DONE counts finished requests for the progress bar. The `…2`
 * words are the same for the second phase of `watch` (puts and events). ABORT tells waiting workers to give up.
 *
 * Times are nanoseconds relative to an anchor `process.hrtime.bigint()` taken by the main thread: the
 * monotonic clock is process-wide, so the values from different threads are comparable.
 */

export const C = {
  READY: 0,
  GO: 1,
  NEXT: 2,
  DONE: 3,
  READY2: 4,
  GO2: 5,
  NEXT2: 6,
  DONE2: 7,
  ABORT: 8,
  PUTDONE: 9,
  SIZE: 16,
} as const;

/** Parameters of a `put` run. `value` is the same random value for every request. */
export interface PutParams { keySize: number; value: Uint8Array; keySpace: number; sequential: boolean }
/** Parameters of a `range` run (strings are the raw key bytes as UTF-8). */
export interface RangeParams { key: string; end: string; serializable: boolean }
/** Parameters of a `txn-put` run: txn i puts key numbers (i·ops + j) mod keySpace, j < ops. */
export interface TxnParams { keySize: number; value: Uint8Array; keySpace: number; ops: number }
/** Parameters of a `watch` run (etcd's watch benchmark: creation phase, then put/event phase). */
export interface WatchParams {
  /** The watched keys; watcher w watches keys[w mod keys.length]. */
  keys: Uint8Array[];
  watchPerStream: number;
  putTotal: number;
  /** This worker's share of --put-rate, puts/s (0 = unlimited). */
  putRate: number;
  /** Global indexes of the streams this worker owns, each with the local conn index it uses. */
  streams: Array<{ global: number; conn: number }>;
  /** Events this worker's watchers must receive in total. */
  expectedEvents: number;
  /** Give up waiting for events after this long without one, ms. */
  stallMs: number;
}

export type BenchKind = 'put' | 'range' | 'txn-put' | 'lease-keepalive' | 'watch';

/** One worker's task. */
export interface WorkerTask {
  kind: BenchKind;
  /** The worker's conns: endpoint and number of clients (concurrent loops) each. */
  conns: Array<{ endpoint: string; clients: number }>;
  tls: { cacert?: string; cert?: string; key?: string };
  /** Wait this long for every conn to be up before GO, ms; 0 = connect lazily on the first request. */
  dialTimeoutMs: number;
  /** Per-request deadline, ms; 0 = none. */
  requestTimeoutMs: number;
  ctrl: SharedArrayBuffer;
  /** Total requests over all workers (phase 1). */
  total: number;
  /** This worker's share of --rate, requests/s (0 = unlimited). */
  rate: number;
  /** Also return each success's start time (for --sample). */
  sample: boolean;
  /** process.hrtime.bigint() of the main thread's anchor, as a decimal string. */
  anchorNs: string;
  put?: PutParams;
  range?: RangeParams;
  txn?: TxnParams;
  watch?: WatchParams;
}

/** Latencies and errors of one phase in one worker. */
export interface PhaseResult {
  /** Latency of each successful request, ns. */
  latNs: Float64Array;
  /** Start of each successful request, ns after the anchor (only with sample). */
  startNs?: Float64Array;
  /** Failed requests by message. */
  errors: Record<string, number>;
  /** When this worker finished the phase, ns after the anchor. */
  endNs: number;
}

/** What a worker returns: phase 1 (all kinds) and phase 2 (watch events only). */
export interface WorkerResult { main: PhaseResult; events?: PhaseResult }

/** Atomics.waitAsync (Node ≥ 16), typed loosely because TS's ES2022 lib lacks it. */
export async function waitChange(arr: Int32Array, index: number, value: number, timeoutMs?: number): Promise<void> {
  const wa = (Atomics as unknown as { waitAsync: (a: Int32Array, i: number, v: number, t?: number) => { async: boolean; value: Promise<string> | string } }).waitAsync;
  const r = wa(arr, index, value, timeoutMs);
  if (r.async) await r.value;
}

/** Growable Float64Array for samples. */
export class Samples {
  private buf: Float64Array;
  length = 0;
  constructor(initial = 1024) { this.buf = new Float64Array(Math.max(16, initial)); }
  push(v: number): void {
    if (this.length === this.buf.length) {
      const n = new Float64Array(this.buf.length * 2);
      n.set(this.buf);
      this.buf = n;
    }
    this.buf[this.length++] = v;
  }
  /** A right-sized copy of the values. */
  toArray(): Float64Array { return this.buf.slice(0, this.length); }
}
