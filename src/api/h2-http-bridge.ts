/**
 * HTTP/2 requests that are not gRPC on a TLS client port (etcd 3.4 serves /health, /metrics, /version and the JSON
 * gateway over HTTP/2 when TLS negotiated `h2`, telling gRPC apart by `content-type: application/grpc`). grpc-js
 * answers anything else with 415, so such connections are served by a Node HTTP/2 server that forwards each
 * stream to the private HTTP/1 app (src/api/http-upstream.ts). A connection is routed by its first request (the listener's
 * sniff): clients use separate connections for gRPC and plain HTTP in practice.
 */
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import type * as uWS from 'uWebSockets.js';
import { upstreamRequestOptions, type HttpUpstream } from './http-upstream';

/** Connection-specific headers HTTP/2 forbids (RFC 9113 §8.2.2), dropped from forwarded answers. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'http2-settings']);

/** Idle time after which a bridged HTTP/2 session is closed (ms), as Node's HTTP/1 server's keep-alive bounds it. */
export const H2_BRIDGE_IDLE_TIMEOUT_MS = 120_000;

/** A started bridge: hand it HTTP/2 connections; close() ends every session. */
export interface Http2Bridge {
  inject(conn: Duplex): void;
  close(): void;
}

/** Forwards one HTTP/2 stream to the private HTTP/1 app; a failed upstream resets the stream. */
function forward(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, upstream: HttpUpstream): void {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (!k.startsWith(':') && v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  out.host = headers[':authority'] ?? '127.0.0.1';
  const req = http.request({ ...upstreamRequestOptions(upstream), method: headers[':method'], path: headers[':path'], headers: out }, (res) => {
    const answer: http2.OutgoingHttpHeaders = { ':status': res.statusCode ?? 502 };
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) answer[k] = v;
    if (stream.destroyed) return res.destroy();
    stream.respond(answer);
    res.pipe(stream);
  });
  req.on('error', () => { if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR); });
  stream.on('error', () => req.destroy());
  stream.pipe(req);
}

/** Starts a bridge to the private HTTP/1 app at `upstream`. */
export function startHttp2Bridge(upstream: HttpUpstream): Http2Bridge {
  const server = http2.createServer();
  server.setTimeout(H2_BRIDGE_IDLE_TIMEOUT_MS);
  server.on('stream', (stream, headers) => forward(stream as http2.ServerHttp2Stream, headers, upstream));
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => { sessions.add(s); s.once('close', () => sessions.delete(s)); });
  return {
    inject(conn: Duplex): void { server.emit('connection', conn); },
    close(): void { for (const s of sessions) s.destroy(); },
  };
}

/** Bytes Go's HTTP/2 server buffers before sending a handler's answer without a content-length (its write buffer). */
const GO_H2_BUFFER_BEFORE_STREAMING_BYTES = 4096;

/**
 * A uWS-style request over an HTTP/2 stream's headers (the surface the handlers of src/api/http/server.ts read).
 */
class H2Request {
  private readonly path: string;
  private readonly query: string;

  constructor(private readonly headers: http2.IncomingHttpHeaders) {
    const url = headers[':path'] ?? '/';
    const q = url.indexOf('?');
    this.path = q < 0 ? url : url.slice(0, q);
    this.query = q < 0 ? '' : url.slice(q + 1);
  }

  getMethod(): string { return (this.headers[':method'] ?? 'GET').toLowerCase(); }
  getUrl(): string { return this.path; }
  getQuery(): string { return this.query; }
  getHeader(name: string): string {
    const v = this.headers[name];
    return v === undefined ? '' : Array.isArray(v) ? v.join(', ') : v;
  }
}

/**
 * A uWS-style response over an HTTP/2 stream: status and headers go out with the first write or the end; a body
 * that ends within Go's buffer gets a content-length (as etcd's answers over HTTP/2 carry one); nothing is written
 * once the stream is gone.
 */
class H2Response {
  private status = 200;
  private readonly headers: http2.OutgoingHttpHeaders = {};
  private responded = false;
  private done = false;

  constructor(private readonly stream: http2.ServerHttp2Stream) {}

  private respond(endStream: boolean): boolean {
    if (this.done || this.stream.destroyed) return false;
    if (!this.responded) {
      this.responded = true;
      this.stream.respond({ ...this.headers, ':status': this.status }, { endStream });
    }
    return true;
  }

  cork(cb: () => void): this { cb(); return this; }

  writeStatus(status: string): this {
    this.status = Number(status.split(' ', 1)[0]);
    return this;
  }

  writeHeader(key: string, value: string): this {
    const k = key.toLowerCase();
    if (HOP_BY_HOP.has(k)) return this;
    const prev = this.headers[k];
    this.headers[k] = prev === undefined ? value : ([] as string[]).concat(prev as string | string[], value);
    return this;
  }

  write(chunk: string | ArrayBuffer | Uint8Array): boolean {
    if (!this.respond(false)) return false;
    return this.stream.write(chunk instanceof ArrayBuffer ? new Uint8Array(chunk) : chunk);
  }

  end(body?: string | ArrayBuffer | Uint8Array): this {
    const chunk = body === undefined ? '' : body instanceof ArrayBuffer ? new Uint8Array(body) : body;
    const bytes = Buffer.byteLength(chunk);
    if (!this.responded && bytes <= GO_H2_BUFFER_BEFORE_STREAMING_BYTES) this.headers['content-length'] = String(bytes);
    if (!this.respond(bytes === 0 && !this.responded)) return this;
    this.done = true;
    if (this.stream.writable) this.stream.end(bytes === 0 ? undefined : chunk);
    return this;
  }

  endWithoutBody(): this { return this.end(); }

  onAborted(cb: () => void): this {
    this.stream.once('close', () => {
      if (this.done) return;
      this.done = true;
      cb();
    });
    return this;
  }

  onData(cb: (chunk: ArrayBuffer, isLast: boolean) => void): this {
    this.stream.on('data', (b: Buffer) => cb(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer, false));
    this.stream.once('end', () => cb(new ArrayBuffer(0), true));
    return this;
  }

  onWritable(cb: (offset: number) => boolean): this {
    this.stream.on('drain', () => cb(0));
    return this;
  }
}

/**
 * Serves HTTP/2 connections in process with a uWS-style request handler (the --listen-metrics-urls handler of
 * src/api/http/server.ts, which answers /metrics, /health, /livez, /readyz and 404 to the rest, as etcd 3.4's
 * metrics listener does over h2): no hop to the private app, whose client-port routes must not be reached there.
 */
export function startHttp2HandlerServer(handler: (res: uWS.HttpResponse, req: uWS.HttpRequest) => void): Http2Bridge {
  const server = http2.createServer();
  server.setTimeout(H2_BRIDGE_IDLE_TIMEOUT_MS);
  server.on('stream', (stream, headers) => {
    stream.on('error', () => stream.destroy());
    handler(new H2Response(stream as http2.ServerHttp2Stream) as unknown as uWS.HttpResponse, new H2Request(headers) as unknown as uWS.HttpRequest);
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => { sessions.add(s); s.once('close', () => sessions.delete(s)); });
  return {
    inject(conn: Duplex): void { server.emit('connection', conn); },
    close(): void { for (const s of sessions) s.destroy(); },
  };
}
