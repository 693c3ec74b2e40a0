/**
 * EtcdServer: the wiring of one member (etcd: etcdserver.EtcdServer). It owns the Raft host loop, the WAL and
 * apply workers, the MVCC reader and the network listeners, and implements the narrow gateways the gRPC
 * layer calls (src/api/grpc/gateway.ts). Data flows one way: propose → Raft → WAL → commit → apply → result.
 */
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log';
import type { ServerConfig } from './config';
import { etcdError } from '../errors';
import { EntryKind, type Propose, type ProposeWith } from '../wire/entry';
import { ALARM_CORRUPT, ALARM_NOSPACE } from '../wire/alarm';
import type { MemberSurface } from '../api/grpc/gateway';
import type { RangeRequest } from '../wire/codec';
import { MemoryStorage, type Message } from '../raft';
import { RaftHost } from './raft-host';
import { PendingProposals } from './pending-proposals';
import { RequestIdGenerator } from './request-ids';
import { bootstrapMembership, confStateOf, loadMembership, saveMembership, describeMembership, type Membership, MembershipError } from './membership';
import { encodeMembershipWire, joinExistingCluster } from './join';
import type { PeerSecurity } from '../transport';
import { idToHex } from './ids';
import { openDurableLog, ringBytesFor, type DurableLog } from './durable-log';
import { MAX_V2_ENTRY_BYTES } from '../v2store/request';
import { openStateMachine, type StateMachine } from './state-machine';
import type { HashKVResult } from '../mvcc/hash-kv';
import { flowCheck } from './flow-limits';
import { Admission, addsData, quotaExceeded, requestSizeCheck } from './admission';
import { Reads } from './reads';
import { Leadership } from './leadership';
import { ApplyResults } from './apply-results';
import { ServerEvents } from './events';
import { WritePath } from './write-path';
import { MembershipApply } from './membership-apply';
import { Snapshotter } from './snapshotter'; // [snapshot]
import type { ApplyWord } from '../apply/apply-status';
import { DiskReserve, Faults, MIN_DISK_RESERVE_BYTES, NoSpaceAlarm, healthOf } from './health';
import { ApplyWordTotals } from './apply-metrics';
import { Maintenance, SERVER_VERSION, CLUSTER_VERSION } from './maintenance';
import { Cluster } from './cluster';
import { WriteStages } from './write-stages';

export { SERVER_VERSION, CLUSTER_VERSION };

/** etcd's request timeout: 5 s plus two election timeouts (etcd: config.ReqTimeout). */
export function requestTimeoutMs(electionTimeoutMs: number): number {
  return 5000 + 2 * electionTimeoutMs;
}

/**
 * One etcetera member. Create with {@link EtcdServer.start}; stop with {@link EtcdServer.stop}. The composition root
 * of the capabilities in src/server (docs/architecture.md "The server as capabilities"): it builds and wires the
 * write path (./write-path.ts, ./admission.ts), the read path (./reads.ts), the apply results (./apply-results.ts),
 * leader tracking (./leadership.ts), membership apply, health, snapshots, and owns the member's lifecycle (boot,
 * tick, stop); its public methods delegate. Maintenance and Cluster calls are {@link maintenance} and {@link cluster}.
 */
