/**
 * A tiny raw HTTP/2 client for the api tests: writes hand-built frames (RFC 9113 §4.1) with header blocks
 * HPACK-encoded by hpack.js (with incremental indexing, so the client's dynamic table is exercised), and
 * collects the server's frames (header blocks decoded).
 */
import * as net from 'node:net';
import { H2_CLIENT_PREFACE, FrameType, FrameFlag, HpackDecoder, type HeaderField } from '../../src/api/h2-authority';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const hpack = require('hpack.js');

/** One frame received from the server. */
export interface Frame { type: number; flags: number; stream: number; payload: Buffer; headers?: HeaderField[] }

/** Builds one frame. */
export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

/** Client side of one raw HTTP/2 connection. */
export class RawH2 {
  readonly sock: net.Socket;
  readonly frames: Frame[] = [];
  closed = false;
  private buf = Buffer.alloc(0);
  private readonly dec = new HpackDecoder();
  private readonly enc = hpack.compressor.create({ table: { maxSize: 4096 } });
  private waiters: Array<() => void> = [];
  /** Answer every server SETTINGS with an ACK (as real clients do). */
  autoAck = true;

  private constructor(sock: net.Socket) {
    this.sock = sock;
    sock.on('data', (c: Buffer) => { this.buf = Buffer.concat([this.buf, c]); this.parse(); this.wake(); });
    sock.on('close', () => { this.closed = true; this.wake(); });
    sock.on('error', () => { /* seen as close */ });
  }

  static connect(port: number): Promise<RawH2> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => { s.off('error', reject); resolve(new RawH2(s)); });
      s.once('error', reject);
    });
  }

  /** HPACK-encodes a header list with this connection's encoder (dynamic table shared across calls). */
  encode(fields: Array<[string, string]>): Buffer {
    this.enc.write(fields.map(([name, value]) => ({ name, value })));
    const out: Buffer[] = [];
    for (let b = this.enc.read(); b !== null; b = this.enc.read()) out.push(b);
    return Buffer.concat(out);
  }

  /** A GET request's header list for `authority`. */
  static get(authority: string, path = '/'): Array<[string, string]> {
    return [[':method', 'GET'], [':scheme', 'http'], [':authority', authority], [':path', path], ['user-agent', 'raw-h2-test']];
  }

  preface(): Buffer { return Buffer.concat([H2_CLIENT_PREFACE, frame(FrameType.SETTINGS, 0, 0)]); }

  write(b: Buffer): void { this.sock.write(b); }

  private parse(): void {
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + len) return;
      const f: Frame = { type: this.buf[3], flags: this.buf[4], stream: this.buf.readUInt32BE(5) & 0x7fffffff, payload: this.buf.subarray(9, 9 + len) };
      this.buf = this.buf.subarray(9 + len);
      if (f.type === FrameType.HEADERS) {
        // The servers under test never pad nor split their response headers.
        let start = 0;
        if (f.flags & FrameFlag.PRIORITY) start += 5;
        f.headers = this.dec.decode(f.payload.subarray(start));
      }
      if (f.type === FrameType.SETTINGS && !(f.flags & FrameFlag.ACK) && this.autoAck && !this.sock.destroyed) this.sock.write(frame(FrameType.SETTINGS, FrameFlag.ACK, 0));
      this.frames.push(f);
    }
  }

  private wake(): void { const w = this.waiters; this.waiters = []; for (const f of w) f(); }

  /** Resolves with the first received frame matching `pred` (searching from the start); rejects on close/timeout. */
  async waitFrame(pred: (f: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = this.frames.find(pred);
      if (f) return f;
      if (this.closed) throw new Error('connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a frame');
      await new Promise<void>((r) => { const t = setTimeout(r, left); this.waiters.push(() => { clearTimeout(t); r(); }); });
    }
  }

  /** Resolves once the server closed the connection; rejects after timeoutMs. */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('connection still open');
      await new Promise<void>((r) => { const t = setTimeout(r, left); this.waiters.push(() => { clearTimeout(t); r(); }); });
    }
  }

  /** The body (DATA payloads) of stream `id` once END_STREAM arrives, and its response headers. */
  async response(id: number, timeoutMs = 5000): Promise<{ headers: HeaderField[]; body: string }> {
    await this.waitFrame((f) => f.stream === id && (f.type === FrameType.DATA || f.type === FrameType.HEADERS) && (f.flags & FrameFlag.END_STREAM) !== 0, timeoutMs)
      .catch((e) => { throw new Error(`stream ${id}: ${(e as Error).message}; frames: ${this.describe()}`); });
    const h = this.frames.find((f) => f.stream === id && f.type === FrameType.HEADERS);
    const body = Buffer.concat(this.frames.filter((f) => f.stream === id && f.type === FrameType.DATA).map((f) => f.payload)).toString();
    return { headers: h?.headers ?? [], body };
  }

  /** Frame types/flags seen so far, for assertion messages. */
  describe(): string {
    return this.frames.map((f) => `${f.type}/${f.flags}/${f.stream}${f.type === FrameType.GOAWAY || f.type === FrameType.RST_STREAM ? `(err ${f.payload.readUInt32BE(f.type === FrameType.GOAWAY ? 4 : 0)})` : ''}`).join(' ');
  }

  close(): void { this.sock.destroy(); }
}
