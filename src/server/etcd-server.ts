/**
 * EtcdServer: the wiring of one member (etcd: etcdserver.EtcdServer). It owns the Raft host loop, the WAL and
 * apply workers, the MVCC reader and the network listeners, and implements the narrow gateways the gRPC
 * layer calls (src/api/grpc/gateway.ts). Data flows one way: propose → Raft → WAL → commit → apply → result.
 */
import * as path from 'node:path';
import { WalFatalError } from '../wal/client';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log';
import type { ServerConfig } from './config';
import { etcdError, Errors } from '../errors';
import { alarmName } from '../wire/alarm';
import { EntryKind, encodeEntryData, decodeEntryData, encodeAuthedPayload, ENTRY_HEADER_BYTES, type ProposerIdentity } from '../wire/entry';
import { AuthOp } from '../wire/auth-mgmt';
import type { KvGateway, MaintenanceGateway, MemberInfo as ApiMember, StatusInfo } from '../api/grpc/gateway';
import type { RangeRequest, ResponseHeader } from '../wire/codec';
import { MemoryStorage, RawNode, StateType, seededRandom, type Entry, type Message } from '../raft';
import { RaftHost } from './raft-host';
import { PendingProposals } from './pending-proposals';
import { AppliedIndexWaiters } from './read-waiters';
import { RequestIdGenerator } from './request-ids';
import { bootstrapMembership, confStateOf, loadMembership, saveMembership, describeMembership, type Membership, MembershipError } from './membership';
import {
  encodeConfChange,
  learnerReady,
  newMemberId,
  readyToAddVoter,
  readyToRemoveVoter,
  validPeerUrls,
  type ConfChangeBody,
} from './conf-change';
import { encodeMembershipWire, joinExistingCluster } from './join';
import type { PeerSecurity } from '../transport';
import { idToHex } from './ids';
import { moveLeader } from './move-leader';
import { openDurableLog, ringBytesFor, type DurableLog } from './durable-log';
import { openStateMachine, readableWithin, type StateMachine } from './state-machine';
import type { HashKVResult } from '../mvcc/hash-kv';
import { flowCheck } from './flow-limits';
import { recoverHardState } from './recovered-state';
import { metrics } from '../metrics/registry';
import { Admission, Proposal, addsData, quotaExceeded, requestSizeCheck } from './admission';
import { ReadIndex } from './read-index';
import { ServerEvents } from './events';
import { MembershipApply } from './membership-apply';
import { Snapshotter, SNAP_TMP_SUBDIR } from './snapshotter'; // [snapshot]
import { hashStoreOffThread, snapshotStream } from '../snapshot/save';
import { ApplyFaultCode, ApplyWord } from '../apply/apply-status';
import { DiskReserve, Faults, MIN_DISK_RESERVE_BYTES, NoSpaceAlarm, healthOf } from './health';
import { ApplyWordTotals } from './apply-metrics';

/** etcd's version string reported by Status and /version. */
export const SERVER_VERSION = '3.4.23';
/** etcd's cluster version for a 3.4 cluster. */
export const CLUSTER_VERSION = '3.4.0';

/** etcd's request timeout: 5 s plus two election timeouts (etcd: config.ReqTimeout). */
export function requestTimeoutMs(electionTimeoutMs: number): number {
  return 5000 + 2 * electionTimeoutMs;
}

/** How long /health waits for its read through Raft (etcd: checkHealth's 1 s context). */
const HEALTH_READ_TIMEOUT_MS = 1000;

/** One etcetera member. Create with {@link EtcdServer.start}; stop with {@link EtcdServer.stop}. */
export class EtcdServer implements KvGateway, MaintenanceGateway {
  private readonly pending: PendingProposals;
  private readonly waiters: AppliedIndexWaiters;
  private readonly ids: RequestIdGenerator;
  private host!: RaftHost;
  /** Log compaction + InstallSnapshot (src/server/snapshotter.ts); peers.ts routes MsgSnap through it. [snapshot] */
  snapshots!: Snapshotter;
  private ticker: NodeJS.Timeout | null = null;
  private lead = 0;
  private isLeader = false;
  private term = 0;
  /** Linearizable reads: ReadIndex rounds and their waiters (src/server/read-index.ts). */
  private readonly reads: ReadIndex;
  /**
   * Write admission (src/server/admission.ts): stopped, learner, faults, size, disk reserve, quota, in this order.
   * Auth and flow-control checks are added here.
   */
  readonly admission = new Admission();
  private stopped = false;
  /** The data dir held no member when this process started (etcd's !memberInitialized: no initial corrupt check). */
  freshDataDir = false;
  private removedSelf = false;
  private attributesPublished = false;
  private readonly faults = new Faults();
  /** Free bytes the data dir's filesystem must keep: room for the largest commits of a few batches. */
  private readonly disk: DiskReserve;
  private readonly noSpace: NoSpaceAlarm;
  /** ConfChange and member-attribute entries, applied here on the main thread (src/server/membership-apply.ts). */
  private readonly memberApply: MembershipApply;
  private lastBackendSize = 0;
  /** Apply-worker counters accumulated across apply workers (src/server/apply-metrics.ts). */
  readonly applyTotals = new ApplyWordTotals();
  /**
   * Server state changes for the services layered on top (lease expiry, watch):
   * 'leader' (lead: number, isLeader: boolean, term: number) when the leader or this member's role changes;
   * 'applied' (appliedIndex: number) after each applied batch, once its results were delivered.
   */
  readonly events = new ServerEvents();
  /**
   * Called on the main thread for each committed Authenticate entry (index, AuthMgmt payload), in log order, on
   * every member: the auth host registers the entry's simple token (src/server/auth-host.ts).
   */
  onAuthenticateCommitted: ((index: number, payload: Uint8Array) => void) | null = null;
  /** Called with outgoing Raft messages (a peer transport, when there are peers). */
  sendToPeers: (msgs: Message[]) => void = () => {};

