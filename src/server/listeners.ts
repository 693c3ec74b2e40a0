/**
 * Opens a member's network listeners (etcd: embed.StartEtcd serving clients, peers and metrics):
 *  - each --listen-client-urls address serves gRPC and HTTP/1 on one port (src/api/client-listener.ts);
 *  - HTTP/1 on the client URLs is answered in process by the uWebSockets.js app's handler over Node's parser
 *    (src/api/http/node-http1.ts; ETCETERA_CLIENT_HTTP=uws pipes it to the app instead). The app itself listens on a
 *    private Unix socket (in a fresh 0700 temp dir: no other local user can reach the HTTP APIs around TLS and
 *    --client-cert-auth; src/api/http-upstream.ts; those left by crashed members removed, src/server/private-socket-dir.ts) for HTTP/2 and CN-certificate clients;
 *  - each --listen-metrics-urls address serves only /metrics and /health (as etcd; and /livez, /readyz) over HTTP/1 in process, an
 *    https:// one terminating TLS with the client certificate (as etcd); HTTP/2 there is piped to the app.
 *    With ETCETERA_CLIENT_HTTP=uws the http:// ones are a uWS app of their own.
 * https:// client URLs serve TLS with `clientTls`; http:// ones stay plaintext, with an app of their own when their
 * mounts differ (`plainHttpMounts`).
 */
import * as fs from 'node:fs';
import type * as net from 'node:net';
import type { Duplex } from 'node:stream';
import * as os from 'node:os';
import * as path from 'node:path';
import type { GrpcServerParts } from '../api/grpc/server';
import { startHttpServer, type HttpMount, type HttpServerHandle } from '../api/http/server';
import { listenClientUrl, hostPortOf, type ClientTls } from '../api/client-listener';
import { exposeInjectedPeers } from '../api/client-certs';
import { startHttp2Bridge, startHttp2HandlerServer } from '../api/h2-http-bridge';
import { startHttp1Server } from '../api/http/node-http1';
import type { HttpUpstream } from '../api/http-upstream';
import { registry } from '../metrics/registry';
import type { Logger } from '../log';
import { CN_HTTP_SOCKET_NAME, HTTP_SOCKET_NAME, PLAIN_HTTP_SOCKET_NAME, makePrivateSocketDir, removeStalePrivateDirs } from './private-socket-dir';

/** What {@link openListeners} needs. */
export interface ListenerOptions {
  clientUrls: string[];
  metricsUrls: string[];
  /** The gRPC server that HTTP/2 connections are handed to. */
  grpc: Pick<GrpcServerParts, 'inject' | 'stopAccepting' | 'grpcJsServer'>;
  health: () => { health: boolean; reason: string } | Promise<{ health: boolean; reason: string }>;
  version: { etcdserver: string; etcdcluster: string };
  logger: Logger;
  /** HTTP APIs under their own prefixes (v3 JSON gateway, v2), served on the client URLs' HTTP/1 side. */
  httpMounts?: HttpMount[];
  /**
   * The mounts of http:// client URLs when they must differ from `httpMounts` (etcd 3.4's gateway on a plaintext
   * URL dials its member without TLS, so it never carries the member certificate's CN); undefined: the same.
   * They are served by a private app of their own.
   */
  plainHttpMounts?: HttpMount[];
  /** Certificate for https:// client and metrics URLs (required when there is one; see src/server/tls-setup.ts). */
  clientTls?: ClientTls;
  /**
   * With --client-cert-auth: whether auth is enabled now. Clients whose certificate has a CN are then served by a
   * second private app that refuses their JSON gateway requests while it answers true, as etcd 3.4 does.
   */
  authEnabledForCnGuard?: () => boolean;
}

/** Open listeners; `clientPorts` are the bound ports in `clientUrls` order (useful with port 0). */
export interface Listeners {
  clientPorts: number[];
  metricsPorts: number[];
  close(): Promise<void>;
}

