/**
 * The Maintenance capability of a member (etcd api: etcdserverpb.Maintenance, etcd 3.4 v3rpc/maintenance.go):
 * Status, Alarm (GET locally, ACTIVATE/DEACTIVATE through Raft), Defragment, Hash, HashKV, Snapshot and MoveLeader,
 * plus the counters the metrics read (live keys, ring occupancy, WAL bytes). None of these go through Raft except
 * the alarm changes: like etcd, each answers from this member's applied store.
 *
 * It sees the member only through {@link MaintenanceHost}; the server (src/server/etcd-server.ts) wires it.
 */
import * as path from 'node:path';
import type { Logger } from '../log';
import { etcdError, Errors } from '../errors';
import { alarmName } from '../wire/alarm';
import { EntryKind, type Propose } from '../wire/entry';
import type { ResponseHeader } from '../wire/codec';
import type { MaintenanceGateway, StatusInfo } from '../api/grpc/gateway';
import type { Cluster } from './cluster';
import { ApplyWord } from '../apply/apply-status';
import { hashStoreOffThread, snapshotStream } from '../snapshot/save';
import { SNAP_TMP_SUBDIR } from './snapshotter';
import type { StateMachine } from './state-machine';
import type { Membership } from './membership';
import { idToHex } from './ids';
import { moveLeader, type MoveLeaderHost } from './move-leader';

/** etcd's version string reported by Status and /version. */
export const SERVER_VERSION = '3.4.23';
/** etcd's cluster version for a 3.4 cluster. */
export const CLUSTER_VERSION = '3.4.0';

/** What maintenance needs of the member. */
export interface MaintenanceHost {
  readonly logger: Logger;
  /** `<data-dir>/member` (the MVCC environment and the snapshot scratch dir live under it). */
  readonly memberDir: string;
  readonly membership: Membership;
  /** The state machine (applied store, its sizes, the apply worker's words). */
  readonly sm: Pick<StateMachine, 'dbSizeBytes' | 'dbSizeInUseBytes' | 'appliedIndex' | 'currentRevision' | 'defragment' | 'hashKVOffThread' | 'withStoreEnv' | 'reader' | 'applyWord' | 'applyStatus' | 'ringUsedBytes'>;
  /** WAL worker counters (bytes in its ring, bytes written). */
  walStats(): { ringUsedBytes: number; writeBytes: number } | undefined;
  /** The Raft core's view: leader (0: none), commit index and term. */
  raftStatus(): { lead: number; commit: number; term: number };
  /** Response-header identity (cluster, member, Raft term). */
  identity(): { clusterId: number; memberId: number; raftTerm: number };
  /** True once the member stopped (every call then rejects Stopped). */
  stopped(): boolean;
  isLearner(): boolean;
  propose: Propose;
  /** What MoveLeader needs (src/server/move-leader.ts), minus the local ID. */
  moveLeaderHost: Omit<MoveLeaderHost, 'localId'>;
  /** etcd's request timeout (ms): the longest MoveLeader wait. */
  requestTimeoutMs: number;
  /** Called after a defragment with the new backend size (bytes), so the quota alarm compares against it. */
  onDefragmented(sizeBytes: number): void;
}

/** One member's Maintenance service (plus the metric readings of its workers). */
export class Maintenance {
  constructor(private readonly host: MaintenanceHost) {}

  private header(revision = this.host.sm.currentRevision()): ResponseHeader {
    return { ...this.host.identity(), revision };
  }

  private checkRunning(): void {
    if (this.host.stopped()) throw etcdError('Stopped');
  }

  /** etcd api: Maintenance.Status (etcd 3.4 maintenanceServer.Status: errors are "no leader" then the alarms). */
  status(): StatusInfo {
    const st = this.host.raftStatus();
    const sm = this.host.sm;
    return {
      header: this.header(),
      version: SERVER_VERSION,
      dbSize: sm.dbSizeBytes(),
      dbSizeInUse: sm.dbSizeInUseBytes(),
      leader: st.lead,
      raftIndex: st.commit,
      raftTerm: st.term,
      raftAppliedIndex: sm.appliedIndex(),
      errors: [...(st.lead === 0 ? [Errors.NoLeader.message] : []), ...this.alarmErrors()],
      isLearner: this.host.isLearner(),
    };
  }

  /**
   * Raised alarms in protobuf text form for Status.errors. Read from the store only when the apply worker says some
   * are raised; while the store is being swapped (defragment, snapshot install) it cannot be read: none listed.
   */
  private alarmErrors(): string[] {
    if ((this.host.sm.applyWord?.(ApplyWord.AlarmCount) ?? 1) === 0) return [];
    try {
      return this.host.sm.reader.alarms().map((a) => `memberID:${a.memberID} alarm:${alarmName(a.alarm)} `);
    } catch {
      return [];
    }
  }

  /** etcd api: Maintenance.Alarm (GET): the alarm store as this member applied it (read locally, not through Raft). */
  alarms(): { header: ResponseHeader; alarms: { memberID: number; alarm: number }[] } {
    return { header: this.header(), alarms: this.host.sm.reader.alarms() };
  }

  /**
   * etcd api: Maintenance.Alarm ACTIVATE / DEACTIVATE (`request` is the client's AlarmRequest bytes): applied
   * through Raft by every member's apply worker; resolves with the encoded AlarmResponse; rejects EtcdError.
   */
  alarmChange(request: Uint8Array): Promise<Uint8Array> {
    return this.host.propose(EntryKind.Alarm, request);
  }

