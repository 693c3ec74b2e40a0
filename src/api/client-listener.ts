/**
 * One listening socket per client URL serving both gRPC and plain HTTP, as etcd does on :2379 (etcd: cmux
 * splitting HTTP/2 from HTTP/1.1). The first bytes of a connection decide: the HTTP/2 connection preface
 * ("PRI * HTTP/2.0") goes to the grpc-js server through its connection injector; a plain connection whose first line
 * is an HTTP/1 request line (cmux's HTTP1 matcher, {@link isHttp1RequestLine}) is HTTP/1, served in process
 * (src/api/http/node-http1.ts) or piped to the uWebSockets.js app on a private Unix socket (src/api/http-upstream.ts)
 * (/metrics, /health, /version...); anything else is closed without an answer, as etcd 3.4 does.
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
 *
 * With TLS (https:// client URLs, etcd 3.4's listener) the handshake comes first: TLS 1.2 minimum, ALPN `h2` and
 * `http/1.1` advertised, clients offering no ALPN accepted. A client that negotiated `http/1.1` goes straight to
 * HTTP/1; the others are sniffed on the decrypted bytes as above. A TLS socket that had bytes read from it cannot be
 * handed to Node's HTTP/2 natively (its stream handle is consumed by nghttp2 directly and the read bytes would be
 * lost), so it is always injected through a Duplex (rewriting the authority or passing bytes through). grpc-js
 * only shows a call's certificate for a TLSSocket it was given, so the verified client certificate's CN is kept
 * by peer address in client-certs.ts for the auth gate (etcd: AuthInfoFromTLS).
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Duplex } from 'node:stream';
import { certCommonName, rememberClientCert } from './client-certs';
import { ClientPrefixScanner, HpackDecoder, authorityOf, isValidAuthority, AuthorityRewriter, EMPTY_SETTINGS_FRAME, H2_CLIENT_PREFACE } from './h2-authority';
import { connectUpstream, type HttpUpstream } from './http-upstream';

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
 * the preface is closed; one that has not ACKed our SETTINGS gets until {@link H2_SETTINGS_ACK_TIMEOUT_MS}. Below grpc-go's 2 s keepalive (etcdctl's default), so
 * keepalive PINGs are answered in time.
 */
export const H2_SNIFF_TIMEOUT_MS = 1_000;
/**
 * Longest wait (ms, from the connection's first bytes) for the ACK of the SETTINGS we sent while sniffing. Past
 * {@link H2_SNIFF_TIMEOUT_MS} a client that has not ACKed yet is usually just busy (a loaded client or server
 * process: the overload test saw grpc-js connections reset here), so it gets this long before being closed.
 */
export const H2_SETTINGS_ACK_TIMEOUT_MS = 5_000;

/** Options of {@link listenClientUrl}. */
export interface ClientListenerOptions {
  host: string;
  port: number; // 0 = any free port
  /** Hands an HTTP/2 connection to the gRPC server: the socket itself, or a Duplex for rewritten ones. */
  injectGrpc(conn: Duplex): void;
  /** The private uWebSockets.js app that answers HTTP/1 (src/api/http-upstream.ts). */
  httpUpstream: HttpUpstream;
  /**
   * The app for TLS clients whose verified certificate has a CN (etcd 3.4 refuses their gateway requests while auth
   * is enabled, src/api/http/server.ts); undefined: they go to `httpUpstream` like everyone.
   */
  cnHttpUpstream?: HttpUpstream;
  /** Serves HTTP/1 connections of `httpUpstream`'s clients in process (src/api/http/node-http1.ts); gets the socket paused. */
  serveHttp1?(sock: net.Socket): void;
  /**
   * Serves an HTTP/2 connection whose first request is not gRPC (TLS only, as etcd 3.4: /health, /metrics, the
   * gateway over h2; src/api/h2-http-bridge.ts). Without it such connections go to grpc-js (415).
   */
  serveHttp2?(conn: Duplex, upstream: HttpUpstream): void;
  /** Called once per connection whose `:authority` is rewritten (tests, logs). */
  onRewrite?(authority: string): void;
  /** Serve TLS (an https:// URL) with this material (src/tls/source.ts TlsSource). */
  tls?: ClientTls;
  /** Called when a TLS handshake fails (a client without a valid certificate under --client-cert-auth...). */
  onTlsError?(err: Error, remote: string): void;
}

/** The TLS material a client listener needs (src/tls/source.ts TlsSource provides it). */
export interface ClientTls {
  /** tls.createServer options advertising `alpn`. */
  serverOptions(alpn: string[]): tls.TlsOptions;
  /** Lets the server pick up rotated certificate files for new connections. */
  attach(server: tls.Server): void;
}

