/**
 * The client-facing gRPC server with etcd 3.4's transport limits (etcd v3rpc: grpc.go Server;
 * embed: etcd.go keepalive options, config.go defaults), on one of two transports chosen by
 * {@link grpcTransportOf} (env ETCETERA_GRPC_SERVER): `h2`, our server on node:http2 (src/api/h2grpc), or
 * `grpc-js`. Both run the same instrumented handlers with the same limits:
 *  - max receive message = --max-request-bytes + 512 KiB of gRPC overhead; max send = 2^31-1;
 *  - max concurrent streams per connection 2^32-1 (etcd's --max-concurrent-streams default);
 *  - server→client keepalive ping every 2 h, 20 s timeout (etcd --grpc-keepalive-interval/-timeout defaults);
 *  - channelz off (it costs per-call bookkeeping).
 * Serves KV, Maintenance and Cluster; further services (Watch, Lease, …) can be passed in `extraServices`.
 */
import * as grpc from '@grpc/grpc-js';
import type { Duplex } from 'node:stream';
import { H2GrpcServer, type H2Method } from '../h2grpc/server';
import { metrics as defaultSinks } from '../../metrics/registry';
import { createClusterHandlers } from './cluster-service';
import type { AuthGateway, KvGateway, MaintenanceGateway } from './gateway';
import { createAuthHandlers } from './auth-service';
import { guardAdmin } from './auth-gate';
import { createKvCore, createKvHandlers, type KvCore } from './kv-service';
import { createMaintenanceHandlers } from './maintenance-service';
import { GrpcServerMetrics, instrumentStream, instrumentUnary, type GrpcCounterSinks } from './metrics';
import { AuthService, ClusterService, KvService, MaintenanceService } from './services';
import type { GrpcLogger } from './status';

/** etcd v3rpc grpc.go grpcOverheadBytes: allowance on top of --max-request-bytes for the gRPC receive limit. */
export const GRPC_OVERHEAD_BYTES = 512 * 1024;
/** etcd embed config.go DefaultGRPCKeepAliveInterval (2 h), in ms. */
export const DEFAULT_KEEPALIVE_INTERVAL_MS = 2 * 60 * 60 * 1000;
/** etcd embed config.go DefaultGRPCKeepAliveTimeout (20 s), in ms. */
export const DEFAULT_KEEPALIVE_TIMEOUT_MS = 20 * 1000;
/** etcd embed config.go DefaultGRPCKeepAliveMinTime (5 s), in ms. */
export const DEFAULT_KEEPALIVE_MIN_TIME_MS = 5 * 1000;

/** One extra service to serve (definition from services.ts + handlers keyed by proto method name). */
export interface ExtraService {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

/** Options of {@link startGrpcServer}. */
export interface GrpcServerOptions {
  /** Client URLs to listen on, `http://host:port` (port 0 = any free port; IPv6 as `http://[::1]:port`). */
  urls: string[];
  gateway: KvGateway;
  maintenance: MaintenanceGateway;
  /** etcd --max-request-bytes (bytes). */
  maxRequestBytes: number;
  /** etcd --max-txn-ops. */
  maxTxnOps: number;
  logger?: GrpcLogger;
  /** Prometheus counters to feed; default: the process registry's (src/metrics/registry.ts `metrics`). */
  metrics?: GrpcCounterSinks;
  /** etcd --grpc-keepalive-interval / --grpc-keepalive-timeout in ms (defaults 2 h / 20 s; 0 disables pings). */
  keepaliveIntervalMs?: number;
  keepaliveTimeoutMs?: number;
  /** etcd --grpc-keepalive-min-time in ms (default 5 s): least interval between a client's PINGs (h2 transport only). */
  keepaliveMinTimeMs?: number;
  /** etcd --max-concurrent-streams (default 2^32-1). */
  maxConcurrentStreams?: number;
  /** Additional services (e.g. Watch, Lease once implemented). */
  extraServices?: ExtraService[];
  /** Which server speaks gRPC; default {@link grpcTransportOf}(process.env). */
  transport?: GrpcTransport;
  /** etcd's auth (src/server/auth-host.ts): serves the Auth service and guards the other services with it. */
  auth?: AuthGateway;
}

/** A running gRPC server. */
export interface GrpcServerHandle {
  /** The bound port of each URL, in `urls` order. */
  ports: number[];
  /** Stops accepting calls, lets running calls finish for up to 2 s, then cancels the rest. */
  close(): Promise<void>;
}

function bindAddress(url: string): { host: string; port: number } {
  const u = new URL(url);
  if (u.protocol !== 'http:') throw new Error(`unsupported client URL scheme in ${url} (only http:// is served)`);
  if (u.port === '') throw new Error(`client URL ${url} has no port`);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) };
}

