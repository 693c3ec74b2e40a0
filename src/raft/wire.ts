/**
 * Binary encoding of Raft messages for the peer transport (our own compact format, not etcd's protobuf).
 *
 * Layout (all integers little-endian; "u64" = two u32 words lo, hi holding a safe integer < 2^53):
 *   buffer  := u8 version(=1) · u32 count · message*count
 *   message := u8 type · u64 to · u64 from · u64 term · u64 logTerm · u64 index · u64 commit · u64 rejectHint
 *              · u8 flags(bit0 reject, bit1 has context, bit2 has snapshot) · u32 nEntries · entry*nEntries
 *              · [u32 len · context bytes] · [snapshot]
 *   entry   := u64 term · u64 index · u8 type · u32 len · data
 *   snapshot:= u64 index · u64 term · u32 nVoters · u64*nVoters · u32 nLearners · u64*nLearners · u32 len · data
 *
 * decodeMessages validates every field and throws WireDecodeError on malformed, truncated or oversized input;
 * it never reads out of bounds. Decoded byte fields are copies (they do not alias the input buffer).
 */
import { Entry, EntryType, MESSAGE_TYPE_COUNT, Message, MessageType, Snapshot } from './types';

/** Format version byte. */
export const WIRE_VERSION = 1;
/** Max messages per buffer. */
export const MAX_WIRE_MESSAGES = 1 << 20;
/** Max entries per message. */
export const MAX_WIRE_ENTRIES = 1 << 20;
/** Max members per ConfState list. */
export const MAX_WIRE_MEMBERS = 1 << 16;

/** Thrown by decodeMessages for any malformed input; `offset` is where decoding failed. */
export class WireDecodeError extends Error {
  constructor(msg: string, readonly offset: number) {
    super(`raft wire: ${msg} at offset ${offset}`);
    this.name = 'WireDecodeError';
  }
}

/** Thrown by encodeMessages for values that cannot be represented (negative / unsafe integers...). */
export class WireEncodeError extends Error {
  constructor(msg: string) {
    super(`raft wire: ${msg}`);
    this.name = 'WireEncodeError';
  }
}

const FLAG_REJECT = 1;
const FLAG_CONTEXT = 2;
const FLAG_SNAPSHOT = 4;
const MSG_FIXED = 1 + 7 * 8 + 1 + 4;
const ENTRY_FIXED = 8 + 8 + 1 + 4;

function entriesSize(ents: Entry[]): number {
  let s = 0;
  for (const e of ents) s += ENTRY_FIXED + e.data.length;
  return s;
}

function messageSize(m: Message): number {
  let s = MSG_FIXED + entriesSize(m.entries);
  if (m.context !== undefined) s += 4 + m.context.length;
  if (m.snapshot !== undefined) {
    const cs = m.snapshot.metadata.confState;
    s += 16 + 4 + 8 * cs.voters.length + 4 + 8 * cs.learners.length + 4 + m.snapshot.data.length;
  }
  return s;
}

