/**
 * HashKV: a CRC-32C digest of the MVCC history up to a revision, bit-for-bit the value etcd 3.4 computes over its
 * bbolt `key` bucket (etcd api: Maintenance.HashKV; etcd mvcc: kvstore.go HashByRev, key_index.go keep). Members
 * compare it to detect divergent stores, so every byte fed to the checksum must be what etcd would have stored.
 *
 * Input to the checksum (CRC-32 Castagnoli, initial value 0, as Go's hash/crc32):
 *   "key" (the bucket name), then for each revision record with main revision ≤ `revision`, in (main, sub) order:
 *   - the 17-byte bbolt key `[u64 BE main] '_' [u64 BE sub]`, plus a trailing 't' for a tombstone;
 *   - the marshaled mvccpb.KeyValue etcd stored: fields in number order, zero values left out (gogo-proto);
 *     a tombstone stores a KeyValue holding only the key.
 *   Records at or below the compact revision C are only those the compaction kept (each key's live revision at C);
 *   etcd hashes one of them only when its key has no newer revision ≤ `revision` — except when no key at all is
 *   live at `revision`, where etcd's filter is empty and it hashes every one of them.
 *
 * Units: revisions are store main revisions; `hash` is the unsigned 32-bit checksum.
 * Compact revision: etcd reports -1 until the first compaction (its compactMainRev starts there), so this does too.
 *
 * @throws EtcdError Compacted (0 < revision ≤ compact revision), FutureRev (revision > current revision).
 */
import { crc32c } from '@node-rs/crc32';
import { etcdError } from '../errors';
import { EMPTY, histKey, readMain, readSub, recordIsTombstone, recordKey, RECORD_HEADER_BYTES, revKey } from './encoding';
import { readMeta, type MvccDbs } from './env';
import { liveKeysAt, MAX_SUB } from './range';

/** What HashByRev returns: the checksum and the store's current and compact revisions it was taken against. */
export interface HashKVResult {
  /** CRC-32C, unsigned. */
  hash: number;
  /** Store revision of the snapshot hashed (the response header's revision). */
  currentRevision: number;
  /** Compact revision, -1 when the store was never compacted (etcd's initial compactMainRev). */
  compactRevision: number;
}

/** etcd's bbolt bucket holding every revision; its name is the first thing hashed. */
const KEY_BUCKET_NAME = Buffer.from('key', 'latin1');
/** bbolt revision key: 8-byte main, '_', 8-byte sub. */
const BOLT_REV_BYTES = 17;
const TOMBSTONE_MARK = 0x74; // 't'
const REV_SEPARATOR = 0x5f; // '_'
/** Bytes gathered before one checksum call: few native calls without holding much memory. */
const CHUNK_BYTES = 64 * 1024;
/** Longest varint of a value below 2^53 is 8 bytes; 10 is the protobuf maximum. */
const MAX_VARINT_BYTES = 10;

/**
 * Hashes the store like etcd's HashByRev(`revision`) (0 = the current revision), reading everything in the
 * caller's current LMDB transaction so the revisions and the data come from one snapshot (MvccReader.hashKV starts
 * a fresh one). Cost: one pass over every stored revision ≤ `revision` (as etcd), plus one history seek per record
 * a compaction kept.
 */
export function hashKV(dbs: MvccDbs, revision: number): HashKVResult {
  const meta = readMeta(dbs);
  const current = meta.revision;
  const compactRev = meta.compacted === true || meta.compactRevision > 0 ? meta.compactRevision : -1;
  if (revision > 0 && revision <= compactRev) throw etcdError('Compacted');
  if (revision > 0 && revision > current) throw etcdError('FutureRev');
  const rev = revision === 0 ? current : revision;

  const h = new ChunkedCrc32c();
  h.write(KEY_BUCKET_NAME);
  // etcd lets a negative revision through its checks; its bound then admits no record, only the bucket name.
  if (rev >= 1) {
    let anyLive: boolean | undefined;
    for (const { key: rk, value: rec } of dbs.rev.getRange({ end: revKey(rev + 1, 0) })) {
      const main = readMain(rk, 0);
      if (main <= compactRev && changedSince(dbs, recordKey(rec), compactRev, rev)) {
        anyLive ??= liveKeysAt(dbs, EMPTY, EMPTY, rev, 1).length > 0;
        if (anyLive) continue;
      }
      h.writeRecord(main, readSub(rk, 0), rec);
    }
  }
  return { hash: h.sum(), currentRevision: current, compactRevision: compactRev };
}

