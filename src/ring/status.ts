/**
 * Shared status words: a tiny SharedArrayBuffer of named 64-bit slots that one thread publishes and others read
 * or wait on (durable index/term from the WAL worker, applied index from the apply worker, fatal error codes).
 *
 * Representation choice: a BigInt64Array, so every load/store is one atomic 64-bit operation (no torn pair of
 * Int32 halves, no seqlock). The public API converts to `number`: every value stored here is a Raft index, a
 * term, a counter or an error code, all < 2^53 (store() asserts it). Atomics.wait / Atomics.waitAsync work on
 * BigInt64Array in Node 20.
 *
 * Each word should have one writer thread. Writers publishing several words store the "payload" words first and
 * the word others wait on last (e.g. DurableTerm, DurableIndex, then DurableSeq), then notify that word.
 */

import { waitAsync } from './atomics';

/** Names of the status words (index into the BigInt64Array). */
export enum StatusWord {
  /** Index of the last entry the WAL has made durable. Written by the WAL worker. */
  DurableIndex = 0,
  /** Term of the entry at DurableIndex. Written by the WAL worker. */
  DurableTerm = 1,
  /** Count of walIn ring records made durable (monotonic; the word to wait on). Written by the WAL worker. */
  DurableSeq = 2,
  /** Nonzero = the WAL worker stopped on a fatal error; value is a WalErrorCode (src/wal/worker.ts). */
  WalFatal = 3,
  /** Last index applied to the MVCC store. Written by the apply worker. */
  AppliedIndex = 4,
  /** Nonzero = the apply worker stopped on a fatal error. */
  ApplyFatal = 5,
  /** 1 once the WAL worker opened/replayed the log and accepts records. */
  WalReady = 6,
  /** 1 once the WAL worker exited its loop (after close or a fatal error). */
  WalStopped = 7,
  /** Bytes the WAL worker wrote to segment files since it started (etcd_disk_wal_write_bytes_total). */
  WalWriteBytes = 8,
}

/** Number of 64-bit slots allocated (room for future words). */
export const STATUS_WORD_COUNT = 16;

/** Named 64-bit status words on a SharedArrayBuffer (see module doc for the representation). */
export class StatusWords {
  private readonly words: BigInt64Array;

  /** Allocates a fresh zeroed status buffer. */
  static create(): StatusWords {
    return new StatusWords(new SharedArrayBuffer(STATUS_WORD_COUNT * 8));
  }

  /** Attaches to a buffer created by StatusWords.create() (possibly in another thread).
   * @throws RangeError when the buffer has the wrong size. */
  constructor(readonly sab: SharedArrayBuffer) {
    if (sab.byteLength !== STATUS_WORD_COUNT * 8) {
      throw new RangeError(`status buffer must be ${STATUS_WORD_COUNT * 8} bytes, got ${sab.byteLength}`);
    }
    this.words = new BigInt64Array(sab);
  }

  /** Atomic load of a word as a number. */
  load(word: StatusWord): number {
    return Number(Atomics.load(this.words, word));
  }

  /** Atomic store (does not notify). @throws RangeError if value is not a safe integer >= 0. */
  store(word: StatusWord, value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`status word value must be a safe integer >= 0, got ${value}`);
    Atomics.store(this.words, word, BigInt(value));
  }

  /** Atomic add, returns the new value. */
  add(word: StatusWord, delta: number): number {
    return Number(Atomics.add(this.words, word, BigInt(delta))) + delta;
  }

  /** Wakes every thread waiting on `word`. @returns number of waiters woken. */
  notify(word: StatusWord): number {
    return Atomics.notify(this.words, word);
  }

  /**
   * Resolves when `word` differs from `expected` (immediately if it already does) or is notified, or after
   * timeoutMs (default none). Main-thread safe (Atomics.waitAsync). Callers must re-load the word afterwards.
   */
  waitAsync(word: StatusWord, expected: number, timeoutMs?: number): Promise<'ok' | 'not-equal' | 'timed-out'> {
    return waitAsync(this.words, word, BigInt(expected), timeoutMs);
  }

  /** Blocking wait (worker threads only): while `word` equals `expected`, up to timeoutMs. */
  waitSync(word: StatusWord, expected: number, timeoutMs: number): 'ok' | 'not-equal' | 'timed-out' {
    return Atomics.wait(this.words, word, BigInt(expected), timeoutMs);
  }
}
