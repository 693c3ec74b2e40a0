/**
 * One listening socket per client URL serving both gRPC and plain HTTP, as etcd does on :2379 (etcd: cmux
 * splitting HTTP/2 from HTTP/1.1). The first bytes of a connection decide: the HTTP/2 connection preface
 * ("PRI * HTTP/2.0") goes to the grpc-js server through its connection injector; anything else is HTTP/1 and
 * is piped to the uWebSockets.js app listening on a private loopback port (/metrics, /health, /version...).
 *
 * HTTP/2 connections are held until their first header block is complete (bounded by
 * {@link H2_SNIFF_MAX_BYTES} and {@link H2_SNIFF_TIMEOUT_MS}) to look at its `:authority` (see h2-authority.ts):
 *  - well-formed (every normal client): the buffered bytes are unshifted and the socket itself is injected,
 *    so grpc-js/nghttp2 read it natively with no per-frame work from us;
 *  - written as a URL ("http://127.0.0.1:2379", etcd 3.4's etcdctl `endpoint status`), which Node's nghttp2
 *    would reset with PROTOCOL_ERROR while etcd accepts it: the connection is injected as a Duplex whose
 *    client→server bytes go through {@link AuthorityRewriter}; server→client bytes are forwarded unchanged.
 * Clients that wait for the server's connection preface before their first request (grpc-go) get an empty
 * SETTINGS frame from us while we wait; its ACK is removed from what grpc-js sees, which then sends its own
 * SETTINGS as usual. The sniff costs one header-block decode per connection, nothing per request.
 */
import * as net from 'node:net';
import { Duplex } from 'node:stream';
import { ClientPrefixScanner, HpackDecoder, authorityOf, isValidAuthority, AuthorityRewriter, EMPTY_SETTINGS_FRAME, H2_CLIENT_PREFACE } from './h2-authority';

/** Bytes that identify an HTTP/2 client connection preface (RFC 9113 §3.4). */
const H2_PREFACE_HEAD = Buffer.from('PRI ');
/** Time a new connection may stay silent before it is closed (ms). */
export const FIRST_BYTES_TIMEOUT_MS = 10_000;
/**
 * Largest first header block (octets, HEADERS + CONTINUATION fragments) and largest single frame accepted
 * while sniffing; a connection exceeding it is closed.
 */
export const H2_SNIFF_MAX_BYTES = 64 * 1024;
/**
 * Most octets of an HTTP/2 connection buffered while sniffing; a connection exceeding it is closed. Covers
 * the preface, small control frames, the first header block ({@link H2_SNIFF_MAX_BYTES}) and, while the ACK
 * of our SETTINGS is awaited, the DATA a client may already send (at most the 65 535-octet initial
 * connection window, RFC 9113 §6.9.2).
 */
export const H2_SNIFF_MAX_BUFFERED = 256 * 1024;
/**
 * Longest wait (ms) for the first complete header block (and the ACK of our SETTINGS, if we sent one). An
 * idle client past it is injected as is (its later requests are not rewritten); one that has not completed
 * the preface, or not ACKed our SETTINGS, is closed. Below grpc-go's 2 s keepalive (etcdctl's default), so
 * keepalive PINGs are answered in time.
 */
export const H2_SNIFF_TIMEOUT_MS = 1_000;

/** Options of {@link listenClientUrl}. */
export interface ClientListenerOptions {
  host: string;
  port: number; // 0 = any free port
  /** Hands an HTTP/2 connection to the gRPC server: the socket itself, or a Duplex for rewritten ones. */
  injectGrpc(conn: Duplex): void;
  /** Loopback port of the uWebSockets.js app that answers HTTP/1. */
  httpPort: number;
  /** Called once per connection whose `:authority` is rewritten (tests, logs). */
  onRewrite?(authority: string): void;
}

/**
 * Listens on host:port and splits connections between gRPC and HTTP/1.
 * Resolves with the net.Server and the bound port; rejects on a listen error (EADDRINUSE, EACCES).
 */
export function listenClientUrl(opts: ClientListenerOptions): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer({ noDelay: true }, (sock) => {
    sock.setTimeout(FIRST_BYTES_TIMEOUT_MS, () => sock.destroy());
    sock.once('error', () => sock.destroy());
    sock.once('data', (chunk: Buffer) => {
      sock.setTimeout(0);
      if (chunk.length >= H2_PREFACE_HEAD.length && chunk.subarray(0, H2_PREFACE_HEAD.length).equals(H2_PREFACE_HEAD)) {
        sniffH2(sock, chunk, opts);
        return;
      }
      sock.pause();
      sock.unshift(chunk);
      const upstream = net.connect({ host: '127.0.0.1', port: opts.httpPort, noDelay: true });
      upstream.on('error', () => sock.destroy());
      sock.on('error', () => upstream.destroy());
      sock.pipe(upstream).pipe(sock);
      sock.resume();
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      const addr = server.address() as net.AddressInfo;
      resolve({ server, port: addr.port });
    });
  });
}

