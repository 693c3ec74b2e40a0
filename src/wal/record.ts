/**
 * WAL record framing (our own format, in the spirit of etcd wal: length-prefixed, CRC-protected records in
 * preallocated segments).
 *
 * ```
 * [u32 len][u32 crc32][u8 type][payload (len - 1 bytes)][zero pad to a multiple of 8]
 * ```
 * - `len` counts the CRC-covered bytes: the type byte plus the payload (so a valid len is >= 1; a zero len word is
 *   never a record and marks zero-filled, preallocated space).
 * - `crc32` is zlib.crc32 (IEEE) of type + payload.
 * - Everything little-endian; records start on 8-byte boundaries; u64 fields hold integers < 2^53.
 *
 * Payloads per type:
 * - Metadata (first record of every segment): `[u64 clusterId][u64 memberId][u64 segmentSeq][u64 firstIndex]
 *   [u32 prevCrc]` — prevCrc is the CRC of the previous segment's last record (0 for the first segment): the CRC chain.
 * - Entry: `[u64 index][u64 term][u8 entryType][data]`.
 * - HardState: `[u64 term][u64 vote][u64 commit]`.
 * - Snapshot marker: `[u64 index][u64 term]`.
 */
import * as zlib from 'node:zlib';

/** Record types. */
export enum RecordType {
  Metadata = 1,
  Entry = 2,
  HardState = 3,
  Snapshot = 4,
}

/** Bytes before the type byte: u32 len + u32 crc. */
export const RECORD_HEADER_BYTES = 8;
/** Records never exceed this many CRC-covered bytes (limits the damage of a garbage length word). */
export const MAX_RECORD_BYTES = 256 * 1024 * 1024;
/** Fixed bytes of an entry payload before its data: index, term, entry type. */
export const ENTRY_FIXED_BYTES = 17;
/** Bytes of a HardState payload. */
export const HARD_STATE_BYTES = 24;
/** Bytes of a snapshot marker payload. */
export const SNAPSHOT_BYTES = 16;
/** Bytes of a metadata payload. */
export const METADATA_BYTES = 36;

/** A Raft log entry as stored in the WAL. `type`: 0 normal, 1 conf change, 2 conf change v2 (raftpb EntryType). */
export interface WalEntry {
  term: number;
  index: number;
  type: number;
  data: Uint8Array;
}

/** Raft HardState. All-zero means "empty" (etcd raft's IsEmptyHardState) and is never written. */
export interface HardState {
  term: number;
  vote: number;
  commit: number;
}

/** Snapshot marker: a snapshot at (index, term) has been saved; older entries are no longer needed. */
export interface SnapshotMarker {
  index: number;
  term: number;
}

/** Identity written at the start of every segment. IDs are positive integers <= 2^53-1 (docs/architecture.md). */
export interface WalMetadata {
  clusterId: number;
  memberId: number;
}

/** Decoded metadata record. */
export interface SegmentMetadata extends WalMetadata {
  segmentSeq: number;
  firstIndex: number;
  prevCrc: number;
}

/** Incomplete record at the end of the readable bytes, or zero-filled (preallocated, never written) space. */
export class ErrTornRecord extends Error {
  override readonly name = 'ErrTornRecord';
  /** @param offset byte offset of the record start; @param zeroFilled true when the header is all zeros */
  constructor(readonly offset: number, readonly zeroFilled: boolean, detail: string) {
    super(`torn WAL record at offset ${offset}: ${detail}`);
  }
}

/** A complete record whose CRC does not match its bytes. */
export class ErrCrcMismatch extends Error {
  override readonly name = 'ErrCrcMismatch';
  /** @param offset record start; @param expected crc in the header; @param actual crc of the bytes */
  constructor(readonly offset: number, readonly expected: number, readonly actual: number) {
    super(`WAL record CRC mismatch at offset ${offset}: header ${expected.toString(16)}, computed ${actual.toString(16)}`);
  }
}

/** A record with a valid CRC but an unknown type or a payload of the wrong size for its type. */
export class ErrBadRecord extends Error {
  override readonly name = 'ErrBadRecord';
  constructor(readonly offset: number, detail: string) {
    super(`bad WAL record at offset ${offset}: ${detail}`);
  }
}

/** Rounds up to a multiple of 8. */
export function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

/** Total on-disk size (header + type + payload + pad) of a record with `payloadBytes` of payload. */
export function recordSizeBytes(payloadBytes: number): number {
  return align8(RECORD_HEADER_BYTES + 1 + payloadBytes);
}

