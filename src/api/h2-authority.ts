/**
 * Tolerating a malformed HTTP/2 `:authority` from clients, as etcd (Go's HTTP/2 server) does.
 *
 * etcd 3.4's etcdctl dials `passthrough:///http://127.0.0.1:2379` for `endpoint status`, so its HEADERS
 * carry `:authority: http://127.0.0.1:2379`. RFC 9113 §8.3.1 makes `:authority` the authority part of a URI
 * (RFC 3986 §3.2: no scheme, no "/"), and Node's nghttp2 (HTTP messaging checks on, no option to turn them off
 * in Node 20's http2.createServer) answers such a stream with RST_STREAM PROTOCOL_ERROR. Go accepts it.
 *
 * This module has the pieces client-listener.ts uses to fix that without costing normal connections anything
 * per frame:
 *  - {@link scanClientPrefix}: reads the first frames of a client connection (preface, SETTINGS, ...) up to
 *    the end of its first header block, so the listener can decide once per connection;
 *  - {@link isValidAuthority} / {@link fixAuthority}: nghttp2's character check and the repair
 *    ("http://host:port/..." → "host:port");
 *  - {@link AuthorityRewriter}: a client→server frame filter, used only for connections whose first
 *    `:authority` is malformed, that re-encodes every header block with the authority repaired.
 *
 * HPACK (RFC 7541) coding is npm `hpack.js` (the HPACK implementation of `spdy`).
 */

/** The 24-octet HTTP/2 client connection preface (RFC 9113 §3.4). */
export const H2_CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** Octets in an HTTP/2 frame header (RFC 9113 §4.1). */
export const FRAME_HEADER_BYTES = 9;
/** Frame types (RFC 9113 §6). */
export const FrameType = { DATA: 0x0, HEADERS: 0x1, PRIORITY: 0x2, RST_STREAM: 0x3, SETTINGS: 0x4, PUSH_PROMISE: 0x5, PING: 0x6, GOAWAY: 0x7, WINDOW_UPDATE: 0x8, CONTINUATION: 0x9 } as const;
/** Frame flags (RFC 9113 §6.2, §6.5, §6.10). */
export const FrameFlag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;
/**
 * Largest frame payload we emit (octets): SETTINGS_MAX_FRAME_SIZE's initial value, which every peer accepts
 * (RFC 9113 §6.5.2); longer re-encoded header blocks are split into CONTINUATION frames.
 */
export const DEFAULT_MAX_FRAME_SIZE = 16_384;
/**
 * HPACK dynamic table size (octets) in force until SETTINGS_HEADER_TABLE_SIZE changes it (RFC 7541 §4.2,
 * RFC 9113 §6.5.2); Node's http2 server (grpc-js) advertises this same default.
 */
export const DEFAULT_HEADER_TABLE_SIZE = 4096;
/**
 * Largest dynamic table size a client may switch its encoder to with a size update (octets). Larger than
 * Node's advertised 4096 only to be lenient: the rewriter decodes what the client sends, the server never
 * sees the client's table.
 */
export const MAX_CLIENT_HEADER_TABLE_SIZE = 65_536;
/** Largest header block (octets, all HEADERS + CONTINUATION fragments of one block) the rewriter accepts. */
export const MAX_HEADER_BLOCK_BYTES = 64 * 1024;
/** An empty SETTINGS frame: a valid server connection preface announcing only defaults (RFC 9113 §3.4). */
export const EMPTY_SETTINGS_FRAME = Buffer.from([0, 0, 0, FrameType.SETTINGS, 0, 0, 0, 0, 0]);

// ---- hpack.js (no bundled types) ----