/** Every served method's instrumented handler, keyed by gRPC path ("/etcdserverpb.KV/Range"). */
export type HandlerTable = Map<string, grpc.UntypedHandleCall>;

/** Which implementation serves gRPC: ours on node:http2, or grpc-js's server. */
export type GrpcTransport = 'h2' | 'grpc-js';

/**
 * The transport named by env ETCETERA_GRPC_SERVER (`h2` | `grpc-js`; default `h2`). Throws on another value so
 * that a typo does not silently measure the wrong server.
 */
export function grpcTransportOf(env: NodeJS.ProcessEnv): GrpcTransport {
  const v = env.ETCETERA_GRPC_SERVER ?? 'h2';
  if (v === 'h2' || v === 'grpc-js') return v;
  throw new Error(`ETCETERA_GRPC_SERVER must be h2 or grpc-js, not ${JSON.stringify(v)}`);
}

/** One served service: its grpc-js definition and its instrumented handlers by proto method name. */
interface ServedService { def: grpc.ServiceDefinition; impl: grpc.UntypedServiceImplementation }

function instrumented(m: GrpcServerMetrics, def: grpc.ServiceDefinition, impl: grpc.UntypedServiceImplementation, table: HandlerTable, routes: Map<string, H2Method>): ServedService {
  const wrapped: grpc.UntypedServiceImplementation = {};
  for (const [name, md] of Object.entries(def)) {
    const fn = impl[name] ?? (md.originalName ? impl[md.originalName] : undefined);
    if (fn === undefined) continue;
    const service = md.path.slice(1, md.path.lastIndexOf('/'));
    const type = md.requestStream ? (md.responseStream ? 'bidi_stream' : 'client_stream') : md.responseStream ? 'server_stream' : 'unary';
    const counters = m.method(service, name, type);
    wrapped[name] =
      type === 'unary'
        ? instrumentUnary(fn as grpc.handleUnaryCall<Buffer, Uint8Array>, counters)
        : instrumentStream(fn as (call: grpc.ServerWritableStream<Buffer, Uint8Array>) => void, counters, type);
    table.set(md.path, wrapped[name] as grpc.UntypedHandleCall);
    // The h2 server's call objects have the surface of grpc-js's (src/api/h2grpc/call.ts).
    routes.set(md.path, { kind: type, handler: wrapped[name] as unknown as H2Method['handler'] });
  }
  return { def, impl: wrapped };
}

/** A configured gRPC server with every service added but no listener of its own. */
export interface GrpcServerParts {
  /** Serves one accepted client connection (HTTP/2 preface unread), from the client listener. */
  inject(conn: Duplex): void;
  /** Stops taking connections (the listeners are closing); running calls go on until {@link close}. */
  stopAccepting(): void;
  /**
   * The same handlers the gRPC server calls (metrics included), for the JSON gateway (src/api/gateway), which calls
   * them with its own call objects: etcd's gateway is a gRPC client of its own server, so it counts there too.
   */
  handlers: HandlerTable;
  /** The KV operations below the wire format (the gateway's direct path for KV). */
  kv: KvCore;
  /** The transport in use. */
  transport: GrpcTransport;
  /** grpc-js's server when that is the transport (its injected connections get patched peers for TLS CNs). */
  grpcJsServer?: grpc.Server;
  /** Listens on host:port with no HTTP/1 split (tests, benchmarks); resolves with the bound port. */
  listen(host: string, port: number): Promise<number>;
  /** Stops accepting calls, lets running calls finish for up to 2 s, then cancels the rest. */
  close(): Promise<void>;
}

/**
 * Builds the gRPC server (services, limits, metrics) without binding it, so the caller can feed it
 * connections from a listener shared with HTTP/1, as etcd serves both on :2379.
 */
