/**
 * The HTTP side of the client port, on uWebSockets.js in the main thread's event loop:
 * `/metrics` (Prometheus text), `/health` (etcd 3.4 JSON), `/livez` and `/readyz` (etcd 3.5 style), `/version`.
 *
 * Wire behaviour mirrors etcd 3.4.23 (checked against Debian's etcd binary):
 *  - `/health`: 200 `{"health":"true"}`; unhealthy → 503 `{"health":"false","reason":"..."}` + "\n"
 *    (Go's http.Error), both `text/plain; charset=utf-8` as etcd sends them (Go content sniffing). The `reason`
 *    field is etcd 3.5's; 3.4 omits it. Non-GET → 405 "Method Not Allowed" with `Allow: GET`.
 *    Each check bumps `etcd_server_health_success` / `etcd_server_health_failures` when they are on the registry.
 *  - `/version`: `{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}`, `application/json`, GET only.
 *  - `/metrics`: the registry's exposition text with `registry.contentType`, any method (as promhttp).
 *  - `/livez`, `/readyz`: 200 `ok` (text/plain); `/readyz` answers 503 with the health reason when unhealthy.
 *  - anything else: 404 "404 page not found\n" (Go's NotFound).
 * Every answer carries etcd's permissive CORS headers. etcd: etcdserver/api/etcdhttp (base.go, metrics.go).
 */
import * as uWS from 'uWebSockets.js';
import type { Registry } from 'prom-client';
import type { HttpUpstream } from '../http-upstream';

/** What the health callback reports; `reason` is shown only when unhealthy (e.g. "RAFT NO LEADER"). */
export interface HealthStatus {
  health: boolean;
  reason: string;
}

/** Options of {@link startHttpServer}. */
export interface HttpServerOptions {
  /** Client URLs to listen on, `http://host:port` (port 0 = any free port; `localhost` binds 127.0.0.1). */
  urls: string[];
  /** Extra listeners for --listen-metrics-urls: an app of their own serving only the metrics and health paths. */
  metricsUrls?: string[];
  /** Serve only /metrics, /health, /livez, /readyz without CORS headers, everything else 404 (etcd's metrics listeners). */
  metricsOnly?: boolean;
  /** The prom-client registry rendered at /metrics. */
  registry: Registry;
  /** Health check; may be async (etcd's does a read through Raft with a 1 s timeout). A throw counts as unhealthy. */
  health: () => HealthStatus | Promise<HealthStatus>;
  /** Versions reported by /version. */
  version: { etcdserver: string; etcdcluster: string };
  /** Further APIs served on the same app under their own path prefixes (the v3 JSON gateway, the v2 keys API). */
  mounts?: HttpMount[];
  /**
   * Also listen on this Unix socket: the member's private upstream behind the client port (src/api/http-upstream.ts).
   * Where uWS cannot (its pure-JS fallback build), a 127.0.0.1 port is bound instead; {@link HttpServerHandle.upstream}
   * says which.
   */
  privateSocketPath?: string;
  /**
   * Set on the app serving TLS clients whose verified certificate has a CN, with --client-cert-auth: while it
   * answers true (auth is enabled), JSON gateway requests are refused as etcd 3.4's access controller does, since
   * the gateway cannot carry the certificate's identity (etcd: embed/serve.go, 400 before any CORS header).
   */
  refuseGatewayForCn?: () => boolean;
}

/** etcd 3.4's answer to a gateway request from a client certificate with a CN while auth is enabled. */
export const GATEWAY_CN_REFUSED = 'CommonName of client sending a request against gateway will be ignored and not used as expected';

/**
 * An API served under path prefixes (e.g. `/v3/`, `/v3beta/`): every request whose path starts with one of them
 * goes to `handle`, called synchronously from uWS's handler (so it may read `req` and attach onData/onAborted).
 * The mount writes every answer itself, CORS headers included ({@link CORS_HEADERS}).
 */
export interface HttpMount {
  prefixes: readonly string[];
  /** `method` is upper case; `path` has no query string. */
  handle(res: uWS.HttpResponse, req: uWS.HttpRequest, method: string, path: string): void;
}

/** A running server. */
export interface HttpServerHandle {
  /** Stop listening on every port (idle keep-alive connections are closed by uWS' idle timeout). */
  close(): void;
  /** Bound ports of `urls`, in the same order (the real port when 0 was asked). */
  ports: number[];
  /** The app's request handler (for serving connections accepted elsewhere, src/api/http/node-http1.ts). */
  handler: (res: uWS.HttpResponse, req: uWS.HttpRequest) => void;
  /** Bound ports of `metricsUrls`, in the same order. */
  metricsPorts: number[];
  /** The request handler of --listen-metrics-urls listeners (metricsOnly), for connections accepted elsewhere. */
  metricsHandler: (res: uWS.HttpResponse, req: uWS.HttpRequest) => void;
  /** Where the private listener asked by `privateSocketPath` is (undefined when none was asked). */
  upstream?: HttpUpstream;
}