/** True when `key` has a revision in (after, upTo]: etcd's keep set then names that one, not the older record. */
function changedSince(dbs: MvccDbs, key: Uint8Array, after: number, upTo: number): boolean {
  for (const _ of dbs.hist.getKeys({ start: histKey(key, after + 1, 0), end: histKey(key, upTo, MAX_SUB), inclusiveEnd: true, limit: 1 })) {
    return true;
  }
  return false;
}

/** CRC-32C over a stream of writes, batched so the native checksum is called once per chunk, not per record. */
class ChunkedCrc32c {
  private crc = 0;
  private readonly buf = Buffer.allocUnsafe(CHUNK_BYTES);
  private n = 0;

  write(b: Uint8Array): void {
    if (this.n + b.length > CHUNK_BYTES) this.flush();
    if (b.length > CHUNK_BYTES) {
      this.crc = crc32c(b, this.crc);
      return;
    }
    this.buf.set(b, this.n);
    this.n += b.length;
  }

  /** One revision: its bbolt key, then the KeyValue bytes etcd stored for it. */
  writeRecord(main: number, sub: number, rec: Buffer): void {
    const tomb = recordIsTombstone(rec);
    const keyLen = rec.readUInt32LE(33);
    const valueLen = rec.length - RECORD_HEADER_BYTES - keyLen;
    // Upper bound: bolt key + mark, then six fields of at most tag + varint, plus the two byte strings.
    const bound = BOLT_REV_BYTES + 1 + 6 * (1 + MAX_VARINT_BYTES) + keyLen + valueLen;
    if (bound > CHUNK_BYTES) {
      const big = Buffer.allocUnsafe(bound);
      this.crc = crc32c(big.subarray(0, encodeRevisionRecord(big, 0, main, sub, rec, tomb, keyLen)), this.flushed());
      return;
    }
    if (this.n + bound > CHUNK_BYTES) this.flush();
    this.n = encodeRevisionRecord(this.buf, this.n, main, sub, rec, tomb, keyLen);
  }

  sum(): number {
    return this.flushed() >>> 0;
  }

  private flushed(): number {
    this.flush();
    return this.crc;
  }

  private flush(): void {
    if (this.n === 0) return;
    this.crc = crc32c(this.buf.subarray(0, this.n), this.crc);
    this.n = 0;
  }
}

/** Writes the bbolt key and stored KeyValue of one record at `off`; returns the end offset (also used by src/snapshot). */
export function encodeRevisionRecord(out: Buffer, off: number, main: number, sub: number, rec: Buffer, tomb: boolean, keyLen: number): number {
  let o = putU64BE(out, off, main);
  out[o++] = REV_SEPARATOR;
  o = putU64BE(out, o, sub);
  if (tomb) out[o++] = TOMBSTONE_MARK;
  const key = rec.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + keyLen);
  o = putBytesField(out, o, 1, key);
  if (tomb) return o;
  o = putVarintField(out, o, 2, rec.readDoubleLE(1)); // create_revision
  o = putVarintField(out, o, 3, rec.readDoubleLE(9)); // mod_revision
  o = putVarintField(out, o, 4, rec.readDoubleLE(17)); // version
  o = putBytesField(out, o, 5, rec.subarray(RECORD_HEADER_BYTES + keyLen)); // value
  return putVarintField(out, o, 6, rec.readDoubleLE(25)); // lease
}

function putU64BE(out: Buffer, off: number, v: number): number {
  out.writeUInt32BE(Math.floor(v / 0x1_0000_0000), off);
  out.writeUInt32BE(v >>> 0, off + 4);
  return off + 8;
}

/** proto3 as gogo marshals it: an empty bytes field is left out. */
function putBytesField(out: Buffer, off: number, field: number, b: Uint8Array): number {
  if (b.length === 0) return off;
  out[off++] = (field << 3) | 2;
  off = putVarint(out, off, b.length);
  out.set(b, off);
  return off + b.length;
}

/** proto3 as gogo marshals it: a zero integer field is left out. Values are non-negative and below 2^53. */
function putVarintField(out: Buffer, off: number, field: number, v: number): number {
  if (v === 0) return off;
  out[off++] = field << 3;
  return putVarint(out, off, v);
}

function putVarint(out: Buffer, off: number, v: number): number {
  while (v >= 0x80) {
    out[off++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  out[off++] = v;
  return off;
}