  private constructor(
    readonly config: ServerConfig,
    readonly logger: Logger,
    readonly membership: Membership,
    private readonly log: DurableLog,
    private readonly sm: StateMachine,
    private readonly storage: MemoryStorage,
  ) {
    this.pending = new PendingProposals(requestTimeoutMs(config.electionTimeoutMs));
    this.waiters = new AppliedIndexWaiters(sm.appliedIndex());
    this.ids = new RequestIdGenerator(membership.localId);
    this.memberApply = new MembershipApply({
      membership,
      memberDir: path.join(config.dataDir, 'member'),
      localName: config.name,
      advertiseClientUrls: config.advertiseClientUrls,
      logger,
      settle: (requestId, errorId) => this.pending.settle(requestId, errorId, new Uint8Array(0)),
      applyConfChange: (cc) => this.host.applyConfChange(cc),
      onChange: (m) => this.events.emit('membership', m),
      onRemovedSelf: () => this.onRemovedSelf(),
    });
    this.disk = new DiskReserve(config.dataDir, MIN_DISK_RESERVE_BYTES + 4 * config.maxRequestBytes);
    this.reads = new ReadIndex({
      send: (ctx) => this.host.readIndex(ctx),
      applied: this.waiters,
      timeoutMs: requestTimeoutMs(config.electionTimeoutMs),
      noLeader: () => this.lead === 0,
    });
    this.noSpace = new NoSpaceAlarm({
      localId: membership.localId,
      logger,
      propose: (kind, req) => this.propose(kind, req),
      alarms: () => this.reader.alarms(),
      canPropose: () => !this.stopped && this.lead !== 0,
      quotaBytes: config.quotaBackendBytes,
      backendSize: () => this.backendSize(),
    });
    this.admission
      .add('stopped', () => (this.stopped || this.removedSelf ? 'Stopped' : null))
      .add('learner', (p) => (p.kind !== EntryKind.MemberAttributes && this.isLearner() ? 'NotSupportedForLearner' : null))
      .add('faults', () => (this.faults.any ? this.faults.writeError() : null))
      .add('size', requestSizeCheck(config.maxRequestBytes))
      .add('flow', flowCheck({
        committedIndex: () => this.host.commitIndex(),
        appliedIndex: () => this.sm.appliedIndex(),
        pendingCount: () => this.pending.size,
        pendingBytes: () => this.pending.bytes,
      }))
      .add('disk', (p) => {
        if (!addsData(p.kind) || !this.disk.nearlyFull(p.bytes.length)) return null;
        this.noSpace.raise(); // a full disk is reported like an exceeded quota: NOSPACE alarm, /health false
        return 'NoSpace';
      })
      .add('quota', (p) => {
        if (!quotaExceeded(p, { quotaBytes: config.quotaBackendBytes, maxTxnOps: config.maxTxnOps, backendSize: () => this.backendSize() })) return null;
        // etcd v3rpc quotaKVServer / quotaLeaseServer: refuse and raise the NOSPACE alarm through Raft.
        this.noSpace.raise();
        return 'NoSpace';
      });
  }