export class EtcdServer implements MemberSurface {
  private readonly pending: PendingProposals;
  private readonly ids: RequestIdGenerator;
  private host!: RaftHost;
  /** Log compaction + InstallSnapshot (src/server/snapshotter.ts); peers.ts routes MsgSnap through it. [snapshot] */
  snapshots!: Snapshotter;
  private ticker: NodeJS.Timeout | null = null;
  /** The known leader, this member's role, the term seen; what a leader change does (src/server/leadership.ts). */
  private leadership!: Leadership;
  /** Range, linearizable waits, /health's read: ReadIndex rounds and applied-index waiters (src/server/reads.ts). */
  private readonly reads: Reads;
  /** Applied batches → answers, reads, metrics, NOSPACE, events; the worker's fault (src/server/apply-results.ts). */
  private applyResults!: ApplyResults;
  /**
   * Write admission (src/server/admission.ts): stopped, learner, faults, size, flow, disk reserve, quota, in this
   * order. Auth checks are added here.
   */
  readonly admission = new Admission();
  private stopped = false;
  /** The data dir held no member when this process started (etcd's !memberInitialized: no initial corrupt check). */
  freshDataDir = false;
  private removedSelf = false;
  private readonly faults = new Faults();
  /** Free bytes the data dir's filesystem must keep: room for the largest commits of a few batches. */
  private readonly disk: DiskReserve;
  private readonly noSpace: NoSpaceAlarm;
  /** ConfChange and member-attribute entries, applied here on the main thread (src/server/membership-apply.ts). */
  private readonly memberApply: MembershipApply;
  /** Apply-worker counters accumulated across apply workers (src/server/apply-metrics.ts). */
  readonly applyTotals = new ApplyWordTotals();
  /** Server state changes for the services layered on top (src/server/events.ts: typed). */
  readonly events = new ServerEvents();
  /** etcd api: Maintenance (src/server/maintenance.ts). */
  readonly maintenance: Maintenance;
  /** etcd api: Cluster (src/server/cluster.ts). */
  readonly cluster: Cluster;
  /** Admission → Raft → apply hand-off → answers (src/server/write-path.ts). */
  private readonly writes: WritePath;
  /** etcd api: KV.Put/DeleteRange/Txn/Compact and every other write through Raft ({@link WritePath.propose}). */
  readonly propose: Propose;
  /** The same with a callback ({@link WritePath.proposeWith}): the KV handlers' hot path. */
  readonly proposeWith: ProposeWith;
  /**
   * Called on the main thread for each committed Authenticate entry (index, AuthMgmt payload), in log order, on
   * every member: the auth host registers the entry's simple token (src/server/auth-host.ts).
   */
  onAuthenticateCommitted: ((index: number, payload: Uint8Array) => void) | null = null;
  /** Called with outgoing Raft messages (a peer transport, when there are peers). */
  sendToPeers: (msgs: Message[]) => void = () => {};
  /** Wall-clock ms since which the stream to peer `id` has been open, 0 when it is not (set by the peer transport). */
  peerActiveSince: (id: number) => number = () => 0;