class Writer {
  private readonly view: DataView;
  pos = 0;
  constructor(readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  u8(v: number): void {
    this.view.setUint8(this.pos, v);
    this.pos += 1;
  }
  u32(v: number): void {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new WireEncodeError(`u32 out of range: ${v}`);
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
  }
  u64(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new WireEncodeError(`u64 not a non-negative safe integer: ${v}`);
    this.view.setUint32(this.pos, v % 0x100000000, true);
    this.view.setUint32(this.pos + 4, Math.floor(v / 0x100000000), true);
    this.pos += 8;
  }
  bytes(b: Uint8Array): void {
    this.u32(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
}

class Reader {
  private readonly view: DataView;
  pos = 0;
  constructor(readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new WireDecodeError(`truncated: need ${n} bytes, ${this.buf.length - this.pos} left`, this.pos);
  }
  u8(): number {
    this.need(1);
    return this.view.getUint8(this.pos++);
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  u64(): number {
    this.need(8);
    const lo = this.view.getUint32(this.pos, true);
    const hi = this.view.getUint32(this.pos + 4, true);
    if (hi >= 0x200000) throw new WireDecodeError('u64 exceeds 2^53-1', this.pos);
    this.pos += 8;
    return hi * 0x100000000 + lo;
  }
  bytes(): Uint8Array {
    const n = this.u32();
    this.need(n);
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  count(max: number, minEach: number, what: string): number {
    const at = this.pos;
    const n = this.u32();
    if (n > max) throw new WireDecodeError(`${what} count ${n} exceeds limit ${max}`, at);
    if (n * minEach > this.buf.length - this.pos) throw new WireDecodeError(`${what} count ${n} exceeds remaining bytes`, at);
    return n;
  }
}

/**
 * Encodes msgs into one buffer (layout above). Throws WireEncodeError if a numeric field is not a non-negative
 * safe integer or a list exceeds the format limits.
 */
export function encodeMessages(msgs: Message[]): Uint8Array {
  if (msgs.length > MAX_WIRE_MESSAGES) throw new WireEncodeError(`too many messages: ${msgs.length}`);
  let size = 5;
  for (const m of msgs) size += messageSize(m);
  const w = new Writer(new Uint8Array(size));
  w.u8(WIRE_VERSION);
  w.u32(msgs.length);
  for (const m of msgs) {
    if (m.entries.length > MAX_WIRE_ENTRIES) throw new WireEncodeError(`too many entries: ${m.entries.length}`);
    w.u8(m.type);
    w.u64(m.to);
    w.u64(m.from);
    w.u64(m.term);
    w.u64(m.logTerm);
    w.u64(m.index);
    w.u64(m.commit);
    w.u64(m.rejectHint);
    w.u8((m.reject ? FLAG_REJECT : 0) | (m.context !== undefined ? FLAG_CONTEXT : 0) | (m.snapshot !== undefined ? FLAG_SNAPSHOT : 0));
    w.u32(m.entries.length);
    for (const e of m.entries) {
      w.u64(e.term);
      w.u64(e.index);
      w.u8(e.type);
      w.bytes(e.data);
    }
    if (m.context !== undefined) w.bytes(m.context);
    if (m.snapshot !== undefined) {
      const md = m.snapshot.metadata;
      if (md.confState.voters.length > MAX_WIRE_MEMBERS || md.confState.learners.length > MAX_WIRE_MEMBERS) throw new WireEncodeError('too many members');
      w.u64(md.index);
      w.u64(md.term);
      w.u32(md.confState.voters.length);
      for (const v of md.confState.voters) w.u64(v);
      w.u32(md.confState.learners.length);
      for (const l of md.confState.learners) w.u64(l);
      w.bytes(m.snapshot.data);
    }
  }
  if (w.pos !== size) throw new WireEncodeError(`size mismatch ${w.pos} != ${size}`);
  return w.buf;
}

/**
 * Decodes a buffer produced by encodeMessages. Throws WireDecodeError on an unknown version, unknown message or
 * entry type, truncation, counts beyond limits or trailing garbage.
 */
export function decodeMessages(buf: Uint8Array): Message[] {
  if (!(buf instanceof Uint8Array)) throw new WireDecodeError('input is not a Uint8Array', 0);
  const r = new Reader(buf);
  const ver = r.u8();
  if (ver !== WIRE_VERSION) throw new WireDecodeError(`unsupported version ${ver}`, 0);
  const n = r.count(MAX_WIRE_MESSAGES, MSG_FIXED, 'message');
  const out: Message[] = [];
  for (let i = 0; i < n; i++) {
    const at = r.pos;
    const type = r.u8();
    if (type >= MESSAGE_TYPE_COUNT) throw new WireDecodeError(`unknown message type ${type}`, at);
    const to = r.u64();
    const from = r.u64();
    const term = r.u64();
    const logTerm = r.u64();
    const index = r.u64();
    const commit = r.u64();
    const rejectHint = r.u64();
    const flagsAt = r.pos;
    const flags = r.u8();
    if (flags & ~(FLAG_REJECT | FLAG_CONTEXT | FLAG_SNAPSHOT)) throw new WireDecodeError(`unknown flags ${flags}`, flagsAt);
    const ne = r.count(MAX_WIRE_ENTRIES, ENTRY_FIXED, 'entry');
    const entries: Entry[] = new Array(ne);
    for (let k = 0; k < ne; k++) {
      const eterm = r.u64();
      const eindex = r.u64();
      const tAt = r.pos;
      const etype = r.u8();
      if (etype !== EntryType.Normal && etype !== EntryType.ConfChange) throw new WireDecodeError(`unknown entry type ${etype}`, tAt);
      entries[k] = { term: eterm, index: eindex, type: etype as EntryType, data: r.bytes() };
    }
    const m: Message = { type: type as MessageType, to, from, term, logTerm, index, entries, commit, reject: (flags & FLAG_REJECT) !== 0, rejectHint };
    if (flags & FLAG_CONTEXT) m.context = r.bytes();
    if (flags & FLAG_SNAPSHOT) {
      const sindex = r.u64();
      const sterm = r.u64();
      const nv = r.count(MAX_WIRE_MEMBERS, 8, 'voter');
      const voters: number[] = [];
      for (let k = 0; k < nv; k++) voters.push(r.u64());
      const nl = r.count(MAX_WIRE_MEMBERS, 8, 'learner');
      const learners: number[] = [];
      for (let k = 0; k < nl; k++) learners.push(r.u64());
      const snap: Snapshot = { metadata: { index: sindex, term: sterm, confState: { voters, learners } }, data: r.bytes() };
      m.snapshot = snap;
    }
    out.push(m);
  }
  if (r.pos !== buf.length) throw new WireDecodeError(`${buf.length - r.pos} trailing bytes`, r.pos);
  return out;
}