/** Writes a non-negative integer < 2^53 as u64 LE. */
export function putU64(buf: Uint8Array, off: number, v: number): void {
  const lo = v >>> 0;
  const hi = Math.floor(v / 4294967296) >>> 0;
  buf[off] = lo & 0xff;
  buf[off + 1] = (lo >>> 8) & 0xff;
  buf[off + 2] = (lo >>> 16) & 0xff;
  buf[off + 3] = lo >>> 24;
  buf[off + 4] = hi & 0xff;
  buf[off + 5] = (hi >>> 8) & 0xff;
  buf[off + 6] = (hi >>> 16) & 0xff;
  buf[off + 7] = hi >>> 24;
}

/** Reads a u64 LE as a number (exact below 2^53). */
export function getU64(buf: Uint8Array, off: number): number {
  return getU32(buf, off) + getU32(buf, off + 4) * 4294967296;
}

/** Writes a u32 LE. */
export function putU32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v & 0xff;
  buf[off + 1] = (v >>> 8) & 0xff;
  buf[off + 2] = (v >>> 16) & 0xff;
  buf[off + 3] = (v >>> 24) & 0xff;
}

/** Reads a u32 LE. */
export function getU32(buf: Uint8Array, off: number): number {
  return (buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16) | (buf[off + 3]! << 24)) >>> 0;
}

/**
 * Finishes a record whose type byte and payload are already at `buf[off + 8 ..]`: writes len and crc, zeroes the pad.
 * @param payloadBytes payload length (excluding the type byte).
 * @returns the offset just past the (padded) record.
 */
export function sealRecord(buf: Uint8Array, off: number, payloadBytes: number): number {
  const len = 1 + payloadBytes;
  putU32(buf, off, len);
  const crc = zlib.crc32(buf.subarray(off + RECORD_HEADER_BYTES, off + RECORD_HEADER_BYTES + len));
  putU32(buf, off + 4, crc);
  const end = off + recordSizeBytes(payloadBytes);
  buf.fill(0, off + RECORD_HEADER_BYTES + len, end);
  return end;
}

/** Encodes one complete record (used for small records and tests). */
export function encodeRecord(type: RecordType, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(recordSizeBytes(payload.length));
  out[RECORD_HEADER_BYTES] = type;
  out.set(payload, RECORD_HEADER_BYTES + 1);
  sealRecord(out, 0, payload.length);
  return out;
}

/** A decoded record frame: payload is at `buf[payloadOffset, payloadOffset + payloadBytes)`. */
export interface RecordFrame {
  type: RecordType;
  crc: number;
  payloadOffset: number;
  payloadBytes: number;
  /** Offset just past the padded record. */
  nextOffset: number;
}

/** Result codes of probeRecord (non-throwing decoder used by scans). */
export const enum Probe {
  Ok = 0,
  Zero = 1,
  Torn = 2,
  Crc = 3,
  BadType = 4,
}

const KNOWN_TYPES = new Set<number>([RecordType.Metadata, RecordType.Entry, RecordType.HardState, RecordType.Snapshot]);
const FIXED_PAYLOAD: Record<number, number> = {
  [RecordType.Metadata]: METADATA_BYTES,
  [RecordType.HardState]: HARD_STATE_BYTES,
  [RecordType.Snapshot]: SNAPSHOT_BYTES,
};

/**
 * Non-throwing check of the record at `off` within buf[0, end).
 * Ok = complete, CRC-valid, known type and well-sized; Zero = header all zero; Torn = incomplete or len 0;
 * Crc = complete but CRC mismatch; BadType = CRC-valid but unknown type / wrong payload size.
 */
export function probeRecord(buf: Uint8Array, off: number, end: number): Probe {
  if (end - off < RECORD_HEADER_BYTES) {
    for (let i = off; i < end; i++) if (buf[i] !== 0) return Probe.Torn;
    return Probe.Zero;
  }
  const len = getU32(buf, off);
  if (len === 0) return getU32(buf, off + 4) === 0 ? Probe.Zero : Probe.Torn;
  if (len > MAX_RECORD_BYTES || off + RECORD_HEADER_BYTES + len > end) return Probe.Torn;
  const crc = zlib.crc32(buf.subarray(off + RECORD_HEADER_BYTES, off + RECORD_HEADER_BYTES + len));
  if (crc !== getU32(buf, off + 4)) return Probe.Crc;
  const type = buf[off + RECORD_HEADER_BYTES]!;
  if (!KNOWN_TYPES.has(type)) return Probe.BadType;
  const fixed = FIXED_PAYLOAD[type];
  if (fixed !== undefined && len - 1 !== fixed) return Probe.BadType;
  if (type === RecordType.Entry && len - 1 < ENTRY_FIXED_BYTES) return Probe.BadType;
  return Probe.Ok;
}

/**
 * Decodes the frame of the record at `off` within buf[0, end).
 * @throws ErrTornRecord (incomplete tail or zero-filled space), ErrCrcMismatch, ErrBadRecord (valid CRC, bad type/size).
 */
