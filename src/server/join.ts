/**
 * Joining a running cluster (etcd: `--initial-cluster-state existing` with a fresh data dir; etcdserver
 * GetClusterFromRemotePeers + ValidateClusterAndAssignIDs).
 *
 * The member was added first (`etcdctl member add`), so the cluster already knows its ID and peer URLs. It asks the
 * other members listed in --initial-cluster for their membership over the peer port (a transport Members
 * connection), finds itself by its --initial-advertise-peer-urls, and takes the cluster ID, every member ID and the
 * removed IDs from the answer. Its Raft log starts empty: the leader sends a snapshot. Errors are MembershipError
 * with the reason, shown to the operator as is.
 */
import { fetchPeerMembers, type PeerSecurity } from '../transport';
import type { Logger } from '../log';
import { MembershipError, type MemberInfo, type Membership } from './membership';

/** What a member answers to a Members query (also the membership carried in a database snapshot). */
export interface MembershipWire {
  clusterId: number;
  members: MemberInfo[];
  removed: number[];
  confIndex: number;
}

/** Encodes the parts of a membership another member may adopt (UTF-8 JSON). */
export function encodeMembershipWire(m: Membership): Uint8Array {
  const w: MembershipWire = { clusterId: m.clusterId, members: m.members, removed: m.removed ?? [], confIndex: m.confIndex ?? 0 };
  return Buffer.from(JSON.stringify(w), 'utf8');
}

/** Decodes {@link encodeMembershipWire}'s bytes; null when they are not a membership. */
export function decodeMembershipWire(b: Uint8Array): MembershipWire | null {
  if (b.length === 0) return null;
  try {
    const w = JSON.parse(Buffer.from(b).toString('utf8')) as MembershipWire;
    if (!Number.isSafeInteger(w.clusterId) || !Array.isArray(w.members)) return null;
    return { clusterId: w.clusterId, members: w.members, removed: Array.isArray(w.removed) ? w.removed : [], confIndex: Number(w.confIndex) || 0 };
  } catch {
    return null;
  }
}

/** Per-URL answer timeout and the total time spent retrying unreachable peers (ms). */
const FETCH_TIMEOUT_MS = 2000;
const JOIN_GIVE_UP_MS = 15_000;

const sameUrls = (a: readonly string[], b: readonly string[]): boolean => [...a].sort().join(',') === [...b].sort().join(',');

/**
 * Builds this member's membership from a running cluster. `initialCluster` must list this member with its
 * advertised peer URLs and at least one running member. Throws MembershipError when no member answers or the
 * cluster does not know this member's peer URLs.
 */
export async function joinExistingCluster(opts: {
  localName: string;
  initialCluster: { name: string; peerUrls: string[] }[];
  advertisePeerUrls: string[];
  advertiseClientUrls: string[];
  clusterToken: string;
  logger: Logger;
  peerSecurity?: PeerSecurity;
}): Promise<Membership> {
  const self = opts.initialCluster.find((m) => m.name === opts.localName);
  if (self === undefined) throw new MembershipError(`couldn't find local name "${opts.localName}" in the initial cluster configuration`);
  if (!sameUrls(self.peerUrls, opts.advertisePeerUrls)) {
    throw new MembershipError(`--initial-cluster has ${opts.localName}=${[...self.peerUrls].sort().join(',')} but missing from --initial-advertise-peer-urls=${[...opts.advertisePeerUrls].sort().join(',')}`);
  }
  const urls = opts.initialCluster.filter((m) => m.name !== opts.localName).flatMap((m) => m.peerUrls);
  if (urls.length === 0) throw new MembershipError('--initial-cluster-state existing needs at least one other member in --initial-cluster');
  const deadline = Date.now() + JOIN_GIVE_UP_MS;
  const errors: string[] = [];
  while (Date.now() < deadline) {
    for (const url of urls) {
      let w: MembershipWire | null;
      try {
        w = decodeMembershipWire(await fetchPeerMembers(url, FETCH_TIMEOUT_MS, undefined, opts.peerSecurity));
      } catch (e) {
        errors.push((e as Error).message);
        continue;
      }
      if (w === null) {
        errors.push(`${url} answered something that is not a membership`);
        continue;
      }
      const local = w.members.find((m) => sameUrls(m.peerUrls, opts.advertisePeerUrls));
      if (local === undefined) {
        throw new MembershipError(
          `the running cluster has no member with peer URLs ${opts.advertisePeerUrls.join(',')} (add it first: etcdctl member add ${opts.localName} --peer-urls=${opts.advertisePeerUrls.join(',')})`,
        );
      }
      local.name = opts.localName;
      local.clientUrls = [...opts.advertiseClientUrls];
      opts.logger.info({ 'fetched-from': url, 'cluster-id': w.clusterId.toString(16), 'local-member-id': local.id.toString(16) }, 'joining a running cluster');
      return { clusterId: w.clusterId, clusterToken: opts.clusterToken, localId: local.id, members: w.members, removed: w.removed, confIndex: w.confIndex, joined: true };
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new MembershipError(`cannot fetch cluster info from peer urls: ${[...new Set(errors)].slice(-3).join('; ')}`);
}
