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
 * body; `onWritable` is called after a write that could not be flushed is drained. Requests Node's parser refuses
 * get Go's raw answers ({@link goAnswerToClientError}). Pipelined requests are handled one at a time, in order, as Go serves them.
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

/**
 * Largest request head (request line and headers, octets) read before answering 431: Go net/http's default
 * MaxHeaderBytes (1 MiB) plus the 4 KiB it allows on top (Node's own default is 16 KiB).
 */
export const HTTP1_MAX_HEADER_BYTES = (1 << 20) + 4096;

/**
 * Go net/http's raw answer to a request it cannot read (`status` with Go's reason and optional `: detail`), written
 * before the connection closes: text/plain, `Connection: close`, the status line repeated as the body.
 */
export function goBadRequestAnswer(status: string, detail?: string): string {
  const text = detail === undefined ? status : `${status}: ${detail}`;
  return `HTTP/1.1 ${text}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n${text}`;
}

/** Go net/http's answer to an HTTP/1.1 request without a Host header, written raw before it closes. */
const GO_MISSING_HOST_ANSWER = goBadRequestAnswer('400 Bad Request', 'missing required Host header');
const GO_BAD_REQUEST_ANSWER = goBadRequestAnswer('400 Bad Request');
const GO_UNSUPPORTED_TE_ANSWER = 'HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nUnsupported transfer encoding';

/** llhttp's error when a header's name is not a token (Node's `reason` of HPE_INVALID_HEADER_TOKEN). */
const INVALID_HEADER_TOKEN_REASONS = new Set(['Invalid header token', 'Invalid header field char']);

/**
 * What Go net/http answers to a request head Node's parser refused (Node's clientError `err`), as measured on
 * etcd 3.4: 431 for an oversized head; 501 for a transfer coding other than chunked; `400 Bad Request: invalid header value` for a control character in a value;
 * `400 Bad Request: invalid header name` for a name with a character outside the token set in a line that has a
 * colon (a line with none is a malformed MIME line: plain 400); plain 400 for the rest. undefined: answer nothing
 * (the client went away, or it stopped mid-head and Node's headers timeout ran out: Go has no such timeout in
 * etcd and would wait, so the connection is closed silently).
 */
export function goAnswerToClientError(err: NodeJS.ErrnoException & { reason?: string; rawPacket?: Buffer }): string | undefined {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return goBadRequestAnswer('431 Request Header Fields Too Large');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'ECONNRESET':
    case 'EPIPE':
      return undefined;
    case 'HPE_INVALID_TRANSFER_ENCODING':
      // A coding other than chunked (Go's 501); TE beside Content-Length is a plain 400.
      return err.reason?.startsWith('Request has invalid') === true ? GO_UNSUPPORTED_TE_ANSWER : GO_BAD_REQUEST_ANSWER;
    case 'HPE_INVALID_HEADER_TOKEN':
      if (err.reason === 'Invalid header value char') return goBadRequestAnswer('400 Bad Request', 'invalid header value');
      if (err.reason !== undefined && INVALID_HEADER_TOKEN_REASONS.has(err.reason) && badHeaderLineHasColon(err.rawPacket)) return goBadRequestAnswer('400 Bad Request', 'invalid header name');
      return GO_BAD_REQUEST_ANSWER;
    default:
      return GO_BAD_REQUEST_ANSWER;
  }
}

/** Characters of an HTTP token (RFC 9110 §5.6.2), which header names are. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Whether the first header line of `raw` whose name is not a token has a colon (Go then names the bad name). */
function badHeaderLineHasColon(raw: Buffer | undefined): boolean {
  if (raw === undefined) return false;
  const lines = raw.toString('latin1').split('\r\n').slice(1);
  for (const line of lines) {
    if (line === '') return false;
    const c = line.indexOf(':');
    if (c < 0) return false;
    if (!TOKEN.test(line.slice(0, c))) return true;
  }
  return false;
}

/**
 * Connection headers as Go's net/http writes them: nothing on a persistent HTTP/1.1 connection (Node would add
 * `Connection: keep-alive` and `Keep-Alive: timeout=…`), `Connection: close` when an HTTP/1.1 client asked to
 * close, `Connection: keep-alive` (no Keep-Alive) for an HTTP/1.0 client asking to keep the connection, nothing
 * for an HTTP/1.0 one that closes or whose answer has no length. A header the handler set itself is kept. Node's removeHeader('Connection')
 * keeps the persistence decision and only drops the header.
 */
function goConnectionHeader(req: http.IncomingMessage, res: http.ServerResponse, hasLength: boolean): void {
  // An HTTP/1.0 answer of unknown length ends with the connection: Go says nothing then.
  if (req.httpVersionMinor === 0 && req.httpVersionMajor === 1 && res.shouldKeepAlive && hasLength) res.setHeader('Connection', 'keep-alive');
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
    let hasLength = false;
    for (const [k, v] of this.headers) {
      list.push(k, v);
      if (k === 'Content-Length') hasLength = true;
    }
    if (!this.closing) goConnectionHeader(this.req, this.res, hasLength);
    this.res.writeHead(this.status, this.statusText, list);
    // Go answers an HTTP/1.0 request with an HTTP/1.0 status line; Node always writes 1.1. The head is kept as a
    // string until the first write, so its protocol can be set here.
    if (this.req.httpVersionMinor === 0) {
      const out = this.res as unknown as { _header: string | null };
      if (out._header?.startsWith('HTTP/1.1 ') === true) out._header = `HTTP/1.0 ${out._header.slice(9)}`;
    }
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

/** Number of Host headers among Node's raw [name, value, …] list. */
function hostCount(raw: string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') n++;
  return n;
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
    if (req.httpVersionMajor !== 1 || hostCount(req.rawHeaders) > 1) {
      // Go reads no HTTP/0.9 request (Node does) and refuses a second Host header.
      conn.end(GO_BAD_REQUEST_ANSWER);
      return;
    }
    if (conn.isPaused() && (waiting.get(conn)?.length ?? 0) < MAX_PIPELINED_REQUESTS) conn.resume();
    handler(new Http1Response(req, res) as unknown as uWS.HttpResponse, new Http1Request(req) as unknown as uWS.HttpRequest);
  };
  const server = http.createServer(
    { requestTimeout: 0, requireHostHeader: false, maxHeaderSize: HTTP1_MAX_HEADER_BYTES, headersTimeout: HTTP1_HEADERS_TIMEOUT_MS, keepAliveTimeout: HTTP1_KEEPALIVE_TIMEOUT_MS, noDelay: true },
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
  server.on('clientError', (err: NodeJS.ErrnoException, sock: Duplex) => {
    const answer = sock.writable ? goAnswerToClientError(err) : undefined;
    if (answer === undefined) sock.destroy();
    else sock.end(answer);
  });
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