  /**
   * Opens (or bootstraps) the member under `config.dataDir` and starts Raft and both workers (`peerSecurity`: TLS
   * for a joining member's membership query to https peer URLs).
   * Throws MembershipError (flags disagree with the data dir), ErrWalCorrupt (WAL damaged mid-log) and I/O errors.
   */
  static async start(config: ServerConfig, logger: Logger, peerSecurity?: PeerSecurity): Promise<EtcdServer> {
    const memberDir = path.join(config.dataDir, 'member');
    let membership = loadMembership(memberDir);
    const fresh = membership === null;
    if (membership === null) {
      const flags = {
        localName: config.name,
        initialCluster: config.initialCluster,
        advertisePeerUrls: config.initialAdvertisePeerUrls,
        advertiseClientUrls: config.advertiseClientUrls,
        clusterToken: config.initialClusterToken,
      };
      // etcd: a fresh member with --initial-cluster-state existing fetches the membership from the running cluster.
      membership = config.initialClusterState === 'existing' ? await joinExistingCluster({ ...flags, logger, peerSecurity }) : bootstrapMembership(flags);
    } else if (!membership.members.some((m) => m.id === membership!.localId) && (membership.removed ?? []).includes(membership.localId)) {
      throw new MembershipError('the member has been permanently removed from the cluster');
    }
    const ringBytes = ringBytesFor(config.maxRequestBytes);
    const log = await openDurableLog({ memberDir, membership, logger, ringCapacityBytes: ringBytes });
    if (fresh) saveMembership(memberDir, membership);
    const sm = await openStateMachine({ memberDir, membership, logger, ringBytes });
    const storage = new MemoryStorage();
    const server = new EtcdServer(config, logger, membership, log, sm, storage);
    server.freshDataDir = fresh;
    try {
      server.boot();
    } catch (e) {
      await log.close();
      await sm.close();
      throw e;
    }
    logger.info({ 'local-member-id': idToHex(membership.localId), membership: describeMembership(membership), 'applied-index': sm.appliedIndex() }, 'etcetera member started');
    return server;
  }

  private boot(): void {
    const replay = this.log.replay;
    const confState = confStateOf(this.membership);
    const voters = confState.voters;
    // The membership is the log's starting point (a snapshot holding the ConfState), re-derived from cluster.json on
    // every start rather than stored in the WAL: cluster.json holds every ConfChange up to its confIndex, and the
    // ConfChange entries replayed above it are applied again (src/server/conf-change.ts).
    if (replay.snapshot) this.storage.applySnapshot({ ...replay.snapshot, metadata: { ...replay.snapshot.metadata, confState } });
    else if (this.membership.joined) {
      // A member that joined a running cluster starts with an empty log: the leader's snapshot brings everything.
    } else {
      RawNode.bootstrap(this.storage, voters);
      if (confState.learners.length > 0) this.storage.applySnapshot({ ...this.storage.snapshot(), metadata: { ...this.storage.snapshot().metadata, confState } });
    }
    if (replay.entries.length > 0) this.storage.append(replay.entries);
    if (replay.hardState) this.storage.setHardState(replay.hardState);
    const recovered = recoverHardState(this.storage.initialState().hardState, this.sm.appliedIndex(), this.storage.lastIndex());
    this.storage.setHardState(recovered);
    const heartbeatTick = 1;
    const electionTick = Math.max(2, Math.round(this.config.electionTimeoutMs / this.config.heartbeatIntervalMs));
    const seed = randomBytes(4).readUInt32LE(0);
    const node = new RawNode({
      id: this.membership.localId,
      electionTick,
      heartbeatTick,
      storage: this.storage,
      applied: this.sm.appliedIndex(),
      preVote: true,
      checkQuorum: true,
      rand: seededRandom(seed),
      logger: (level, msg) => this.logger[level]({ raft: true }, msg),
    });
    this.term = node.status().term;
    // From here on only the RaftHost drives the core.
    this.host = new RaftHost(
      node,
      this.storage,
      this.log,
      { apply: (entries) => this.applyCommitted(entries), hasRoom: () => this.sm.hasRoom(), whenRoom: () => this.sm.whenRoom() },
      {
        onLeaderChange: (lead, state, term) => this.onLeaderChange(lead, state, term),
        onReadStates: (states) => this.reads.onReadStates(states),
        send: (msgs) => this.sendToPeers(msgs),
      },
      (datas) => this.onProposalsDropped(datas),
    );
    this.log.onDurable(() => this.host.persisted());
    // [snapshot] compaction every --snapshot-count applied entries; InstallSnapshot send/receive.
    this.snapshots = new Snapshotter({
      memberDir: path.join(this.config.dataDir, 'member'),
      snapshotCount: this.config.snapshotCount,
      maxWals: this.config.maxWals,
      logger: this.logger,
      storage: this.storage,
      log: this.log,
      sm: this.sm,
      commitIndex: () => this.host.status().commit,
      step: (m) => this.receive([m]),
      reportSnapshot: (id, ok) => this.reportSnapshot(id, ok),
      // The snapshot sent to a follower carries the membership (and its ConfState) as the sender applied it.
      confState: () => confStateOf(this.membership),
      membershipData: () => encodeMembershipWire(this.membership),
      onMembership: (data) => this.memberApply.adopt(data),
    });
    this.log.onFatal((e) => this.onWalFatal(e));
    this.sm.onFatal((message, code) => this.onApplyFatal(message, code));
    let lastApplied = this.sm.appliedIndex();
    this.sm.onApplied((appliedIndex, results, mvccEvents) => {
      for (const r of results) this.pending.settle(r.requestId, r.errorId, r.response);
      this.waiters.advance(appliedIndex);
      if (appliedIndex > lastApplied) metrics.etcd_server_proposals_applied_total.inc(appliedIndex - lastApplied);
      lastApplied = appliedIndex;
      metrics.etcd_server_proposals_pending.set(this.pending.size);
      this.applyTotals.sample(this.sm.applyStatus?.());
      // etcd raises NOSPACE at apply time when a write takes the backend over the quota: here when applied writes
      // made the size cross it (not on every batch, so a disarmed alarm stays down until the next write attempt).
      const size = this.backendSize();
      if (this.config.quotaBackendBytes >= 0 && size >= this.config.quotaBackendBytes && this.lastBackendSize < this.config.quotaBackendBytes) this.noSpace.raise();
      this.lastBackendSize = size;
      this.events.emit('applied', appliedIndex);
      this.snapshots.onApplied(appliedIndex); // [snapshot]
      this.events.emit('mvccEvents', mvccEvents);
    });
    this.sm.onRestored(() => this.events.emit('restored'));
    this.ticker = setInterval(() => this.tick(), this.config.heartbeatIntervalMs);
    if (voters.length === 1 && voters[0] === this.membership.localId && !this.membership.joined) {
      // A one-voter cluster need not wait an election timeout to lead (etcd fast-forwards its ticks too).
      this.host.campaign();
    }
  }

