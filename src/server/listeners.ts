/**
 * Opens a member's network listeners (etcd: embed.StartEtcd serving clients, peers and metrics):
 *  - each --listen-client-urls address serves gRPC and HTTP/1 on one port (src/api/client-listener.ts);
 *  - the uWebSockets.js app answers HTTP/1 on a private loopback port for the client URLs, and directly on
 *    every --listen-metrics-urls address.
 */
import type * as net from 'node:net';
import type { GrpcServerParts } from '../api/grpc/server';
import { startHttpServer, type HttpMount, type HttpServerHandle } from '../api/http/server';
import { listenClientUrl, hostPortOf } from '../api/client-listener';
import { registry } from '../metrics/registry';
import type { Logger } from '../log';

/** What {@link openListeners} needs. */
export interface ListenerOptions {
  clientUrls: string[];
  metricsUrls: string[];
  /** The gRPC server that HTTP/2 connections are handed to. */
  grpc: Pick<GrpcServerParts, 'inject' | 'stopAccepting'>;
  health: () => { health: boolean; reason: string } | Promise<{ health: boolean; reason: string }>;
  version: { etcdserver: string; etcdcluster: string };
  logger: Logger;
  /** HTTP APIs under their own prefixes (v3 JSON gateway, v2), served on the client URLs' HTTP/1 side. */
  httpMounts?: HttpMount[];
}

/** Open listeners; `clientPorts` are the bound ports in `clientUrls` order (useful with port 0). */
export interface Listeners {
  clientPorts: number[];
  metricsPorts: number[];
  close(): Promise<void>;
}

/** Opens every listener; rejects (closing what was opened) if any address cannot be bound. */
export async function openListeners(opts: ListenerOptions): Promise<Listeners> {
  const http: HttpServerHandle = await startHttpServer({
    urls: ['http://127.0.0.1:0'],
    metricsUrls: opts.metricsUrls,
    registry,
    health: opts.health,
    version: opts.version,
    mounts: opts.httpMounts,
  });
  const httpPort = http.ports[0] as number;
  const servers: net.Server[] = [];
  const clientPorts: number[] = [];
  try {
    for (const url of opts.clientUrls) {
      const { host, port } = hostPortOf(url);
      const l = await listenClientUrl({ host, port, httpPort, injectGrpc: (s) => opts.grpc.inject(s) });
      servers.push(l.server);
      clientPorts.push(l.port);
      opts.logger.info({ address: `${host}:${l.port}` }, 'serving client traffic (gRPC and HTTP)');
    }
  } catch (e) {
    for (const s of servers) s.close();
    http.close();
    throw e;
  }
  return {
    clientPorts,
    metricsPorts: http.metricsPorts,
    async close() {
      for (const s of servers) s.close();
      opts.grpc.stopAccepting();
      http.close();
    },
  };
}
