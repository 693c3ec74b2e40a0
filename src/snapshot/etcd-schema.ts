/**
 * etcd 3.4's backend schema as it appears in a snapshot file (a bbolt database): bucket names and the encodings of
 * their keys and values (etcd mvcc/revision.go, mvcc/kvstore.go, lease/lessor.go, etcdserver/api/membership/store.go,
 * auth/store.go, etcdserver/api/v2store cluster version). Pure byte work: no project imports.
 *
 * - `key`: `[u64 BE main] '_' [u64 BE sub]` (17 bytes), plus `t` for a tombstone → marshaled mvccpb.KeyValue
 *   (a tombstone's KeyValue holds only the key).
 * - `meta`: `consistent_index` → u64 BE; `finishedCompactRev` / `scheduledCompactRev` → a 17-byte revision key.
 * - `lease`: u64 BE lease ID → leasepb.Lease{ID=1, TTL=2, RemainingTTL=3}.
 * - `members`: member ID in lower-case hex → JSON {"id","peerURLs","name","clientURLs","isLearner"?};
 *   `members_removed`: hex ID → "removed".
 * - `cluster`: `clusterVersion` → "3.4.0"; `auth`: `authRevision` → u64 BE; `alarm`: marshaled AlarmMember → empty.
 */

/** Every bucket an etcd 3.4 backend holds, in bbolt's (byte) order. */
export const ETCD_BUCKETS = ['alarm', 'auth', 'authRoles', 'authUsers', 'cluster', 'key', 'lease', 'members', 'members_removed', 'meta'] as const;
export type EtcdBucket = (typeof ETCD_BUCKETS)[number];

/** The cluster version etcd 3.4 stores. */
export const CLUSTER_VERSION = '3.4.0';
/** Bytes of a bbolt revision key (without the tombstone mark). */
export const BOLT_REV_BYTES = 17;
/** The tombstone mark appended to a revision key. */
export const TOMBSTONE_MARK = 0x74; // 't'

const TWO32 = 0x1_0000_0000;

/** `n` as 8 bytes big-endian (n a safe non-negative integer). */
export function u64be(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeUInt32BE(Math.floor(n / TWO32), 0);
  b.writeUInt32BE(n >>> 0, 4);
  return b;
}

/** Reads 8 bytes big-endian at `off`; null when the value is not a safe integer. */
export function readU64be(b: Uint8Array, off: number): number | null {
  const v = Buffer.from(b.buffer, b.byteOffset, b.byteLength).readBigUInt64BE(off);
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : null;
}

/** The 17-byte revision key of (main, sub). */
export function boltRevKey(main: number, sub: number): Buffer {
  const b = Buffer.allocUnsafe(BOLT_REV_BYTES);
  b.writeUInt32BE(Math.floor(main / TWO32), 0);
  b.writeUInt32BE(main >>> 0, 4);
  b[8] = 0x5f;
  b.writeUInt32BE(Math.floor(sub / TWO32), 9);
  b.writeUInt32BE(sub >>> 0, 13);
  return b;
}

/** A parsed revision key. */
export interface BoltRev {
  main: number;
  sub: number;
  tombstone: boolean;
}

/** Parses a `key` bucket key; null when malformed or beyond 2^53. */
export function parseBoltRevKey(k: Uint8Array): BoltRev | null {
  if (k.length !== BOLT_REV_BYTES && !(k.length === BOLT_REV_BYTES + 1 && k[BOLT_REV_BYTES] === TOMBSTONE_MARK)) return null;
  if (k[8] !== 0x5f) return null;
  const main = readU64be(k, 0);
  const sub = readU64be(k, 9);
  if (main === null || sub === null) return null;
  return { main, sub, tombstone: k.length === BOLT_REV_BYTES + 1 };
}

function putVarint(out: number[], v: number): void {
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
}

/** proto3 varint fields in number order, zero values left out (as gogo-proto marshals). */
function varintFields(fields: readonly number[]): Buffer {
  const out: number[] = [];
  fields.forEach((v, i) => {
    if (v === 0) return;
    out.push((i + 1) << 3);
    putVarint(out, v);
  });
  return Buffer.from(out);
}

/** leasepb.Lease{ID, TTL, RemainingTTL} (seconds). */
export function encodeLease(id: number, ttl: number, remainingTtl = 0): Buffer {
  return varintFields([id, ttl, remainingTtl]);
}

/** etcdserverpb.AlarmMember{MemberID, Alarm}. */
export function encodeAlarmMember(memberId: number, alarm: number): Buffer {
  return varintFields([memberId, alarm]);
}