export function decodeRecord(buf: Uint8Array, off: number, end: number = buf.length): RecordFrame {
  const p = probeRecord(buf, off, end);
  switch (p) {
    case Probe.Ok: {
      const len = getU32(buf, off);
      return {
        type: buf[off + RECORD_HEADER_BYTES]! as RecordType,
        crc: getU32(buf, off + 4),
        payloadOffset: off + RECORD_HEADER_BYTES + 1,
        payloadBytes: len - 1,
        nextOffset: off + recordSizeBytes(len - 1),
      };
    }
    case Probe.Zero:
      throw new ErrTornRecord(off, true, 'zero-filled (preallocated) space');
    case Probe.Torn:
      throw new ErrTornRecord(off, false, end - off < RECORD_HEADER_BYTES ? 'short header' : 'incomplete record');
    case Probe.Crc: {
      const len = getU32(buf, off);
      const actual = zlib.crc32(buf.subarray(off + RECORD_HEADER_BYTES, off + RECORD_HEADER_BYTES + len));
      throw new ErrCrcMismatch(off, getU32(buf, off + 4), actual);
    }
    default:
      throw new ErrBadRecord(off, `type ${buf[off + RECORD_HEADER_BYTES]} with ${getU32(buf, off) - 1} payload bytes`);
  }
}

/** Encodes an entry record into `buf` at `off` (caller ensures room: recordSizeBytes(17 + data.length)). Returns the end offset. */
export function writeEntryRecord(buf: Uint8Array, off: number, index: number, term: number, entryType: number, src: Uint8Array, srcOff: number, srcLen: number): number {
  const p = off + RECORD_HEADER_BYTES;
  buf[p] = RecordType.Entry;
  putU64(buf, p + 1, index);
  putU64(buf, p + 9, term);
  buf[p + 17] = entryType;
  buf.set(srcLen === src.length && srcOff === 0 ? src : src.subarray(srcOff, srcOff + srcLen), p + 18);
  return sealRecord(buf, off, ENTRY_FIXED_BYTES + srcLen);
}

/** Encodes a HardState record at `off`; returns the end offset. */
export function writeHardStateRecord(buf: Uint8Array, off: number, hs: HardState): number {
  const p = off + RECORD_HEADER_BYTES;
  buf[p] = RecordType.HardState;
  putU64(buf, p + 1, hs.term);
  putU64(buf, p + 9, hs.vote);
  putU64(buf, p + 17, hs.commit);
  return sealRecord(buf, off, HARD_STATE_BYTES);
}

/** Encodes a snapshot marker record at `off`; returns the end offset. */
export function writeSnapshotRecord(buf: Uint8Array, off: number, snap: SnapshotMarker): number {
  const p = off + RECORD_HEADER_BYTES;
  buf[p] = RecordType.Snapshot;
  putU64(buf, p + 1, snap.index);
  putU64(buf, p + 9, snap.term);
  return sealRecord(buf, off, SNAPSHOT_BYTES);
}

/** Encodes a metadata record at `off`; returns the end offset. */
export function writeMetadataRecord(buf: Uint8Array, off: number, md: SegmentMetadata): number {
  const p = off + RECORD_HEADER_BYTES;
  buf[p] = RecordType.Metadata;
  putU64(buf, p + 1, md.clusterId);
  putU64(buf, p + 9, md.memberId);
  putU64(buf, p + 17, md.segmentSeq);
  putU64(buf, p + 25, md.firstIndex);
  putU32(buf, p + 33, md.prevCrc);
  return sealRecord(buf, off, METADATA_BYTES);
}

/** Decodes an entry payload; `data` is a copy (safe to keep after the buffer is reused). */
export function readEntry(buf: Uint8Array, f: RecordFrame): WalEntry {
  const p = f.payloadOffset;
  return {
    index: getU64(buf, p),
    term: getU64(buf, p + 8),
    type: buf[p + 16]!,
    data: Uint8Array.prototype.slice.call(buf, p + ENTRY_FIXED_BYTES, p + f.payloadBytes),
  };
}

/** Decodes a HardState payload. */
export function readHardState(buf: Uint8Array, f: RecordFrame): HardState {
  const p = f.payloadOffset;
  return { term: getU64(buf, p), vote: getU64(buf, p + 8), commit: getU64(buf, p + 16) };
}

/** Decodes a snapshot marker payload. */
export function readSnapshot(buf: Uint8Array, f: RecordFrame): SnapshotMarker {
  const p = f.payloadOffset;
  return { index: getU64(buf, p), term: getU64(buf, p + 8) };
}

/** Decodes a metadata payload. */
export function readMetadata(buf: Uint8Array, f: RecordFrame): SegmentMetadata {
  const p = f.payloadOffset;
  return {
    clusterId: getU64(buf, p),
    memberId: getU64(buf, p + 8),
    segmentSeq: getU64(buf, p + 16),
    firstIndex: getU64(buf, p + 24),
    prevCrc: getU32(buf, p + 32),
  };
}
