/**
 * etcetera's gRPC server on Node's HTTP/2 (nghttp2), in place of grpc-js's server (issue 11 item 1). It routes
 * `/package.Service/Method` paths to handlers written for grpc-js's call objects ({@link H2Call} gives them the
 * same surface) and speaks gRPC over HTTP/2 itself:
 *  - length-prefixed messages reassembled across DATA frames (src/api/h2grpc/framing.ts), receive limit
 *    `maxReceiveMessageBytes` (etcd: --max-request-bytes + 512 KiB), send limit 2^31-1 (grpc-go's default);
 *  - `grpc-timeout` deadlines; metadata with `-bin` headers; `grpc-status` / percent-encoded `grpc-message`
 *    trailers, trailers-only for calls refused before any message;
 *  - grpc-go's (etcd 3.4's) answers at the edges: unknown service or method → Unimplemented "unknown service X" /
 *    "unknown method M for service X"; a `grpc-encoding` other than identity → Unimplemented "grpc: Decompressor
 *    is not installed for grpc-encoding …" (etcd installs no decompressor); a compressed flag → Internal; a
 *    request stream ending without its message → Unknown "EOF", or mid-message → Unknown "unexpected EOF";
 *    messages after a unary request are ignored; not POST, not application/grpc, or a malformed grpc-timeout →
 *    RST_STREAM PROTOCOL_ERROR;
 *  - HTTP/2 flow control as back-pressure (a write returns false, 'drain' follows); a reset stream or a lost
 *    connection cancels the call;
 *  - server keepalive: a PING every `keepaliveIntervalMs`, the connection closed when its ACK does not come within
 *    `keepaliveTimeoutMs` (etcd --grpc-keepalive-interval / --grpc-keepalive-timeout); clients pinging more often
 *    than `keepaliveMinTimeMs` get GOAWAY too_many_pings as from grpc-go (etcd --grpc-keepalive-min-time);
 *  - SETTINGS_MAX_CONCURRENT_STREAMS = `maxConcurrentStreams` (etcd --max-concurrent-streams, default 2^32-1);
 *  - GOAWAY on shutdown: running calls get `graceMs` to finish, then their connections are destroyed.
 * Connections come from the client listener (src/api/client-listener.ts) through {@link H2GrpcServer.inject}.
 */
import * as http2 from 'node:http2';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { CALL_OF_STREAM, H2Call, type CallStatus, type CallStream, type ConnectionActivity } from './call';
import { MESSAGE_PREFIX_BYTES, MessageReader } from './framing';
import { parseTimeoutMs } from './metadata';

/** The four RPC kinds (named as go-grpc-prometheus's grpc_type label). */
export type CallKind = 'unary' | 'client_stream' | 'server_stream' | 'bidi_stream';

/** The unary / client-streaming answer callback (grpc-js's sendUnaryData shape). */
export type Reply = (err: { code?: unknown; details?: unknown; message?: unknown } | null, value?: Uint8Array | null) => void;

/** One routable method: its kind and a handler written for grpc-js's call objects. */
export interface H2Method {
  kind: CallKind;
  /** Unary and client-streaming handlers take `(call, reply)`; streaming-response ones `(call)`. */
  handler: (call: H2Call, reply: Reply) => void;
}

/** Options of {@link H2GrpcServer}. */
export interface H2GrpcServerOptions {
  /** Methods by path, "/etcdserverpb.KV/Range". */
  methods: ReadonlyMap<string, H2Method>;
  /** Longest request message accepted (octets); longer → ResourceExhausted. */
  maxReceiveMessageBytes: number;
  /** SETTINGS_MAX_CONCURRENT_STREAMS announced to clients (default 2^32-1, etcd's). */
  maxConcurrentStreams?: number;
  /** Server PING interval (ms, 0 = none) and how long its ACK may take (ms). */
  keepaliveIntervalMs?: number;
  keepaliveTimeoutMs?: number;
  /**
   * Least interval (ms) between a client's PINGs while it has streams open (etcd --grpc-keepalive-min-time; 0 = no
   * policy). grpc-go's enforcement, which etcd uses with PermitWithoutStream false: a PING sooner than this after
   * the previous one (or sooner than 2 h with no stream open) is a strike unless the server sent something since;
   * the third strike closes the connection with GOAWAY ENHANCE_YOUR_CALM "too_many_pings".
   */
  keepaliveMinTimeMs?: number;
  /** Called with a handler's synchronous throw (a bug); the call ends with Unknown. */
  onHandlerError?(err: unknown, path: string): void;
}

/** grpc-go's maxPingStrikes: strikes tolerated before GOAWAY too_many_pings. */
export const MAX_PING_STRIKES = 2;
/** grpc-go's defaultPingTimeout: least PING interval accepted from a client without open streams (2 h). */
export const IDLE_MIN_PING_INTERVAL_MS = 2 * 60 * 60 * 1000;

