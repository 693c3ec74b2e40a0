/**
 * Runtime reconfiguration as Raft ConfChange entries (etcd api: Cluster.MemberAdd / MemberRemove / MemberPromote /
 * MemberUpdate; Raft thesis §4.1, one member at a time).
 *
 * A ConfChange entry's data is this module's own JSON encoding of {@link ConfChangeBody} plus the proposer's request
 * ID (so the proposing member can answer its client). Every member checks the change against its membership when
 * the entry is applied ({@link validateConfChange}, etcd: RaftCluster.ValidateConfigurationChange): a change that
 * was valid when proposed may be refused at apply time (e.g. two concurrent adds of the same peer URL), and then it
 * changes nothing anywhere. Errors are names from src/errors.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { ErrorName } from '../errors';
import type { ConfChange } from '../raft';
import type { MemberInfo, Membership } from './membership';

/** etcd 3.4 allows at most this many learners (membership.maxLearners). */
export const MAX_LEARNERS = 1;

/** What one ConfChange entry asks for. IDs are positive safe integers (docs/architecture.md "Raft IDs"). */
export type ConfChangeBody =
  | { op: 'add'; member: MemberInfo }
  | { op: 'remove'; id: number }
  | { op: 'promote'; id: number }
  | { op: 'update'; id: number; peerUrls: string[] };

/** A decoded ConfChange entry: the change and the request ID its proposer waits on (0: nobody). */
export interface ConfChangeEntry {
  body: ConfChangeBody;
  requestId: number;
}

/** Encodes a ConfChange entry's data (UTF-8 JSON). */
export function encodeConfChange(e: ConfChangeEntry): Uint8Array {
  return Buffer.from(JSON.stringify(e), 'utf8');
}

/** Decodes a ConfChange entry's data; null when it is not one of ours (a corrupt or foreign entry). */
export function decodeConfChange(data: Uint8Array): ConfChangeEntry | null {
  try {
    const v = JSON.parse(Buffer.from(data).toString('utf8')) as ConfChangeEntry;
    if (v === null || typeof v !== 'object' || typeof v.body !== 'object' || v.body === null) return null;
    if (!['add', 'remove', 'promote', 'update'].includes(v.body.op)) return null;
    return { body: v.body, requestId: Number.isSafeInteger(v.requestId) ? v.requestId : 0 };
  } catch {
    return null;
  }
}

/** The ID a change is about. */
export function targetId(b: ConfChangeBody): number {
  return b.op === 'add' ? b.member.id : b.id;
}

/**
 * Checks a change against the current membership (etcd: ValidateConfigurationChange). Returns the client error
 * etcd 3.4 answers (via v3rpc togRPCError: removed or unknown ID → MemberNotFound), or null when it may be applied.
 */
export function validateConfChange(m: Membership, b: ConfChangeBody): ErrorName | null {
  const id = targetId(b);
  if ((m.removed ?? []).includes(id)) return 'MemberNotFound';
  const cur = m.members.find((x) => x.id === id);
  switch (b.op) {
    case 'add': {
      if (cur !== undefined) return 'MemberExist';
      const urls = new Set(m.members.flatMap((x) => x.peerUrls));
      if (b.member.peerUrls.some((u) => urls.has(u))) return 'PeerURLExist';
      if (b.member.isLearner && m.members.filter((x) => x.isLearner).length + 1 > MAX_LEARNERS) return 'TooManyLearners';
      return null;
    }
    case 'remove':
      return cur === undefined ? 'MemberNotFound' : null;
    case 'promote':
      if (cur === undefined) return 'MemberNotFound';
      return cur.isLearner ? null : 'MemberNotLearner';
    case 'update': {
      if (cur === undefined) return 'MemberNotFound';
      const urls = new Set(m.members.filter((x) => x.id !== id).flatMap((x) => x.peerUrls));
      return b.peerUrls.some((u) => urls.has(u)) ? 'PeerURLExist' : null;
    }
  }
}