  /**
   * Hands committed entries to the apply worker, after taking out what the main thread applies itself:
   * ConfChanges and member attributes (etcd: membership updates are applied by the server, not the MVCC backend).
   */
  private applyCommitted(entries: Entry[]): void {
    for (const e of entries) {
      if (e.data.length > ENTRY_HEADER_BYTES && e.data[0] === EntryKind.AuthMgmt && e.data[ENTRY_HEADER_BYTES] === AuthOp.Authenticate) {
        this.onAuthenticateCommitted?.(e.index, e.data.subarray(ENTRY_HEADER_BYTES));
      }
    }
    const out = this.memberApply.takeOut(entries);
    metrics.etcd_server_proposals_committed_total.inc(entries.length);
    if (this.faults.applyFailed) return; // replayed from the WAL after a restart
    try {
      this.sm.apply(out);
    } catch (e) {
      // The worker died before its 'fatal' message reached us: same outcome. (A full queue pauses Raft instead.)
      this.onApplyFatal((e as Error).message, ApplyFaultCode.Internal);
    }
  }

  /**
   * This member was removed (etcd stops a removed member): after a moment for the commit to reach the others,
   * 'removed' is emitted and the CLI shuts the process down; meanwhile client requests fail with "server stopped".
   */
  private onRemovedSelf(): void {
    if (this.removedSelf) return;
    this.removedSelf = true;
    this.logger.warn({ 'local-member-id': idToHex(this.membership.localId) }, 'the member has been permanently removed from the cluster; shutting down');
    setTimeout(() => this.events.emit('removed'), 1000).unref();
  }

  /** A peer refused this member as removed from the cluster (it missed the commit of its own removal). */
  removedByPeers(): void {
    if (this.stopped || this.removedSelf) return;
    this.memberApply.markRemoved();
    this.onRemovedSelf();
  }

  /** True while this member is a learner (etcd: learners serve only Status and serializable Range). */
  isLearner(): boolean {
    return this.membership.members.find((m) => m.id === this.membership.localId)?.isLearner ?? false;
  }

  /** Proposes a membership change through Raft and resolves once this member applied it; rejects EtcdError. */
  private proposeConfChange(body: ConfChangeBody): Promise<void> {
    if (this.stopped || this.removedSelf) return Promise.reject(etcdError('Stopped'));
    const requestId = this.ids.next();
    const data = encodeConfChange({ body, requestId });
    return new Promise<void>((resolve, reject) => {
      if (!this.pending.add(requestId, Date.now(), () => resolve(), reject)) return;
      this.host.proposeConfChange(data, () => this.pending.fail(requestId, etcdError(this.host.status().lead === 0 ? 'NoLeader' : 'ProposalDropped')));
    });
  }

  private checkMembershipCall(): void {
    if (this.stopped || this.removedSelf) throw etcdError('Stopped');
    if (this.isLearner()) throw etcdError('NotSupportedForLearner');
  }

  /**
   * etcd api: Cluster.MemberAdd. `peerUrls` must be valid (MemberBadURLs); a voter needs enough started voters
   * (MemberNotEnoughStarted, etcd's strict reconfiguration check). Resolves with the new member and the member list
   * after the change was applied here; apply-time refusals are etcd's (MemberExist, PeerURLExist, TooManyLearners).
   */
  async addMember(peerUrls: string[], isLearner: boolean): Promise<{ member: ApiMember; members: ApiMember[] }> {
    this.checkMembershipCall();
    if (!validPeerUrls(peerUrls)) throw etcdError('MemberBadURLs');
    if (!isLearner && !readyToAddVoter(this.membership)) throw etcdError('MemberNotEnoughStarted');
    const id = newMemberId(this.membership, peerUrls);
    await this.proposeConfChange({ op: 'add', member: { id, name: '', peerUrls: [...peerUrls], clientUrls: [], isLearner } });
    return { member: { ID: id, name: '', peerURLs: [...peerUrls], clientURLs: [], isLearner }, members: this.members().members };
  }