/** Where a session's {@link ConnectionActivity} is kept. */
const ACTIVITY = Symbol('h2grpc.activity');
type TrackedSession = http2.ServerHttp2Session & { [ACTIVITY]?: ConnectionActivity };

/** etcd's --max-concurrent-streams default (math.MaxUint32). */
export const DEFAULT_MAX_CONCURRENT_STREAMS = 0xffffffff;

const ignore = (): void => {};

/** A gRPC server over node:http2 fed with already-accepted connections. */
export class H2GrpcServer {
  private readonly h2: http2.Http2Server;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly services = new Set<string>();
  private readonly listeners: net.Server[] = [];
  private closing = false;

  constructor(private readonly opts: H2GrpcServerOptions) {
    for (const p of opts.methods.keys()) this.services.add(p.slice(1, p.lastIndexOf('/')));
    this.h2 = http2.createServer({
      settings: { maxConcurrentStreams: opts.maxConcurrentStreams ?? DEFAULT_MAX_CONCURRENT_STREAMS },
      // Node's default (10 MB per session) resets streams under load from many clients on one connection;
      // the bounds that matter are the receive limit per message and HTTP/2 flow control.
      maxSessionMemory: Number.MAX_SAFE_INTEGER,
    });
    this.h2.setTimeout(0);
    this.h2.on('session', (s: http2.ServerHttp2Session) => this.onSession(s));
    this.h2.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => this.onStream(stream, headers));
    this.h2.on('sessionError', ignore);
  }

  /** Serves one accepted connection (a socket whose HTTP/2 preface is unread, or a Duplex standing for one). */
  inject(conn: Duplex): void {
    if (this.closing) {
      conn.destroy();
      return;
    }
    this.h2.emit('connection', conn);
  }

  /**
   * Listens on host:port (0 = any free port) and serves every connection there as gRPC (no HTTP/1 split; the
   * member uses the client listener instead). Resolves with the bound port; rejects on a listen error.
   */
  listen(host: string, port: number): Promise<number> {
    const srv = net.createServer({ noDelay: true }, (sock) => this.inject(sock));
    return new Promise((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, host, () => {
        srv.off('error', reject);
        this.listeners.push(srv);
        resolve((srv.address() as net.AddressInfo).port);
      });
    });
  }

  /** Connections currently open. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /**
   * Stops: listeners close, every connection gets GOAWAY (no new calls), running calls have `graceMs` to finish,
   * then the remaining connections are destroyed (their calls see 'cancelled'). Resolves when all are gone.
   */
  close(graceMs = 2000): Promise<void> {
    this.closing = true;
    for (const l of this.listeners) l.close();
    this.listeners.length = 0;
    const open = [...this.sessions];
    if (open.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      let left = open.length;
      const timer = setTimeout(() => {
        for (const s of open) if (!s.destroyed) s.destroy();
      }, graceMs);
      const gone = (): void => {
        if (--left === 0) {
          clearTimeout(timer);
          resolve();
        }
      };
      for (const s of open) {
        if (s.destroyed || s.closed) gone();
        else {
          s.once('close', gone);
          s.close();
        }
      }
    });
  }

  private onSession(s: http2.ServerHttp2Session): void {
    this.sessions.add(s);
    s.on('error', ignore);
    exposePeer(s);
    const activity: ConnectionActivity = { active: 0, strikes: 0, lastPingAtMs: 0, bytesAtLastPingOctets: 0 };
    (s as TrackedSession)[ACTIVITY] = activity;
    const minTimeMs = this.opts.keepaliveMinTimeMs ?? 0;
    if (minTimeMs > 0) s.on('ping', () => enforcePingPolicy(s, activity, minTimeMs));
    let timer: NodeJS.Timeout | null = null;
    const interval = this.opts.keepaliveIntervalMs ?? 0;
    if (interval > 0) {
      const timeoutMs = this.opts.keepaliveTimeoutMs ?? 20_000;
      timer = setInterval(() => keepalivePing(s, timeoutMs), interval);
      timer.unref();
    }
    s.once('close', () => {
      this.sessions.delete(s);
      if (timer !== null) clearInterval(timer);
    });
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on('error', ignore);
    const path = headers[':path'] ?? '';
    const ct = headers['content-type'];
    if (headers[':method'] !== 'POST' || typeof ct !== 'string' || !ct.startsWith('application/grpc')) return refuse(stream);
    const m = this.opts.methods.get(path);
    if (m === undefined) return trailersOnly(stream, this.unknown(path));
    const enc = headers['grpc-encoding'];
    if (enc !== undefined && enc !== 'identity') {
      return trailersOnly(stream, { code: 12, details: `grpc: Decompressor is not installed for grpc-encoding "${String(enc)}"` });
    }
    const timeoutMs = parseTimeoutMs(headers['grpc-timeout']);
    if (timeoutMs === null) return refuse(stream);
    const call = new H2Call(stream, headers, path, timeoutMs === undefined ? Infinity : Date.now() + timeoutMs, (stream.session as TrackedSession | undefined)?.[ACTIVITY]);
    if (m.kind === 'unary' || m.kind === 'server_stream') this.serveSingleRequest(stream, call, m);
    else this.serveRequestStream(stream, call, new MessageReader(this.opts.maxReceiveMessageBytes), m, path);
  }

  /**
   * Unary and server-streaming: the handler runs once the request message is complete. The listeners are shared
   * by every call (state on the call, the call on the stream) and a request that arrives whole in its first DATA
   * chunk (the common case) is handed over without a MessageReader: no allocation per call beyond the call.
   */
  private serveSingleRequest(stream: http2.ServerHttp2Stream, call: H2Call, m: H2Method): void {
    const single = call as SingleRequestCall;
    single[ROUTE] = m;
    single[READER] = null;
    single[STARTED] = false;
    stream.on('data', this.onSingleData);
    stream.once('end', onSingleEnd);
  }

  /** 'data' of a unary / server-streaming call (`this` is the stream). */
  private readonly onSingleData = ((server: H2GrpcServer) =>
    function onSingleData(this: CallStream, chunk: Buffer): void {
      const call = this[CALL_OF_STREAM] as SingleRequestCall | undefined;
      if (call === undefined || call[STARTED]) return;
      let reader = call[READER] ?? null;
      if (reader === null) {
        const max = server.opts.maxReceiveMessageBytes;
        if (chunk.length >= MESSAGE_PREFIX_BYTES && chunk[0] === 0) {
          const len = chunk.readUInt32BE(1);
          // Bytes after the message are further messages, which a unary call ignores (as MessageReader's path does).
          if (len <= max && chunk.length - MESSAGE_PREFIX_BYTES >= len) {
            server.startSingle(call, chunk.subarray(MESSAGE_PREFIX_BYTES, MESSAGE_PREFIX_BYTES + len));
            return;
          }
        }
        reader = call[READER] = new MessageReader(max);
      }
      if (!reader.push(chunk, (msg) => server.startSingle(call, msg)) && !call[STARTED]) call.finish(reader.error!);
    })(this);

  private startSingle(call: SingleRequestCall, msg: Buffer): void {
    if (call[STARTED]) return;
    call[STARTED] = true;
    call.request = msg;
    this.run(call, call[ROUTE]!, call.getPath());
  }

  /** Client- and bidi-streaming: the handler runs at once; messages arrive as 'data', the half-close as 'end'. */
  private serveRequestStream(stream: http2.ServerHttp2Stream, call: H2Call, reader: MessageReader, m: H2Method, path: string): void {
    this.run(call, m, path);
    const onMessage = (msg: Buffer): void => {
      if (!call.cancelled) call.emit('data', msg);
    };
    stream.on('data', (chunk: Buffer) => {
      if (reader.push(chunk, onMessage)) return;
      // Framing error: the status goes out once (finish is idempotent), the handler sees the call cancelled.
      call.finish(reader.error!);
      call.cancel();
    });
    stream.once('end', () => {
      if (call.cancelled) return;
      // Node ends the readable side of a reset stream (or of every stream of a lost connection) too: that is a
      // cancel, not the client's half-close.
      if (stream.aborted || stream.destroyed || (stream.rstCode ?? 0) !== 0) {
        call.cancel();
        return;
      }
      if (reader.partial) {
        call.finish({ code: 2, details: 'unexpected EOF' });
        call.cancel();
        return;
      }
      call.emit('end');
    });
  }

  private run(call: H2Call, m: H2Method, path: string): void {
    try {
      if (m.kind === 'unary' || m.kind === 'client_stream') m.handler(call, (err, value) => call.reply(err, value));
      else m.handler(call, replyNotUsed);
    } catch (err) {
      this.opts.onHandlerError?.(err, path);
      call.finish({ code: 2, details: err instanceof Error ? err.message : String(err) });
    }
  }

  /** grpc-go's status for a path no service serves. */
  private unknown(path: string): CallStatus {
    const slash = path.lastIndexOf('/');
    // grpc-go answers a path without a method with ResourceExhausted.
    if (!path.startsWith('/') || slash <= 0) return { code: 8, details: `malformed method name: "${path}"` };
    const service = path.slice(1, slash);
    const method = path.slice(slash + 1);
    if (this.services.has(service)) return { code: 12, details: `unknown method ${method} for service ${service}` };
    return { code: 12, details: `unknown service ${service}` };
  }
}

