/**
 * Wire format of the etcetera peer transport (our own protocol, not etcd's rafthttp).
 *
 * A connection starts with a fixed 32-byte handshake from the dialer and a fixed 8-byte answer from the
 * listener; after an accepted handshake both directions carry frames:
 *
 * ```
 * handshake (dialer → listener, 32 bytes):
 *   [0..3]  magic "ETCR"            [4..5] u16 LE protocol version   [6] u8 connection kind   [7] u8 reserved (0)
 *   [8..15] u64 LE cluster ID       [16..23] u64 LE sender member ID [24..31] u64 LE receiver member ID
 * answer (listener → dialer, 8 bytes):
 *   [0..3]  magic "ETCA"            [4..5] u16 LE protocol version   [6] u8 status (HandshakeStatus) [7] reserved
 * frame:
 *   [u32 LE length = 1 + payload bytes][u8 FrameType][payload]
 * ```
 *
 * The length prefix lets the reader reject an oversized frame from its first 4 bytes, before buffering it.
 */

/** First 4 bytes of a dialer's handshake ("ETCR"). */
export const HANDSHAKE_MAGIC = 0x52435445; // "ETCR" read as u32 LE
/** First 4 bytes of a listener's answer ("ETCA"). */
export const ANSWER_MAGIC = 0x41435445; // "ETCA" read as u32 LE
/** Protocol version written in handshakes; a listener refuses any other. */
export const PROTOCOL_VERSION = 1;
/** Size of the dialer's handshake, bytes. */
export const HANDSHAKE_BYTES = 32;
/** Size of the listener's answer, bytes. */
export const ANSWER_BYTES = 8;
/** Size of a frame header (u32 length + u8 type), bytes. */
export const FRAME_HEADER_BYTES = 5;

/** What a connection is for, announced in the handshake. */
export enum ConnKind {
  /** Long-lived stream of batched Raft messages (dialer → listener), pings/pongs both ways. */
  Stream = 1,
  /** One snapshot transfer (dialer → listener), then an ack (listener → dialer); closed afterwards. */
  Snapshot = 2,
  /**
   * One membership query (dialer → listener, cluster and member IDs unchecked: the dialer is a member joining with
   * `--initial-cluster-state existing` that knows neither), answered with one Members frame; closed afterwards.
   */
  Members = 3,
  /**
   * One HashKV query for the corruption checks (etcd: GET /members/hashkv on the peer listener): the dialer sends one
   * HashKVRequest frame, the listener answers one HashKVResponse or HashKVError frame; closed afterwards. The
   * cluster ID is checked, member IDs are not (etcd's handler trusts whoever holds a peer certificate).
   */
  HashKV = 4,
}

/** Listener's verdict on a handshake. */
export enum HandshakeStatus {
  Ok = 0,
  BadVersion = 1,
  ClusterIdMismatch = 2,
  UnknownMember = 3,
  WrongReceiver = 4,
  BadKind = 5,
  /** The dialer was removed from the cluster (etcd: a removed member's peers answer 410 Gone); it should stop. */
  MemberRemoved = 6,
}

/** Human-readable reason for each {@link HandshakeStatus} (used in logs on both sides). */
export function handshakeStatusText(s: number): string {
  switch (s) {
    case HandshakeStatus.Ok: return 'ok';
    case HandshakeStatus.BadVersion: return 'protocol version mismatch';
    case HandshakeStatus.ClusterIdMismatch: return 'cluster ID mismatch';
    case HandshakeStatus.UnknownMember: return 'unknown member';
    case HandshakeStatus.WrongReceiver: return 'receiver member ID mismatch';
    case HandshakeStatus.BadKind: return 'unknown connection kind';
    case HandshakeStatus.MemberRemoved: return 'member removed from the cluster';
    default: return `unknown status ${s}`;
  }
}

/** Frame types after the handshake. */
export enum FrameType {
  /** payload = `encodeMessages(batch)` (src/raft/wire.ts); Stream, dialer → listener. */
  Messages = 1,
  /** payload = 8 bytes, echoed back in a Pong; Stream, dialer → listener. */
  Ping = 2,
  /** payload = the Ping's 8 bytes unchanged; Stream, listener → dialer. */
  Pong = 3,
  /** payload = opaque snapshot metadata (the host's encoding); Snapshot, first frame. */
  SnapMeta = 4,
  /** payload = next bytes of snapshot data; Snapshot. */
  SnapChunk = 5,
  /** empty payload: all data sent; Snapshot. */
  SnapEnd = 6,
  /** payload = u8 (1 = installed, 0 = failed); Snapshot, listener → dialer. */
  SnapAck = 7,
  /** payload = the listener's membership, opaque to the transport (the host's encoding); Members, listener → dialer. */
  Members = 8,
  /** payload = the request, opaque to the transport (the host's encoding); HashKV, dialer → listener. */
  HashKVRequest = 9,
  /** payload = the answer, opaque to the transport (the host's encoding); HashKV, listener → dialer. */
  HashKVResponse = 10,
  /** payload = UTF-8 error text from the host (e.g. etcd's compacted / future revision errors); HashKV, listener → dialer. */
  HashKVError = 11,
}

/** Parsed dialer handshake. IDs are bigint because the wire carries u64 (validated by the caller). */
export interface Handshake {
  magic: number;
  version: number;
  kind: number;
  clusterId: bigint;
  from: bigint;
  to: bigint;
}

