/**
 * The `walIn` ring record (docs/architecture.md, "Rings"), shared by WalClient (encoder, main thread) and the WAL
 * worker (decoder), plus the fatal error codes the worker publishes in StatusWord.WalFatal.
 *
 * ```
 * [u64 term][u64 vote][u64 commit]            HardState; all zero = none
 * [u32 count]
 * count × ([u64 index][u64 term][u8 type][u32 len][len bytes data])
 * ```
 * Little-endian, unaligned; u64 values are integers < 2^53.
 *
 * A **control record** (snapshot marker + segment release) has the same 28-byte head shape with the count word set
 * to WAL_IN_CONTROL_COUNT, followed by one more u64:
 * ```
 * [u64 snapIndex][u64 snapTerm][u64 releaseIndex][u32 0xFFFFFFFF][u64 maxWals]     (36 bytes)
 * ```
 * The worker writes the snapshot marker (when snapIndex > 0) in order with the records around it; after the
 * batch's fdatasync it deletes segments whose entries are all <= releaseIndex (when > 0), keeping at least
 * `maxWals` segment files (0 = keep every file, etcd's "unlimited").
 *
 * A **commit-only record** is the 28-byte head alone with the count word set to WAL_IN_COMMIT_ONLY_COUNT: a
 * HardState whose only change is the commit index. The worker writes it but does not fdatasync for it (etcd's
 * raft.MustSync is false for it); the next batch that needs an fdatasync makes it durable too.
 */
import type { HardState, WalEntry } from './record';
import { ENTRY_FIXED_BYTES, entriesBytes, getU64, setU64 as putU64, writeEntries } from '../ring/entry-layout';
import { invariant } from '../invariant';

/** Bytes of the fixed record head (HardState + count). */
export const WAL_IN_HEAD_BYTES = 28;
/** Bytes of an entry's fixed fields in a walIn record (the shared ring entry layout). */
export const WAL_IN_ENTRY_FIXED_BYTES = ENTRY_FIXED_BYTES;
/** Upper bound on entries in one walIn record (checked on both sides of the ring). */
export const WAL_IN_MAX_ENTRIES = 1 << 20;

/** Count word of a control record (never a valid entry count: it exceeds WAL_IN_MAX_ENTRIES). */
export const WAL_IN_CONTROL_COUNT = 0xffffffff;
/** Count word of a commit-only record (a HardState that needs no fdatasync of its own). */
export const WAL_IN_COMMIT_ONLY_COUNT = 0xfffffffe;
/** What decodeWalInRecord returns for a commit-only record (every other record needs an fdatasync). */
export const WAL_IN_NO_SYNC = -1;

/** Bytes of a control record. */
export const WAL_IN_CONTROL_BYTES = 36;

/** What a control record asks of the worker. */
export interface WalControl {
  /** Snapshot marker to write (index 0 = none). */
  snapIndex: number;
  snapTerm: number;
  /** Delete segments whose entries are all <= this index after the next fdatasync (0 = none). */
  releaseIndex: number;
  /** Keep at least this many segment files when releasing (0 = unlimited retention: delete nothing). */
  maxWals: number;
}

/** Writes a control record at `off` (the caller reserved WAL_IN_CONTROL_BYTES) and returns the end offset. */
export function writeWalInControl(view: DataView, off: number, c: WalControl): number {
  putU64(view, off, c.snapIndex);
  putU64(view, off + 8, c.snapTerm);
  putU64(view, off + 16, c.releaseIndex);
  view.setUint32(off + 24, WAL_IN_CONTROL_COUNT, true);
  putU64(view, off + 28, c.maxWals);
  return off + WAL_IN_CONTROL_BYTES;
}

/** Writes a commit-only record at `off` (the caller reserved WAL_IN_HEAD_BYTES) and returns the end offset. */
export function writeWalInCommitOnly(view: DataView, off: number, hs: HardState): number {
  putU64(view, off, hs.term);
  putU64(view, off + 8, hs.vote);
  putU64(view, off + 16, hs.commit);
  view.setUint32(off + 24, WAL_IN_COMMIT_ONLY_COUNT, true);
  return off + WAL_IN_HEAD_BYTES;
}

/** Codes stored in StatusWord.WalFatal by the WAL worker. */
export enum WalErrorCode {
  None = 0,
  /** I/O error on write/fdatasync/segment creation (errno other than ENOSPC). */
  Io = 1,
  /** The disk is full (ENOSPC/EDQUOT). */
  NoSpace = 2,
  /** Wal.open found corruption it must not repair (ErrWalCorrupt). */
  Corrupt = 3,
  /** A malformed walIn ring record (a bug on the producer side, or ring corruption). */
  BadRecord = 4,
  /** Anything else (bug). */
  Internal = 5,
}

/** Encoded size of a walIn record carrying entries[from, to). */
export function walInRecordBytes(entries: readonly WalEntry[], from: number, to: number): number {
  return WAL_IN_HEAD_BYTES + entriesBytes(entries, from, to);
}