/** etcd's permissive CORS headers, sent on every HTTP answer of the client port. */
export const CORS_HEADERS: ReadonlyArray<readonly [string, string]> = [
  ['Access-Control-Allow-Headers', 'accept, content-type, authorization'],
  ['Access-Control-Allow-Methods', 'POST, GET, OPTIONS, PUT, DELETE'],
  ['Access-Control-Allow-Origin', '*'],
];
const TEXT = 'text/plain; charset=utf-8';

interface Reply {
  status: string;
  headers: Array<readonly [string, string]>;
  body: string;
}

function reply(status: string, contentType: string, body: string, extra: Array<readonly [string, string]> = []): Reply {
  return { status, headers: [['Content-Type', contentType], ...extra], body };
}

/** Go's http.Error: text/plain, nosniff, body + "\n". */
function goError(status: string, body: string, extra: Array<readonly [string, string]> = []): Reply {
  return reply(status, TEXT, body + '\n', [['X-Content-Type-Options', 'nosniff'], ...extra]);
}

const NOT_FOUND = (): Reply => goError('404 Not Found', '404 page not found');
const METHOD_NOT_ALLOWED = (): Reply => goError('405 Method Not Allowed', 'Method Not Allowed', [['Allow', 'GET']]);

/**
 * Split `http://host:port` into what uWS.listen wants. Throws Error for non-http schemes or a missing port.
 * IPv6 literals lose their brackets; `localhost` becomes 127.0.0.1 (Go's listener binds IPv4 for it too).
 */
export function listenAddress(url: string): { host: string; port: number } {
  const m = /^http:\/\/(\[[^\]]*\]|[^:/]*):([0-9]+)\/?$/.exec(url.trim());
  if (!m) throw new Error(`unsupported listen URL ${url} (only http://host:port is served by the HTTP server)`);
  const host = m[1].startsWith('[') ? m[1].slice(1, -1) : m[1] === 'localhost' ? '127.0.0.1' : m[1];
  return { host, port: Number(m[2]) };
}

/** Run the health callback, turning throws/rejections into an unhealthy status, and count the outcome. */
async function checkHealth(opts: HttpServerOptions): Promise<HealthStatus> {
  let h: HealthStatus;
  try {
    h = await opts.health();
  } catch (e) {
    h = { health: false, reason: `health check failed: ${(e as Error).message}` };
  }
  const counter = opts.registry.getSingleMetric(h.health ? 'etcd_server_health_success' : 'etcd_server_health_failures');
  if (counter && 'inc' in counter && typeof counter.inc === 'function') (counter as { inc(): void }).inc();
  return h;
}

/**
 * Paths of the --listen-metrics-urls listeners: etcd 3.4's /metrics and /health, plus the etcd 3.5-style /livez and
 * /readyz the Kubernetes manifests probe there (deploy/kubernetes). The gateway, v2 and /version are not served.
 */
const METRICS_LISTENER_PATHS = new Set(['/metrics', '/health', '/livez', '/readyz']);

/** Route one request to a reply, synchronously when possible. `method` is upper case, `path` has no query. */
function route(opts: HttpServerOptions, method: string, path: string): Reply | Promise<Reply> {
  if (opts.metricsOnly === true && !METRICS_LISTENER_PATHS.has(path)) return NOT_FOUND();
  switch (path) {
    case '/metrics':
      return opts.registry.metrics().then((text) => reply('200 OK', opts.registry.contentType, text));
    case '/health':
      if (method !== 'GET') return METHOD_NOT_ALLOWED();
      return checkHealth(opts).then((h) =>
        h.health
          ? reply('200 OK', TEXT, JSON.stringify({ health: 'true' }))
          : goError('503 Service Unavailable', JSON.stringify({ health: 'false', reason: h.reason })),
      );
    case '/livez':
      if (method !== 'GET') return METHOD_NOT_ALLOWED();
      return reply('200 OK', TEXT, 'ok');
    case '/readyz':
      if (method !== 'GET') return METHOD_NOT_ALLOWED();
      return checkHealth(opts).then((h) =>
        h.health ? reply('200 OK', TEXT, 'ok') : goError('503 Service Unavailable', `not ready: ${h.reason}`),
      );
    case '/version':
      if (method !== 'GET') return METHOD_NOT_ALLOWED();
      return reply('200 OK', 'application/json', JSON.stringify({ etcdserver: opts.version.etcdserver, etcdcluster: opts.version.etcdcluster }));
    default:
      return NOT_FOUND();
  }
}

/**
 * Write a complete reply, with etcd's CORS headers unless `cors` is false (etcd wraps only the client URLs' handler
 * in them, not the metrics listener's). Must run inside a cork when called after the handler returned.
 */
function send(res: uWS.HttpResponse, r: Reply, cors: boolean): void {
  res.writeStatus(r.status);
  if (cors) for (const [k, v] of CORS_HEADERS) res.writeHeader(k, v);
  for (const [k, v] of r.headers) res.writeHeader(k, v);
  res.end(r.body);
}