/** ALPN protocols the TLS client port advertises, preferred first (etcd 3.4: h2, http/1.1). */
export const CLIENT_ALPN = ['h2', 'http/1.1'];

/**
 * Listens on host:port and splits connections between gRPC and HTTP/1.
 * Resolves with the net.Server and the bound port; rejects on a listen error (EADDRINUSE, EACCES).
 */
export function listenClientUrl(opts: ClientListenerOptions): Promise<{ server: net.Server; port: number }> {
  // In process only for the main app's clients: CN-certificate clients keep etcd's gateway refusal on their own app.
  const serveHttp1 = (sock: net.Socket, upstream: HttpUpstream): void =>
    opts.serveHttp1 !== undefined && upstream === opts.httpUpstream ? opts.serveHttp1(sock) : pipeHttp1(sock, upstream);
  const onConnection = (sock: net.Socket, secure: boolean): void => {
    sock.setNoDelay(true);
    sock.setTimeout(FIRST_BYTES_TIMEOUT_MS, () => sock.destroy());
    sock.once('error', () => sock.destroy());
    let upstream = opts.httpUpstream;
    if (secure) {
      const t = sock as tls.TLSSocket;
      if (t.authorized) {
        const cert = t.getPeerCertificate();
        rememberClientCert(sock, cert);
        if (opts.cnHttpUpstream !== undefined && certCommonName(cert) !== '') upstream = opts.cnHttpUpstream;
      }
      if (t.alpnProtocol === 'http/1.1') {
        sock.setTimeout(0);
        serveHttp1(sock, upstream);
        return;
      }
    }
    sock.once('data', (chunk: Buffer) => {
      sock.setTimeout(0);
      if (chunk.length >= H2_PREFACE_HEAD.length && chunk.subarray(0, H2_PREFACE_HEAD.length).equals(H2_PREFACE_HEAD)) {
        sniffH2(sock, chunk, opts, secure, upstream);
        return;
      }
      if (secure) {
        sock.pause();
        sock.unshift(chunk);
        serveHttp1(sock, upstream);
        return;
      }
      sniffHttp1(sock, chunk, (s) => serveHttp1(s, upstream));
    });
  };
  let server: net.Server;
  if (opts.tls !== undefined) {
    const t = tls.createServer({ ...opts.tls.serverOptions(CLIENT_ALPN), handshakeTimeout: FIRST_BYTES_TIMEOUT_MS }, (s) => onConnection(s, true));
    opts.tls.attach(t);
    t.on('tlsClientError', (err, s) => opts.onTlsError?.(err, `${s.remoteAddress}:${s.remotePort}`));
    server = t;
  } else {
    server = net.createServer({ noDelay: true }, (s) => onConnection(s, false));
  }
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      const addr = server.address() as net.AddressInfo;
      resolve({ server, port: addr.port });
    });
  });
}

/**
 * Longest first line (octets, its line end included) a plain connection may send before it is told HTTP/1 or
 * dropped (etcd: cmux's HTTP1 matcher reads through a 4 KiB buffer).
 */
export const HTTP1_REQUEST_LINE_MAX_BYTES = 4096;

/**
 * Whether `line` (without its line end) is an HTTP/1 request line as etcd 3.4's cmux HTTP1 matcher accepts it:
 * two spaces splitting method, target and protocol, the protocol `HTTP/1.<minor>`. cmux looks no further (Go's
 * HTTP server then judges method and target).
 */
export function isHttp1RequestLine(line: string): boolean {
  const s1 = line.indexOf(' ');
  if (s1 < 0) return false;
  const s2 = line.indexOf(' ', s1 + 1);
  if (s2 < 0) return false;
  return /^HTTP\/1\.[0-9]+$/.test(line.slice(s2 + 1));
}

/**
 * Holds a plain connection that is not HTTP/2 until its first line is complete, then hands it on (paused, its bytes
 * unshifted) when that line is an HTTP/1 request line, or closes it without an answer, as etcd 3.4's client port
 * does with anything its cmux matchers do not recognise (garbage, HTTP/0.9, another protocol version, a first
 * line over {@link HTTP1_REQUEST_LINE_MAX_BYTES}). The connection's first-bytes timeout keeps running meanwhile.
 */
