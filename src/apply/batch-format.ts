/**
 * Byte layouts of the apply rings (docs/architecture.md "Rings"), little-endian, u64 as two u32 halves (values < 2^53):
 *
 * - applyIn record (main → apply worker), one per batch of committed entries:
 *   `[u32 count] + count × ([u64 index][u64 term][u8 type][u32 len][data])`
 * - applyOut record (apply worker → main), one per applied batch (split in several when too large for the ring):
 *   `[u64 appliedIndex][u32 count][u32 eventCount] + count × ([u64 requestId][u16 errorId][u32 len][bytes])
 *    + eventCount × ([u32 len][mvcc record])` — the events are the batch's MVCC changes in revision order, each
 *   the `rev` db record written (src/mvcc/encoding.ts: a put's record, or a tombstone with key + mod revision).
 *   A split batch keeps the order: all events of record k precede those of record k+1.
 *
 * Only this file and the ring module know these layouts; the server uses ApplyClient.
 */

import { ENTRY_FIXED_BYTES, entriesBytes, getU64, setU64, writeEntries } from '../ring/entry-layout';
import { invariant } from '../invariant';

/** Raft entry type of a normal entry (etcd raft: EntryNormal); others (conf changes) only advance the index here. */
export const ENTRY_TYPE_NORMAL = 0;
/** Bytes before an entry's data in an applyIn record. */
export const IN_ENTRY_HEADER_BYTES = ENTRY_FIXED_BYTES;
/** Bytes of an applyIn record's count prefix. */
export const IN_RECORD_HEADER_BYTES = 4;
/** Bytes of an applyOut record's prefix (appliedIndex + count + eventCount). */
export const OUT_RECORD_HEADER_BYTES = 16;
/** Bytes before an event's record in an applyOut record. */
export const OUT_EVENT_HEADER_BYTES = 4;
/** Bytes before a result's response bytes in an applyOut record. */
export const OUT_RESULT_HEADER_BYTES = 14;


/** One committed Raft entry handed to the apply worker. */
export interface ApplyEntry {
  /** Raft index (1-based). */
  index: number;
  /** Raft term of the entry. */
  term: number;
  /** Raft entry type (ENTRY_TYPE_NORMAL = 0). */
  type: number;
  /** Entry data (src/wire/entry.ts layout); empty for the leader's no-op. */
  data: Uint8Array;
}

/** One request's outcome. */
export interface ApplyResult {
  /** The proposer's request id (never 0 here: requestId 0 produces no result). */
  requestId: number;
  /** 0 = ok, else an `Errors` id (src/errors.ts). */
  errorId: number;
  /** Encoded protobuf response (empty when errorId ≠ 0). */
  response: Uint8Array;
}

/** Writes a u64 (< 2^53) little-endian. */
export function inRecordBytes(entries: readonly ApplyEntry[], from = 0, to = entries.length): number {
  return IN_RECORD_HEADER_BYTES + entriesBytes(entries, from, to);
}

/** Encodes `entries[from, to)` as an applyIn record at `off` of `buf` (exactly inRecordBytes bytes). */
export function writeInRecord(buf: Uint8Array, view: DataView, off: number, entries: readonly ApplyEntry[], from: number, to: number): void {
  // Producer end: a record carries consecutive Raft indexes (the consumer checks the same, and contiguity across records).
  for (let i = from + 1; i < to; i++) {
    invariant(entries[i]!.index === entries[i - 1]!.index + 1, () => `applyIn record: index ${entries[i]!.index} follows ${entries[i - 1]!.index}`);
  }
  view.setUint32(off, to - from, true);
  writeEntries(view, buf, off + IN_RECORD_HEADER_BYTES, entries, from, to);
}

/**
 * Visits the entries of an applyIn record without copying: `data` is a view into `buf`, valid during the call.
 * @returns number of entries. @throws RangeError on a record whose lengths overrun it (corrupt ring).
 */
export function forEachInEntry(
  buf: Uint8Array,
  view: DataView,
  off: number,
  len: number,
  visit: (index: number, term: number, type: number, data: Uint8Array) => void,
): number {
  const end = off + len;
  if (len < IN_RECORD_HEADER_BYTES) throw new RangeError('applyIn record too short');
  const count = view.getUint32(off, true);
  let p = off + IN_RECORD_HEADER_BYTES;
  let prev = -1;
  for (let i = 0; i < count; i++) {
    if (p + IN_ENTRY_HEADER_BYTES > end) throw new RangeError('applyIn record truncated');
    const dlen = view.getUint32(p + 17, true);
    if (p + IN_ENTRY_HEADER_BYTES + dlen > end) throw new RangeError('applyIn entry overruns its record');
    const index = getU64(view, p);
    // Consumer end: the same order the producer asserted.
    invariant(prev < 0 || index === prev + 1, () => `applyIn record: index ${index} follows ${prev}`);
    prev = index;
    visit(index, getU64(view, p + 8), view.getUint8(p + 16), buf.subarray(p + IN_ENTRY_HEADER_BYTES, p + IN_ENTRY_HEADER_BYTES + dlen));
    p += IN_ENTRY_HEADER_BYTES + dlen;
  }
  invariant(p === end, () => `applyIn record of ${len} bytes holds ${p - off} bytes of entries`);
  return count;
}