/** Build the uWS app with all routes; exported for callers that want to add routes before listening. */
export function createHttpApp(opts: HttpServerOptions): uWS.TemplatedApp {
  return uWS.App().any('/*', createHttpHandler(opts));
}

/**
 * The request handler of the HTTP side (mounts first, then /metrics, /health...): the uWS app's, and the one the
 * client port's in-process HTTP/1 server calls (src/api/http/node-http1.ts).
 */
export function createHttpHandler(opts: HttpServerOptions): (res: uWS.HttpResponse, req: uWS.HttpRequest) => void {
  const mounts = opts.metricsOnly === true ? [] : (opts.mounts ?? []);
  const cors = opts.metricsOnly !== true;
  return (res, req) => {
    // req is only valid during this call: read everything now.
    const method = req.getMethod().toUpperCase();
    const path = req.getUrl();
    if (opts.refuseGatewayForCn !== undefined && (path.startsWith('/v3/') || path.startsWith('/v3beta/')) && opts.refuseGatewayForCn()) {
      res.writeStatus('400 Bad Request');
      res.writeHeader('Content-Type', TEXT);
      res.writeHeader('X-Content-Type-Options', 'nosniff');
      res.end(`${GATEWAY_CN_REFUSED}\n`);
      return;
    }
    for (const m of mounts) {
      for (const prefix of m.prefixes) {
        if (path.startsWith(prefix)) return m.handle(res, req, method, path);
      }
    }
    let r: Reply | Promise<Reply>;
    try {
      r = route(opts, method, path);
    } catch (e) {
      r = goError('500 Internal Server Error', (e as Error).message);
    }
    if (!(r instanceof Promise)) {
      send(res, r, cors);
      return;
    }
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    r.catch((e: unknown) => goError('500 Internal Server Error', e instanceof Error ? e.message : String(e))).then((done) => {
      if (!aborted) res.cork(() => send(res, done, cors));
    });
  };
}

/** Listen the app on one address; resolves with the listen socket and bound port. */
function listenOn(app: uWS.TemplatedApp, url: string): Promise<{ socket: uWS.us_listen_socket; port: number }> {
  const { host, port } = listenAddress(url);
  return new Promise((resolve, reject) => {
    app.listen(host, port, (socket) => {
      if (socket === false) reject(new Error(`listen tcp ${host}:${port}: bind: address already in use or not available`));
      else resolve({ socket, port: uWS.us_socket_local_port(socket as unknown as uWS.us_socket) });
    });
  });
}

/**
 * Listens the app on a Unix socket; undefined when this uWS build cannot (its fallback throws "Not implemented"),
 * rejects when the path cannot be bound.
 */
function listenUnix(app: uWS.TemplatedApp, socketPath: string): Promise<uWS.us_listen_socket | undefined> {
  return new Promise((resolve, reject) => {
    try {
      app.listen_unix((socket) => {
        if ((socket as unknown) === false) reject(new Error(`listen unix ${socketPath}: bind failed`));
        else resolve(socket);
      }, socketPath);
    } catch {
      resolve(undefined);
    }
  });
}

/**
 * Start the HTTP endpoints on every URL of `opts.urls` and `opts.metricsUrls` (one uWS app, one event loop:
 * the caller's main thread). Resolves once all listeners are bound; rejects (after closing the ones that did
 * bind) if any URL is unsupported or cannot be bound.
 */
export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServerHandle> {
  const handler = createHttpHandler(opts);
  const app = uWS.App().any('/*', handler);
  const metricsHandler = createHttpHandler({ ...opts, mounts: [], refuseGatewayForCn: undefined, metricsOnly: true });
  const metricsApp = (opts.metricsUrls ?? []).length > 0 ? uWS.App().any('/*', metricsHandler) : app;
  const sockets: uWS.us_listen_socket[] = [];
  const close = (): void => {
    for (const s of sockets.splice(0)) uWS.us_listen_socket_close(s);
  };
  try {
    const ports: number[] = [];
    const metricsPorts: number[] = [];
    for (const [list, into, on] of [[opts.urls, ports, app], [opts.metricsUrls ?? [], metricsPorts, metricsApp]] as const) {
      for (const url of list) {
        const l = await listenOn(on, url);
        sockets.push(l.socket);
        into.push(l.port);
      }
    }
    let upstream: HttpUpstream | undefined;
    if (opts.privateSocketPath !== undefined) {
      const socket = await listenUnix(app, opts.privateSocketPath);
      if (socket !== undefined) {
        sockets.push(socket);
        upstream = { socketPath: opts.privateSocketPath };
      } else {
        const l = await listenOn(app, 'http://127.0.0.1:0');
        sockets.push(l.socket);
        upstream = { port: l.port };
      }
    }
    return { close, ports, metricsPorts, upstream, handler, metricsHandler };
  } catch (e) {
    close();
    throw e;
  }
}