  /** etcd api: Cluster.MemberRemove. Refuses to break the started quorum (MemberNotEnoughStarted); unknown ID: MemberNotFound. */
  async removeMember(id: number): Promise<ApiMember[]> {
    this.checkMembershipCall();
    const m = this.membership.members.find((x) => x.id === id);
    if (m !== undefined && !m.isLearner && !readyToRemoveVoter(this.membership, id)) throw etcdError('MemberNotEnoughStarted');
    await this.proposeConfChange({ op: 'remove', id });
    return this.members().members;
  }

  /**
   * etcd api: Cluster.MemberPromote. Only the leader knows whether the learner caught up: elsewhere this throws
   * NotLeader and the caller forwards the request to the leader (etcd forwards over the peer port). A learner
   * below 90 % of the leader's match index: LearnerNotReady; a voter: MemberNotLearner; unknown: MemberNotFound.
   */
  async promoteMember(id: number): Promise<ApiMember[]> {
    this.checkMembershipCall();
    const st = this.host.status();
    if (st.progress === undefined) throw etcdError('NotLeader');
    if (!learnerReady(st.progress, st.id, id)) throw etcdError('LearnerNotReady');
    await this.proposeConfChange({ op: 'promote', id });
    return this.members().members;
  }

  /** etcd api: Cluster.MemberUpdate (peer URLs). Unknown ID: MemberNotFound; a URL of another member: PeerURLExist. */
  async updateMember(id: number, peerUrls: string[]): Promise<ApiMember[]> {
    this.checkMembershipCall();
    if (!validPeerUrls(peerUrls)) throw etcdError('MemberBadURLs');
    await this.proposeConfChange({ op: 'update', id, peerUrls: [...peerUrls] });
    return this.members().members;
  }

  /** The leader's client URLs (for forwarding a promote), or [] when unknown. */
  leaderClientUrls(): string[] {
    return this.membership.members.find((m) => m.id === this.lead)?.clientUrls ?? [];
  }

  /** This member's membership as a joining member or a snapshot receiver adopts it. */
  membershipData(): Uint8Array {
    return encodeMembershipWire(this.membership);
  }

  /**
   * Publishes this member's client URLs through Raft so every member lists them (etcd: EtcdServer.publish),
   * retrying until it is committed.
   */
  private publishAttributes(): void {
    if (this.attributesPublished || this.stopped) return;
    const payload = Buffer.from(
      JSON.stringify({ id: this.membership.localId, name: this.config.name, clientUrls: this.config.advertiseClientUrls }),
    );
    this.propose(EntryKind.MemberAttributes, payload).then(
      () => {
        this.attributesPublished = true;
      },
      () => {
        if (!this.stopped) setTimeout(() => this.publishAttributes(), 500).unref();
      },
    );
  }

  private tick(): void {
    this.host.tick();
    this.reads.retry(Date.now());
    const expired = this.pending.expire(Date.now());
    if (expired > 0) metrics.etcd_server_proposals_failed_total.inc(expired);
  }

  private onLeaderChange(lead: number, state: StateType, term: number): void {
    const newLeader = lead !== this.lead && lead !== 0;
    if (newLeader) metrics.etcd_server_leader_changes_seen_total.inc();
    this.lead = lead;
    // etcd 3.4 linearizableReadLoop: a ReadIndex round outstanding when a new leader appears fails with the
    // retryable "leader changed" instead of waiting for an answer the old leader will never send.
    if (newLeader) this.reads.failAll('LeaderChanged');
    this.term = Math.max(this.term, term);
    this.isLeader = state === StateType.Leader;
    if (lead !== 0 && !this.attributesPublished) this.publishAttributes();
    this.events.emit('leader', lead, this.isLeader, this.term);
    metrics.etcd_server_has_leader.set(lead === 0 ? 0 : 1);
    metrics.etcd_server_is_leader.set(this.isLeader ? 1 : 0);
    this.logger.info({ leader: idToHex(lead), term, role: StateType[state] }, 'raft role changed');
  }

  /**
   * The WAL can no longer make anything durable (e.g. ENOSPC). Nothing written after this point could be
   * acknowledged, so writes fail at once with etcd's no-space error and /health turns false; reads keep working.
   * (etcd exits on a WAL write error; refusing writes keeps the data readable while the operator frees space.)
   */
  private onWalFatal(e: WalFatalError): void {
    if (!this.faults.walFailed(e)) return;
    this.logger.error({ error: e.message }, 'WAL failed; refusing writes');
    this.pending.failAll(etcdError(this.faults.writeError()));
  }

