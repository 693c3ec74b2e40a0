/**
 * A running member: the EtcdServer plus its gRPC service layer, HTTP endpoints, peer transport and metric
 * hooks (etcd: embed.Etcd). `startMember` is what the CLI calls; tests start members as child processes.
 */
import type { ServerConfig } from './config';
import type { Logger } from '../log';
import { createGrpcServer } from '../api/grpc/server';
import { EtcdServer, requestTimeoutMs } from './etcd-server';
import { SERVER_VERSION, CLUSTER_VERSION, maintenanceGateway } from './maintenance';
import { openListeners, type Listeners } from './listeners';
import { metrics, setGaugeFunc, setRingOccupancySource } from '../metrics/registry';
import { installApplyMetrics } from './apply-metrics';
import { idToHex } from './ids';
import { startPeerTransport, type PeerLink } from './peers';
import { fetchPeerHashKV } from '../transport';
import { WatchHub } from '../watch/hub';
import { watchServiceEntry } from '../api/grpc/watch-service';
import { LeaseService } from '../api/grpc/services';
import { createLeaseHandlers } from '../api/grpc/lease-service';
import { Lessor, minLeaseTtlSeconds } from '../lease/lessor';
import { EMPTY_RANGE_BARRIER } from '../lease/barrier';
import { concurrencyServiceEntries } from '../api/grpc/concurrency-services';
import { AuthHost } from './auth-host';
import { INTERNAL_ROOT } from '../auth/store';
import { createV3Gateway } from '../api/gateway/v3-gateway';
import { prepareTls } from './tls-setup';
import { startCompactor } from './compactor';
import { corruptAlarmRequest, initialCorruptCheck, startPeriodicCorruptCheck, type CorruptionCheckHost } from './corruption-check';
import { EntryKind, proposeAs } from '../wire/entry';
import { pb } from '../wire/codec';
import { startV2Keys, type V2Keys } from './v2-keys';
import { startEventLoopDelayHistogram } from '../metrics/event-loop-delay';
import { RaftStats } from './raft-stats';

/** A started member; `stop()` closes listeners first, then the server (flushing both workers). */
export interface Member {
  server: EtcdServer;
  listeners: Listeners;
  stop(): Promise<void>;
}

