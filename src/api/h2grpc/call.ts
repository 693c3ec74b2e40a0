/**
 * One gRPC call on an HTTP/2 stream, with the surface of grpc-js's server call objects that the service
 * handlers (src/api/grpc/*-service.ts) use, so they run unchanged on this server:
 *  - `request` (unary and server-streaming), `metadata`, `cancelled`, `getDeadline()`, `getPeer()`,
 *    `getAuthContext()`, `getPath()`;
 *  - answers: the unary callback (see {@link H2Call.reply}), `write(bytes, cb?)` → false when the HTTP/2
 *    stream's buffer is over its high-water mark ('drain' follows), `end()`, `emit('error', {code, details})`;
 *  - events: 'data' per request message and 'end' at the client's half-close (client and bidi streams),
 *    'cancelled' when the client resets the stream, the connection goes, or the deadline passes; 'finish'
 *    once the call ended.
 * Status goes out as trailers (`grpc-status`, percent-encoded `grpc-message`), or as a trailers-only response
 * when nothing was sent before it (gRPC over HTTP/2).
 */
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { Metadata } from '@grpc/grpc-js';
import { frameMessage } from './framing';
import { encodeGrpcMessage, isTransportHeader, metadataOf } from './metadata';

/** grpc-go's default and etcd's send limit (math.MaxInt32 octets per message). */
export const MAX_SEND_MESSAGE_BYTES = 0x7fffffff;

/**
 * Per-connection counters the keepalive policy reads (src/api/h2grpc/server.ts): streams open, and PINGs received
 * too early since the server last sent something (grpc-go's "ping strikes", reset whenever headers or data go out);
 * `bytesAtLastPingOctets`: the connection's octets written to its socket when the last PING came in.
 */
export interface ConnectionActivity { active: number; strikes: number; lastPingAtMs: number; bytesAtLastPingOctets: number }

/** A status a call ends with. */
export interface CallStatus { code: number; details: string }

const enum State { Idle, Headers, Ended }

/** Stream errors (e.g. a reset while writing) are reported through 'close'; without a listener they would throw. */
const ignore = (): void => {};

/** What a handler's error may look like (EtcdError, `{code, details}`, a plain Error). */
type StatusSource = { code?: unknown; details?: unknown; message?: unknown } | null | undefined;

/** The status of whatever a handler failed with: numeric `code`, `details` (or `message`), Unknown otherwise. */
export function statusOf(err: StatusSource): CallStatus {
  const code = typeof err?.code === 'number' ? err.code : 2;
  const details = typeof err?.details === 'string' ? err.details : typeof err?.message === 'string' ? err.message : '';
  return { code, details };
}

/**
 * The call state of one HTTP/2 stream. Created by the server (src/api/h2grpc/server.ts) once the request
 * headers passed routing; the server feeds request messages in and dispatches the handler.
 */
export class H2Call extends EventEmitter {
  cancelled = false;
  /** The request message (unary and server-streaming calls), set before the handler runs. */
  request: Buffer = EMPTY;
  private state = State.Idle;
  private md: Metadata | null = null;
  private timer: NodeJS.Timeout | null = null;
  private pending: CallStatus | null = null;
  private drainHooked = false;
  /** The status the stream's trailers carry once it asks for them (see endWithTrailers). */
  private trailerStatus: CallStatus | null = null;

  /**
   * `deadlineAt`: epoch ms or Infinity; at that time the call ends with DeadlineExceeded and is cancelled.
   */
  constructor(
    private readonly stream: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
    private readonly path: string,
    private readonly deadlineAt: number,
    private readonly activity: ConnectionActivity = NO_ACTIVITY,
  ) {
    super();
    activity.active++;
    // The server adds it before routing; a stream from elsewhere gets it here.
    if (stream.listenerCount('error') === 0) stream.on('error', ignore);
    // One listener shared by every call (the call is found on the stream): no closure per call.
    (stream as CallStream)[CALL_OF_STREAM] = this;
    stream.once('close', onStreamClose);
    if (deadlineAt !== Infinity) {
      this.timer = setTimeout(() => this.expire(), Math.max(0, deadlineAt - Date.now()));
    }
    this.on('error', endWithEmittedError);
  }

