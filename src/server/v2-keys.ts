/**
 * The v2 keys API of a member (`--enable-v2`, etcd 3.4): the HTTP mount over this server, the v2 watch hub fed after
 * every applied batch, and the leader's SYNC ticker — while some v2 node has a TTL, the leader proposes a SYNC entry
 * carrying its clock every {@link V2_SYNC_INTERVAL_MS} and every member expires the nodes due by that time when it
 * applies it (etcd 3.4: EtcdServer.sync on the 500 ms ticker), so expiry is the same on every member.
 */
import type { EtcdServer } from './etcd-server';
import type { Logger } from '../log';
import type { HttpMount } from '../api/http/server';
import { createV2Keys } from '../api/v2/keys';
import { V2AuthView } from '../v2store/auth';
import { EntryKind } from '../wire/entry';
import { V2Store } from '../v2store/store';
import { V2Nodes } from '../v2store/nodes';
import { V2WatchHub } from '../v2store/watch-hub';
import { encodeV2Request } from '../v2store/request';
import { metrics } from '../metrics/registry';
import type { RaftStats } from './raft-stats';
import type { V2Member } from '../api/v2/members';

const v2Member = (m: { ID: number; name: string; peerURLs: string[]; clientURLs: string[] }): V2Member => ({ id: m.ID, name: m.name, peerURLs: m.peerURLs, clientURLs: m.clientURLs });

/** etcd's v2 SYNC cadence (its server ticker), ms. */
export const V2_SYNC_INTERVAL_MS = 500;

/** The store's write counter prefixes and etcd's metric action for each. */
const WRITE_ACTIONS = [
  ['sets', 'set'], ['delete', 'delete'], ['update', 'update'], ['create', 'create'], ['compareAndSwap', 'compareAndSwap'],
  ['compareAndDelete', 'compareAndDelete'],
] as const;

/** A running v2 API. */
export interface V2Keys {
  mount: HttpMount;
  hub: V2WatchHub;
  stop(): void;
}

/** Builds the v2 API over `server` (its Raft statistics from `raftStats`) and starts its SYNC ticker. */
export function startV2Keys(server: EtcdServer, logger: Logger, raftStats: RaftStats): V2Keys {
  let cached: { reader: unknown; store: V2Store } | null = null;
  const store = (): V2Store => {
    const r = server.reader;
    r.dbs.root.resetReadTxn();
    if (cached === null || cached.reader !== r) cached = { reader: r, store: new V2Store(new V2Nodes(r.dbs.v2)) };
    return cached.store;
  };
  const hub = new V2WatchHub(store);
  // etcd's v2 store metrics count the writes this member applies, by action, failed ones too: taken from the deltas of
  // the store's write counters (kept by the apply worker) after every applied batch.
  let counted = store().nodes.stats();
  const countWrites = (): void => {
    const now = store().nodes.stats();
    for (const [stat, action] of WRITE_ACTIONS) {
      const ok = (now[`${stat}Success`] ?? 0) - (counted[`${stat}Success`] ?? 0);
      const failed = (now[`${stat}Fail`] ?? 0) - (counted[`${stat}Fail`] ?? 0);
      // etcd 3.4 counts failed writes in writes_total and leaves writes_failed_total at 0 (measured).
      if (ok + failed > 0) metrics.etcd_debugging_store_writes_total.inc({ action }, ok + failed);
    }
    const expired = (now.expireCount ?? 0) - (counted.expireCount ?? 0);
    if (expired > 0) metrics.etcd_debugging_store_expires_total.inc(expired);
    counted = now;
  };
  let authEnabled = new V2AuthView(store().nodes).enabled();
  // Moves on every applied batch and restore; 'applied' is emitted in the same turn as the batch's results.
  let generation = 0;
  const onApplied = (): void => {
    generation++;
    authEnabled = new V2AuthView(store().nodes).enabled();
    hub.poll();
    countWrites();
    metrics.etcd_debugging_store_watchers.set(hub.size);
  };
  const onRestored = (): void => {
    generation++;
    authEnabled = new V2AuthView(store().nodes).enabled();
    hub.reset();
    counted = store().nodes.stats();
  };
  server.events.on('applied', onApplied);
  server.events.on('restored', onRestored);
  const mount = createV2Keys({
    propose: server.propose,
    store,
    linearizableWait: () => server.linearizableWait(),
    // O(1) per answer: server.status() would build a whole Maintenance.Status (Raft progress, db size, alarms).
    raft: () => ({ index: server.commitIndex(), term: server.leader().term }),
    clusterId: () => server.membership.clusterId,
    members: () => server.cluster.members().members.map(v2Member),
    leaderId: () => server.leader().lead,
    isRemoved: (id) => (server.membership.removed ?? []).includes(id),
    addMember: async (urls) => v2Member((await server.cluster.addMember(urls, false)).member),
    removeMember: async (id) => void (await server.cluster.removeMember(id)),
    updateMember: async (id, urls) => void (await server.cluster.updateMember(id, urls)),
    selfStats: () => raftStats.selfJson(),
    leaderStats: () => raftStats.leaderJson(),
    hub,
    v2AuthEnabled: () => authEnabled,
    storeGeneration: () => generation,
  });
  let syncing = false;
  const timer = setInterval(() => {
    if (syncing || !server.leader().isLeader || !store().hasTtlKeys()) return;
    syncing = true;
    server.propose(EntryKind.V2, encodeV2Request({ method: 'SYNC', path: '/', time: Date.now() })).then(
      () => (syncing = false),
      (e: unknown) => {
        syncing = false;
        logger.warn({ error: (e as Error).message }, 'v2 store SYNC failed');
      },
    );
  }, V2_SYNC_INTERVAL_MS);
  timer.unref();
  return {
    mount,
    hub,
    stop() {
      clearInterval(timer);
      server.events.off('applied', onApplied);
      server.events.off('restored', onRestored);
      hub.close();
    },
  };
}
