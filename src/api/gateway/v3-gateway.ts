/**
 * etcd 3.4's v3 JSON gateway (grpc-gateway on the client port under /v3/ and /v3beta/) on uWebSockets.js, as an
 * {@link HttpMount} of the client port's HTTP app (src/api/http/server.ts). Behaviour checked against etcd 3.4.23:
 *  - routes: src/api/gateway/routes.ts; all POST. Unknown path: 404 `Not Found\n` (text/plain); other methods: 405
 *    `Method Not Allowed\n`; OPTIONS: 200 empty (CORS); an unclean path (`/v3//kv/range`): 301 to the clean one.
 *  - a request body is one JSON value (what follows it is ignored; an empty body is an empty request), read into
 *    the protobuf request by json-codec.ts. Body errors: 400 code 3 with Go's text (go-json.ts).
 *  - answers: 200 `application/json` + `Grpc-Metadata-Content-Type: application/grpc`; errors
 *    `{"error":M,"message":M,"code":C}` with grpc-gateway's HTTP status for the gRPC code ({@link HTTP_STATUS}).
 *  - streams (Watch, LeaseKeepAlive, Observe, Snapshot): chunked, one `{"result":{…}}\n` per message; a stream
 *    error is `{"error":{"grpc_code","http_code","message","http_status"}}`. Bidi streams read request objects
 *    one after another from the body as it arrives: a bad first one is a 500 code 2 answer, a bad later one stops
 *    the reading. The end of the body ends a keep-alive stream; a watch stays open until the client leaves
 *    (etcd's watch server ignores the half-close the gateway sends).
 * Dispatch: KV calls go straight to the KvCore (decoded request in, apply worker's bytes out); every other call
 * goes to the gRPC service's own handler with a {@link GatewayCall} (request encoded from the JSON-built object).
 * Known differences: no `Trailer: Grpc-Trailer-Content-Type` on server errors (uWS sends no trailers); the
 * Authorization header reaches handlers as metadata `authorization`; KV calls are not in grpc_server_* metrics.
 */
import * as grpc from '@grpc/grpc-js';
import type * as uWS from 'uWebSockets.js';
import { EntryKind } from '../../wire/entry';
import { Errors } from '../../errors';
import { CORS_HEADERS, type HttpMount } from '../http/server';
import { GRPC_OVERHEAD_BYTES, type HandlerTable } from '../grpc/server';
import type { KvCore, KvWriteKind } from '../grpc/kv-service';
import { toStatus, unimplemented, type GrpcLogger } from '../grpc/status';
import { withIdentity } from '../grpc/auth-gate';
import type { AuthGateway } from '../grpc/gateway';
import type { RangeRequest } from '../../wire/codec';
import { callLike, GatewayCall, type CallSink, type GatewayCaller } from './call';
import { GoJsonError, goQuote, scanValue } from './go-json';
import { fromJson, toJson, type TypePlan } from './json-codec';
import { buildV3Routes, V3_PREFIXES, type V3Route } from './routes';

/** grpc-gateway v1 HTTPStatusFromCode: gRPC code → HTTP status line. */
export const HTTP_STATUS: readonly string[] = [
  '200 OK', '408 Request Timeout', '500 Internal Server Error', '400 Bad Request', '504 Gateway Timeout',
  '404 Not Found', '409 Conflict', '403 Forbidden', '429 Too Many Requests', '412 Precondition Failed',
  '409 Conflict', '400 Bad Request', '501 Not Implemented', '500 Internal Server Error', '503 Service Unavailable',
  '500 Internal Server Error', '401 Unauthorized',
];

/** Options of {@link createV3Gateway}. */
export interface V3GatewayOptions {
  /** KV below the wire format (createGrpcServer's `kv`). */
  kv: KvCore;
  /** The gRPC handlers by path (createGrpcServer's `handlers`). */
  handlers: HandlerTable;
  /** etcd --max-request-bytes: with gRPC's 512 KiB allowance, the largest request accepted (encoded bytes). */
  maxRequestBytes: number;
  logger?: GrpcLogger;
  /**
   * The member's auth (createGrpcServer's `auth`): KV calls, which skip the gRPC handlers, take their identity
   * from the `Authorization` token through it as gRPC calls do from `token`. Without it they carry none.
   */
  auth?: AuthGateway;
  /**
   * With TLS and --client-cert-auth on the client port: the CN of the member's client-port certificate ('' when it
   * has none), read at each request so a rotated certificate counts. Token-less requests act as it (see callerOf).
   */
  memberCertCommonName?: () => string;
  /**
   * With TLS and verified client certificates on the client port: false while the member's certificate may not
   * authenticate a client (no clientAuth usage). etcd 3.4's gateway presents it to its own port and is refused at
   * the handshake, so every gateway call fails; read at each request so a rotated certificate counts.
   */
  memberCertUsableAsClient?: () => boolean;
  /** Called (at most once per {@link GATEWAY_REFUSAL_LOG_INTERVAL_MS}) when a request met that refusal. */
  onMemberCertRefused?: () => void;
}