  /** The call's metadata (request headers without transport ones; `-bin` values decoded), built on first use. */
  get metadata(): Metadata {
    return (this.md ??= metadataOf(this.headers));
  }

  /**
   * One request header as metadata would give it (the first value; undefined when absent or a transport or `-bin`
   * header), without building the whole Metadata (the per-call metrics read `client-api-version` this way).
   */
  headerValue(key: string): string | undefined {
    if (this.md !== null || key.endsWith('-bin') || isTransportHeader(key)) return firstString(this.metadata.get(key)[0]);
    const v = this.headers[key];
    return Array.isArray(v) ? v[0] : v;
  }

  /** The call's deadline (epoch ms), Infinity when the client set none. */
  getDeadline(): number {
    return this.deadlineAt;
  }

  /** "address:port" of the client. */
  getPeer(): string {
    const s = this.stream.session?.socket;
    return s ? `${s.remoteAddress}:${s.remotePort}` : 'unknown';
  }

  /** The TLS peer certificate for identity by CN (etcd AuthInfoFromTLS); empty on plain connections. */
  getAuthContext(): { sslPeerCertificate?: ReturnType<TLSSocket['getPeerCertificate']> } {
    const s = this.stream.session?.socket as Partial<TLSSocket> | undefined;
    if (s === undefined || typeof s.getPeerCertificate !== 'function') return {};
    const cert = s.getPeerCertificate();
    return cert && Object.keys(cert).length > 0 ? { sslPeerCertificate: cert } : {};
  }

  /** The gRPC path, "/etcdserverpb.KV/Range". */
  getPath(): string {
    return this.path;
  }

  /** Sends the response headers now (they otherwise go with the first message or the status). */
  sendMetadata(): void {
    this.sendHeaders();
  }

  /** The unary / client-streaming answer: `err` → its status; otherwise `value` then OK. Later answers are ignored. */
  reply(err: StatusSource, value?: Uint8Array | null): void {
    if (this.state === State.Ended) return;
    if (err) return this.finish(statusOf(err));
    const msg = value ?? EMPTY;
    if (msg.length > MAX_SEND_MESSAGE_BYTES) return this.finish(sendTooLarge(msg.length));
    if (this.stream.destroyed) return this.finish({ code: 1, details: 'stream closed' });
    this.sendHeaders();
    this.state = State.Ended;
    this.clearTimer();
    this.activity.strikes = 0;
    this.endWithTrailers(OK);
    this.stream.end(frameMessage(msg));
  }

  /**
   * Writes one response message; `cb` once the HTTP/2 stream took its bytes. Returns false when the stream's
   * buffer is above its high-water mark (the caller waits for 'drain'). Writes after the end are dropped.
   */
  write(msg: Uint8Array, cbOrEncoding?: unknown, cb?: (err?: Error | null) => void): boolean {
    const done = typeof cbOrEncoding === 'function' ? (cbOrEncoding as (err?: Error | null) => void) : cb;
    if (this.state === State.Ended || this.stream.destroyed) {
      if (done) queueMicrotask(() => done(null));
      return false;
    }
    if (msg.length > MAX_SEND_MESSAGE_BYTES) {
      this.finish(sendTooLarge(msg.length));
      if (done) queueMicrotask(() => done(null));
      return false;
    }
    this.sendHeaders();
    this.activity.strikes = 0;
    const ok = this.stream.write(frameMessage(msg), done);
    if (!ok && !this.drainHooked) {
      this.drainHooked = true;
      this.stream.on('drain', () => this.emit('drain'));
    }
    return ok;
  }

  /**
   * Ends the call with the status a handler emitted as 'error', or OK. 'finish' follows asynchronously, as from
   * grpc-js's Writable, so that every 'error' listener has run first (the metrics wrapper counts the call's code
   * on whichever of the two it sees first).
   */
  end(): void {
    if (this.state === State.Ended) return;
    this.finish(this.pending ?? OK);
    process.nextTick(() => super.emit('finish'));
  }

  /** Ends the call as {@link end} does, with `st` instead of OK (a handler's emitted 'error'). */
  endWith(st: CallStatus): void {
    this.pending = st;
    this.end();
  }

