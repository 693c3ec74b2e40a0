/**
 * The apply worker's published counters on a SharedArrayBuffer, readable by the main thread without a message hop:
 * applied index, store revision, compact revision, db size, ... (one writer: the apply worker).
 *
 * A BigInt64Array so each word is one atomic 64-bit load/store (same representation as src/ring/status.ts). The
 * applied index is also mirrored into the shared StatusWords (StatusWord.AppliedIndex) when the server passes them.
 * Payload words are stored before ApplyWord.AppliedIndex, which is stored last and notified.
 */

import { ETCD_METRIC_SPECS, bucketsOf } from '../metrics/etcd-specs';

/** Atomics.waitAsync (Node 20; missing from the ES2022 lib typings). */
interface AtomicsWaitAsync {
  waitAsync(
    a: BigInt64Array,
    index: number,
    value: bigint,
    timeoutMs?: number,
  ): { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
}

/**
 * What kind of fault stopped the apply worker: stored in ApplyWord.Fatal and StatusWord.ApplyFatal before the
 * worker's 'fatal' message, so the main thread decides etcd's answer from a code, not from the message text.
 */
export enum ApplyFaultCode {
  None = 0,
  /** An I/O error of the store (an errno other than a full disk). */
  Io = 1,
  /** The disk or the LMDB map is full: writes then get etcd's "database space exceeded". */
  NoSpace = 2,
  /** A malformed applyIn ring record (a producer bug or ring corruption). */
  BadRecord = 3,
  /** Anything else (a bug), and a worker that exited without saying why. */
  Internal = 4,
}

/** errno names of a full disk or quota. */
const NO_SPACE_ERRNOS = new Set(['ENOSPC', 'EDQUOT', 'ENOMEM']);
/** LMDB's own status names that mean "no room" (lmdb-js reports native failures by message only). */
const LMDB_NO_SPACE = ['MDB_MAP_FULL', 'No space left on device'];

/**
 * Classifies the error that stopped the apply worker, where it happened (the worker thread). Node's fs errors carry
 * an errno name in `code`; LMDB's native failures carry only their status text, so those are matched here, once,
 * by name, and never again on the other side of the thread boundary.
 */
export function applyFaultCodeOf(e: unknown): ApplyFaultCode {
  const err = e as { name?: unknown; code?: unknown; message?: unknown } | null;
  if (err === null || typeof err !== 'object') return ApplyFaultCode.Internal;
  if (typeof err.code === 'string' && NO_SPACE_ERRNOS.has(err.code)) return ApplyFaultCode.NoSpace;
  const message = typeof err.message === 'string' ? err.message : '';
  if (LMDB_NO_SPACE.some((s) => message.includes(s))) return ApplyFaultCode.NoSpace;
  if (err.name === 'RingCorruptError' || err.name === 'InvariantError') return ApplyFaultCode.BadRecord;
  if (typeof err.code === 'string' && /^E[A-Z]+$/.test(err.code)) return ApplyFaultCode.Io;
  return ApplyFaultCode.Internal;
}

/** Words of the apply status buffer. */
export enum ApplyWord {
  /** Raft index of the last applied entry (the consistent index). Stored last, notified. */
  AppliedIndex = 0,
  /** Store revision after the last applied batch. */
  Revision = 1,
  /** Compact revision (0 = never compacted). */
  CompactRevision = 2,
  /** LMDB data file size, bytes. */
  DbSizeBytes = 3,
  /** LMDB bytes in use. */
  DbSizeInUseBytes = 4,
  /** Consistent index covered by the last LMDB fsync (the WAL may be truncated up to it). */
  SyncedIndex = 5,
  /** Term of the last applied entry. */
  AppliedTerm = 6,
  /** 1 once the worker opened the store and published the words above. */
  Ready = 7,
  /** Nonzero: the worker stopped on a fatal (non-request) failure; the value is its {@link ApplyFaultCode}. */
  Fatal = 8,
  // Cumulative MVCC counters since the worker started (etcd mvcc/metrics_txn.go semantics, counted where the
  // work happens: MvccStore, published by the Applier after each request). Monotonic for one worker; a new
  // worker (restart, snapshot restore) starts again from 0, the main thread accumulates across (etcd-server.ts).
  /** etcd_mvcc_put_total: puts applied (standalone and inside txns). */
  MvccPuts = 9,
  /** etcd_mvcc_delete_total: delete-range ops applied (one per op; a lease revoke counts one per attached key). */
  MvccDeletes = 10,
  /** etcd_mvcc_txn_total: MVCC transactions with more than one range/put/delete. */
  MvccTxns = 11,
  /** Ranges done in the apply worker (txn compares and range ops, prev_kv reads); main-thread reads count apart. */
  MvccRanges = 12,
  /** etcd_debugging_mvcc_total_put_size_in_bytes: sum of len(key) + len(value) of every put. */
  MvccPutBytes = 13,
  /** etcd_debugging_mvcc_keys_total: live keys (a gauge, not cumulative). */
  MvccKeys = 14,
  /** etcd_debugging_mvcc_db_compaction_keys_total: revision records removed by compactions. */
  MvccCompactionKeys = 15,
  /** Count of raised alarms (alarm store size); see AlarmSeq. */
  AlarmCount = 16,
  /** Bumped on every alarm store change (the main thread re-reads the alarm list when it moves). */
  AlarmSeq = 17,
  /** Compactions done (the three compaction histograms below each hold this many observations). */
  CompactionCount = 18,
  /** Bumped on every auth store change (the main thread re-reads the auth record when it moves). */
  AuthSeq = 19,
  /** The auth revision after the last applied batch (etcd authStore.Revision()). */
  AuthRevision = 20,
}

/**
 * Integer-valued histograms kept in the apply status buffer (etcd observes whole milliseconds:
 * `float64(time.Since(start) / time.Millisecond)`), layout per histogram: [sum, count, bucket 0..n-1, +Inf]
 * (non-cumulative bucket counts), starting at word `offset`.
 */
export const WORD_HISTOGRAMS = {
  etcd_debugging_mvcc_index_compaction_pause_duration_milliseconds: { offset: 32, ...ETCD_METRIC_SPECS.etcd_debugging_mvcc_index_compaction_pause_duration_milliseconds.buckets },
  etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds: { offset: 50, ...ETCD_METRIC_SPECS.etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds.buckets },
  etcd_debugging_mvcc_db_compaction_total_duration_milliseconds: { offset: 70, ...ETCD_METRIC_SPECS.etcd_debugging_mvcc_db_compaction_total_duration_milliseconds.buckets },
} as const;
export type WordHistogramName = keyof typeof WORD_HISTOGRAMS;

/** Upper bounds of a word histogram's finite buckets. */
export function wordHistogramBounds(name: WordHistogramName): number[] {
  return [...bucketsOf(name)];
}

/** Number of 64-bit words allocated. */
export const APPLY_WORD_COUNT = 96;

/** Atomic view over the apply status buffer. */
export class ApplyStatus {
  private readonly words: BigInt64Array;