/** Bytes an applyOut record of `results[from, to)` and `events[efrom, eto)` takes. */
export function outRecordBytes(
  results: readonly ApplyResult[], from = 0, to = results.length,
  events: readonly Uint8Array[] = [], efrom = 0, eto = events.length,
): number {
  let n = OUT_RECORD_HEADER_BYTES;
  for (let i = from; i < to; i++) n += OUT_RESULT_HEADER_BYTES + results[i]!.response.length;
  for (let i = efrom; i < eto; i++) n += OUT_EVENT_HEADER_BYTES + events[i]!.length;
  return n;
}

/**
 * Encodes an applyOut record at `off` and returns the bytes written (the producer asserts it equals the
 * {@link outRecordBytes} it reserved).
 */
export function writeOutRecord(
  buf: Uint8Array,
  view: DataView,
  off: number,
  appliedIndex: number,
  results: readonly ApplyResult[],
  from: number,
  to: number,
  events: readonly Uint8Array[] = [],
  efrom = 0,
  eto = events.length,
): number {
  setU64(view, off, appliedIndex);
  view.setUint32(off + 8, to - from, true);
  view.setUint32(off + 12, eto - efrom, true);
  let p = off + OUT_RECORD_HEADER_BYTES;
  for (let i = from; i < to; i++) {
    const r = results[i]!;
    setU64(view, p, r.requestId);
    view.setUint16(p + 8, r.errorId, true);
    view.setUint32(p + 10, r.response.length, true);
    buf.set(r.response, p + OUT_RESULT_HEADER_BYTES);
    p += OUT_RESULT_HEADER_BYTES + r.response.length;
  }
  for (let i = efrom; i < eto; i++) {
    const e = events[i]!;
    view.setUint32(p, e.length, true);
    buf.set(e, p + OUT_EVENT_HEADER_BYTES);
    p += OUT_EVENT_HEADER_BYTES + e.length;
  }
  return p - off;
}

/**
 * Decodes an applyOut record; response bytes are copied (the ring's bytes are only valid during the drain call).
 * The consumer end's size assertions: every length stays inside the record and the parts fill it exactly.
 * @throws InvariantError on a record whose lengths overrun it or leave bytes over (a bug or corruption).
 */
export function readOutRecord(
  buf: Uint8Array, view: DataView, off: number, len: number,
): { appliedIndex: number; results: ApplyResult[]; events: Buffer[] } {
  const end = off + len;
  invariant(len >= OUT_RECORD_HEADER_BYTES, () => `applyOut record of ${len} bytes is too short`);
  const appliedIndex = getU64(view, off);
  const count = view.getUint32(off + 8, true);
  const eventCount = view.getUint32(off + 12, true);
  const results: ApplyResult[] = new Array(count);
  let p = off + OUT_RECORD_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    invariant(p + OUT_RESULT_HEADER_BYTES <= end, 'applyOut record truncated in a result header');
    const rlen = view.getUint32(p + 10, true);
    invariant(p + OUT_RESULT_HEADER_BYTES + rlen <= end, () => `applyOut result of ${rlen} bytes overruns its record`);
    results[i] = {
      requestId: getU64(view, p),
      errorId: view.getUint16(p + 8, true),
      response: buf.slice(p + OUT_RESULT_HEADER_BYTES, p + OUT_RESULT_HEADER_BYTES + rlen),
    };
    p += OUT_RESULT_HEADER_BYTES + rlen;
  }
  const events: Buffer[] = new Array(eventCount);
  for (let i = 0; i < eventCount; i++) {
    invariant(p + OUT_EVENT_HEADER_BYTES <= end, 'applyOut record truncated in an event header');
    const elen = view.getUint32(p, true);
    invariant(p + OUT_EVENT_HEADER_BYTES + elen <= end, () => `applyOut event of ${elen} bytes overruns its record`);
    events[i] = Buffer.from(buf.slice(p + OUT_EVENT_HEADER_BYTES, p + OUT_EVENT_HEADER_BYTES + elen).buffer);
    p += OUT_EVENT_HEADER_BYTES + elen;
  }
  invariant(p === end, () => `applyOut record of ${len} bytes holds ${p - off} bytes of results and events`);
  return { appliedIndex, results, events };
}
