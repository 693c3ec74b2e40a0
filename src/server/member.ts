/**
 * A running member: the EtcdServer plus its gRPC service layer, HTTP endpoints, peer transport and metric
 * hooks (etcd: embed.Etcd). `startMember` is what the CLI calls; tests start members as child processes.
 */
import type { ServerConfig } from '../cli/flags';
import type { Logger } from '../log';
import { createGrpcServer } from '../api/grpc/server';
import { EtcdServer, SERVER_VERSION, CLUSTER_VERSION } from './etcd-server';
import { openListeners, type Listeners } from './listeners';
import { metrics, setGaugeFunc } from '../metrics/registry';
import { idToHex } from './ids';
import { startPeerTransport, type PeerLink } from './peers';

/** A started member; `stop()` closes listeners first, then the server (flushing both workers). */
export interface Member {
  server: EtcdServer;
  listeners: Listeners;
  stop(): Promise<void>;
}

/** Starts one member from its parsed flags. Rejects when the data dir, the flags or a listen address is bad. */
export async function startMember(config: ServerConfig, logger: Logger): Promise<Member> {
  const server = await EtcdServer.start(config, logger);
  let peers: PeerLink | null = null;
  try {
    peers = await startPeerTransport(server, config, logger);
    const grpc = createGrpcServer({
      gateway: server,
      maintenance: server,
      maxRequestBytes: config.maxRequestBytes,
      maxTxnOps: config.maxTxnOps,
      logger,
    });
    const listeners = await openListeners({
      clientUrls: config.listenClientUrls,
      metricsUrls: config.listenMetricsUrls,
      grpc: grpc.server,
      health: () => server.health(),
      version: { etcdserver: SERVER_VERSION, etcdcluster: CLUSTER_VERSION },
      logger,
    });
    metrics.setServerId(server.membership.localId);
    metrics.setClusterVersion(CLUSTER_VERSION);
    setGaugeFunc('etcd_mvcc_db_total_size_in_bytes', () => server.status().dbSize);
    setGaugeFunc('etcd_mvcc_db_total_size_in_use_in_bytes', () => server.status().dbSizeInUse);
    metrics.etcd_server_quota_backend_bytes.set(config.quotaBackendBytes);
    const link = peers;
    return {
      server,
      listeners,
      async stop() {
        await listeners.close();
        await grpc.close();
        await link?.close();
        await server.stop();
      },
    };
  } catch (e) {
    await peers?.close();
    await server.stop();
    throw e;
  }
}