  /**
   * The apply worker stopped (e.g. ENOSPC or MDB_MAP_FULL in LMDB). Committed entries stay in the WAL and are
   * applied after a restart; until then writes fail with etcd's no-space error and /health is false.
   */
  private onApplyFatal(message: string, code: ApplyFaultCode): void {
    if (!this.faults.applyWorkerFailed(message, code)) return;
    this.logger.error({ error: message }, 'apply worker failed; refusing writes');
    this.pending.failAll(etcdError(this.faults.writeError()));
  }

  private onProposalsDropped(datas: Uint8Array[]): void {
    // With a leader known, Raft dropped them on purpose (leadership transfer, uncommitted-size limit): etcd answers
    // raft's own error. Without one, etcd 3.4 would block the proposal until its request timeout; failing at once
    // with "no leader" tells the client the same thing sooner.
    // The core's own view: the server's `lead` is only updated from the next Ready.
    const err = this.host.status().lead === 0 ? etcdError('NoLeader') : etcdError('ProposalDropped');
    for (const d of datas) {
      const e = decodeEntryData(d);
      if (e !== null) this.pending.fail(e.requestId, err);
    }
    metrics.etcd_server_proposals_failed_total.inc(datas.length);
  }

  /**
   * etcd api: KV.Put/DeleteRange/Txn/Compact (and lease, alarm, auth requests) through Raft, after the admission
   * checks. With `ai` (the caller's identity, etcd RequestHeader username + auth_revision) the entry is an
   * EntryKind.Authed wrapper so the apply worker checks permissions as that user. Rejects EtcdError (NoLeader,
   * Timeout, admission and apply errors).
   */
  propose(kind: EntryKind, request: Uint8Array, decoded?: unknown, ai?: ProposerIdentity | null): Promise<Uint8Array> {
    const refused = this.admission.admit(new Proposal(kind, request, decoded));
    if (refused !== null) return Promise.reject(refused);
    const requestId = this.ids.next();
    const data = ai ? encodeEntryData(EntryKind.Authed, requestId, encodeAuthedPayload(kind, ai.username, ai.revision, request)) : encodeEntryData(kind, requestId, request);
    return new Promise<Uint8Array>((resolve, reject) => {
      if (!this.pending.add(requestId, Date.now(), resolve, reject, data.length)) return;
      if (!this.host.propose(data)) this.pending.fail(requestId, etcdError('RequestTooManyRequests'));
    });
  }

  /** etcd linearizableReadNotify: resolves once a ReadIndex round confirmed leadership and the index is applied. */
  linearizableWait(): Promise<void> {
    if (this.stopped || this.removedSelf) return Promise.reject(etcdError('Stopped'));
    if (this.isLearner()) return Promise.reject(etcdError('NotSupportedForLearner'));
    return this.reads.wait();
  }

