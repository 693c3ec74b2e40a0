/**
 * Connects an EtcdServer to its peers (etcd: rafthttp.Transport): outgoing Raft messages go to the
 * PeerTransport in one batch per Ready; incoming batches are stepped into the Raft core.
 * Listens on --listen-peer-urls even for a one-member cluster, as etcd does.
 */
import type { ServerConfig } from '../cli/flags';
import type { Logger } from '../log';
import { PeerTransport } from '../transport';
import type { EtcdServer } from './etcd-server';

/** A started peer link. */
export interface PeerLink {
  ports: number[];
  close(): Promise<void>;
}

/** Starts the peer transport for `server`; rejects when a peer URL cannot be bound. */
export async function startPeerTransport(server: EtcdServer, config: ServerConfig, logger: Logger): Promise<PeerLink> {
  const { membership } = server;
  const peers = new Map<number, string[]>();
  for (const m of membership.members) if (m.id !== membership.localId) peers.set(m.id, m.peerUrls);
  const transport = new PeerTransport({
    memberId: membership.localId,
    clusterId: membership.clusterId,
    listenUrls: config.listenPeerUrls,
    peers,
    onMessages: (msgs) => server.receive(msgs),
    onUnreachable: (id) => server.reportUnreachable(id),
    onSnapshotStatus: (id, ok) => server.reportSnapshot(id, ok),
    logger,
  });
  const { ports } = await transport.start();
  server.sendToPeers = (msgs) => transport.send(msgs);
  return {
    ports,
    async close() {
      server.sendToPeers = () => {};
      await transport.close();
    },
  };
}
