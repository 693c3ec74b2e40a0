/**
 * The apply worker's published counters on a SharedArrayBuffer, readable by the main thread without a message hop:
 * applied index, store revision, compact revision, db size, ... (one writer: the apply worker).
 *
 * A BigInt64Array so each word is one atomic 64-bit load/store (same representation as src/ring/status.ts). The
 * applied index is also mirrored into the shared StatusWords (StatusWord.AppliedIndex) when the server passes them.
 * Payload words are stored before ApplyWord.AppliedIndex, which is stored last and notified.
 */

/** Atomics.waitAsync (Node 20; missing from the ES2022 lib typings). */
interface AtomicsWaitAsync {
  waitAsync(
    a: BigInt64Array,
    index: number,
    value: bigint,
    timeoutMs?: number,
  ): { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
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
  /** Nonzero: the worker stopped on a fatal (non-request) failure. */
  Fatal = 8,
}

/** Number of 64-bit words allocated. */
export const APPLY_WORD_COUNT = 16;

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