  /** Ends the call with `st` (trailers after the messages, or trailers-only). Idempotent. */
  finish(st: CallStatus): void {
    if (this.state === State.Ended) return;
    const wasIdle = this.state === State.Idle;
    this.state = State.Ended;
    this.clearTimer();
    const s = this.stream;
    if (!s.destroyed && !s.closed) {
      try {
        if (wasIdle) {
          s.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(st.code), 'grpc-message': encodeGrpcMessage(st.details) }, RESPOND_AND_END);
        } else {
          this.endWithTrailers(st);
          s.end();
        }
      } catch {
        // The stream went away meanwhile: nothing to tell the client.
      }
    }
  }

  /** Cancels the call (connection gone, server shutdown): handlers see 'cancelled'; nothing more is sent. */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    if (this.state !== State.Ended) {
      this.state = State.Ended;
      this.clearTimer();
    }
    super.emit('cancelled');
  }

  private sendHeaders(): void {
    if (this.state !== State.Idle) return;
    this.state = State.Headers;
    this.stream.respond(RESPONSE_HEADERS, RESPOND_WITH_TRAILERS);
  }

  /**
   * Arms the stream's 'wantTrailers' (emitted once, after the last DATA frame) to send `st`: one listener shared by
   * every call, the status kept on the call, so no closure and no once-wrapper per call.
   */
  private endWithTrailers(st: CallStatus): void {
    this.trailerStatus = st;
    this.stream.on('wantTrailers', onWantTrailers);
  }

  /** Sends the status armed by endWithTrailers ('wantTrailers' of the call's stream). */
  sendArmedTrailers(): void {
    const st = this.trailerStatus;
    if (st === null) return;
    this.trailerStatus = null;
    this.trailers(st);
  }

  private trailers(st: CallStatus): void {
    try {
      // grpc-go sends grpc-message even when empty.
      this.stream.sendTrailers(st.code === 0 && st.details === '' ? OK_TRAILERS : { 'grpc-status': String(st.code), 'grpc-message': encodeGrpcMessage(st.details) });
    } catch {
      // Reset meanwhile.
    }
  }

  private expire(): void {
    this.timer = null;
    if (this.state === State.Ended) return;
    // What an etcd handler returns when its context's deadline passes.
    this.finish({ code: 4, details: 'context deadline exceeded' });
    this.cancelled = true;
    super.emit('cancelled');
  }

  /** The HTTP/2 stream closed (reset, connection gone, or after the call ended). */
  streamClosed(): void {
    this.activity.active--;
    if (this.state === State.Ended) return;
    this.cancel();
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }
}

const EMPTY = Buffer.alloc(0);

// Header blocks and options shared by every call: Node's respond/sendTrailers copy them before use. No `date`
// header (grpc-go sends none; Node adds one unless told not to).
const RESPONSE_HEADERS = { ':status': 200, 'content-type': 'application/grpc' } as const;
const RESPOND_WITH_TRAILERS = { waitForTrailers: true, sendDate: false } as const;
const RESPOND_AND_END = { endStream: true, sendDate: false } as const;
const OK: CallStatus = { code: 0, details: '' };
// grpc-go sends grpc-message even when empty.
const OK_TRAILERS = { 'grpc-status': '0', 'grpc-message': '' } as const;

/** Where a stream's call is kept for the shared listeners. */
export const CALL_OF_STREAM = Symbol('h2grpc.call');
/** A stream with its call attached. */
export type CallStream = ServerHttp2Stream & { [CALL_OF_STREAM]?: H2Call };

function onWantTrailers(this: CallStream): void {
  this[CALL_OF_STREAM]?.sendArmedTrailers();
}

function onStreamClose(this: CallStream): void {
  this[CALL_OF_STREAM]?.streamClosed();
}

/** grpc-js's server streams end with the status a handler emits as 'error' (one shared listener, `this` = the call). */
function endWithEmittedError(this: H2Call, e: StatusSource): void {
  this.endWith(statusOf(e));
}

function firstString(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
/** For calls not tracked by a keepalive policy. */
const NO_ACTIVITY: ConnectionActivity = { active: 0, strikes: 0, lastPingAtMs: 0, bytesAtLastPingOctets: 0 };

function sendTooLarge(n: number): CallStatus {
  return { code: 8, details: `grpc: trying to send message larger than max (${n} vs. ${MAX_SEND_MESSAGE_BYTES})` };
}