/**
 * Writes a walIn record at `off` (the caller reserved walInRecordBytes(...) bytes, e.g. inside RingProducer.tryWrite)
 * and returns the end offset. Does not validate (callers validate before reserving: a ring fill must not throw).
 */
export function writeWalInRecord(
  view: DataView,
  buf: Uint8Array,
  off: number,
  hs: HardState | null,
  entries: readonly WalEntry[],
  from: number,
  to: number,
): number {
  putU64(view, off, hs ? hs.term : 0);
  putU64(view, off + 8, hs ? hs.vote : 0);
  putU64(view, off + 16, hs ? hs.commit : 0);
  view.setUint32(off + 24, to - from, true);
  return writeEntries(view, buf, off + WAL_IN_HEAD_BYTES, entries, from, to);
}

/**
 * Producer end of the walIn ring, checked before a record is reserved: the entries of one append carry
 * consecutive Raft indexes (a Ready's entries always do; the worker checks the same, and no gap across records).
 * @throws InvariantError
 */
export function assertWalInEntries(entries: readonly WalEntry[]): void {
  for (let i = 1; i < entries.length; i++) {
    invariant(entries[i]!.index === entries[i - 1]!.index + 1, () => `walIn append: index ${entries[i]!.index} follows ${entries[i - 1]!.index}`);
  }
}

/** Thrown by the decoder on a malformed record. */
export class WalInRecordError extends Error {
  override readonly name = 'WalInRecordError';
}

/** Callbacks of decodeWalInRecord (no per-entry allocation: data is passed as buf + offset + length). */
export interface WalInSink {
  entry(index: number, term: number, type: number, buf: Uint8Array, dataOff: number, dataLen: number): void;
  hardState(term: number, vote: number, commit: number): void;
  /** A control record (see module doc). Without it a control record is a WalInRecordError. */
  control?(c: WalControl): void;
}

/**
 * Decodes a walIn record at buf[off, off+len): entries first, then the HardState (if not all zero), in the order
 * the WAL must write them.
 * @returns the record's entry count (0 for a control record), or WAL_IN_NO_SYNC for a commit-only record.
 * @throws WalInRecordError when the record is malformed (bounds are checked before any callback).
 */
export function decodeWalInRecord(view: DataView, buf: Uint8Array, off: number, len: number, sink: WalInSink): number {
  if (len < WAL_IN_HEAD_BYTES) throw new WalInRecordError(`walIn record of ${len} bytes is shorter than its head`);
  const end = off + len;
  const count = view.getUint32(off + 24, true);
  if (count === WAL_IN_CONTROL_COUNT) {
    if (len !== WAL_IN_CONTROL_BYTES) throw new WalInRecordError(`walIn control record of ${len} bytes (expected ${WAL_IN_CONTROL_BYTES})`);
    if (!sink.control) throw new WalInRecordError('walIn control record but the sink takes none');
    sink.control({ snapIndex: getU64(view, off), snapTerm: getU64(view, off + 8), releaseIndex: getU64(view, off + 16), maxWals: getU64(view, off + 28) });
    return 0;
  }
  if (count === WAL_IN_COMMIT_ONLY_COUNT) {
    if (len !== WAL_IN_HEAD_BYTES) throw new WalInRecordError(`walIn commit-only record of ${len} bytes (expected ${WAL_IN_HEAD_BYTES})`);
    sink.hardState(getU64(view, off), getU64(view, off + 8), getU64(view, off + 16));
    return WAL_IN_NO_SYNC;
  }
  if (count > WAL_IN_MAX_ENTRIES) throw new WalInRecordError(`walIn record claims ${count} entries (limit ${WAL_IN_MAX_ENTRIES})`);
  // Validate framing first so a malformed record stages nothing.
  let p = off + WAL_IN_HEAD_BYTES;
  let prev = -1;
  for (let i = 0; i < count; i++) {
    if (p + WAL_IN_ENTRY_FIXED_BYTES > end) throw new WalInRecordError(`walIn entry ${i} header overruns the record`);
    // Consumer end: the consecutive indexes the producer asserted (assertWalInEntries).
    const index = getU64(view, p);
    invariant(prev < 0 || index === prev + 1, () => `walIn record: index ${index} follows ${prev}`);
    prev = index;
    p += WAL_IN_ENTRY_FIXED_BYTES + view.getUint32(p + 17, true);
    if (p > end) throw new WalInRecordError(`walIn entry ${i} data overruns the record`);
  }
  if (p !== end) throw new WalInRecordError(`walIn record has ${end - p} trailing bytes`);
  p = off + WAL_IN_HEAD_BYTES;
  for (let i = 0; i < count; i++) {
    const dlen = view.getUint32(p + 17, true);
    sink.entry(getU64(view, p), getU64(view, p + 8), view.getUint8(p + 16), buf, p + WAL_IN_ENTRY_FIXED_BYTES, dlen);
    p += WAL_IN_ENTRY_FIXED_BYTES + dlen;
  }
  const term = getU64(view, off);
  const vote = getU64(view, off + 8);
  const commit = getU64(view, off + 16);
  if (term !== 0 || vote !== 0 || commit !== 0) sink.hardState(term, vote, commit);
  return count;
}