/** How often a refused gateway dial is reported while requests keep meeting it (etcd: once per redial, ms). */
export const GATEWAY_REFUSAL_LOG_INTERVAL_MS = 10_000;

/** A sink for unary handlers, whose answer comes back through their callback. */
const NO_SINK: CallSink = { message: () => false, end: () => undefined, error: () => undefined };

const KV_WRITES: Record<string, KvWriteKind> = {
  '/etcdserverpb.KV/Put': EntryKind.Put,
  '/etcdserverpb.KV/DeleteRange': EntryKind.DeleteRange,
  '/etcdserverpb.KV/Txn': EntryKind.Txn,
  '/etcdserverpb.KV/Compact': EntryKind.Compaction,
};
const KV_RANGE = '/etcdserverpb.KV/Range';
/** Streams that end when the request body ends (the rest stay open until the client leaves). */
const ENDS_WITH_BODY = new Set(['/etcdserverpb.Lease/LeaseKeepAlive']);

const TEXT = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json';

interface Status { code: number; details: string }

function statusOf(err: unknown, logger?: GrpcLogger): Status {
  const s = toStatus(err, logger) as { code?: number; details?: string; message?: string };
  return { code: typeof s.code === 'number' ? s.code : 2, details: s.details ?? s.message ?? '' };
}

function httpStatus(code: number): string {
  return HTTP_STATUS[code] ?? '500 Internal Server Error';
}

/** grpc-gateway's error body (unary answers and errors before a stream started). */
export function errorBody(s: Status): string {
  const m = goQuote(s.details);
  return `{"error":${m},"message":${m},"code":${s.code}}`;
}

/** grpc-gateway's error chunk inside a stream. */
function streamErrorChunk(s: Status): string {
  const http = httpStatus(s.code);
  const sp = http.indexOf(' ');
  return `{"error":{"grpc_code":${s.code},"http_code":${http.slice(0, sp)},"message":${goQuote(s.details)},"http_status":${goQuote(http.slice(sp + 1))}}}`;
}

function writeHead(res: uWS.HttpResponse, status: string, contentType: string | null, grpcMeta: boolean): void {
  res.writeStatus(status);
  for (const [k, v] of CORS_HEADERS) res.writeHeader(k, v);
  if (contentType !== null) res.writeHeader('Content-Type', contentType);
  if (contentType === TEXT) res.writeHeader('X-Content-Type-Options', 'nosniff');
  if (grpcMeta) res.writeHeader('Grpc-Metadata-Content-Type', 'application/grpc');
}

/** Go's path.Clean as net/http's ServeMux applies it (trailing slash kept). */
function cleanPath(p: string): string {
  if (!p.includes('//') && !p.includes('/.')) return p;
  const parts: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  let out = '/' + parts.join('/');
  if (p.endsWith('/') && out !== '/') out += '/';
  return out;
}

/** The state of one HTTP request being answered (aborted = the client left; no uWS call may follow). */
class Exchange {
  aborted = false;
  done = false;
  started = false;
  private readonly waiting: Array<(err?: Error | null) => void> = [];
  call: GatewayCall | null = null;

  constructor(readonly res: uWS.HttpResponse, private readonly response: TypePlan) {
    res.onAborted(() => {
      this.aborted = true;
      this.flushWaiting();
      this.call?.cancel();
    });
  }

  /** A complete answer. */
  reply(status: string, contentType: string | null, body: string, grpcMeta: boolean, close = false): void {
    if (this.aborted || this.done) return;
    this.done = true;
    this.res.cork(() => {
      writeHead(this.res, status, contentType, grpcMeta);
      this.res.end(body, close);
    });
  }

  replyError(s: Status): void {
    this.reply(httpStatus(s.code), JSON_TYPE, errorBody(s), false);
  }