/** Buffers an HTTP/2 connection up to its first header block, then injects it directly or through the rewriter. */
function sniffH2(sock: net.Socket, first: Buffer, opts: ClientListenerOptions): void {
  const scanner = new ClientPrefixScanner(H2_SNIFF_MAX_BYTES);
  let settingsScheduled = false;
  let settingsSent = false;
  let done = false;
  const fail = (): void => { finish(); sock.destroy(); };
  const finish = (): void => {
    done = true;
    clearTimeout(timer);
    sock.off('data', onData);
    sock.off('close', onClose);
    sock.pause();
  };
  const onData = (c: Buffer): void => step(c, false);
  const onClose = (): void => { if (!done) finish(); };
  const timer = setTimeout(() => step(undefined, true), H2_SNIFF_TIMEOUT_MS);
  sock.on('data', onData);
  sock.on('close', onClose);
  step(first, false);

  function step(chunk: Buffer | undefined, timedOut: boolean): void {
    if (done) return;
    if (chunk !== undefined && scanner.bytes().length + chunk.length > H2_SNIFF_MAX_BUFFERED) return fail();
    const r = chunk !== undefined ? scanner.push(chunk) : scanner.result;
    if (r.error !== undefined) return fail();
    if (r.headerBlock === undefined && !timedOut) {
      // grpc-go and grpc-js wait for the server preface before their first request: send one (defaults only),
      // after the current I/O phase so that a client which wrote its request right behind the preface (in a
      // separate segment) is decided without it, hence without waiting for its ACK.
      if (r.prefaceComplete && !settingsScheduled) {
        settingsScheduled = true;
        setImmediate(() => {
          if (done || sock.destroyed) return;
          settingsSent = true;
          sock.write(EMPTY_SETTINGS_FRAME);
        });
      }
      return;
    }
    if (settingsSent && r.settingsAck === undefined) return timedOut ? fail() : undefined;
    if (!r.prefaceComplete) return fail();
    const buf = scanner.bytes();
    // Our SETTINGS' ACK must not reach nghttp2, which would see an unexpected ACK (connection error).
    const bytes = settingsSent && r.settingsAck ? Buffer.concat([buf.subarray(0, r.settingsAck[0]), buf.subarray(r.settingsAck[1])]) : Buffer.from(buf);
    let authority: string | undefined;
    if (r.headerBlock !== undefined) {
      try { authority = authorityOf(new HpackDecoder().decode(r.headerBlock)); } catch { return fail(); }
    }
    finish();
    sock.removeAllListeners('error');
    if (authority === undefined || isValidAuthority(authority)) {
      sock.unshift(bytes);
      opts.injectGrpc(sock);
      return;
    }
    opts.onRewrite?.(authority);
    opts.injectGrpc(rewritingConnection(sock, bytes));
  }
}

/**
 * A Duplex standing for `sock` whose readable side is the client's bytes (starting with `firstBytes`, which
 * begins with the connection preface) passed through an {@link AuthorityRewriter}, and whose writable side
 * goes to `sock` unchanged. Closing either side closes the other; a framing/HPACK error closes both.
 */
export function rewritingConnection(sock: net.Socket, firstBytes: Buffer): Duplex {
  const rw = new AuthorityRewriter();
  const conn = new Duplex({
    read() { sock.resume(); },
    write(chunk: Buffer, _enc, cb) { if (sock.destroyed) cb(new Error('socket closed')); else sock.write(chunk, (e) => cb(e ?? null)); },
    final(cb) { sock.end(); cb(); },
    destroy(err, cb) { sock.destroy(); cb(err); },
  });
  // What grpc-js/Node read from a net.Socket for logs and channelz.
  for (const k of ['remoteAddress', 'remotePort', 'remoteFamily', 'localAddress', 'localPort'] as const) {
    Object.defineProperty(conn, k, { value: sock[k], enumerable: true });
  }
  const feed = (chunk: Buffer): void => {
    let out: Buffer[];
    try { out = rw.push(chunk); } catch { sock.destroy(); conn.destroy(); return; }
    for (const b of out) if (!conn.push(b)) sock.pause();
  };
  sock.on('data', feed);
  sock.on('end', () => conn.push(null));
  sock.on('error', () => conn.destroy());
  sock.on('close', () => conn.destroy());
  if (!firstBytes.subarray(0, H2_CLIENT_PREFACE.length).equals(H2_CLIENT_PREFACE)) throw new Error('rewritingConnection: bytes must start with the preface');
  feed(firstBytes);
  return conn;
}

/** Splits "http://host:port" into host and port; throws TypeError on anything else. */
export function hostPortOf(url: string): { host: string; port: number } {
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError(`unsupported URL scheme in ${url}`);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = u.port === '' ? (u.protocol === 'https:' ? 443 : 80) : Number(u.port);
  return { host, port };
}