/**
 * Applies a validated change to `m` in place and returns the Raft ConfChange to apply to the core, or null when
 * Raft's configuration does not change (a peer URL update).
 */
export function applyToMembership(m: Membership, b: ConfChangeBody): ConfChange | null {
  switch (b.op) {
    case 'add':
      m.members.push({ ...b.member, peerUrls: [...b.member.peerUrls], clientUrls: [...b.member.clientUrls] });
      return { type: b.member.isLearner ? 'addLearner' : 'addNode', nodeId: b.member.id };
    case 'remove':
      m.members = m.members.filter((x) => x.id !== b.id);
      m.removed = [...(m.removed ?? []), b.id];
      return { type: 'removeNode', nodeId: b.id };
    case 'promote': {
      const x = m.members.find((y) => y.id === b.id);
      if (x) x.isLearner = false;
      return { type: 'addNode', nodeId: b.id };
    }
    case 'update': {
      const x = m.members.find((y) => y.id === b.id);
      if (x) x.peerUrls = [...b.peerUrls];
      return null;
    }
  }
}

/**
 * A fresh member ID for MemberAdd: like etcd (peer URLs + cluster token + time), plus random bytes; 53 bits so it
 * stays a JS-safe integer, never 0, never a current or removed ID.
 */
export function newMemberId(m: Membership, peerUrls: readonly string[], nowMs: number = Date.now()): number {
  const taken = new Set([...m.members.map((x) => x.id), ...(m.removed ?? [])]);
  for (;;) {
    const d = createHash('sha1').update([...peerUrls].sort().join(',')).update(m.clusterToken).update(String(nowMs)).update(randomBytes(8)).digest();
    const id = (d.readUInt32BE(0) & 0x1f_ffff) * 0x1_0000_0000 + d.readUInt32BE(4);
    if (id !== 0 && !taken.has(id)) return id;
  }
}

/**
 * Validates MemberAdd/MemberUpdate peer URLs (etcd: types.NewURLs): each must be an http(s) URL of the form
 * scheme://host:port with no path. Returns false for an empty list.
 */
export function validPeerUrls(urls: readonly string[]): boolean {
  if (urls.length === 0) return false;
  for (const u of urls) {
    let p: URL;
    try {
      p = new URL(u);
    } catch {
      return false;
    }
    if (p.protocol !== 'http:' && p.protocol !== 'https:') return false;
    if (p.port === '' || (p.pathname !== '' && p.pathname !== '/')) return false;
  }
  return true;
}

/**
 * etcd's strict reconfiguration check before adding a voter (RaftCluster.IsReadyToAddVotingMember): the voters
 * that have started (published their name) must still be a quorum of the grown cluster.
 */
export function readyToAddVoter(m: Membership): boolean {
  const voters = m.members.filter((x) => !x.isLearner);
  const started = voters.filter((x) => x.name !== '').length;
  const total = voters.length + 1;
  if (started === 1 && total === 2) return true;
  return started >= Math.floor(total / 2) + 1;
}

/** etcd's check before removing voter `id` (RaftCluster.IsReadyToRemoveVotingMember). */
export function readyToRemoveVoter(m: Membership, id: number): boolean {
  const voters = m.members.filter((x) => !x.isLearner && x.id !== id);
  const started = voters.filter((x) => x.name !== '').length;
  return started >= Math.floor(voters.length / 2) + 1;
}

/**
 * etcd's learner readiness (EtcdServer.isLearnerReady): the learner's match index must be at least 90 % of the
 * leader's. `progress` is the leader's view (member ID → match index).
 */
export function learnerReady(progress: Map<number, { match: number }>, leaderId: number, learnerId: number): boolean {
  const l = progress.get(learnerId);
  if (l === undefined) return true; // unknown here: refused at apply time with etcd's error
  return l.match >= (progress.get(leaderId)?.match ?? 0) * 0.9;
}
