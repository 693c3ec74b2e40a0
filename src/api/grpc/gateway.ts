/**
 * What the gRPC layer sees of the server (docs/architecture.md "KvGateway"). The server wiring
 * (src/server) implements these interfaces; the gRPC services only validate, forward and answer.
 */
import type { EntryKind, Propose, ProposeWith } from '../../wire/entry';
import type { RangeRequest, ResponseHeader } from '../../wire/codec';
import type { EtcdError } from '../../errors';
import type { AuthInfo } from '../../auth/store';
import type { AuthOp } from '../../auth/ops';
import type { MemberEventSource } from '../../member-events';

/** Key-value access: writes through Raft, reads from the MVCC reader. */
export interface KvGateway {
  /**
   * Proposes a validated write through Raft. `request` is the client's protobuf request bytes, unchanged
   * (PutRequest / DeleteRangeRequest / TxnRequest / CompactionRequest for the matching `kind`).
   * Resolves with the apply worker's encoded response (PutResponse etc., header included);
   * rejects with an EtcdError (src/errors.ts) such as NoLeader, Timeout, Compacted, NoSpace or RequestTooLarge (the
   * size limit is the server's admission check). `decoded` is the same request already decoded by the caller, so
   * the server's admission does not decode it again.
   */
  propose: Propose;
  /** {@link propose} with a callback (the KV handlers' path without auth; no promise per request). Optional. */
  proposeWith?: ProposeWith;
  /**
   * Serves a validated range: linearizable (ReadIndex wait) unless `req.serializable`.
   * Resolves with the encoded RangeResponse (header included); rejects with an EtcdError.
   */
  range(req: RangeRequest): Promise<Uint8Array>;
  /**
   * Optional: true while an alarm makes the apply worker refuse writes (NOSPACE, CORRUPT) before it checks
   * permissions; a write the admission check denies is then proposed anyway, so the client gets etcd's answer.
   */
  writesRefusedByAlarm?(): boolean;
}

/**
 * The member as every service sees it (src/server/etcd-server.ts implements it): the KV gateway, the leader and
 * header identity, the leader's client URLs (for the one leader-forwarding path, src/api/grpc/forward.ts) and the
 * typed events (src/member-events.ts). Each service declares the part it uses as a `Pick` of this.
 */
export interface MemberSurface extends KvGateway {
  /** The leader this member knows of (0: none), whether it is this member, and the Raft term. */
  leader(): { lead: number; isLeader: boolean; term: number };
  /** Identity fields for response headers (the revision is the caller's). */
  identity(): { clusterId: number; memberId: number; raftTerm: number };
  /** The known leader's client URLs ([] when no leader is known or it published none yet). */
  leaderClientUrls(): string[];
  readonly events: MemberEventSource;
}