function sniffHttp1(sock: net.Socket, first: Buffer, serve: (sock: net.Socket) => void): void {
  let buf = first;
  // The listener's timeout callback (destroy) is still attached: re-arm it for the rest of the line.
  sock.setTimeout(FIRST_BYTES_TIMEOUT_MS);
  const decide = (): boolean => {
    const nl = buf.indexOf(0x0a);
    if (nl < 0 || nl >= HTTP1_REQUEST_LINE_MAX_BYTES) {
      if (buf.length < HTTP1_REQUEST_LINE_MAX_BYTES) return false;
      sock.destroy();
      return true;
    }
    const end = nl > 0 && buf[nl - 1] === 0x0d ? nl - 1 : nl;
    if (!isHttp1RequestLine(buf.toString('latin1', 0, end))) {
      sock.destroy();
      return true;
    }
    sock.setTimeout(0);
    sock.pause();
    sock.unshift(buf);
    serve(sock);
    return true;
  };
  if (decide()) return;
  const onData = (c: Buffer): void => {
    buf = Buffer.concat([buf, c]);
    if (decide()) sock.off('data', onData);
  };
  sock.on('data', onData);
}

/** Pipes a connection (its unread bytes included) to the private HTTP/1 app. */
function pipeHttp1(sock: net.Socket, httpUpstream: HttpUpstream): void {
  const upstream = connectUpstream(httpUpstream);
  upstream.on('error', () => sock.destroy());
  sock.on('error', () => upstream.destroy());
  sock.pipe(upstream).pipe(sock);
  sock.resume();
}

/**
 * Buffers an HTTP/2 connection up to its first header block, then injects it directly or through the rewriter
 * (`secure`: a TLS socket, always injected through a Duplex).
 */
function sniffH2(sock: net.Socket, first: Buffer, opts: ClientListenerOptions, secure: boolean, upstream: HttpUpstream): void {
  const scanner = new ClientPrefixScanner(H2_SNIFF_MAX_BYTES);
  let settingsScheduled = false;
  let settingsSent = false;
  let done = false;
  /** Past the sniff timeout, waiting only for the ACK of our SETTINGS (bounded by ackTimer). */
  let late = false;
  let ackTimer: NodeJS.Timeout | null = null;
  const fail = (): void => { finish(); sock.destroy(); };
  const finish = (): void => {
    done = true;
    clearTimeout(timer);
    if (ackTimer !== null) clearTimeout(ackTimer);
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
    timedOut ||= late;
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
    if (settingsSent && r.settingsAck === undefined) {
      if (timedOut && !late) {
        // The ACK cannot be let through to nghttp2 (an unexpected ACK is a connection error): wait for it longer.
        late = true;
        ackTimer = setTimeout(fail, H2_SETTINGS_ACK_TIMEOUT_MS - H2_SNIFF_TIMEOUT_MS);
      }
      return;
    }
    if (!r.prefaceComplete) return fail();
    const buf = scanner.bytes();
    // Our SETTINGS' ACK must not reach nghttp2, which would see an unexpected ACK (connection error).
    const bytes = settingsSent && r.settingsAck ? Buffer.concat([buf.subarray(0, r.settingsAck[0]), buf.subarray(r.settingsAck[1])]) : Buffer.from(buf);
    let authority: string | undefined;
    let grpc = true;
    if (r.headerBlock !== undefined) {
      try {
        const fields = new HpackDecoder().decode(r.headerBlock);
        authority = authorityOf(fields);
        grpc = fields.some((f) => f.name === 'content-type' && f.value.startsWith('application/grpc'));
      } catch { return fail(); }
    }
    finish();
    sock.removeAllListeners('error');
    const valid = authority === undefined || isValidAuthority(authority);
    if (!valid) opts.onRewrite?.(authority!);
    if (secure && !grpc && opts.serveHttp2 !== undefined) {
      opts.serveHttp2(rewritingConnection(sock, bytes, !valid), upstream);
      return;
    }
    if (valid && !secure) {
      sock.unshift(bytes);
      opts.injectGrpc(sock);
      return;
    }
    opts.injectGrpc(rewritingConnection(sock, bytes, !valid));
  }
}

/**
 * A Duplex standing for `sock` whose readable side is the client's bytes (starting with `firstBytes`, which
 * begins with the connection preface) passed through an {@link AuthorityRewriter} (unchanged when `rewrite` is
 * false), and whose writable side goes to `sock` unchanged. Closing either side closes the other; a framing/HPACK
 * error closes both.
 */
export function rewritingConnection(sock: net.Socket, firstBytes: Buffer, rewrite = true): Duplex {
  const rw = rewrite ? new AuthorityRewriter() : { push: (c: Buffer): Buffer[] => [c] };
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