const replyNotUsed: Reply = () => {};

// Server bookkeeping of a unary / server-streaming call, kept on the call.
const ROUTE = Symbol('h2grpc.route');
const READER = Symbol('h2grpc.reader');
const STARTED = Symbol('h2grpc.started');
type SingleRequestCall = H2Call & { [ROUTE]?: H2Method; [READER]?: MessageReader | null; [STARTED]?: boolean };

/** 'end' of a unary / server-streaming call (`this` is the stream): the client half-closed without a whole message. */
function onSingleEnd(this: CallStream): void {
  const call = this[CALL_OF_STREAM] as SingleRequestCall | undefined;
  if (call === undefined || call[STARTED]) return;
  const reader = call[READER] ?? null;
  if (reader === null) call.finish({ code: 2, details: 'EOF' });
  else if (reader.error === null) call.finish({ code: 2, details: reader.partial ? 'unexpected EOF' : 'EOF' });
}

/** A status before any message: one HEADERS frame carrying the trailers, ending the stream. */
function trailersOnly(stream: http2.ServerHttp2Stream, st: CallStatus): void {
  new H2Call(stream, {}, '', Infinity).finish(st);
}

/**
 * A request that is not gRPC (method other than POST, another content-type, a malformed grpc-timeout): reset with
 * PROTOCOL_ERROR, as grpc-go's transport does.
 */
