/**
 * The client port's HTTP/1 connections served in process by Node's HTTP/1 parser, handing each request to the same
 * handler the uWebSockets.js app runs ({@link createHttpHandler}) through objects with the part of uWS's
 * HttpResponse / HttpRequest surface the handlers use.
 *
 * Why: the client listener has already accepted the socket to tell gRPC from HTTP (etcd's cmux), and uWS cannot
 * adopt a socket accepted elsewhere, so reaching the uWS app meant piping every connection through a loopback TCP
 * hop: two more socket reads and writes and two JS stream callbacks per request, measured at about as much main
 * thread CPU as the v2 GET handler itself. `ETCETERA_CLIENT_HTTP=uws` keeps that path (the uWS app on its loopback
 * port); the metrics URLs are served by the uWS app directly either way.
 *
 * uWS semantics kept: a response's status and headers go out with its first write or end (so `cork` batches them);
 * `end(body, true)` closes the connection; `onAborted` fires when the client leaves before the answer ended, and
 * nothing is written after it; `onData` gets each body chunk (a copy) and an empty last chunk at the end of the
 * body; `onWritable` is called after a write that could not be flushed is drained. Node answers malformed requests
 * itself (400, connection closed). Pipelined requests are handled one at a time, in order, as Go serves them.
 */
import * as http from 'node:http';
import type { Duplex } from 'node:stream';
import type * as uWS from 'uWebSockets.js';

/** Idle time of a keep-alive connection between requests (uWS's idle timeout), ms. */
export const HTTP1_KEEPALIVE_TIMEOUT_MS = 10_000;
/** Longest wait for a request's headers, ms (Node's default); bodies have no limit (watch and keep-alive streams). */
export const HTTP1_HEADERS_TIMEOUT_MS = 60_000;

/**
 * Requests of one connection parsed ahead of the one being answered (pipelining); at the limit the connection is
 * not read until the queue shrinks.
 */
export const MAX_PIPELINED_REQUESTS = 64;

/**
 * Bytes a Go net/http handler may write before its answer's head is sent: an answer that fits and ends gets a
 * Content-Length, a longer one is sent chunked (Go net/http bufferBeforeChunkingSize). etcd's handlers (v2 keys,
 * the grpc-gateway, /metrics) never set a length themselves, so this is what their clients see.
 */
export const GO_BUFFER_BEFORE_CHUNKING_BYTES = 2048;

type Text = string | ArrayBuffer | Uint8Array;

/** Go net/http's answer to an HTTP/1.1 request without a Host header, written raw before it closes. */
const GO_MISSING_HOST_ANSWER =
  'HTTP/1.1 400 Bad Request: missing required Host header\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request: missing required Host header';

/**
 * Connection headers as Go's net/http writes them: nothing on a persistent HTTP/1.1 connection (Node would add
 * `Connection: keep-alive` and `Keep-Alive: timeout=…`), `Connection: close` when an HTTP/1.1 client asked to
 * close, `Connection: keep-alive` (no Keep-Alive) for an HTTP/1.0 client asking to keep the connection, nothing
 * for an HTTP/1.0 one that closes. A header the handler set itself is kept. Node's removeHeader('Connection')
 * keeps the persistence decision and only drops the header.
 */
function goConnectionHeader(req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.httpVersionMinor === 0 && req.httpVersionMajor === 1 && res.shouldKeepAlive) res.setHeader('Connection', 'keep-alive');
  else if (res.shouldKeepAlive || req.httpVersionMinor === 0) res.removeHeader('Connection');
}

const EMPTY = new ArrayBuffer(0);

function asChunk(t: Text | undefined): string | Uint8Array {
  if (t === undefined) return '';
  return t instanceof ArrayBuffer ? new Uint8Array(t) : t;
}

/** The request surface the handlers read: method, path, query, headers. */
class Http1Request {
  private readonly path: string;
  private readonly query: string;

  constructor(private readonly req: http.IncomingMessage) {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    this.path = q < 0 ? url : url.slice(0, q);
    this.query = q < 0 ? '' : url.slice(q + 1);
  }

  getMethod(): string {
    return (this.req.method ?? 'GET').toLowerCase();
  }

  getUrl(): string {
    return this.path;
  }

  getQuery(): string {
    return this.query;
  }

  getHeader(name: string): string {
    const v = this.req.headers[name];
    return v === undefined ? '' : Array.isArray(v) ? v.join(', ') : v;
  }
}

/** The response surface the handlers write through (uWS HttpResponse semantics over a ServerResponse). */
class Http1Response {
  private ended = false;
  private aborted = false;
  private headSent = false;
  /** end(…, true): the answer carries `Connection: close` and the connection ends after it. */
  private closing = false;
  private status = 200;
  private statusText = 'OK';
  private headers: Array<[string, string]> = [];

  constructor(private readonly req: http.IncomingMessage, private readonly res: http.ServerResponse) {}

  private flushHead(): void {
    if (this.headSent) return;
    this.headSent = true;
    const list: string[] = [];
    for (const [k, v] of this.headers) list.push(k, v);
    if (!this.closing) goConnectionHeader(this.req, this.res);
    this.res.writeHead(this.status, this.statusText, list);
  }

  cork(cb: () => void): this {
    this.res.cork();
    try {
      cb();
    } finally {
      this.res.uncork();
    }
    return this;
  }

