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
