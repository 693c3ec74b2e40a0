/**
 * The Raft entry layout both worker rings carry (walIn and applyIn, docs/architecture.md "Rings"):
 * `[u64 index][u64 term][u8 type][u32 len][len bytes data]`, little-endian, unaligned; u64 values are integers
 * below 2^53. One definition, so the WAL and apply hand-offs cannot drift apart.
 */

/** Bytes of an entry's fixed fields. */
export const ENTRY_FIXED_BYTES = 21;

const TWO32 = 0x1_0000_0000;

/** The fields of an entry as both rings carry it. */
export interface RingEntry {
  index: number;
  term: number;
  type: number;
  data: Uint8Array;
}

/** Writes a u64 (an integer < 2^53) little-endian at `off`. */
export function setU64(view: DataView, off: number, n: number): void {
  view.setUint32(off, n >>> 0, true);
  view.setUint32(off + 4, Math.floor(n / TWO32) >>> 0, true);
}

/** Reads a u64 written by setU64. */
export function getU64(view: DataView, off: number): number {
  return view.getUint32(off, true) + view.getUint32(off + 4, true) * TWO32;
}

/** Encoded bytes of entries[from, to). */
export function entriesBytes(entries: readonly RingEntry[], from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) n += ENTRY_FIXED_BYTES + entries[i]!.data.length;
  return n;
}

/**
 * Writes entries[from, to) at `p` (the caller reserved entriesBytes(...) bytes) and returns the end offset.
 * Does not validate: it runs inside a ring fill, which must not throw.
 */
export function writeEntries(view: DataView, buf: Uint8Array, p: number, entries: readonly RingEntry[], from: number, to: number): number {
  for (let i = from; i < to; i++) {
    const e = entries[i]!;
    setU64(view, p, e.index);
    setU64(view, p + 8, e.term);
    view.setUint8(p + 16, e.type);
    view.setUint32(p + 17, e.data.length, true);
    buf.set(e.data, p + ENTRY_FIXED_BYTES);
    p += ENTRY_FIXED_BYTES + e.data.length;
  }
  return p;
}
