/**
 * Connects an EtcdServer to its peers (etcd: rafthttp.Transport): outgoing Raft messages go to the
 * PeerTransport in one batch per Ready; incoming batches are stepped into the Raft core.
 * Listens on --listen-peer-urls even for a one-member cluster, as etcd does.
 */
import type { ServerConfig } from './config';
import type { Logger } from '../log';
import { PeerTransport, type PeerSecurity } from '../transport';
import type { EtcdServer } from './etcd-server';
import type { Message } from '../raft';
import { answerPeerHashKV } from './corruption-check';

/** A started peer link. */
export interface PeerLink {
  ports: number[];
  close(): Promise<void>;
}

/** Sees every batch of Raft messages crossing the transport (the v2 Raft statistics, src/server/raft-stats.ts). */
export interface PeerTrafficObserver {
  sent(msgs: readonly Message[]): void;
  received(msgs: readonly Message[]): void;
  unreachable(id: number): void;
}

/**
 * Starts the peer transport for `server` (TLS for https peer URLs with `security`; `traffic` sees the messages);
 * rejects when a peer URL cannot be bound.
 */
export async function startPeerTransport(server: EtcdServer, config: ServerConfig, logger: Logger, security?: PeerSecurity, traffic?: PeerTrafficObserver): Promise<PeerLink> {
  const { membership } = server;
  const peers = new Map<number, string[]>();
  for (const m of membership.members) if (m.id !== membership.localId) peers.set(m.id, m.peerUrls);
  const transport = new PeerTransport({
    memberId: membership.localId,
    clusterId: membership.clusterId,
    listenUrls: config.listenPeerUrls,
    peers,
    security,
    onMessages: (msgs) => {
      traffic?.received(msgs);
      server.receive(msgs);
    },
    onUnreachable: (id) => {
      traffic?.unreachable(id);
      server.reportUnreachable(id);
    },
    onSnapshotStatus: (id, ok) => server.reportSnapshot(id, ok),
    // InstallSnapshot (src/server/snapshotter.ts): the leader's database arrives on its own connection.
    onSnapshot: (from, meta, data) => server.snapshots.receive(from, meta, data),
    // A member joining with --initial-cluster-state existing asks for the membership (etcd: GET /members).
    onMembersRequest: () => server.cluster.membershipData(),
    // A peer's corruption check asks for our HashKV (etcd: GET /members/hashkv).
    onHashKVRequest: (request) => answerPeerHashKV((revision) => server.hashKVOffThread(revision), request),
    // A removed member is told so when it dials, and a member told so stops (etcd: 410 Gone → the member stops).
    isRemoved: (id) => (server.membership.removed ?? []).includes(id),
    onRemoved: () => server.removedByPeers(),
    logger,
  });
  // Runtime reconfiguration: dial added members, drop removed ones, follow peer URL updates.
  const onMembership = (): void => {
    const next = new Map<number, string[]>();
    for (const m of server.membership.members) if (m.id !== membership.localId) next.set(m.id, m.peerUrls);
    transport.setPeers(next);
  };
  server.events.on('membership', onMembership);
  const { ports } = await transport.start();
  // MsgSnap never goes on the message stream: the snapshotter streams a database copy with sendSnapshot.
  const sendSnapshot = (to: number, meta: Uint8Array, data: Buffer | AsyncIterable<Uint8Array>): Promise<void> => transport.sendSnapshot(to, meta, data);
  server.peerActiveSince = (id) => transport.activeSince(id);
  server.sendToPeers = (msgs) => {
    traffic?.sent(msgs);
    transport.send(server.snapshots.route(msgs, sendSnapshot));
  };
  return {
    ports,
    async close() {
      server.events.off('membership', onMembership);
      server.sendToPeers = () => {};
      server.peerActiveSince = () => 0;
      await transport.close();
    },
  };
}