  replyMessage(bytes: Uint8Array): void {
    let body: string;
    try {
      body = toJson(this.response, this.response.type.decode(bytes) as unknown as Record<string, unknown>);
    } catch (e) {
      this.replyError({ code: 13, details: `grpc: failed to unmarshal the received message ${(e as Error).message}` });
      return;
    }
    this.reply('200 OK', JSON_TYPE, body, true);
  }

  /** The sink of a streamed call: chunks of `{"result":…}\n`. */
  streamSink(): CallSink {
    return {
      message: (bytes, cb) => {
        if (this.aborted || this.done) {
          cb?.();
          return false;
        }
        let chunk: string;
        try {
          chunk = `{"result":${toJson(this.response, this.response.type.decode(bytes) as unknown as Record<string, unknown>)}}\n`;
        } catch (e) {
          cb?.(e as Error);
          return false;
        }
        let ok = true;
        this.res.cork(() => {
          this.startStream();
          ok = this.res.write(chunk);
        });
        if (ok) cb?.();
        else if (cb) this.waiting.push(cb);
        return ok;
      },
      end: () => {
        if (this.aborted || this.done) return;
        this.done = true;
        this.res.cork(() => {
          this.startStream();
          this.res.end();
        });
        this.flushWaiting();
      },
      error: (st) => {
        if (this.aborted || this.done) return;
        const s = { code: typeof st.code === 'number' ? st.code : 2, details: st.details ?? st.message ?? '' };
        this.done = true;
        this.res.cork(() => {
          if (!this.started) {
            this.started = true;
            writeHead(this.res, httpStatus(s.code), JSON_TYPE, true);
          }
          this.res.end(streamErrorChunk(s));
        });
        this.flushWaiting();
      },
    };
  }

  private startStream(): void {
    if (this.started) return;
    this.started = true;
    writeHead(this.res, '200 OK', JSON_TYPE, true);
    this.res.onWritable(() => {
      this.flushWaiting();
      return true;
    });
  }

  private flushWaiting(): void {
    const w = this.waiting.splice(0);
    for (const cb of w) cb();
  }
}

/**
 * Builds the v3 JSON gateway mount. Request bodies are bounded by {@link bodyLimitBytes} (a larger one is refused
 * with gRPC's ResourceExhausted "received message larger than max", which etcd answers for requests over its
 * gRPC receive limit, and the connection is closed).
 */