/** Starts one member from its parsed flags. Rejects when the data dir, the flags or a listen address is bad. */
export async function startMember(config: ServerConfig, logger: Logger): Promise<Member> {
  startEventLoopDelayHistogram();
  const tls = await prepareTls(config, logger);
  const server = await EtcdServer.start(config, logger, tls.peerSecurity);
  let peers: PeerLink | null = null;
  let stopCorruptCheck = (): void => {};
  let auth: AuthHost;
  try {
    auth = await AuthHost.create(server, {
      authToken: config.authToken,
      authTokenTtlSeconds: config.authTokenTtlSeconds,
      bcryptCost: config.bcryptCost,
      // A certificate's CN is an identity only when the listener verified it (https with --client-cert-auth).
      clientCertAuth: tls.client !== undefined && tls.client.info.clientCertAuth,
      logger,
    });
  } catch (e) {
    await server.stop();
    throw e;
  }
  // The member's own requests (lease expiry, auto-compaction) act as root (etcd: AuthStore.WithRoot).
  const asRoot = proposeAs(server.propose, INTERNAL_ROOT);
  server.onAuthenticateCommitted = (index, payload) => auth.onAuthenticateCommitted(index, payload);
  // Lease API (etcd 3.4): the leader's lessor expires leases through Raft; the service forwards to the leader.
  const lessor = new Lessor({
    host: {
      // Expiry revokes act as root (etcd: lessor revokes with AuthStore.WithRoot).
      propose: asRoot,
      leader: () => server.leader(),
      events: server.events,
      // A getter: Defragment and snapshot installs replace the server's reader (the old one is closed).
      get reader() { return server.reader; },
      barrier: () => server.range(EMPTY_RANGE_BARRIER).then(() => undefined),
      whenReadable: () => server.whenReadable(),
      appliedCommitted: () => server.appliedIndex() >= server.commitIndex(),
      waitAppliedCommitted: () => server.waitApplied(server.commitIndex()),
    },
    electionTimeoutMs: config.electionTimeoutMs,
    checkpointIntervalMs: config.enableLeaseCheckpoint ? config.leaseCheckpointIntervalMs : undefined,
    logger,
  });
  const lease = createLeaseHandlers({
    server,
    lessor,
    minTtlSeconds: minLeaseTtlSeconds(config.electionTimeoutMs, config.heartbeatIntervalMs),
    requestTimeoutMs: requestTimeoutMs(config.electionTimeoutMs),
    logger,
    auth,
  });
  lessor.start();
  // Auto-compaction (etcd 3.4 v3compactor): runs on the leader only, proposing Compact like a client (as root).
  const compactor = startCompactor({
    mode: config.autoCompactionMode,
    retentionMs: config.autoCompactionRetentionMs,
    retentionRevisions: config.autoCompactionRetentionRevisions,
    host: {
      revision: () => server.maintenance.status().header.revision,
      compact: (revision) => asRoot(EntryKind.Compaction, pb.CompactionRequest.encode({ revision }).finish()).then(() => undefined),
    },
    logger,
  });
  if (compactor) {
    server.events.on('leader', (_lead: number, isLeader: boolean) => (isLeader ? compactor.resume() : compactor.pause()));
    if (server.leader().isLeader) compactor.resume();
  }
  let v2: V2Keys | null = null;
  // etcd's v2 Raft statistics (/v2/stats/self, /v2/stats/leader), fed by the peer transport.
  const raftStats = new RaftStats({
    name: () => config.name,
    localId: () => server.membership.localId,
    peerIds: () => server.membership.members.map((m) => m.id).filter((id) => id !== server.membership.localId),
    leader: () => server.leader(),
  });
  server.events.on('leader', (lead: number) => raftStats.leaderChanged(lead));
  raftStats.leaderChanged(server.leader().lead);
  try {
    peers = await startPeerTransport(server, config, logger, tls.peerSecurity, raftStats);
    const localId = server.membership.localId;
    const corruption: CorruptionCheckHost = {
      localId,
      logger,
      timeoutMs: requestTimeoutMs(config.electionTimeoutMs),
      hashKV: (revision) => server.hashKVOffThread(revision),
      peers: () => server.membership.members.filter((m) => m.id !== localId).map((m) => ({ id: m.id, peerUrls: m.peerUrls })),
      // Over the peer port with the peer TLS settings (etcd: the peer round tripper), never the client URLs.
      peerHashKV: (url, id, request, timeoutMs) => fetchPeerHashKV(url, id, request, timeoutMs, { clusterId: server.membership.clusterId, localId, security: tls.peerSecurity }),
      isLeader: () => server.leader().isLeader,
      linearizableWait: () => server.linearizableWait(),
      raiseCorrupt: (memberId) => server.maintenance.alarmChange(corruptAlarmRequest(memberId)).then(() => undefined),
    };
    // etcd checks a member whose data dir already held one (a new member has nothing to compare), before any client
    // is served; a mismatch aborts the start. etcd asks before starting Raft; here Raft runs already, harmless since
    // the member hashes at its own revision and serves no client until the check passed.
    if (config.initialCorruptCheck && !server.freshDataDir) await initialCorruptCheck(corruption);
    if (config.corruptCheckTimeMs > 0) stopCorruptCheck = startPeriodicCorruptCheck(corruption, config.corruptCheckTimeMs);
    if (config.enableV2) v2 = startV2Keys(server, logger, raftStats);
    // Watch: the hub is fed the MVCC events of every batch this member applies (leader or follower).
    const watchHub = new WatchHub({ reader: () => server.reader, identity: () => server.identity(), maxRequestBytes: config.maxRequestBytes });
    server.events.on('mvccEvents', (events) => watchHub.onEvents(events));
    // A snapshot restore replaces the store wholesale: watchers catch up from the new history.
    server.events.on('restored', () => watchHub.restore());
    const grpc = createGrpcServer({
      gateway: server,
      maintenance: maintenanceGateway(server.maintenance, server.cluster),
      maxRequestBytes: config.maxRequestBytes,
      maxTxnOps: config.maxTxnOps,
      maxConcurrentStreams: config.maxConcurrentStreams,
      keepaliveMinTimeMs: config.grpcKeepaliveMinTimeMs,
      keepaliveIntervalMs: config.grpcKeepaliveIntervalMs,
      keepaliveTimeoutMs: config.grpcKeepaliveTimeoutMs,
      logger,
      auth,
      extraServices: [
        { definition: LeaseService, implementation: lease.implementation },
        watchServiceEntry({ hub: watchHub, progressIntervalMs: config.watchProgressNotifyIntervalMs, auth }),
        // Lock / Election (etcd v3lock, v3election): etcd's concurrency recipes on this member's KV, lease and hub.
        ...concurrencyServiceEntries({ server, hub: watchHub, maxTxnOps: config.maxTxnOps, onGranted: (id, ttl) => lessor.granted(id, ttl), logger }),
      ],
    });
    const clientTls = tls.client;
    const cnGateway = clientTls !== undefined && clientTls.info.clientCertAuth;
    // etcd's gateway presents the member certificate to its TLS port, which verifies it like any client's.
    const verifiesClients = clientTls !== undefined && clientTls.verifiesClients;
    // etcd logs the handshake its gateway's dial lost, as any refused client connection.
    const logGatewayRefusal = (): void => logger.warn({ 'remote-addr': 'json-gateway', error: 'tls: failed to verify client certificate: x509: certificate specifies an incompatible key usage' }, 'rejected connection');
    if (verifiesClients && !clientTls.usableAsClientCert()) logGatewayRefusal();
    const gatewayOptions = { kv: grpc.kv, handlers: grpc.handlers, maxRequestBytes: config.maxRequestBytes, logger, auth };
    const listeners = await openListeners({
      clientUrls: config.listenClientUrls,
      metricsUrls: config.listenMetricsUrls,
      grpc,
      health: () => server.healthCheck(),
      version: { etcdserver: SERVER_VERSION, etcdcluster: CLUSTER_VERSION },
      logger,
      clientTls: tls.client,
      ...(tls.client !== undefined && tls.client.info.clientCertAuth ? { authEnabledForCnGuard: () => auth.enabled } : {}),
      // etcd 3.4's JSON gateway on the client port, calling the same handlers as gRPC clients reach; the v2 keys
      // API beside it with --enable-v2.
      httpMounts: [
        createV3Gateway({
          ...gatewayOptions,
          ...(cnGateway ? { memberCertCommonName: () => clientTls.commonName() } : {}),
          ...(verifiesClients ? { memberCertUsableAsClient: () => clientTls.usableAsClientCert(), onMemberCertRefused: logGatewayRefusal } : {}),
        }),
        ...(v2 ? [v2.mount] : []),
      ],
      // On http:// client URLs etcd's gateway dials its member in plaintext: no certificate, no CN identity.
      ...(verifiesClients ? { plainHttpMounts: [createV3Gateway(gatewayOptions), ...(v2 ? [v2.mount] : [])] } : {}),
    });
    metrics.setServerId(server.membership.localId);
    metrics.setClusterVersion(CLUSTER_VERSION);
    setGaugeFunc('etcd_mvcc_db_total_size_in_bytes', () => server.maintenance.status().dbSize);
    setGaugeFunc('etcd_mvcc_db_total_size_in_use_in_bytes', () => server.maintenance.status().dbSizeInUse);
    setGaugeFunc('etcd_debugging_mvcc_db_total_size_in_bytes', () => server.maintenance.status().dbSize);
    setGaugeFunc('etcd_debugging_mvcc_current_revision', () => server.maintenance.status().header.revision);
    setGaugeFunc('etcd_debugging_mvcc_compact_revision', () => server.reader.compactRevision());
    metrics.etcd_server_quota_backend_bytes.set(config.quotaBackendBytes);
    setRingOccupancySource(() => server.maintenance.ringOccupancy());
    installApplyMetrics({
      totals: server.applyTotals,
      applyStatus: () => server.maintenance.applyStatus(),
      liveKeys: () => server.maintenance.liveKeys(),
      walWriteBytes: () => server.maintenance.walWriteBytes(),
    });
    const link = peers;
    return {
      server,
      listeners,
      async stop() {
        await listeners.close();
        watchHub.close();
        v2?.stop();
        await grpc.close();
        lessor.stop();
        compactor?.stop();
        stopCorruptCheck();
        lease.close();
        auth.close();
        await link?.close();
        await server.stop();
      },
    };
  } catch (e) {
    v2?.stop();
    lessor.stop();
    compactor?.stop();
    stopCorruptCheck();
    lease.close();
    auth.close();
    await peers?.close();
    await server.stop();
    throw e;
  }
}