function refuse(stream: http2.ServerHttp2Stream): void {
  stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
}

/**
 * Node's HTTP/2 wraps an injected Duplex (the client listener's TLS connections) in a socket whose address is
 * unknown; the listener copied the client's address onto the Duplex, which becomes the wrapper's peer name so that
 * calls report `address:port` as their peer (the key of client certificate CNs, src/api/client-certs.ts).
 */
function exposePeer(s: http2.ServerHttp2Session): void {
  const sock = s.socket as unknown as { remoteAddress?: string; stream?: { remoteAddress?: string; remotePort?: number; remoteFamily?: string }; _peername?: object };
  const inner = sock.stream;
  if (sock.remoteAddress === undefined && inner?.remoteAddress !== undefined) {
    sock._peername = { address: inner.remoteAddress, port: inner.remotePort, family: inner.remoteFamily };
  }
}

/**
 * Octets the server writes between two PINGs without having sent headers or data: the first PING's ACK (9-octet
 * frame header + 8-octet payload) plus room for a SETTINGS ACK and a few WINDOW_UPDATEs.
 */
export const PING_CONTROL_SLACK_OCTETS = 17 + 64;

/** Octets written to the session's socket so far (libuv's count; undefined when the transport does not say). */
function socketBytesWritten(s: http2.ServerHttp2Session): number | undefined {
  const handle = (s.socket as unknown as { _handle?: { bytesWritten?: unknown } } | undefined)?._handle;
  const n = handle?.bytesWritten;
  return typeof n === 'number' ? n : undefined;
}

/** grpc-go's keepalive enforcement for one PING received from the client (see H2GrpcServerOptions.keepaliveMinTimeMs). */
function enforcePingPolicy(s: http2.ServerHttp2Session, a: ConnectionActivity, minTimeMs: number): void {
  const now = Date.now();
  const least = a.active === 0 ? IDLE_MIN_PING_INTERVAL_MS : minTimeMs;
  // grpc-go forgives a PING that follows headers or data its writer sent. Calls reset the strikes when a handler
  // writes, but a message queued behind flow control leaves later, frame by frame, and grpc-go clients send a BDP
  // PING per DATA frame they receive: what left the socket since the last PING is what counts.
  const written = socketBytesWritten(s);
  const sentSince = written !== undefined && a.lastPingAtMs !== 0 && written - a.bytesAtLastPingOctets > PING_CONTROL_SLACK_OCTETS;
  if (written !== undefined) a.bytesAtLastPingOctets = written;
  if (sentSince) a.strikes = 0;
  else if (a.lastPingAtMs !== 0 && now - a.lastPingAtMs < least) a.strikes++;
  a.lastPingAtMs = now;
  if (a.strikes > MAX_PING_STRIKES && !s.closed && !s.destroyed) {
    s.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, 0, Buffer.from('too_many_pings'));
    // After the GOAWAY is flushed; the connection's calls are cancelled (grpc-go closes the connection too).
    setTimeout(() => s.destroy(), 10).unref();
  }
}

/** One keepalive PING; the session is destroyed when it fails or its ACK is later than `timeoutMs`. */
function keepalivePing(s: http2.ServerHttp2Session, timeoutMs: number): void {
  if (s.closed || s.destroyed) return;
  const timer = setTimeout(() => s.destroy(), timeoutMs);
  timer.unref();
  try {
    s.ping((err) => {
      clearTimeout(timer);
      if (err) s.destroy();
    });
  } catch {
    clearTimeout(timer);
    s.destroy();
  }
}