export function createV3Gateway(opts: V3GatewayOptions): HttpMount {
  const routes = buildV3Routes();
  const maxMessage = opts.maxRequestBytes + GRPC_OVERHEAD_BYTES;
  const bodyLimit = bodyLimitBytes(opts.maxRequestBytes);
  const { logger } = opts;
  const tooLarge = (n: number): Status => ({ code: 8, details: `grpc: received message larger than max (${n} vs. ${maxMessage})` });

  /**
   * etcd 3.4's gateway calls its member's gRPC port over TLS with the member's client-port certificate, so with
   * --client-cert-auth a request without token acts as that certificate's CN (a user of that name must exist),
   * except when the request has an `Accept` header: grpc-gateway forwards it as metadata `grpcgateway-accept`, on
   * which etcd's AuthInfoFromTLS ignores the CN (no identity: "user name is empty"). Checked against etcd 3.4.23.
   */
  function callerOf(req: uWS.HttpRequest): GatewayCaller {
    const metadata = new grpc.Metadata();
    const auth = req.getHeader('authorization');
    if (auth !== '') metadata.set('authorization', auth);
    const certCommonName = opts.memberCertCommonName !== undefined && req.getHeader('accept') === '' ? opts.memberCertCommonName() : null;
    return { metadata, certCommonName };
  }

  /** Decodes a whole body into the route's request; throws GoJsonError. */
  function decodeBody(route: V3Route, body: Buffer): Record<string, unknown> {
    let value: unknown = null;
    try {
      value = body.length === 0 ? null : JSON.parse(body.toString('utf8'));
    } catch {
      const r = scanValue(body, 0, true);
      if (r.kind === 'error') throw new GoJsonError(r.message);
      if (r.kind === 'incomplete') throw new GoJsonError('unexpected EOF');
      value = r.kind === 'eof' ? null : JSON.parse(body.toString('utf8', r.start, r.end));
    }
    return fromJson(route.request, value);
  }

  function encodeRequest(route: V3Route, msg: Record<string, unknown>): Uint8Array {
    return route.request.type.encode(msg).finish();
  }

  function unary(ex: Exchange, route: V3Route, caller: GatewayCaller, body: Buffer): void {
    let msg: Record<string, unknown>;
    try {
      msg = decodeBody(route, body);
    } catch (e) {
      return ex.replyError(goError(e));
    }
    const answer = (pending: Promise<Uint8Array>): void => {
      pending.then(
        (bytes) => ex.replyMessage(bytes),
        (err: unknown) => ex.replyError(statusOf(err, logger)),
      );
    };
    const failed = (e: unknown): void => ex.replyError(statusOf(e, logger));
    let pending: Promise<Uint8Array>;
    if (route.grpcPath === KV_RANGE) {
      return withIdentity(opts.auth, callLike(caller), failed, (ai) => answer(opts.kv.range(msg as unknown as RangeRequest, ai)));
    } else {
      const raw = encodeRequest(route, msg);
      if (raw.length > maxMessage) return ex.replyError(tooLarge(raw.length));
      const kind = KV_WRITES[route.grpcPath];
      if (kind !== undefined) {
        return withIdentity(opts.auth, callLike(caller), failed, (ai) => answer(opts.kv.write(kind, msg, raw, ai)));
      } else {
        const handler = opts.handlers.get(route.grpcPath) as grpc.handleUnaryCall<Buffer, Uint8Array> | undefined;
        if (handler === undefined) return ex.replyError(statusOf(unimplemented(route.method)));
        pending = new Promise<Uint8Array>((resolve, reject) => {
          const call = new GatewayCall({ ...NO_SINK, error: reject }, caller, raw);
          ex.call = call;
          handler(call as unknown as grpc.ServerUnaryCall<Buffer, Uint8Array>, (err, value) => (err ? reject(err) : resolve(value ?? new Uint8Array(0))));
        });
      }
    }
    answer(pending);
  }

  function serverStream(ex: Exchange, route: V3Route, caller: GatewayCaller, body: Buffer): void {
    let raw: Uint8Array;
    try {
      raw = encodeRequest(route, decodeBody(route, body));
    } catch (e) {
      return ex.replyError(goError(e));
    }
    const handler = opts.handlers.get(route.grpcPath) as ((call: unknown) => void) | undefined;
    if (handler === undefined) return ex.streamSink().error(unimplemented(route.method));
    const call = new GatewayCall(ex.streamSink(), caller, raw);
    ex.call = call;
    handler(call);
  }

  /** A bidi stream: request objects are decoded from the body as they complete. */
  function bidiStream(ex: Exchange, route: V3Route, caller: GatewayCaller): void {
    const handler = opts.handlers.get(route.grpcPath) as ((call: unknown) => void) | undefined;
    const endsWithBody = ENDS_WITH_BODY.has(route.grpcPath);
    let buf: Buffer = Buffer.alloc(0);
    let first = true;
    let reading = true;
    let call: GatewayCall | null = null;
    const startCall = (): GatewayCall | null => {
      if (call !== null) return call;
      if (handler === undefined) {
        ex.streamSink().error(unimplemented(route.method));
        reading = false;
        return null;
      }
      call = new GatewayCall(ex.streamSink(), caller);
      ex.call = call;
      handler(call);
      return call;
    };
    const stopReading = (): void => {
      reading = false;
      buf = Buffer.alloc(0);
      if (endsWithBody && call !== null && !ex.done) call.emit('end');
    };
    ex.res.onData((chunk, isLast) => {
      if (!reading || ex.aborted) return;
      buf = buf.length === 0 ? Buffer.from(chunk.slice(0)) : Buffer.concat([buf, new Uint8Array(chunk)]);
      if (buf.length > bodyLimit) {
        if (first) ex.reply(httpStatus(8), JSON_TYPE, errorBody(tooLarge(buf.length)), false, true);
        else stopReading();
        return;
      }
      let pos = 0;
      for (;;) {
        const r = scanValue(buf, pos, isLast);
        if (r.kind === 'incomplete') break;
        if (r.kind === 'eof') {
          pos = buf.length;
          break;
        }
        let raw: Uint8Array | null = null;
        let failure: Status | null = null;
        if (r.kind === 'error') failure = { code: 2, details: r.message };
        else {
          try {
            raw = encodeRequest(route, fromJson(route.request, JSON.parse(buf.toString('utf8', r.start, r.end))));
          } catch (e) {
            failure = { code: 2, details: goError(e).details };
          }
        }
        if (failure !== null) {
          // grpc-gateway: the first request's error is the answer; a later one only stops the reading.
          if (first) {
            reading = false;
            ex.replyError(failure);
          } else stopReading();
          return;
        }
        first = false;
        const c = startCall();
        if (c === null) return;
        c.emit('data', Buffer.from(raw!));
        pos = (r as { end: number }).end;
        if (ex.done || ex.aborted) return;
      }
      buf = pos >= buf.length ? Buffer.alloc(0) : buf.subarray(pos);
      if (isLast) {
        if (first && startCall() === null) return;
        first = false;
        stopReading();
      }
    });
  }

  function handle(res: uWS.HttpResponse, req: uWS.HttpRequest, method: string, path: string): void {
    const clean = cleanPath(path);
    if (clean !== path) {
      const q = req.getQuery();
      res.cork(() => {
        writeHead(res, '301 Moved Permanently', null, false);
        res.writeHeader('Location', q ? `${clean}?${q}` : clean);
        res.end();
      });
      return;
    }
    const route = routes.get(path);
    if (route === undefined) {
      res.cork(() => {
        writeHead(res, '404 Not Found', TEXT, false);
        res.end('Not Found\n');
      });
      return;
    }
    if (method === 'OPTIONS') {
      res.cork(() => {
        writeHead(res, '200 OK', null, false);
        res.end();
      });
      return;
    }
    if (method !== 'POST') {
      res.cork(() => {
        writeHead(res, '405 Method Not Allowed', TEXT, false);
        res.end('Method Not Allowed\n');
      });
      return;
    }
    const ex = new Exchange(res, route.response);
    if (opts.memberCertUsableAsClient !== undefined && !opts.memberCertUsableAsClient()) return refuseGatewayDial(res, ex, route);
    const caller = callerOf(req);
    if (route.kind === 'bidi_stream') return bidiStream(ex, route, caller);
    const chunks: Buffer[] = [];
    let size = 0;
    res.onData((chunk, isLast) => {
      if (ex.aborted || ex.done) return;
      size += chunk.byteLength;
      if (size > bodyLimit) {
        // Past the limit the rest is read and dropped (answering early would reset a client still sending), then
        // refused with the size estimated as the base64 payload's.
        chunks.length = 0;
        if (isLast) ex.reply(httpStatus(8), JSON_TYPE, errorBody(tooLarge(Math.floor((size * 3) / 4))), false);
        return;
      }
      chunks.push(Buffer.from(chunk.slice(0)));
      if (!isLast) return;
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      try {
        if (route.kind === 'unary') unary(ex, route, caller, body);
        else serverStream(ex, route, caller, body);
      } catch (e) {
        ex.replyError(statusOf(e, logger));
      }
    });
  }

  let refusalLoggedAtMs = -Infinity;
  /**
   * etcd 3.4's answer when its gateway's connection to its member failed the TLS handshake: Unavailable,
   * `connection closed`, before any stream starts (watch included). Unary and server-streaming bodies are read to
   * their end first, so a client still sending is not reset.
   */
  function refuseGatewayDial(res: uWS.HttpResponse, ex: Exchange, route: V3Route): void {
    const now = Date.now();
    if (now - refusalLoggedAtMs >= GATEWAY_REFUSAL_LOG_INTERVAL_MS) {
      refusalLoggedAtMs = now;
      opts.onMemberCertRefused?.();
    }
    const status = { code: Errors.GatewayConnectionClosed.grpcCode, details: Errors.GatewayConnectionClosed.message };
    if (route.kind === 'bidi_stream') {
      res.onData(() => undefined);
      return ex.replyError(status);
    }
    res.onData((_chunk, isLast) => { if (isLast) ex.replyError(status); });
  }

  return { prefixes: V3_PREFIXES, handle };
}

/** A decode failure as the gateway reports it: Go's text, InvalidArgument (etcd's runtime.HTTPError for bodies). */
function goError(e: unknown): Status {
  if (e instanceof GoJsonError) return { code: 3, details: e.message };
  return { code: 3, details: e instanceof Error ? e.message : String(e) };
}

/**
 * Largest request body read (bytes): the gRPC receive limit (--max-request-bytes + 512 KiB) as base64 in JSON,
 * plus 64 KiB of JSON framing. etcd's gateway reads any body; this bound keeps one request from taking memory
 * without limit.
 */
export function bodyLimitBytes(maxRequestBytes: number): number {
  return Math.ceil(((maxRequestBytes + GRPC_OVERHEAD_BYTES) * 4) / 3) + 64 * 1024;
}