/** One decoded header field (names and values are latin1 strings: one char per octet). */
export interface HeaderField { name: string; value: string; neverIndex?: boolean; incremental?: boolean; huffman?: boolean }
interface HpackDuplex {
  write(data: unknown): boolean;
  read(): unknown;
  on(ev: 'error', fn: (e: Error) => void): unknown;
}
interface HpackDecompressor extends HpackDuplex { execute(): void; updateTableSize(size: number): void; _table: { updateSize(n: number): void } }
interface HpackModule {
  decompressor: { create(o: { table: { maxSize: number } }): HpackDecompressor };
  compressor: { create(o: { table: { maxSize: number } }): HpackDuplex };
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const hpack: HpackModule = require('hpack.js');

/**
 * A stateful HPACK decoder for one direction of one connection (RFC 7541): tracks the peer's dynamic table
 * (initially {@link DEFAULT_HEADER_TABLE_SIZE} octets, resizable by the peer up to
 * {@link MAX_CLIENT_HEADER_TABLE_SIZE}). `decode` takes one complete header block and returns its fields in
 * order; it throws on malformed input, after which the decoder state is unusable (close the connection:
 * RFC 9113 §4.3 COMPRESSION_ERROR).
 */
export class HpackDecoder {
  private readonly d: HpackDecompressor;
  private err: Error | undefined;
  constructor() {
    this.d = hpack.decompressor.create({ table: { maxSize: MAX_CLIENT_HEADER_TABLE_SIZE } });
    this.d._table.updateSize(DEFAULT_HEADER_TABLE_SIZE);
    this.d.on('error', (e) => { this.err = e; });
  }
  decode(block: Buffer): HeaderField[] {
    if (this.err) throw this.err;
    this.d.write(block);
    this.d.execute(); // synchronous; a decoding error is emitted (synchronously) as 'error'
    const out: HeaderField[] = [];
    for (let f = this.d.read(); f !== null; f = this.d.read()) out.push(f as HeaderField);
    if (this.err) throw this.err;
    return out;
  }
}

/**
 * HPACK-encodes a header list (RFC 7541) as literals without indexing (§6.2.2) or never-indexed literals
 * (§6.2.3, kept from the input), referring only to the static table: the encoder never inserts into the
 * dynamic table, so it respects any SETTINGS_HEADER_TABLE_SIZE the server advertises (even 0) and keeps no
 * state the server could disagree with.
 */
export function encodeHeaderBlock(fields: HeaderField[]): Buffer {
  const c = hpack.compressor.create({ table: { maxSize: DEFAULT_HEADER_TABLE_SIZE } });
  c.write(fields.map((f) => ({ name: f.name, value: f.value, neverIndex: f.neverIndex === true, incremental: false, huffman: true })));
  const chunks: Buffer[] = [];
  for (let b = c.read(); b !== null; b = c.read()) chunks.push(b as Buffer);
  return Buffer.concat(chunks);
}

// ---- :authority ----

/**
 * Octets nghttp2 accepts in `:authority` (nghttp2_check_authority): RFC 3986 unreserved, sub-delims,
 * ":" "@" "[" "]" and "%".
 */
const AUTHORITY_OK = (() => {
  const t = new Uint8Array(256);
  for (const ch of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@[]%") t[ch.charCodeAt(0)] = 1;
  return t;
})();

/**
 * True if `value` (a latin1 string, one char per octet) is an `:authority` that Node's nghttp2 accepts
 * (RFC 9113 §8.3.1: the authority component of a URI, RFC 3986 §3.2 — so no scheme and no "/").
 */
export function isValidAuthority(value: string): boolean {
  for (let i = 0; i < value.length; i++) if (AUTHORITY_OK[value.charCodeAt(i)] !== 1) return false;
  return true;
}

/**
 * Repairs an `:authority` written as a URL, the way etcd's clients mean it: "http://127.0.0.1:2379" and
 * "https://h:1/x?y" → "127.0.0.1:2379" and "h:1" (the host:port part; "localhost" if that part is empty, as
 * for "unix:///path"). Any other value is returned unchanged.
 */
export function fixAuthority(value: string): string {
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(value);
  if (!m) return value;
  return m[1] === '' ? 'localhost' : m[1];
}

// ---- byte accumulation ----

/**
 * Growable byte queue: `append` copies a chunk in (amortised O(1) per octet, capacity doubling), `view` is
 * the unconsumed octets (valid until the next `append`), `consume(n)` drops n octets from the front. Keeps
 * tiny TCP segments from making buffering quadratic.
 */
export class ByteQueue {
  private buf: Buffer = Buffer.allocUnsafe(16 * 1024);
  private start = 0;
  private end = 0;
  get length(): number { return this.end - this.start; }
  append(chunk: Buffer): void {
    if (this.end + chunk.length > this.buf.length) {
      const live = this.end - this.start;
      let cap = this.buf.length;
      while (live + chunk.length > cap / 2) cap *= 2;
      const nb = cap === this.buf.length ? this.buf : Buffer.allocUnsafe(cap);
      this.buf.copy(nb, 0, this.start, this.end);
      this.buf = nb;
      this.start = 0;
      this.end = live;
    }
    chunk.copy(this.buf, this.end);
    this.end += chunk.length;
  }
  view(): Buffer { return this.buf.subarray(this.start, this.end); }
  consume(n: number): void { this.start += n; if (this.start === this.end) this.start = this.end = 0; }
}

// ---- first frames of a connection ----

/** What {@link ClientPrefixScanner} found in the first bytes of a client connection. */
export interface PrefixScan {
  /** Set if the bytes cannot be a valid HTTP/2 client connection start (bad preface, bad frame sequence, too big). */
  error?: string;
  /** True once the whole 24-octet preface is there. */
  prefaceComplete: boolean;
  /** The first header block (HEADERS + CONTINUATION fragments, padding and priority removed), once complete. */
  headerBlock?: Buffer;
  /** [start, end) octet offsets of the first complete SETTINGS frame with the ACK flag, if any. */
  settingsAck?: [number, number];
}

/**
 * Incremental scanner of the first bytes a client sends (RFC 9113 §3.4 preface, then §4.1 frames): finds
 * its first header block and first SETTINGS ACK. `push` appends a chunk (kept: {@link bytes} returns
 * everything pushed) and parses only newly complete frames, so total work is linear in the octets pushed;
 * the caller bounds how many. A frame whose declared payload exceeds `maxFrameBytes` (octets) is an error,
 * so is a first header block over `maxFrameBytes`, a header block split by another frame (§6.10), or a
 * HEADERS frame whose padding/priority exceed its length (§6.2). Once `error` is set, it stays.
 */
export class ClientPrefixScanner {
  readonly result: PrefixScan = { prefaceComplete: false };
  private readonly q = new ByteQueue();
  private off = 0; // next unparsed octet
  private fragments: Buffer[] = [];
  private fragmentBytes = 0;
  private blockStream = -1; // stream of an unfinished first header block

  constructor(private readonly maxFrameBytes: number = MAX_HEADER_BLOCK_BYTES) {}

  /** Everything pushed so far (valid until the next push). */
  bytes(): Buffer { return this.q.view(); }

  push(chunk: Buffer): PrefixScan {
    const r = this.result;
    if (r.error !== undefined) return r;
    this.q.append(chunk);
    const buf = this.q.view();
    const pl = H2_CLIENT_PREFACE.length;
    if (!r.prefaceComplete) {
      const n = Math.min(pl, buf.length);
      if (!buf.subarray(0, n).equals(H2_CLIENT_PREFACE.subarray(0, n))) { r.error = 'bad connection preface'; return r; }
      if (buf.length < pl) return r;
      r.prefaceComplete = true;
      this.off = pl;
    }
    while (this.off + FRAME_HEADER_BYTES <= buf.length) {
      const off = this.off;
      const len = buf.readUIntBE(off, 3);
      const type = buf[off + 3];
      const flags = buf[off + 4];
      const stream = buf.readUInt32BE(off + 5) & 0x7fffffff;
      if (len > this.maxFrameBytes) { r.error = `frame of ${len} octets exceeds ${this.maxFrameBytes}`; return r; }
      const end = off + FRAME_HEADER_BYTES + len;
      if (end > buf.length) break;
      const payload = buf.subarray(off + FRAME_HEADER_BYTES, end);
      if (this.blockStream >= 0) {
        if (type !== FrameType.CONTINUATION || stream !== this.blockStream) { r.error = 'header block interrupted'; return r; }
        this.addFragment(payload);
        if (flags & FrameFlag.END_HEADERS) { r.headerBlock = Buffer.concat(this.fragments); this.blockStream = -1; this.fragments = []; }
      } else if (type === FrameType.HEADERS && r.headerBlock === undefined) {
        const frag = headersFragment(flags, payload);
        if (frag === undefined) { r.error = 'bad HEADERS padding or priority'; return r; }
        if (stream === 0) { r.error = 'HEADERS on stream 0'; return r; }
        this.addFragment(frag);
        if (flags & FrameFlag.END_HEADERS) { r.headerBlock = Buffer.concat(this.fragments); this.fragments = []; }
        else this.blockStream = stream;
      } else if (type === FrameType.CONTINUATION && r.headerBlock === undefined) {
        r.error = 'CONTINUATION without HEADERS'; return r;
      } else if (type === FrameType.SETTINGS && (flags & FrameFlag.ACK) && r.settingsAck === undefined) {
        r.settingsAck = [off, end];
      }
      if (this.fragmentBytes > this.maxFrameBytes) { r.error = 'header block too large'; return r; }
      this.off = end;
    }
    return r;
  }

  private addFragment(f: Buffer): void { this.fragments.push(Buffer.from(f)); this.fragmentBytes += f.length; }
}

/** One-shot {@link ClientPrefixScanner} over `buf` (a copy of its result). */
export function scanClientPrefix(buf: Buffer, maxFrameBytes: number = MAX_HEADER_BLOCK_BYTES): PrefixScan {
  const s = new ClientPrefixScanner(maxFrameBytes);
  return { ...s.push(buf) };
}

/** The header block fragment of a HEADERS payload (padding and priority removed), or undefined if malformed. */
function headersFragment(flags: number, payload: Buffer): Buffer | undefined {
  let start = 0;
  let pad = 0;
  if (flags & FrameFlag.PADDED) { if (payload.length < 1) return undefined; pad = payload[0]; start = 1; }
  if (flags & FrameFlag.PRIORITY) start += 5;
  if (start + pad > payload.length) return undefined;
  return payload.subarray(start, payload.length - pad);
}

/** The `:authority` of a header list (latin1), or undefined if absent. */
export function authorityOf(fields: HeaderField[]): string | undefined {
  for (const f of fields) if (f.name === ':authority') return f.value;
  return undefined;
}

// ---- the rewriter ----

function frameHeader(len: number, type: number, flags: number, stream: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  h.writeUIntBE(len, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream & 0x7fffffff, 5);
  return h;
}

/**
 * Client→server HTTP/2 byte filter that repairs `:authority` in every request (RFC 9113 §8.3.1).
 *
 * Feed it the connection's bytes from its very first octet (the preface); `push` returns the bytes to hand
 * to the server. The preface and every frame other than HEADERS/CONTINUATION pass through unchanged. Each
 * complete header block is HPACK-decoded with a decoder tracking the client's dynamic table (RFC 7541 §2.3),
 * a malformed `:authority` is replaced by {@link fixAuthority}, and the block is re-encoded with
 * {@link encodeHeaderBlock} into a HEADERS frame (END_STREAM and PRIORITY kept, padding dropped — header
 * frames are not flow-controlled) plus CONTINUATION frames of at most {@link DEFAULT_MAX_FRAME_SIZE} octets.
 * Throws on a framing or HPACK error (frame over `maxFrameBytes`, block over {@link MAX_HEADER_BLOCK_BYTES},
 * a block interrupted by another frame); the caller must then close the connection.
 */
export class AuthorityRewriter {
  private readonly q = new ByteQueue();
  private prefaceLeft = H2_CLIENT_PREFACE.length;
  private readonly decoder = new HpackDecoder();
  private block: { stream: number; flags: number; priority: Buffer | undefined; fragments: Buffer[]; size: number } | undefined;
  /** Number of header blocks whose `:authority` was rewritten (for tests and logs). */
  rewritten = 0;

  constructor(private readonly maxFrameBytes: number = MAX_HEADER_BLOCK_BYTES) {}

  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    if (this.prefaceLeft > 0) {
      const n = Math.min(this.prefaceLeft, chunk.length);
      const at = H2_CLIENT_PREFACE.length - this.prefaceLeft;
      if (!chunk.subarray(0, n).equals(H2_CLIENT_PREFACE.subarray(at, at + n))) throw new Error('bad connection preface');
      out.push(Buffer.from(chunk.subarray(0, n)));
      this.prefaceLeft -= n;
      chunk = chunk.subarray(n);
    }
    this.q.append(chunk);
    for (;;) {
      const buf = this.q.view();
      if (buf.length < FRAME_HEADER_BYTES) break;
      const len = buf.readUIntBE(0, 3);
      if (len > this.maxFrameBytes) throw new Error(`frame of ${len} octets exceeds ${this.maxFrameBytes}`);
      if (buf.length < FRAME_HEADER_BYTES + len) break;
      this.frame(Buffer.from(buf.subarray(0, FRAME_HEADER_BYTES + len)), out); // copy: the queue reuses its memory
      this.q.consume(FRAME_HEADER_BYTES + len);
    }
    return out;
  }

  private frame(f: Buffer, out: Buffer[]): void {
    const type = f[3];
    const flags = f[4];
    const stream = f.readUInt32BE(5) & 0x7fffffff;
    const payload = f.subarray(FRAME_HEADER_BYTES);
    if (this.block) {
      if (type !== FrameType.CONTINUATION || stream !== this.block.stream) throw new Error('header block interrupted');
      this.addFragment(payload);
      if (flags & FrameFlag.END_HEADERS) this.flushBlock(out);
      return;
    }
    if (type === FrameType.CONTINUATION) throw new Error('CONTINUATION without HEADERS');
    if (type !== FrameType.HEADERS) { out.push(f); return; }
    const frag = headersFragment(flags, payload);
    if (frag === undefined) throw new Error('bad HEADERS padding or priority');
    const pstart = flags & FrameFlag.PADDED ? 1 : 0;
    this.block = { stream, flags, priority: flags & FrameFlag.PRIORITY ? Buffer.from(payload.subarray(pstart, pstart + 5)) : undefined, fragments: [], size: 0 };
    this.addFragment(frag);
    if (flags & FrameFlag.END_HEADERS) this.flushBlock(out);
  }

  private addFragment(frag: Buffer): void {
    const b = this.block!;
    b.size += frag.length;
    if (b.size > MAX_HEADER_BLOCK_BYTES) throw new Error('header block too large');
    b.fragments.push(Buffer.from(frag));
  }

  private flushBlock(out: Buffer[]): void {
    const b = this.block!;
    this.block = undefined;
    const fields = this.decoder.decode(Buffer.concat(b.fragments));
    for (const f of fields) {
      if (f.name === ':authority' && !isValidAuthority(f.value)) { f.value = fixAuthority(f.value); this.rewritten++; }
    }
    const enc = encodeHeaderBlock(fields);
    const prio = b.priority ?? Buffer.alloc(0);
    const firstRoom = DEFAULT_MAX_FRAME_SIZE - prio.length;
    const first = enc.subarray(0, firstRoom);
    let rest = enc.subarray(first.length);
    const hflags = (b.flags & (FrameFlag.END_STREAM | FrameFlag.PRIORITY)) | (rest.length === 0 ? FrameFlag.END_HEADERS : 0);
    out.push(frameHeader(prio.length + first.length, FrameType.HEADERS, hflags, b.stream), prio, first);
    while (rest.length > 0) {
      const part = rest.subarray(0, DEFAULT_MAX_FRAME_SIZE);
      rest = rest.subarray(part.length);
      out.push(frameHeader(part.length, FrameType.CONTINUATION, rest.length === 0 ? FrameFlag.END_HEADERS : 0, b.stream), part);
    }
  }
}