  private constructor(
    readonly config: ServerConfig,
    readonly logger: Logger,
    readonly membership: Membership,
    private readonly log: DurableLog,
    private readonly sm: StateMachine,
    private readonly storage: MemoryStorage,
  ) {
    const timeoutMs = requestTimeoutMs(config.electionTimeoutMs);
    const memberDir = path.join(config.dataDir, 'member');
    const stoppedOrRemoved = (): boolean => this.stopped || this.removedSelf;
    this.pending = new PendingProposals(timeoutMs);
    this.ids = new RequestIdGenerator(membership.localId);
    this.writes = new WritePath({
      logger,
      admission: this.admission,
      pending: this.pending,
      nextRequestId: () => this.ids.next(),
      raft: { propose: (data) => this.host.propose(data), status: () => this.host.status() },
      faults: this.faults,
      applyToWorker: (entries) => sm.apply(entries),
      takeOutMembership: (entries) => this.memberApply.takeOut(entries),
      onAuthenticateCommitted: (index, payload) => this.onAuthenticateCommitted?.(index, payload),
    });
    this.propose = this.writes.propose;
    this.proposeWith = this.writes.proposeWith;
    this.memberApply = new MembershipApply({
      membership,
      memberDir,
      localName: config.name,
      advertiseClientUrls: config.advertiseClientUrls,
      logger,
      settle: (requestId, errorId) => this.pending.settle(requestId, errorId, new Uint8Array(0)),
      applyConfChange: (cc) => this.host.applyConfChange(cc),
      onChange: (m) => this.events.emit('membership', m),
      onRemovedSelf: () => this.onRemovedSelf(),
    });
    this.disk = new DiskReserve(config.dataDir, MIN_DISK_RESERVE_BYTES + 4 * config.maxRequestBytes);
    this.reads = new Reads({
      sm,
      sendReadIndex: (ctx) => this.host.readIndex(ctx),
      timeoutMs,
      noLeader: () => this.leadership.lead === 0,
      stopped: stoppedOrRemoved,
      isLearner: () => this.cluster.isLearner(),
      header: () => this.identity(),
      health: () => this.health(),
    });
    this.noSpace = new NoSpaceAlarm({
      localId: membership.localId,
      logger,
      propose: this.propose,
      alarms: () => this.reader.alarms(),
      canPropose: () => !this.stopped && this.leadership.lead !== 0,
      quotaBytes: config.quotaBackendBytes,
      backendSize: () => this.backendSize(),
    });
    const identity = (): { clusterId: number; memberId: number; raftTerm: number } => this.identity();
    this.cluster = new Cluster({
      membership,
      localName: config.name,
      advertiseClientUrls: config.advertiseClientUrls,
      identity,
      stopped: stoppedOrRemoved,
      lead: () => this.leadership.lead,
      raft: { proposeConfChange: (data, onDropped) => this.host.proposeConfChange(data, onDropped), status: () => this.host.status() },
      pending: this.pending,
      nextRequestId: () => this.ids.next(),
      propose: this.propose,
      activeSince: (id) => this.peerActiveSince(id),
    });
    this.maintenance = new Maintenance({
      logger,
      memberDir,
      membership,
      sm,
      walStats: () => log.ioStats?.(),
      raftStatus: () => this.host.status(),
      identity,
      stopped: () => this.stopped,
      isLearner: () => this.cluster.isLearner(),
      propose: this.propose,
      moveLeaderHost: {
        lead: () => this.leadership.lead,
        members: () => membership.members,
        transferLeader: (to) => this.host.transferLeader(to),
        events: this.events,
      },
      requestTimeoutMs: timeoutMs,
      onDefragmented: (size) => this.applyResults.backendResized(size),
    });
    this.admission
      .add('stopped', () => (stoppedOrRemoved() ? 'Stopped' : null))
      .add('learner', (p) => (p.kind !== EntryKind.MemberAttributes && this.cluster.isLearner() ? 'NotSupportedForLearner' : null))
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
    const ringBytes = ringBytesFor(config.maxRequestBytes, config.enableV2 ? MAX_V2_ENTRY_BYTES : 0);
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
    const confState = confStateOf(this.membership);
    // The membership is the log's starting point (a snapshot holding the ConfState), re-derived from cluster.json on
    // every start rather than stored in the WAL: cluster.json holds every ConfChange up to its confIndex, and the
    // ConfChange entries replayed above it are applied again (src/server/conf-change.ts).
    this.host = RaftHost.boot(
      {
        id: this.membership.localId,
        storage: this.storage,
        confState,
        replay: this.log.replay,
        joined: this.membership.joined === true,
        applied: this.sm.appliedIndex(),
        electionTick: Math.max(2, Math.round(this.config.electionTimeoutMs / this.config.heartbeatIntervalMs)),
        seed: randomBytes(4).readUInt32LE(0),
        logger: (level, msg) => this.logger[level]({ raft: true }, msg),
      },
      this.log,
      { apply: (entries) => this.writes.committed(entries), hasRoom: () => this.sm.hasRoom(), whenRoom: () => this.sm.whenRoom() },
      {
        onLeaderChange: (lead, state, term) => this.leadership.changed(lead, state, term),
        onReadStates: (states) => this.reads.onReadStates(states),
        send: (msgs) => this.sendToPeers(msgs),
      },
      (datas) => this.writes.dropped(datas),
    );
    this.leadership = new Leadership(
      { logger: this.logger, reads: this.reads, publishAttributes: () => this.cluster.publishAttributes(), events: this.events },
      this.host.term(),
    );
    this.log.onDurable(() => this.host.persisted());
    const stages = (this.host.stages = new WriteStages());
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
    this.log.onFatal((e) => this.writes.walFailed(e));
    this.applyResults = new ApplyResults(
      {
        pending: this.pending,
        reads: this.reads,
        stages,
        applyTotals: this.applyTotals,
        applyStatus: () => this.sm.applyStatus?.(),
        quotaBytes: this.config.quotaBackendBytes,
        backendSize: () => this.backendSize(),
        raiseNoSpace: () => this.noSpace.raise(),
        events: this.events,
        snapshotApplied: (index) => this.snapshots.onApplied(index), // [snapshot]
        applyFailed: (message, code) => this.writes.applyFailed(message, code),
      },
      this.sm.appliedIndex(),
    );
    this.applyResults.attach(this.sm);
    this.ticker = setInterval(() => this.tick(), this.config.heartbeatIntervalMs);
    if (confState.voters.length === 1 && confState.voters[0] === this.membership.localId && !this.membership.joined) {
      // A one-voter cluster need not wait an election timeout to lead (etcd fast-forwards its ticks too).
      this.host.campaign();
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

  private tick(): void {
    this.host.tick();
    this.reads.tick(Date.now());
    this.writes.expire(Date.now());
  }

  /** etcd linearizableReadNotify (src/server/reads.ts). */
  linearizableWait(): Promise<void> {
    return this.reads.linearizableWait();
  }

  /** Resolves once this member applied `index` (src/server/reads.ts). */
  waitApplied(index: number): Promise<void> {
    return this.reads.waitApplied(index);
  }

  /** Null when {@link reader} can be read now, else the running store swap's end, bounded (src/server/reads.ts). */
  whenReadable(): Promise<void> | null {
    return this.reads.whenReadable();
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

  /** etcd api: KV.Range (src/server/reads.ts). */
  range(req: RangeRequest): Promise<Uint8Array> {
    return this.reads.range(req);
  }

  /**
   * True while a NOSPACE or CORRUPT alarm is raised: the apply worker then refuses writes with NoSpace / Corrupt
   * before it checks permissions (etcd applierV3Capped and applierV3Corrupt wrap its auth applier).
   */
  writesRefusedByAlarm(): boolean {
    return this.reader.alarms().some((a) => a.alarm === ALARM_NOSPACE || a.alarm === ALARM_CORRUPT);
  }

  private headerBase(): { clusterId: number; memberId: number; raftTerm: number } {
    return { clusterId: this.membership.clusterId, memberId: this.membership.localId, raftTerm: this.leadership.term };
  }

  /** True while this member is the Raft leader. */
  leader(): { lead: number; isLeader: boolean; term: number } {
    const l = this.leadership;
    return { lead: l.lead, isLeader: l.isLeader, term: l.term };
  }

  /** The MVCC reader (main thread, synchronous LMDB reads). */
  get reader() {
    return this.sm.reader;
  }

  /** The known leader's client URLs (the leader-forwarding target), [] when unknown. */
  leaderClientUrls(): string[] {
    return this.cluster.leaderClientUrls();
  }

  /** etcd HashByRev on a worker thread, never across a store swap (StateMachine.hashKVOffThread). */
  hashKVOffThread(revision: number): Promise<HashKVResult> {
    return this.sm.hashKVOffThread(revision);
  }

  /** Identity fields for response headers (the revision is the caller's). */
  identity(): { clusterId: number; memberId: number; raftTerm: number } {
    return this.headerBase();
  }

  /** Health as /health reports it (etcd: etcdhttp checkHealth: a leader and no alarms). */
  health(): { health: boolean; reason: string } {
    return healthOf({ stopped: this.stopped, faults: this.faults, alarms: () => this.reader.alarms(), lead: this.leadership.lead });
  }

  /** /health as etcd 3.4 answers it: {@link health}, then a read through Raft (src/server/reads.ts). */
  healthCheck(): Promise<{ health: boolean; reason: string }> {
    return this.reads.healthCheck();
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