  writeStatus(status: string): this {
    const sp = status.indexOf(' ');
    this.status = Number(sp < 0 ? status : status.slice(0, sp));
    this.statusText = sp < 0 ? '' : status.slice(sp + 1);
    return this;
  }

  writeHeader(key: string, value: string): this {
    this.headers.push([key, value]);
    return this;
  }

  write(chunk: Text): boolean {
    if (this.ended || this.aborted) return false;
    this.flushHead();
    return this.res.write(asChunk(chunk));
  }

  end(body?: Text, closeConnection?: boolean): this {
    if (this.ended || this.aborted) return this;
    this.ended = true;
    if (closeConnection === true) {
      this.closing = true;
      this.headers.push(['Connection', 'close']);
    }
    const chunk = asChunk(body);
    // Go's framing: a handler that returns having written at most GO_BUFFER_BEFORE_CHUNKING_BYTES gets a
    // Content-Length (HEAD too, when the handler wrote its body); longer answers go out chunked (Node chunks an
    // HTTP/1.1 answer whose head has no length). Never for the bodiless statuses.
    if (!this.headSent && this.status !== 204 && this.status !== 304) {
      const bytes = Buffer.byteLength(chunk);
      if (bytes <= GO_BUFFER_BEFORE_CHUNKING_BYTES && (this.req.method !== 'HEAD' || bytes > 0)) this.headers.push(['Content-Length', String(bytes)]);
    }
    this.flushHead();
    this.res.end(chunk);
    return this;
  }

  /**
   * Ends an answer to HEAD: the head reports `reportedContentLength` bytes of a body that is not sent (within Go's
   * buffer, as Go reports it), uWS's endWithoutBody.
   */
  endWithoutBody(reportedContentLength?: number, closeConnection?: boolean): this {
    if (this.ended || this.aborted) return this;
    if (!this.headSent && reportedContentLength !== undefined && reportedContentLength > 0 && reportedContentLength <= GO_BUFFER_BEFORE_CHUNKING_BYTES) {
      this.headers.push(['Content-Length', String(reportedContentLength)]);
    }
    return this.end(undefined, closeConnection);
  }

  onAborted(cb: () => void): this {
    this.res.once('close', () => {
      if (this.res.writableFinished) return;
      this.aborted = true;
      cb();
    });
    return this;
  }

  onData(cb: (chunk: ArrayBuffer, isLast: boolean) => void): this {
    this.req.on('data', (b: Buffer) => cb(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer, false));
    this.req.once('end', () => cb(EMPTY, true));
    return this;
  }

  onWritable(cb: (offset: number) => boolean): this {
    this.res.on('drain', () => cb(0));
    return this;
  }
}

/** A running in-process HTTP/1 server: hand it accepted sockets (their unread bytes unshifted). */
export interface Http1Server {
  inject(sock: Duplex): void;
  close(): void;
}

/** Starts serving HTTP/1 connections with `handler` (the uWS app's request handler). */
export function startHttp1Server(handler: (res: uWS.HttpResponse, req: uWS.HttpRequest) => void): Http1Server {
  // Pipelined requests of one connection run one at a time, each after the previous answer ended, as Go's
  // net/http serves a connection (a GET pipelined behind a PUT sees the PUT). Node parses ahead and would start
  // them all at once; MAX_PIPELINED_REQUESTS bounds this queue.
  const waiting = new WeakMap<object, Array<() => void>>();
  const serve = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const conn = req.socket;
    let next = false;
    const done = (): void => {
      if (next) return;
      next = true;
      const q = waiting.get(conn)!;
      const run = q.shift();
      if (run !== undefined) run();
      else waiting.delete(conn);
    };
    // A ServerResponse emits 'close' once finished as well as when its connection is lost.
    res.once('close', done);
    if (conn.destroyed) {
      // The client left while this request waited behind another: nothing to answer (no watcher to leak).
      done();
      return;
    }
    if (req.httpVersionMajor === 1 && req.httpVersionMinor >= 1 && req.headers.host === undefined) {
      // Go refuses an HTTP/1.1 request without Host with its own raw answer and closes (Node's would differ).
      conn.end(GO_MISSING_HOST_ANSWER);
      return;
    }
    if (conn.isPaused() && (waiting.get(conn)?.length ?? 0) < MAX_PIPELINED_REQUESTS) conn.resume();
    handler(new Http1Response(req, res) as unknown as uWS.HttpResponse, new Http1Request(req) as unknown as uWS.HttpRequest);
  };
  const server = http.createServer(
    { requestTimeout: 0, requireHostHeader: false, headersTimeout: HTTP1_HEADERS_TIMEOUT_MS, keepAliveTimeout: HTTP1_KEEPALIVE_TIMEOUT_MS, noDelay: true },
    (req, res) => {
      const q = waiting.get(req.socket);
      if (q === undefined) {
        waiting.set(req.socket, []);
        serve(req, res);
      } else {
        q.push(() => serve(req, res));
        // At the limit, stop reading the connection (TCP pushes back on the client) until answers catch up.
        if (q.length >= MAX_PIPELINED_REQUESTS) req.socket.pause();
      }
    },
  );
  server.timeout = 0;
  return {
    inject(sock: Duplex): void {
      server.emit('connection', sock);
      sock.resume();
    },
    close(): void {
      server.closeAllConnections();
      server.close();
    },
  };
}