  /**
   * etcd api: Maintenance.Defragment — rewrites this member's LMDB file without its free pages (not through Raft,
   * as etcd). Resolves with etcd's empty DefragmentResponse. Rejects Stopped, or with the I/O error.
   */
  async defragment(): Promise<object> {
    this.checkRunning();
    const before = this.host.sm.dbSizeBytes();
    this.host.logger.info({ 'db-size-bytes': before }, 'starting defragment');
    await this.host.sm.defragment();
    const after = this.host.sm.dbSizeBytes();
    this.host.onDefragmented(after);
    this.host.logger.info({ 'db-size-bytes-before': before, 'db-size-bytes-after': after }, 'finished defragment');
    return {};
  }

  /** etcd api: Maintenance.HashKV — like etcd, hashes this member's applied store with no Raft round. */
  async hashKV(revision: number): Promise<{ header: ResponseHeader; hash: number; compactRevision: number }> {
    this.checkRunning();
    const r = await this.host.sm.hashKVOffThread(revision);
    return { header: this.header(r.currentRevision), hash: r.hash, compactRevision: r.compactRevision };
  }

  /**
   * etcd api: Maintenance.Hash — CRC-32C of this member's applied store as etcd 3.4's backend (every bucket but
   * `meta`/`consistent_index`; src/snapshot/backend-hash.ts), on a worker thread, no Raft round, as etcd.
   */
  async hash(): Promise<{ header: ResponseHeader; hash: number }> {
    this.checkRunning();
    const m = this.host.membership;
    const r = await this.host.sm.withStoreEnv(() => hashStoreOffThread(this.host.memberDir, { members: m.members, removed: m.removed ?? [] }));
    return { header: this.header(r.revision), hash: r.hash };
  }

  /** etcd api: Maintenance.Snapshot — this member's applied store as etcd 3.4's bbolt backend (src/snapshot/save.ts). */
  async snapshot(): Promise<AsyncIterable<{ remainingBytes: number; blob: Uint8Array }>> {
    this.checkRunning();
    const memberDir = this.host.memberDir;
    const m = this.host.membership;
    const t0 = Date.now();
    // Only the export reads the store (into a scratch file the chunks are then read from): it must not run across a
    // defragment's or snapshot install's swap.
    const s = await this.host.sm.withStoreEnv(() => snapshotStream(memberDir, path.join(memberDir, SNAP_TMP_SUBDIR), { members: m.members, removed: m.removed ?? [] }));
    this.host.logger.info({ 'size-bytes': s.sizeBytes, revision: s.revision, took: `${Date.now() - t0}ms` }, 'sending database snapshot to client');
    return s.chunks;
  }

  /** etcd api: Maintenance.MoveLeader (src/server/move-leader.ts); never waits longer than etcd's request timeout. */
  moveLeader(targetId: number, waitMs: number): Promise<void> {
    const h = this.host.moveLeaderHost;
    const lead = h.lead();
    if (lead === this.host.membership.localId) {
      this.host.logger.info({ 'current-leader-member-id': idToHex(lead), 'transferee-member-id': idToHex(targetId) }, 'leadership transfer starting');
    }
    return moveLeader({ ...h, localId: this.host.membership.localId }, targetId, Math.min(waitMs, this.host.requestTimeoutMs));
  }

  /** Live keys (etcd_debugging_mvcc_keys_total) as the apply worker last published them. */
  liveKeys(): number {
    return this.host.sm.applyWord?.(ApplyWord.MvccKeys) ?? 0;
  }

  /** Bytes queued in each inter-thread ring (etcetera_ring_occupancy_bytes). */
  ringOccupancy(): Record<string, number> {
    const a = this.host.sm.ringUsedBytes?.() ?? { applyIn: 0, applyOut: 0 };
    return { walIn: this.host.walStats()?.ringUsedBytes ?? 0, applyIn: a.applyIn, applyOut: a.applyOut };
  }

  /** Bytes the WAL worker wrote since it started (etcd_disk_wal_write_bytes_total). */
  walWriteBytes(): number {
    return this.host.walStats()?.writeBytes ?? 0;
  }

  /** The current apply worker's status words (undefined before it started). */
  applyStatus(): ReturnType<NonNullable<StateMachine['applyStatus']>> | undefined {
    return this.host.sm.applyStatus?.();
  }
}

/**
 * The Maintenance and Cluster services' view of the member (src/api/grpc/gateway.ts MaintenanceGateway): the
 * calls of the two capabilities, bound.
 */
export function maintenanceGateway(m: Maintenance, c: Pick<Cluster, 'members' | 'addMember' | 'removeMember' | 'promoteMember' | 'updateMember' | 'leaderClientUrls' | 'isLearner'>): MaintenanceGateway {
  return {
    status: () => m.status(),
    alarms: () => m.alarms(),
    alarmChange: (r) => m.alarmChange(r),
    hashKV: (rev) => m.hashKV(rev),
    hash: () => m.hash(),
    snapshot: () => m.snapshot(),
    defragment: () => m.defragment(),
    moveLeader: (id, waitMs) => m.moveLeader(id, waitMs),
    members: () => c.members(),
    addMember: (urls, learner) => c.addMember(urls, learner),
    removeMember: (id) => c.removeMember(id),
    promoteMember: (id) => c.promoteMember(id),
    updateMember: (id, urls) => c.updateMember(id, urls),
    leaderClientUrls: () => c.leaderClientUrls(),
    isLearner: () => c.isLearner(),
  };
}
