/**
 * The cluster's static membership: who the members are, their IDs and URLs (etcd: membership.RaftCluster).
 *
 * Bootstrap (etcd: --initial-cluster, --initial-cluster-token, --initial-cluster-state new) derives every ID
 * deterministically, so all members agree without talking. The result is written once to
 * `<data-dir>/member/cluster.json` (atomically: temp file, fsync, rename, fsync dir); a restarted member
 * reads it back and ignores the --initial-* flags, as etcd does once it has a data dir.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { clusterIdFor, idToHex, memberIdFor } from './ids';

/** One member as the Cluster API reports it. */
export interface MemberInfo {
  id: number;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

/** The persisted membership. */
export interface Membership {
  clusterId: number;
  clusterToken: string;
  localId: number;
  members: MemberInfo[];
  /** IDs removed by a ConfChange; never reused (etcd: ErrIDRemoved). Absent in files written before reconfiguration. */
  removed?: number[];
  /**
   * Raft index of the last ConfChange entry applied to this membership (0/absent: none). A replayed ConfChange at
   * or below it is skipped, so re-applying the WAL tail after a crash is idempotent.
   */
  confIndex?: number;
  /**
   * True for a member that joined a running cluster (`--initial-cluster-state existing`): its Raft log starts
   * empty and is filled by the leader's snapshot, instead of being bootstrapped from the member list.
   */
  joined?: boolean;
}

/** Raft's view of a membership: the IDs of voters and learners. */
export function confStateOf(m: Membership): { voters: number[]; learners: number[] } {
  const ids = (learner: boolean): number[] => m.members.filter((x) => x.isLearner === learner).map((x) => x.id).sort((a, b) => a - b);
  return { voters: ids(false), learners: ids(true) };
}

/** Raised when the flags and the data dir disagree; the message is shown to the operator as is. */
export class MembershipError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MembershipError';
  }
}

const FILE_NAME = 'cluster.json';

/** Path of the membership file under a member dir. */
export function membershipPath(memberDir: string): string {
  return path.join(memberDir, FILE_NAME);
}

/**
 * Computes a new cluster's membership from the bootstrap flags.
 * `initialCluster`: [{name, peerUrls}]; `localName` must be in it and its peer URLs must equal
 * `advertisePeerUrls` (etcd refuses a mismatch). Throws MembershipError with etcd-like wording.
 */
export function bootstrapMembership(opts: {
  localName: string;
  initialCluster: { name: string; peerUrls: string[] }[];
  advertisePeerUrls: string[];
  advertiseClientUrls: string[];
  clusterToken: string;
}): Membership {
  const names = new Set<string>();
  const members: MemberInfo[] = [];
  for (const m of opts.initialCluster) {
    if (names.has(m.name)) throw new MembershipError(`member name ${m.name} is duplicated in --initial-cluster`);
    names.add(m.name);
    members.push({ id: memberIdFor(m.peerUrls, opts.clusterToken), name: m.name, peerUrls: [...m.peerUrls], clientUrls: [], isLearner: false });
  }
  const ids = new Set(members.map((m) => m.id));
  if (ids.size !== members.length) throw new MembershipError('--initial-cluster has two members with the same peer URLs');
  const local = members.find((m) => m.name === opts.localName);
  if (local === undefined) {
    throw new MembershipError(`couldn't find local name "${opts.localName}" in the initial cluster configuration`);
  }
  const want = [...opts.advertisePeerUrls].sort().join(',');
  const have = [...local.peerUrls].sort().join(',');
  if (want !== have) {
    throw new MembershipError(
      `--initial-cluster has ${opts.localName}=${have} but missing from --initial-advertise-peer-urls=${want}`,
    );
  }
  local.clientUrls = [...opts.advertiseClientUrls];
  return {
    clusterId: clusterIdFor(members.map((m) => m.id), opts.clusterToken),
    clusterToken: opts.clusterToken,
    localId: local.id,
    members,
  };
}

/** Reads the membership of an existing data dir, or null if there is none. Throws on a malformed file. */
export function loadMembership(memberDir: string): Membership | null {
  const p = membershipPath(memberDir);
  if (!fs.existsSync(p)) return null;
  const parsed = JSON.parse(fs.readFileSync(p, 'utf8')) as Membership;
  if (!Number.isSafeInteger(parsed.clusterId) || !Number.isSafeInteger(parsed.localId) || !Array.isArray(parsed.members)) {
    throw new MembershipError(`${p} is malformed`);
  }
  return parsed;
}

/** Writes the membership durably (temp file + fsync + rename + dir fsync). */
export function saveMembership(memberDir: string, m: Membership): void {
  fs.mkdirSync(memberDir, { recursive: true });
  const p = membershipPath(memberDir);
  const tmp = `${p}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, JSON.stringify(m, null, 2));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, p);
  const dfd = fs.openSync(memberDir, 'r');
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
}

/** Describes a membership for a log line. */
export function describeMembership(m: Membership): string {
  return `cluster ${idToHex(m.clusterId)}: ${m.members.map((x) => `${x.name}=${idToHex(x.id)}`).join(', ')}`;
}
