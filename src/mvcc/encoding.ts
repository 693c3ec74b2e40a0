/**
 * Byte encodings of the MVCC store's LMDB keys and values (layout described in src/mvcc/LAYOUT.md).
 *
 * - revision key (`rev` db): `[u64 BE main][u32 BE sub]` — 12 bytes, sorts by (main, sub).
 * - history key (`hist` db, etcd's keyIndex persisted): `escape(key) 0x00 0x01 [u64 BE main][u32 BE sub]`.
 *   escape() doubles every 0x00 as `0x00 0xFF`, so the terminator `0x00 0x01` sorts below any continuation of the
 *   key: all revisions of one key are contiguous, keys sort in etcd's byte order, revisions ascending within a key.
 * - record (value of `rev` and `kv`): `[u8 flags][f64 createRev][f64 modRev][f64 version][f64 lease][u32 keyLen]
 *   [key][value]`, little-endian; flags bit 0 = tombstone. Integers are < 2^53 so f64 holds them exactly.
 *
 * Source: etcd mvcc: revision.go (revToBytes), key_index.go (generations), kvstore_txn.go.
 */
import type { KeyValue } from '../wire/codec';

/** Bytes of an encoded revision (main u64 + sub u32). */
export const REV_BYTES = 12;
/** Bytes of a record's fixed header before key and value. */
export const RECORD_HEADER_BYTES = 37;
/** Record flag: this revision is a tombstone (the key was deleted at it). */
export const FLAG_TOMBSTONE = 1;
/** LMDB's largest key (lmdb-js build): history keys must fit. */
export const LMDB_MAX_KEY_BYTES = 1978;
/** Largest escaped user key that still fits a history key (terminator 2 + revision 12). */
export const MAX_ESCAPED_KEY_BYTES = LMDB_MAX_KEY_BYTES - 2 - REV_BYTES;

const TWO32 = 0x1_0000_0000;

/** A (main, sub) revision pair (etcd mvcc: revision). main is the store revision; sub orders writes within it. */
export interface Revision {
  main: number;
  sub: number;
}

/** Writes `main`/`sub` big-endian at `off` of `out`. */
export function putRev(out: Uint8Array, off: number, main: number, sub: number): void {
  const hi = Math.floor(main / TWO32);
  const lo = main >>> 0;
  out[off] = hi >>> 24; out[off + 1] = (hi >>> 16) & 0xff; out[off + 2] = (hi >>> 8) & 0xff; out[off + 3] = hi & 0xff;
  out[off + 4] = lo >>> 24; out[off + 5] = (lo >>> 16) & 0xff; out[off + 6] = (lo >>> 8) & 0xff; out[off + 7] = lo & 0xff;
  out[off + 8] = sub >>> 24; out[off + 9] = (sub >>> 16) & 0xff; out[off + 10] = (sub >>> 8) & 0xff; out[off + 11] = sub & 0xff;
}

/** Reads the main revision (u64 BE) at `off`. */
export function readMain(b: Uint8Array, off: number): number {
  const hi = ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
  const lo = ((b[off + 4]! << 24) | (b[off + 5]! << 16) | (b[off + 6]! << 8) | b[off + 7]!) >>> 0;
  return hi * TWO32 + lo;
}

/** Reads the sub revision (u32 BE) at `off + 8`. */
export function readSub(b: Uint8Array, off: number): number {
  return ((b[off + 8]! << 24) | (b[off + 9]! << 16) | (b[off + 10]! << 8) | b[off + 11]!) >>> 0;
}

/** The 12-byte `rev` db key of (main, sub). */
export function revKey(main: number, sub: number): Buffer {
  const b = Buffer.allocUnsafe(REV_BYTES);
  putRev(b, 0, main, sub);
  return b;
}

/** Length of escape(key) (each 0x00 becomes two bytes). */
export function escapedLength(key: Uint8Array): number {
  let n = key.length;
  for (let i = 0; i < key.length; i++) if (key[i] === 0) n++;
  return n;
}

/**
 * `escape(key) 0x00 <tail>` followed by `extra` free bytes: the common prefix of history keys.
 * tail = 0x01 for a key's own entries, 0x02 for "just past every entry of this key".
 */
function escapedWith(key: Uint8Array, tail: number, extra: number): { buf: Buffer; len: number } {
  const elen = escapedLength(key);
  const buf = Buffer.allocUnsafe(elen + 2 + extra);
  let j = 0;
  for (let i = 0; i < key.length; i++) {
    const c = key[i]!;
    buf[j++] = c;
    if (c === 0) buf[j++] = 0xff;
  }
  buf[j++] = 0;
  buf[j++] = tail;
  return { buf, len: j };
}