  /** Resolves once this member applied `index`; rejects Timeout after etcd's request timeout. */
  waitApplied(index: number): Promise<void> {
    if (this.sm.appliedIndex() >= index) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(etcdError('Timeout')), requestTimeoutMs(this.config.electionTimeoutMs));
      t.unref();
      if (!this.waiters.wait(index, () => { clearTimeout(t); resolve(); })) {
        clearTimeout(t);
        reject(etcdError('RequestTooManyRequests'));
      }
    });
  }

  /**
   * Null when {@link reader} can be read now; otherwise resolves when the running store swap (Defragment, snapshot
   * install) ends, or rejects EtcdError Timeout after the request timeout.
   */
  whenReadable(): Promise<void> | null {
    return readableWithin(this.sm, requestTimeoutMs(this.config.electionTimeoutMs));
  }

  /** The commit index this member knows (on the leader: the newest; O(1)). */
  commitIndex(): number {
    return this.host.commitIndex();
  }

  /** The last applied Raft index. */
  appliedIndex(): number {
    return this.sm.appliedIndex();
  }

  /** One apply status word (0 before the worker published it). */
  applyWord(w: ApplyWord): number {
    return this.sm.applyWord?.(w) ?? 0;
  }

  /** The auth store's record as this member applied it (src/auth/store.ts AuthRecord), undefined if never written. */
  authRecord(): unknown {
    return this.reader.authRecord();
  }

  /** Backend size compared with --quota-backend-bytes (etcd backend.Size(): the db file size). */
  private backendSize(): number {
    return this.sm.dbSizeBytes();
  }

  /**
   * etcd api: Maintenance.Alarm ACTIVATE / DEACTIVATE (`request` is the client's AlarmRequest bytes): applied
   * through Raft by every member's apply worker; resolves with the encoded AlarmResponse.
   */
  alarmChange(request: Uint8Array): Promise<Uint8Array> {
    return this.propose(EntryKind.Alarm, request);
  }

  /** etcd api: Maintenance.MoveLeader (src/server/move-leader.ts); never waits longer than etcd's request timeout. */
  moveLeader(targetId: number, waitMs: number): Promise<void> {
    if (this.isLeader) this.logger.info({ 'current-leader-member-id': idToHex(this.lead), 'transferee-member-id': idToHex(targetId) }, 'leadership transfer starting');
    const host = {
      localId: this.membership.localId,
      lead: () => this.lead,
      members: () => this.membership.members,
      transferLeader: (to: number) => this.host.transferLeader(to),
      events: this.events,
    };
    return moveLeader(host, targetId, Math.min(waitMs, requestTimeoutMs(this.config.electionTimeoutMs)));
  }

  /** Live keys (etcd_debugging_mvcc_keys_total) as the apply worker last published them. */
  liveKeys(): number {
    return this.sm.applyWord?.(ApplyWord.MvccKeys) ?? 0;
  }

  /** Bytes queued in each inter-thread ring (etcetera_ring_occupancy_bytes). */
  ringOccupancy(): Record<string, number> {
    const a = this.sm.ringUsedBytes?.() ?? { applyIn: 0, applyOut: 0 };
    return { walIn: this.log.ioStats?.().ringUsedBytes ?? 0, applyIn: a.applyIn, applyOut: a.applyOut };
  }

  /** Bytes the WAL worker wrote since it started (etcd_disk_wal_write_bytes_total). */
  walWriteBytes(): number {
    return this.log.ioStats?.().writeBytes ?? 0;
  }

  /** The current apply worker's status words. */
  applyStatus() {
    return this.sm.applyStatus?.();
  }

  /** etcd api: KV.Range. Linearizable reads wait for a ReadIndex round and the applied index; serializable ones do not. */
  range(req: RangeRequest): Promise<Uint8Array> {
    if (this.stopped || this.removedSelf) return Promise.reject(etcdError('Stopped'));
    if (req.serializable) return this.readNow(req);
    if (this.isLearner()) return Promise.reject(etcdError('NotSupportedForLearner'));
    return this.reads.wait().then(() => this.readNow(req));
  }

  private readNow(req: RangeRequest): Promise<Uint8Array> {
    // During a defragment or snapshot install the store is being swapped: wait for it (bounded) like etcd does.
    const swapping = readableWithin(this.sm, requestTimeoutMs(this.config.electionTimeoutMs));
    if (swapping !== null) return swapping.then(() => this.readNow(req));
    try {
      metrics.etcd_mvcc_range_total.inc();
      metrics.etcd_debugging_mvcc_range_total.inc();
      return Promise.resolve(this.sm.range(req, this.headerBase()));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private headerBase(): { clusterId: number; memberId: number; raftTerm: number } {
    return { clusterId: this.membership.clusterId, memberId: this.membership.localId, raftTerm: this.term };
  }

  private header(): ResponseHeader {
    return { ...this.headerBase(), revision: this.sm.currentRevision() };
  }

  /** True while this member is the Raft leader. */
  leader(): { lead: number; isLeader: boolean; term: number } {
    return { lead: this.lead, isLeader: this.isLeader, term: this.term };
  }

  /** The MVCC reader (main thread, synchronous LMDB reads). */
  get reader() {
    return this.sm.reader;
  }

  /** etcd HashByRev on a worker thread, never across a store swap (StateMachine.hashKVOffThread). */
  hashKVOffThread(revision: number): Promise<HashKVResult> {
    return this.sm.hashKVOffThread(revision);
  }

  /** Identity fields for response headers (the revision is the caller's). */
  identity(): { clusterId: number; memberId: number; raftTerm: number } {
    return this.headerBase();
  }

  /** etcd api: Maintenance.Status. */
  status(): StatusInfo {
    const st = this.host.status();
    return {
      header: this.header(),
      version: SERVER_VERSION,
      dbSize: this.sm.dbSizeBytes(),
      dbSizeInUse: this.sm.dbSizeInUseBytes(),
      leader: st.lead,
      raftIndex: st.commit,
      raftTerm: st.term,
      raftAppliedIndex: this.sm.appliedIndex(),
      // etcd 3.4 maintenanceServer.Status: "no leader", then each raised alarm in protobuf text form.
      errors: [...(this.lead === 0 ? [Errors.NoLeader.message] : []), ...this.alarmErrors()],
      isLearner: this.isLearner(),
    };
  }

  /**
   * Raised alarms in protobuf text form for Status.errors. Read from the store only when the apply worker says some
   * are raised; while the store is being swapped (defragment, snapshot install) it cannot be read: none listed.
   */
  private alarmErrors(): string[] {
    if ((this.sm.applyWord?.(ApplyWord.AlarmCount) ?? 1) === 0) return [];
    try {
      return this.reader.alarms().map((a) => `memberID:${a.memberID} alarm:${alarmName(a.alarm)} `);
    } catch {
      return [];
    }
  }

  /** etcd api: Cluster.MemberList. */
  members(): { header: ResponseHeader; members: ApiMember[] } {
    return {
      header: { ...this.headerBase(), revision: 0 }, // etcd 3.4 leaves the revision out of MemberList headers
      members: this.membership.members.map((m) => ({
        ID: m.id,
        name: m.name,
        peerURLs: m.peerUrls,
        clientURLs: m.id === this.membership.localId ? this.config.advertiseClientUrls : m.clientUrls,
        isLearner: m.isLearner,
      })),
    };
  }

  /** etcd api: Maintenance.Alarm (GET): the alarm store as this member applied it (read locally, not through Raft). */
  alarms(): { header: ResponseHeader; alarms: { memberID: number; alarm: number }[] } {
    return { header: this.header(), alarms: this.reader.alarms() };
  }

  /**
   * etcd api: Maintenance.Defragment — rewrites this member's LMDB file without its free pages (not through Raft,
   * as etcd). Resolves with etcd's empty DefragmentResponse. Rejects Stopped, or with the I/O error.
   */
  async defragment(): Promise<object> {
    if (this.stopped) throw etcdError('Stopped');
    const before = this.sm.dbSizeBytes();
    this.logger.info({ 'db-size-bytes': before }, 'starting defragment');
    await this.sm.defragment();
    this.lastBackendSize = this.backendSize();
    this.logger.info({ 'db-size-bytes-before': before, 'db-size-bytes-after': this.lastBackendSize }, 'finished defragment');
    return {};
  }

  /** etcd api: Maintenance.HashKV — like etcd, hashes this member's applied store with no Raft round. */
  async hashKV(revision: number): Promise<{ header: ResponseHeader; hash: number; compactRevision: number }> {
    if (this.stopped) throw etcdError('Stopped');
    const r = this.reader.hashKV(revision);
    return { header: { ...this.headerBase(), revision: r.currentRevision }, hash: r.hash, compactRevision: r.compactRevision };
  }

  /**
   * etcd api: Maintenance.Hash — CRC-32C of this member's applied store as etcd 3.4's backend (every bucket but
   * `meta`/`consistent_index`; src/snapshot/backend-hash.ts), on a worker thread, no Raft round, as etcd.
   */
  async hash(): Promise<{ header: ResponseHeader; hash: number }> {
    if (this.stopped) throw etcdError('Stopped');
    const m = this.membership;
    const r = await hashStoreOffThread(path.join(this.config.dataDir, 'member'), { members: m.members, removed: m.removed ?? [] });
    return { header: { ...this.headerBase(), revision: r.revision }, hash: r.hash };
  }

  /** etcd api: Maintenance.Snapshot — this member's applied store as etcd 3.4's bbolt backend (src/snapshot/save.ts). */
  async snapshot(): Promise<AsyncIterable<{ remainingBytes: number; blob: Uint8Array }>> {
    if (this.stopped) throw etcdError('Stopped');
    const memberDir = path.join(this.config.dataDir, 'member');
    const m = this.membership;
    const t0 = Date.now();
    const s = await snapshotStream(memberDir, path.join(memberDir, SNAP_TMP_SUBDIR), { members: m.members, removed: m.removed ?? [] });
    this.logger.info({ 'size-bytes': s.sizeBytes, revision: s.revision, took: `${Date.now() - t0}ms` }, 'sending database snapshot to client');
    return s.chunks;
  }

  /** Health as /health reports it (etcd: etcdhttp checkHealth: a leader and no alarms). */
  health(): { health: boolean; reason: string } {
    return healthOf({ stopped: this.stopped, faults: this.faults, alarms: () => this.reader.alarms(), lead: this.lead });
  }

  /**
   * /health as etcd 3.4 answers it (etcdhttp checkHealth): the checks of {@link health}, then a read through Raft
   * that must finish within HEALTH_READ_TIMEOUT_MS (etcd does a quorum GET; here a ReadIndex round up to the
   * applied index), so a member that knows a leader but cannot reach a quorum reports itself unhealthy.
   */
  async healthCheck(): Promise<{ health: boolean; reason: string }> {
    const h = this.health();
    if (!h.health) return h;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), HEALTH_READ_TIMEOUT_MS);
    });
    try {
      const ok = await Promise.race([this.reads.wait().then(() => true, () => false), timedOut]);
      return ok ? h : { health: false, reason: 'RAFT READ FAILED' };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Feeds Raft messages received from peers. */
  receive(msgs: Message[]): void {
    if (this.stopped) return;
    for (const m of msgs) this.host.step(m);
  }

  /** The transport could not deliver to `id`: Raft drops that follower to probe state (etcd: ReportUnreachable). */
  reportUnreachable(id: number): void {
    if (!this.stopped) this.host.reportUnreachable(id);
  }

  /** A snapshot send to `id` finished (etcd: ReportSnapshot). */
  reportSnapshot(id: number, ok: boolean): void {
    if (!this.stopped) this.host.reportSnapshot(id, ok);
  }

  /** Stops ticking, fails pending requests with "server stopped", closes both workers (flushing LMDB). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.ticker) clearInterval(this.ticker);
    this.snapshots?.stop(); // [snapshot]
    this.pending.failAll(etcdError('Stopped'));
    this.reads.failAll('Stopped');
    this.host?.stop();
    await this.log.close();
    await this.sm.close();
  }
}