  /** Allocates a zeroed buffer. */
  static create(): ApplyStatus {
    return new ApplyStatus(new SharedArrayBuffer(APPLY_WORD_COUNT * 8));
  }

  /** Attaches to a buffer from create() (any thread). @throws RangeError on a wrong size. */
  constructor(readonly sab: SharedArrayBuffer) {
    if (sab.byteLength !== APPLY_WORD_COUNT * 8) throw new RangeError(`apply status buffer must be ${APPLY_WORD_COUNT * 8} bytes`);
    this.words = new BigInt64Array(sab);
  }

  /** Atomic load. */
  load(w: ApplyWord): number {
    return Number(Atomics.load(this.words, w));
  }

  /** Atomic store (value: safe integer ≥ 0). */
  store(w: ApplyWord, v: number): void {
    Atomics.store(this.words, w, BigInt(v));
  }

  /** Atomic add (single writer: the apply worker). */
  add(w: number, delta: number): void {
    Atomics.add(this.words, w, BigInt(delta));
  }

  /** Atomic load of any word index (word histograms). */
  loadAt(i: number): number {
    return Number(Atomics.load(this.words, i));
  }

  /** Records one observation (whole milliseconds) into a word histogram (apply worker only). */
  observe(name: WordHistogramName, ms: number): void {
    const h = WORD_HISTOGRAMS[name];
    const v = Math.max(0, Math.floor(ms));
    const bounds = bucketsOf(name);
    let b = 0;
    while (b < h.count && v > bounds[b]!) b++;
    this.add(h.offset + 2 + b, 1);
    this.add(h.offset, v);
    this.add(h.offset + 1, 1);
  }

  /** Snapshot of a word histogram: sum, count, non-cumulative bucket counts (last = +Inf). */
  histogram(name: WordHistogramName): { sum: number; count: number; buckets: number[] } {
    const h = WORD_HISTOGRAMS[name];
    const buckets: number[] = [];
    for (let i = 0; i <= h.count; i++) buckets.push(this.loadAt(h.offset + 2 + i));
    return { sum: this.loadAt(h.offset), count: this.loadAt(h.offset + 1), buckets };
  }

  /** Wakes waiters on a word. */
  notify(w: ApplyWord): void {
    Atomics.notify(this.words, w);
  }

  /** Resolves when `w` differs from `expected`, is notified, or after timeoutMs. Main-thread safe. */
  waitAsync(w: ApplyWord, expected: number, timeoutMs?: number): Promise<'ok' | 'not-equal' | 'timed-out'> {
    const r = (Atomics as unknown as AtomicsWaitAsync).waitAsync(this.words, w, BigInt(expected), timeoutMs);
    return r.async ? r.value : Promise.resolve(r.value);
  }
}