/** History key of one revision of `key`. */
export function histKey(key: Uint8Array, main: number, sub: number): Buffer {
  const { buf, len } = escapedWith(key, 1, REV_BYTES);
  putRev(buf, len, main, sub);
  return buf;
}

/** Lowest history key of `key` (its prefix): every revision of `key` sorts at or after it. */
export function histKeyFloor(key: Uint8Array): Buffer {
  return escapedWith(key, 1, 0).buf;
}

/** A history key sorting after every revision of `key` and before any larger key. */
export function histKeyCeil(key: Uint8Array): Buffer {
  return escapedWith(key, 2, 0).buf;
}

/**
 * Splits a history key into the user key (a fresh copy) and its revision.
 * @throws RangeError on a malformed key (corrupt store).
 */
export function parseHistKey(h: Uint8Array): { key: Buffer; main: number; sub: number } {
  const revOff = h.length - REV_BYTES;
  if (revOff < 2 || h[revOff - 2] !== 0 || h[revOff - 1] !== 1) throw new RangeError('malformed history key');
  const out = Buffer.allocUnsafe(revOff - 2);
  let j = 0;
  for (let i = 0; i < revOff - 2; i++) {
    const c = h[i]!;
    out[j++] = c;
    if (c === 0) i++; // skip the 0xFF escape byte
  }
  return { key: out.subarray(0, j), main: readMain(h, revOff), sub: readSub(h, revOff) };
}

/** Encodes a record (one revision of a key, or the current state of a key in `kv`). */
export function encodeRecord(
  flags: number,
  createRev: number,
  modRev: number,
  version: number,
  lease: number,
  key: Uint8Array,
  value: Uint8Array,
): Buffer {
  const b = Buffer.allocUnsafe(RECORD_HEADER_BYTES + key.length + value.length);
  b[0] = flags;
  b.writeDoubleLE(createRev, 1);
  b.writeDoubleLE(modRev, 9);
  b.writeDoubleLE(version, 17);
  b.writeDoubleLE(lease, 25);
  b.writeUInt32LE(key.length, 33);
  b.set(key, RECORD_HEADER_BYTES);
  b.set(value, RECORD_HEADER_BYTES + key.length);
  return b;
}

/** True when the record is a tombstone. */
export function recordIsTombstone(r: Buffer): boolean {
  return (r[0]! & FLAG_TOMBSTONE) !== 0;
}

/** Lease id stored in a record. */
export function recordLease(r: Buffer): number {
  return r.readDoubleLE(25);
}

/** Key bytes of a record (a view, no copy). */
export function recordKey(r: Buffer): Buffer {
  const klen = r.readUInt32LE(33);
  return r.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + klen);
}

/**
 * Decodes a record into etcd's KeyValue (key/value are views into `r`, which lmdb-js hands out as a fresh copy).
 * @param keysOnly leave `value` empty (etcd api: RangeRequest.keys_only).
 */
export function decodeRecord(r: Buffer, keysOnly = false): KeyValue {
  const klen = r.readUInt32LE(33);
  return {
    key: r.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + klen),
    createRevision: r.readDoubleLE(1),
    modRevision: r.readDoubleLE(9),
    version: r.readDoubleLE(17),
    value: keysOnly ? EMPTY : r.subarray(RECORD_HEADER_BYTES + klen),
    lease: r.readDoubleLE(25),
  };
}

/** Shared empty byte string. */
export const EMPTY: Buffer = Buffer.alloc(0);

/** 8-byte big-endian lease id prefix used by the `leaseKeys` db. */
export function leaseKeyPrefix(id: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeUInt32BE(Math.floor(id / TWO32), 0);
  b.writeUInt32BE(id >>> 0, 4);
  return b;
}

/** `leaseKeys` db key: lease id (8 bytes BE) + user key. */
export function leaseKeyEntry(id: number, key: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(8 + key.length);
  b.writeUInt32BE(Math.floor(id / TWO32), 0);
  b.writeUInt32BE(id >>> 0, 4);
  b.set(key, 8);
  return b;
}

/** Byte-wise comparison (etcd's bytes.Compare). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(asBuffer(a), asBuffer(b));
}

/**
 * A Buffer view of `b` (no copy) for lmdb-js binary keys. Also accepts protobufjs's default for an absent bytes
 * field (a plain empty array).
 */
export function asBuffer(b: Uint8Array | readonly number[] | null | undefined): Buffer {
  if (!b || b.length === 0) return EMPTY;
  if (Buffer.isBuffer(b)) return b;
  if (b instanceof Uint8Array) return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return Buffer.from(b as number[]);
}