/** Opens every listener; rejects (closing what was opened) if any address cannot be bound. */
export async function openListeners(opts: ListenerOptions): Promise<Listeners> {
  const stale = await removeStalePrivateDirs(os.tmpdir(), (dir, e) => opts.logger.warn({ dir, error: e.message }, 'cannot examine or remove a private socket directory'));
  if (stale.length > 0) opts.logger.info({ dirs: stale }, 'removed private socket directories left by members that crashed');
  // mkdtemp creates the directory with mode 0700: only this user may connect to the sockets inside.
  const privateDir = makePrivateSocketDir();
  const removePrivateDir = (): void => fs.rmSync(privateDir, { recursive: true, force: true });
  const appOptions = { urls: [], registry, health: opts.health, version: opts.version, mounts: opts.httpMounts };
  let http: HttpServerHandle;
  let cnHttp: HttpServerHandle | undefined;
  let plainHttp: HttpServerHandle | undefined;
  const needsPlainApp = opts.plainHttpMounts !== undefined && opts.clientUrls.some((u) => !u.startsWith('https:'));
  try {
    http = await startHttpServer({
      ...appOptions,
      // In process (the default), every metrics URL is accepted below; with ETCETERA_CLIENT_HTTP=uws the http://
      // ones are listened on by a uWS app.
      metricsUrls: process.env.ETCETERA_CLIENT_HTTP === 'uws' ? opts.metricsUrls.filter((u) => !u.startsWith('https:')) : [],
      privateSocketPath: path.join(privateDir, HTTP_SOCKET_NAME),
    });
    if (opts.authEnabledForCnGuard !== undefined) {
      cnHttp = await startHttpServer({ ...appOptions, privateSocketPath: path.join(privateDir, CN_HTTP_SOCKET_NAME), refuseGatewayForCn: opts.authEnabledForCnGuard })
        .catch((e: unknown) => { http.close(); throw e; });
    }
    if (needsPlainApp) {
      plainHttp = await startHttpServer({ ...appOptions, mounts: opts.plainHttpMounts, privateSocketPath: path.join(privateDir, PLAIN_HTTP_SOCKET_NAME) })
        .catch((e: unknown) => { http.close(); cnHttp?.close(); throw e; });
    }
  } catch (e) {
    removePrivateDir();
    throw e;
  }
  const httpUpstream = http.upstream!;
  const cnHttpUpstream = cnHttp?.upstream;
  if ('port' in httpUpstream) opts.logger.warn({ port: httpUpstream.port }, 'uWebSockets.js cannot listen on a Unix socket: the HTTP APIs behind the client port are also reachable on this 127.0.0.1 port, without TLS');
  // TLS connections reach the gRPC server as Duplexes: their client address (hence certificate CN) must stay
  // visible. The h2 server does it itself (src/api/h2grpc/server.ts); grpc-js's is patched here.
  const grpcJs = opts.grpc.grpcJsServer;
  if (opts.clientTls !== undefined && grpcJs !== undefined && !exposeInjectedPeers(grpcJs)) {
    opts.logger.warn('cannot see client addresses of TLS gRPC calls: client certificate CNs will not act as auth users');
  }
  const bridge = startHttp2Bridge(httpUpstream);
  const cnBridge = cnHttpUpstream === undefined ? undefined : startHttp2Bridge(cnHttpUpstream);
  const serveHttp2 = (c: Duplex, u: HttpUpstream): void => (u === cnHttpUpstream && cnBridge !== undefined ? cnBridge : bridge).inject(c);
  // HTTP/1 on the client URLs: in process by default; ETCETERA_CLIENT_HTTP=uws pipes it to the uWS app instead.
  const http1 = process.env.ETCETERA_CLIENT_HTTP === 'uws' ? null : startHttp1Server(http.handler);
  const serveHttp1 = http1 === null ? undefined : (s: net.Socket): void => http1.inject(s);
  const plainHttp1 = http1 === null || plainHttp === undefined ? null : startHttp1Server(plainHttp.handler);
  const plain = plainHttp === undefined ? undefined : {
    httpUpstream: plainHttp.upstream!,
    serveHttp1: plainHttp1 === null ? undefined : (s: net.Socket): void => plainHttp1.inject(s),
  };
  const metricsHttp1 = http1 === null ? null : startHttp1Server(http.metricsHandler);
  const serveMetricsHttp1 = metricsHttp1 === null ? undefined : (s: net.Socket): void => metricsHttp1.inject(s);
  const metricsHttp2 = startHttp2HandlerServer(http.metricsHandler);
  const closeHttp = (): void => {
    bridge.close();
    metricsHttp2.close();
    cnBridge?.close();
    http.close();
    cnHttp?.close();
    plainHttp?.close();
    removePrivateDir();
  };
  const servers: net.Server[] = [];
  const clientPorts: number[] = [];
  const metricsPorts: number[] = [];
  const tlsFor = (url: string): ClientTls | undefined => {
    if (!url.startsWith('https:')) return undefined;
    if (opts.clientTls === undefined) throw new Error(`TLS key/cert (--cert-file, --key-file) must be provided for client url ${url} with HTTPS scheme`);
    return opts.clientTls;
  };
  const onTlsError = (err: Error, remote: string): void => opts.logger.warn({ 'remote-addr': remote, error: err.message }, 'rejected connection: TLS handshake error');
  try {
    for (const url of opts.clientUrls) {
      const { host, port } = hostPortOf(url);
      const tls = tlsFor(url);
      const http1Side = tls === undefined && plain !== undefined ? plain : { httpUpstream, serveHttp1 };
      const l = await listenClientUrl({ host, port, ...http1Side, cnHttpUpstream, injectGrpc: (s) => opts.grpc.inject(s), serveHttp2, tls, onTlsError });
      servers.push(l.server);
      clientPorts.push(l.port);
      opts.logger.info({ address: `${host}:${l.port}`, tls: tls !== undefined }, 'serving client traffic (gRPC and HTTP)');
    }
    let plainIdx = 0;
    for (const url of opts.metricsUrls) {
      if (!url.startsWith('https:') && metricsHttp1 === null) {
        metricsPorts.push(http.metricsPorts[plainIdx++] as number);
        continue;
      }
      const { host, port } = hostPortOf(url);
      const tls = tlsFor(url);
      // The metrics listener serves HTTP only (etcd: no gRPC there): prior-knowledge HTTP/2 connections are closed,
      // HTTP/2 negotiated by TLS gets the metrics handler, as HTTP/1 does.
      const l = await listenClientUrl({ host, port, httpUpstream, cnHttpUpstream, serveHttp1: serveMetricsHttp1, injectGrpc: (s) => s.destroy(), serveHttp2: (c) => metricsHttp2.inject(c), tls, onTlsError });
      servers.push(l.server);
      metricsPorts.push(l.port);
      opts.logger.info({ address: `${host}:${l.port}`, tls: tls !== undefined }, 'serving metrics');
    }
  } catch (e) {
    for (const s of servers) s.close();
    http1?.close();
    plainHttp1?.close();
    metricsHttp1?.close();
    closeHttp();
    throw e;
  }
  return {
    clientPorts,
    metricsPorts,
    async close() {
      for (const s of servers) s.close();
      opts.grpc.stopAccepting();
      http1?.close();
      plainHttp1?.close();
      metricsHttp1?.close();
      closeHttp();
    },
  };
}
