/**
 * The client-facing grpc-js server with etcd 3.4's transport limits (etcd v3rpc: grpc.go Server;
 * embed: etcd.go keepalive options, config.go defaults):
 *  - max receive message = --max-request-bytes + 512 KiB of gRPC overhead; max send = 2^31-1;
 *  - max concurrent streams per connection 2^32-1 (etcd's --max-concurrent-streams default);
 *  - server→client keepalive ping every 2 h, 20 s timeout (etcd --grpc-keepalive-interval/-timeout defaults);
 *  - channelz off (it costs per-call bookkeeping).
 * Serves KV, Maintenance and Cluster; further services (Watch, Lease, …) can be passed in `extraServices`.
 */
import * as grpc from '@grpc/grpc-js';
import { metrics as defaultSinks } from '../../metrics/registry';
import { createClusterHandlers } from './cluster-service';
import type { KvGateway, MaintenanceGateway } from './gateway';
import { createKvHandlers } from './kv-service';
import { createMaintenanceHandlers } from './maintenance-service';
import { GrpcServerMetrics, instrumentStream, instrumentUnary, type GrpcCounterSinks } from './metrics';
import { ClusterService, KvService, MaintenanceService } from './services';
import type { GrpcLogger } from './status';

/** etcd v3rpc grpc.go grpcOverheadBytes: allowance on top of --max-request-bytes for the gRPC receive limit. */
export const GRPC_OVERHEAD_BYTES = 512 * 1024;
/** etcd embed config.go DefaultGRPCKeepAliveInterval (2 h), in ms. */
export const DEFAULT_KEEPALIVE_INTERVAL_MS = 2 * 60 * 60 * 1000;
/** etcd embed config.go DefaultGRPCKeepAliveTimeout (20 s), in ms. */
export const DEFAULT_KEEPALIVE_TIMEOUT_MS = 20 * 1000;

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
  /** Additional services (e.g. Watch, Lease once implemented). */
  extraServices?: ExtraService[];
}

/** A running gRPC server. */
export interface GrpcServerHandle {
  /** The bound port of each URL, in `urls` order. */
  ports: number[];
  /** Stops accepting calls, lets running calls finish for up to 2 s, then cancels the rest. */
  close(): Promise<void>;
}

function bindAddress(url: string): string {
  const u = new URL(url);
  if (u.protocol !== 'http:') throw new Error(`unsupported client URL scheme in ${url} (only http:// is served)`);
  if (u.port === '') throw new Error(`client URL ${url} has no port`);
  return `${u.hostname}:${u.port}`;
}

function addInstrumented(server: grpc.Server, m: GrpcServerMetrics, def: grpc.ServiceDefinition, impl: grpc.UntypedServiceImplementation): void {
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
  }
  server.addService(def, wrapped);
}

/** A configured grpc-js server with every service added but nothing bound yet. */
export interface GrpcServerParts {
  server: grpc.Server;
  /** Stops accepting calls, lets running calls finish for up to 2 s, then cancels the rest. */
  close(): Promise<void>;
}

/**
 * Builds the gRPC server (services, limits, metrics) without binding it, so the caller can feed it
 * connections (grpc-js connection injector) from a listener shared with HTTP/1, as etcd serves both on :2379.
 */
export function createGrpcServer(opts: Omit<GrpcServerOptions, 'urls'>): GrpcServerParts {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': opts.maxRequestBytes + GRPC_OVERHEAD_BYTES,
    'grpc.max_send_message_length': 0x7fffffff,
    'grpc.max_concurrent_streams': 0xffffffff,
    'grpc.keepalive_time_ms': opts.keepaliveIntervalMs ?? DEFAULT_KEEPALIVE_INTERVAL_MS,
    'grpc.keepalive_timeout_ms': opts.keepaliveTimeoutMs ?? DEFAULT_KEEPALIVE_TIMEOUT_MS,
    'grpc.enable_channelz': 0,
  });
  const m = new GrpcServerMetrics(opts.metrics ?? defaultSinks);
  addInstrumented(
    server,
    m,
    KvService,
    createKvHandlers({ gateway: opts.gateway, maxTxnOps: opts.maxTxnOps, logger: opts.logger }),
  );
  addInstrumented(server, m, MaintenanceService, createMaintenanceHandlers(opts.maintenance, opts.logger));
  addInstrumented(server, m, ClusterService, createClusterHandlers(opts.maintenance, opts.logger));
  for (const extra of opts.extraServices ?? []) addInstrumented(server, m, extra.definition, extra.implementation);

  const close = (): Promise<void> =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => server.forceShutdown(), 2000);
      server.tryShutdown(() => {
        clearTimeout(timer);
        m.detach();
        resolve();
      });
    });
  return { server, close };
}

/**
 * Starts the gRPC server on every URL. Resolves with the bound ports; rejects (after shutting down what was
 * bound) when a URL is malformed or a bind fails.
 */
export async function startGrpcServer(opts: GrpcServerOptions): Promise<GrpcServerHandle> {
  const addresses = opts.urls.map(bindAddress);
  const { server, close } = createGrpcServer(opts);
  const ports: number[] = [];
  try {
    for (const addr of addresses) {
      ports.push(
        await new Promise<number>((resolve, reject) =>
          server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
        ),
      );
    }
  } catch (err) {
    server.forceShutdown();
    throw err;
  }
  opts.logger?.info?.({ urls: opts.urls, ports }, 'serving gRPC client requests');
  return { ports, close };
}