/**
 * Decodes an `alarm` bucket key (etcdserverpb.AlarmMember). etcetera keeps member IDs below 2^53: a larger ID (an
 * etcd member's) keeps its low 53 bits; the alarm still applies cluster-wide, only its listed member differs.
 * @throws RangeError when malformed.
 */
export function decodeAlarmMember(b: Uint8Array): { memberID: number; alarm: number } {
  const f = decodeFields(b);
  const id = f.get(1) ?? 0;
  const alarm = f.get(2) ?? 0;
  if (Buffer.isBuffer(id) || Buffer.isBuffer(alarm) || typeof alarm === 'bigint') throw new RangeError('malformed alarm member');
  return { memberID: typeof id === 'bigint' ? Number(id & BigInt(Number.MAX_SAFE_INTEGER)) : id, alarm };
}

/** A decoded protobuf message: field number → varint (a bigint when beyond 2^53 − 1) or bytes. */
type Fields = Map<number, number | bigint | Buffer>;

/**
 * Decodes a flat protobuf message of varint and length-delimited fields (the last occurrence wins).
 * @throws RangeError on a malformed message or an unsupported wire type.
 */
export function decodeFields(b: Uint8Array): Fields {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const out: Fields = new Map();
  let i = 0;
  const varint = (): bigint => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      if (i >= buf.length || shift > 63n) throw new RangeError('malformed protobuf varint');
      const c = buf[i++]!;
      v |= BigInt(c & 0x7f) << shift;
      if (c < 0x80) return v;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const tag = Number(varint());
    const field = tag >>> 3;
    const wire = tag & 7;
    if (wire === 0) {
      const v = varint() & 0xffff_ffff_ffff_ffffn;
      out.set(field, v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
    } else if (wire === 2) {
      const n = Number(varint());
      if (i + n > buf.length) throw new RangeError('malformed protobuf bytes field');
      out.set(field, buf.subarray(i, i + n));
      i += n;
    } else {
      throw new RangeError(`unsupported protobuf wire type ${wire}`);
    }
  }
  return out;
}

/** An integer field: a number, or a bigint when beyond 2^53 − 1 (u64 as stored; int64 negatives wrap high). */
export type U64 = number | bigint;

/** mvccpb.KeyValue. */
export interface SnapshotKeyValue {
  key: Buffer;
  createRevision: U64;
  modRevision: U64;
  version: U64;
  value: Buffer;
  lease: U64;
}

const NO_BYTES = Buffer.alloc(0);

/** Decodes a `key` bucket value. @throws RangeError when malformed. */
export function decodeKeyValue(b: Uint8Array): SnapshotKeyValue {
  const f = decodeFields(b);
  const bytes = (n: number): Buffer => {
    const v = f.get(n);
    if (v === undefined) return NO_BYTES;
    if (!Buffer.isBuffer(v)) throw new RangeError(`KeyValue field ${n}: expected bytes`);
    return v;
  };
  const num = (n: number): U64 => {
    const v = f.get(n);
    if (v === undefined) return 0;
    if (Buffer.isBuffer(v)) throw new RangeError(`KeyValue field ${n}: expected an integer`);
    return v;
  };
  return { key: bytes(1), createRevision: num(2), modRevision: num(3), version: num(4), value: bytes(5), lease: num(6) };
}

/** leasepb.Lease decoded. */
export function decodeLease(b: Uint8Array): { id: U64; ttl: U64; remainingTtl: U64 } {
  const f = decodeFields(b);
  const num = (n: number): U64 => {
    const v = f.get(n);
    if (v === undefined) return 0;
    if (Buffer.isBuffer(v)) throw new RangeError(`Lease field ${n}: expected an integer`);
    return v;
  };
  return { id: num(1), ttl: num(2), remainingTtl: num(3) };
}

/** A member as etcd 3.4 stores it in the `members` bucket. */
export interface SnapshotMember {
  id: number;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

/** The `members` bucket key of a member ID (lower-case hex, no padding). */
export function memberKey(id: number): Buffer {
  return Buffer.from(id.toString(16), 'latin1');
}

/** The `members` bucket value: etcd's JSON of membership.Member (isLearner only when true). */
export function encodeMember(m: SnapshotMember): Buffer {
  const o: Record<string, unknown> = { id: m.id, peerURLs: m.peerUrls, name: m.name, clientURLs: m.clientUrls };
  if (m.isLearner) o.isLearner = true;
  return Buffer.from(JSON.stringify(o), 'utf8');
}
