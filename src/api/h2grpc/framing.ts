/**
 * gRPC message framing over HTTP/2 DATA (gRPC over HTTP/2, "Length-Prefixed-Message"): one flag octet
 * (0 = uncompressed, 1 = compressed), a 4-octet big-endian length, then the message. DATA frames cut messages
 * anywhere, so {@link MessageReader} reassembles them; {@link frameMessage} builds one outgoing frame.
 */

/** Octets of the length prefix before every message. */
export const MESSAGE_PREFIX_BYTES = 5;

/** A framing failure, answered as a gRPC status (grpc-go's codes and texts, server.go / rpc_util.go). */
export interface FramingError { code: number; details: string }

/**
 * Reassembles length-prefixed messages from DATA chunks. `maxMessageBytes` is the receive limit: a longer
 * message is refused from its prefix alone (nothing of it is buffered) with ResourceExhausted and grpc-go's
 * text. A compressed flag is refused with Internal as grpc-go does when the call's encoding is identity.
 * After an error the reader stays failed and ignores further input.
 */
export class MessageReader {
  /** Holds a prefix split across DATA chunks; allocated on the first split (most prefixes arrive whole). */
  private head: Buffer | null = null;
  private headFill = 0;
  private body: Buffer | null = null;
  private bodyFill = 0;
  /** The first framing error, if any. */
  error: FramingError | null = null;

  constructor(private readonly maxMessageBytes: number) {}

  /** True when a message is partly received (its prefix or body is incomplete): the stream ended mid-message. */
  get partial(): boolean {
    return this.headFill > 0 || this.body !== null;
  }

  /**
   * Consumes one DATA chunk and calls `onMessage` for each message it completes, in order. Messages that
   * lie wholly inside the chunk are handed out as views of it (no copy). Returns false once failed.
   */
  push(chunk: Buffer, onMessage: (msg: Buffer) => void): boolean {
    if (this.error !== null) return false;
    let off = 0;
    const n = chunk.length;
    while (off < n) {
      if (this.body === null) {
        // Fast path: a whole prefix in the chunk.
        if (this.headFill === 0 && n - off >= MESSAGE_PREFIX_BYTES) {
          const flag = chunk[off]!;
          const len = chunk.readUInt32BE(off + 1);
          if (!this.check(flag, len)) return false;
          off += MESSAGE_PREFIX_BYTES;
          if (n - off >= len) {
            onMessage(chunk.subarray(off, off + len));
            off += len;
            continue;
          }
          this.body = Buffer.allocUnsafe(len);
          this.bodyFill = 0;
          continue;
        }
        const head = (this.head ??= Buffer.alloc(MESSAGE_PREFIX_BYTES));
        const take = Math.min(MESSAGE_PREFIX_BYTES - this.headFill, n - off);
        chunk.copy(head, this.headFill, off, off + take);
        this.headFill += take;
        off += take;
        if (this.headFill < MESSAGE_PREFIX_BYTES) return true;
        this.headFill = 0;
        const len = head.readUInt32BE(1);
        if (!this.check(head[0]!, len)) return false;
        if (len === 0) {
          onMessage(Buffer.alloc(0));
          continue;
        }
        this.body = Buffer.allocUnsafe(len);
        this.bodyFill = 0;
        continue;
      }
      const take = Math.min(this.body.length - this.bodyFill, n - off);
      chunk.copy(this.body, this.bodyFill, off, off + take);
      this.bodyFill += take;
      off += take;
      if (this.bodyFill === this.body.length) {
        const msg = this.body;
        this.body = null;
        onMessage(msg);
      }
    }
    return true;
  }

  private check(flag: number, len: number): boolean {
    if (flag === 1) {
      this.error = { code: 13, details: 'grpc: compressed flag set with identity or empty encoding' };
      return false;
    }
    if (flag !== 0) {
      this.error = { code: 13, details: `grpc: received unexpected payload format ${flag}` };
      return false;
    }
    if (len > this.maxMessageBytes) {
      this.error = { code: 8, details: `grpc: received message larger than max (${len} vs. ${this.maxMessageBytes})` };
      return false;
    }
    return true;
  }
}

/** One outgoing length-prefixed, uncompressed message: a single buffer holding prefix and bytes. */
export function frameMessage(msg: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(MESSAGE_PREFIX_BYTES + msg.length);
  out[0] = 0;
  out.writeUInt32BE(msg.length, 1);
  out.set(msg, MESSAGE_PREFIX_BYTES);
  return out;
}