export function createGrpcServer(opts: Omit<GrpcServerOptions, 'urls'>): GrpcServerParts {
  const transport = opts.transport ?? grpcTransportOf(process.env);
  const m = new GrpcServerMetrics(opts.metrics ?? defaultSinks);
  const handlers: HandlerTable = new Map();
  const routes = new Map<string, H2Method>();
  const served: ServedService[] = [];
  const add = (def: grpc.ServiceDefinition, impl: grpc.UntypedServiceImplementation): void => {
    served.push(instrumented(m, def, impl, handlers, routes));
  };
  const kvOpts = { gateway: opts.gateway, maxTxnOps: opts.maxTxnOps, logger: opts.logger, auth: opts.auth };
  add(KvService, createKvHandlers(kvOpts));
  // etcd v3rpc authMaintenanceServer and checkMembershipOperationPermission: root only once auth is enabled.
  add(MaintenanceService, guardAdmin(opts.auth, createMaintenanceHandlers(opts.maintenance, opts.logger), ['Defragment', 'Snapshot', 'Hash', 'HashKV'], opts.logger, true));
  add(ClusterService, guardAdmin(opts.auth, createClusterHandlers(opts.maintenance, opts.logger), ['MemberAdd', 'MemberRemove', 'MemberUpdate', 'MemberPromote'], opts.logger));
  if (opts.auth) add(AuthService, createAuthHandlers(opts.auth, opts.logger));
  for (const extra of opts.extraServices ?? []) add(extra.definition, extra.implementation);
  const kv = createKvCore(kvOpts);
  const keepaliveIntervalMs = opts.keepaliveIntervalMs ?? DEFAULT_KEEPALIVE_INTERVAL_MS;
  const keepaliveTimeoutMs = opts.keepaliveTimeoutMs ?? DEFAULT_KEEPALIVE_TIMEOUT_MS;

  if (transport === 'h2') {
    const h2 = new H2GrpcServer({
      methods: routes,
      maxReceiveMessageBytes: opts.maxRequestBytes + GRPC_OVERHEAD_BYTES,
      keepaliveIntervalMs,
      keepaliveTimeoutMs,
      keepaliveMinTimeMs: opts.keepaliveMinTimeMs ?? DEFAULT_KEEPALIVE_MIN_TIME_MS,
      maxConcurrentStreams: opts.maxConcurrentStreams,
      onHandlerError: (err, path) => opts.logger?.warn({ err, path }, 'grpc handler threw'),
    });
    return {
      transport,
      handlers,
      kv,
      inject: (conn) => h2.inject(conn),
      stopAccepting: () => {},
      listen: (host, port) => h2.listen(host, port),
      close: () => h2.close(2000).then(() => m.detach()),
    };
  }

  const server = new grpc.Server({
    'grpc.max_receive_message_length': opts.maxRequestBytes + GRPC_OVERHEAD_BYTES,
    'grpc.max_send_message_length': 0x7fffffff,
    'grpc.max_concurrent_streams': opts.maxConcurrentStreams ?? 0xffffffff,
    'grpc.keepalive_time_ms': keepaliveIntervalMs,
    'grpc.keepalive_timeout_ms': keepaliveTimeoutMs,
    'grpc.enable_channelz': 0,
  });
  for (const s of served) server.addService(s.def, s.impl);
  // Created now so that its HTTP/2 server exists for exposeInjectedPeers (src/api/client-certs.ts).
  let injector: ReturnType<grpc.Server['createConnectionInjector']> | null = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const close = (): Promise<void> =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => server.forceShutdown(), 2000);
      server.tryShutdown(() => {
        clearTimeout(timer);
        m.detach();
        resolve();
      });
    });
  return {
    transport,
    grpcJsServer: server,
    handlers,
    kv,
    inject: (conn) => (injector ??= server.createConnectionInjector(grpc.ServerCredentials.createInsecure())).injectConnection(conn),
    stopAccepting: () => {
      injector?.destroy();
      injector = null;
    },
    listen: (host, port) =>
      new Promise<number>((resolve, reject) =>
        server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
      ),
    close,
  };
}

/**
 * Starts the gRPC server on every URL. Resolves with the bound ports; rejects (after shutting down what was
 * bound) when a URL is malformed or a bind fails.
 */
export async function startGrpcServer(opts: GrpcServerOptions): Promise<GrpcServerHandle> {
  const addresses = opts.urls.map(bindAddress);
  const parts = createGrpcServer(opts);
  const ports: number[] = [];
  try {
    for (const { host, port } of addresses) ports.push(await parts.listen(host, port));
  } catch (err) {
    await parts.close();
    throw err;
  }
  opts.logger?.info?.({ urls: opts.urls, ports, transport: parts.transport }, 'serving gRPC client requests');
  return { ports, close: parts.close };
}