/** One member as Cluster.MemberList shows it (etcd api: etcdserverpb.Member; IDs below 2^53). */
export interface MemberInfo {
  ID: number;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

/** Maintenance.Status's answer (etcd api: etcdserverpb.StatusResponse; sizes in bytes). */
export interface StatusInfo {
  header: ResponseHeader;
  version: string;
  dbSize: number;
  dbSizeInUse: number;
  leader: number;
  raftIndex: number;
  raftTerm: number;
  raftAppliedIndex: number;
  errors: string[];
  isLearner: boolean;
}

/** Maintenance.HashKV's answer (etcd api: etcdserverpb.HashKVResponse). */
export interface HashKVInfo {
  header: ResponseHeader;
  hash: number;
  compactRevision: number;
}

/** Maintenance and Cluster reads. Synchronous ones are answered from in-memory state on the main thread. */
export interface MaintenanceGateway {
  /** Current status of this member (etcd api: Maintenance.Status). */
  status(): StatusInfo;
  /** Cluster membership (etcd api: Cluster.MemberList). */
  members(): { header: ResponseHeader; members: MemberInfo[] };
  /** Raised alarms; `alarm` is etcdserverpb.AlarmType (1 NOSPACE, 2 CORRUPT) (etcd api: Maintenance.Alarm GET). */
  alarms(): { header: ResponseHeader; alarms: { memberID: number; alarm: number }[] };
  /** Optional: hash of the MVCC keyspace up to `revision` (0 = current); rejects with EtcdError (Compacted, FutureRev). */
  hashKV?(revision: number): Promise<HashKVInfo>;
  /**
   * Optional: hash of the member's whole backend as etcd 3.4 would store it, members with the same applied history
   * agree (etcd api: Maintenance.Hash); the header's revision is the store revision hashed.
   */
  hash?(): Promise<{ header: ResponseHeader; hash: number }>;
  /**
   * Optional: Maintenance.Alarm ACTIVATE / DEACTIVATE through Raft (`request`: the client's AlarmRequest bytes);
   * resolves with the encoded AlarmResponse. Without it those actions answer Unimplemented.
   */
  alarmChange?(request: Uint8Array): Promise<Uint8Array>;
  /**
   * Optional: etcd api Maintenance.Snapshot — the member's state as etcd 3.4's bbolt backend, as the chunks the
   * stream sends (`remainingBytes` after each, then the SHA-256 with 0; src/snapshot/save.ts). Ending the iteration
   * early releases what it holds. Without it Snapshot answers Unimplemented.
   */
  snapshot?(): Promise<AsyncIterable<{ remainingBytes: number; blob: Uint8Array }>>;
  /** Optional: defragments the backend, resolving with etcd's empty DefragmentResponse; without it Defragment is an immediate no-op success. */
  defragment?(): Promise<object>;
  /**
   * Optional: Maintenance.MoveLeader (src/server/move-leader.ts). Resolves once this member sees `targetId` (a
   * member ID) as leader, waiting at most `waitMs` ms; rejects with EtcdError NotLeader, BadLeaderTransferee or
   * TimeoutLeaderTransfer. Resolves with nothing: etcd 3.4 answers an empty MoveLeaderResponse (no header).
   * Without it MoveLeader answers Unimplemented.
   */
  moveLeader?(targetId: number, waitMs: number): Promise<void>;
  /**
   * Optional runtime reconfiguration (etcd api: Cluster.MemberAdd/Remove/Promote/Update; src/server/conf-change.ts).
   * Each resolves once the change was applied by this member; rejects with etcd's EtcdError (MemberExist,
   * PeerURLExist, MemberNotFound, MemberNotLearner, LearnerNotReady, TooManyLearners, MemberNotEnoughStarted,
   * MemberBadURLs, NotSupportedForLearner, NoLeader, Timeout). promoteMember rejects NotLeader on a follower: the
   * service forwards the call to the leader's client URLs ({@link leaderClientUrls}).
   */
  addMember?(peerUrls: string[], isLearner: boolean): Promise<{ member: MemberInfo; members: MemberInfo[] }>;
  removeMember?(id: number): Promise<MemberInfo[]>;
  promoteMember?(id: number): Promise<MemberInfo[]>;
  updateMember?(id: number, peerUrls: string[]): Promise<MemberInfo[]>;
  leaderClientUrls?(): string[];
  /** True while this member is a learner: it then answers only Status and serializable Range (etcd 3.4). */
  isLearner?(): boolean;
}

/**
 * etcd's auth as the gRPC layer sees it (src/server/auth-host.ts): the caller's identity, admission checks and the
 * Auth service. Every check returns null when allowed, else the EtcdError to answer.
 */
export interface AuthGateway {
  /** True while auth is enabled. */
  readonly enabled: boolean;
  /**
   * The caller's identity from its token (metadata) or, with --client-cert-auth, its certificate CN; null without
   * credentials. Throws (or rejects) EtcdError InvalidAuthToken for an unknown, expired or badly signed token.
   */
  identify(token: string | undefined, certCommonName: string | null): AuthInfo | null | Promise<AuthInfo | null>;
  /** Read permission on a key range (Range, Watch). */
  rangeError(ai: AuthInfo | null, r: { key?: Uint8Array | null; rangeEnd?: Uint8Array | null }): EtcdError | null;
  /** Permissions of a write (Put, DeleteRange, Txn: every compare and op). */
  writeError(kind: EntryKind, ai: AuthInfo | null, req: unknown): EtcdError | null;
  /** A read admitted under an auth revision that changed meanwhile (AuthOldRevision). */
  staleError(ai: AuthInfo | null): EtcdError | null;
  /** Root only (maintenance and membership RPCs). */
  adminError(ai: AuthInfo | null): EtcdError | null;
  /** etcd api: Auth.Authenticate; resolves with the encoded AuthenticateResponse. */
  authenticate(name: string, password: string): Promise<Uint8Array>;
  /** Every other Auth RPC through Raft; `request` is the client's bytes; resolves with the encoded response. */
  manage(op: AuthOp, request: Uint8Array, ai: AuthInfo | null): Promise<Uint8Array>;
}