/** Encode a dialer handshake (32 bytes). `clusterId`, `from`, `to` must fit in u64; throws RangeError otherwise. */
export function encodeHandshake(kind: ConnKind, clusterId: bigint, from: number, to: number): Buffer {
  const b = Buffer.allocUnsafe(HANDSHAKE_BYTES);
  b.writeUInt32LE(HANDSHAKE_MAGIC, 0);
  b.writeUInt16LE(PROTOCOL_VERSION, 4);
  b.writeUInt8(kind, 6);
  b.writeUInt8(0, 7);
  b.writeBigUInt64LE(clusterId, 8);
  b.writeBigUInt64LE(BigInt(from), 16);
  b.writeBigUInt64LE(BigInt(to), 24);
  return b;
}

/** Decode a dialer handshake from exactly {@link HANDSHAKE_BYTES} bytes (no validation of the values). */
export function decodeHandshake(b: Buffer): Handshake {
  return {
    magic: b.readUInt32LE(0),
    version: b.readUInt16LE(4),
    kind: b.readUInt8(6),
    clusterId: b.readBigUInt64LE(8),
    from: b.readBigUInt64LE(16),
    to: b.readBigUInt64LE(24),
  };
}

/** Encode the listener's 8-byte answer. */
export function encodeAnswer(status: HandshakeStatus): Buffer {
  const b = Buffer.allocUnsafe(ANSWER_BYTES);
  b.writeUInt32LE(ANSWER_MAGIC, 0);
  b.writeUInt16LE(PROTOCOL_VERSION, 4);
  b.writeUInt8(status, 6);
  b.writeUInt8(0, 7);
  return b;
}

/** A 5-byte frame header for a frame of `type` carrying `payloadBytes` bytes. */
export function frameHeader(type: FrameType, payloadBytes: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  h.writeUInt32LE(payloadBytes + 1, 0);
  h[4] = type;
  return h;
}

/** A whole small frame (header + payload copied into one Buffer); for control frames only. */
export function smallFrame(type: FrameType, payload: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  b.writeUInt32LE(payload.length + 1, 0);
  b[4] = type;
  b.set(payload, FRAME_HEADER_BYTES);
  return b;
}

/**
 * Incremental reader over a byte stream (socket 'data' chunks). Keeps the chunks as received and only copies when
 * a requested span crosses a chunk boundary, so a frame that arrived in one chunk is returned as a view into it.
 */
export class ByteQueue {
  private chunks: Buffer[] = [];
  /** Read offset into chunks[0]. */
  private head = 0;
  /** Unread bytes across all chunks. */
  length = 0;

  /** Append a received chunk (kept by reference). */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** u32 LE at unread offset `off` without consuming; caller guarantees `length >= off + 4`. */
  peekU32LE(off = 0): number {
    const first = this.chunks[0];
    const at = this.head + off;
    if (at + 4 <= first.length) return first.readUInt32LE(at);
    let v = 0;
    for (let i = 0; i < 4; i++) v += this.byteAt(off + i) * 2 ** (8 * i);
    return v;
  }

  /** Byte at unread offset `off` without consuming; caller guarantees `length > off`. */
  byteAt(off: number): number {
    let at = this.head + off;
    for (const c of this.chunks) {
      if (at < c.length) return c[at];
      at -= c.length;
    }
    throw new RangeError('ByteQueue.byteAt past end');
  }

  /** Drop `n` bytes; caller guarantees `length >= n`. */
  skip(n: number): void {
    this.length -= n;
    while (n > 0) {
      const first = this.chunks[0];
      const avail = first.length - this.head;
      if (n < avail) {
        this.head += n;
        return;
      }
      n -= avail;
      this.chunks.shift();
      this.head = 0;
    }
  }

  /**
   * Consume and return `n` bytes: a view into the received chunk when it does not span chunks, otherwise one
   * copy into a new Buffer. Caller guarantees `length >= n`.
   */
  take(n: number): Buffer {
    const first = this.chunks[0];
    if (n === 0) return Buffer.alloc(0);
    if (this.head + n <= first.length) {
      const out = first.subarray(this.head, this.head + n);
      this.head += n;
      this.length -= n;
      if (this.head === first.length) {
        this.chunks.shift();
        this.head = 0;
      }
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let w = 0;
    while (w < n) {
      const c = this.chunks[0];
      const m = Math.min(c.length - this.head, n - w);
      c.copy(out, w, this.head, this.head + m);
      w += m;
      this.head += m;
      if (this.head === c.length) {
        this.chunks.shift();
        this.head = 0;
      }
    }
    this.length -= n;
    return out;
  }

  /** Forget everything buffered. */
  clear(): void {
    this.chunks = [];
    this.head = 0;
    this.length = 0;
  }
}

/** Result of {@link readFrame}: a complete frame, "need more bytes", or a protocol violation. */
export type FrameResult =
  | { kind: 'frame'; type: number; payload: Buffer }
  | { kind: 'more' }
  | { kind: 'error'; reason: string };

const MORE: FrameResult = { kind: 'more' };

/**
 * Take one frame off `q` if complete. A declared payload over `maxPayloadBytes` (or a zero length) is an error as
 * soon as the 4-byte length is visible, so an oversized frame is never buffered.
 */
export function readFrame(q: ByteQueue, maxPayloadBytes: number): FrameResult {
  if (q.length < 4) return MORE;
  const len = q.peekU32LE(0);
  if (len === 0) return { kind: 'error', reason: 'zero-length frame' };
  if (len - 1 > maxPayloadBytes) {
    return { kind: 'error', reason: `frame of ${len - 1} bytes exceeds the ${maxPayloadBytes}-byte cap` };
  }
  if (q.length < 4 + len) return MORE;
  q.skip(4);
  const type = q.byteAt(0);
  q.skip(1);
  return { kind: 'frame', type, payload: q.take(len - 1) };
}
