/**
 * The Raft host loop on the main thread (etcd: etcdserver/raft.go raftNode.start): it drives the pure
 * Raft core and carries out each Ready in etcd's order —
 *   1. send `messages` at once (a leader's appends go out while its own fsync runs, Raft thesis §10.2.1),
 *   2. hand `committedEntries` to the apply worker (they are already durable locally),
 *   3. hand `hardState` + `entries` to the WAL worker, one batch and one fdatasync per Ready,
 *   4. once durable: append them to the in-memory log, send `messagesAfterPersist`, `advance()`.
 * Only one Ready is outstanding; proposals and messages arriving meanwhile accumulate in the core and
 * leave together in the next Ready (group commit: one append, one fsync, one message per follower).
 */
import type { ConfState, Entry, HardState, Message, MemoryStorage, RaftLogger, Ready, ReadState, Snapshot } from '../raft';
import { MAX_PROPOSAL_BATCH, RawNode, StateType, seededRandom } from '../raft';
import { recoverHardState } from './recovered-state';
import type { WriteStages } from './write-stages';

/** Where durable state goes: the WAL worker (src/wal/client.ts) behind a narrow interface. */
export interface LogSink {
  /** Appends one Ready's state; `onDurable` fires once everything appended so far is fdatasynced. */
  append(hardState: HardState | null, entries: Entry[], snapshot: Snapshot | null): void;
  /** Writes a HardState whose only change is the commit index; nobody waits for its fsync. */
  appendLazy(hardState: HardState): void;
}

/**
 * Where committed entries go: the apply worker (src/apply/client.ts). `apply` always accepts (its queue is bounded
 * by the host asking `hasRoom` before each Ready: at most one Ready's worth beyond the sink's limit).
 */
export interface ApplySink {
  apply(entries: Entry[]): void;
  /** False while the sink's bounded queue is full: the host then stops handing committed entries over. */
  hasRoom(): boolean;
  /** Resolves once `hasRoom()` may be true again (never rejects). */
  whenRoom(): Promise<void>;
}

/** Proposals queued for the next run at most; past it `propose` returns false (the server answers "too many requests"). */
export const MAX_QUEUED_PROPOSALS = 100_000;
/** ReadIndex contexts queued for the next run at most (ReadIndex bounds rounds in flight far below this). */
export const MAX_QUEUED_READS = 4096;
/** ConfChanges queued for the next run at most; past it the ConfChange is dropped (its onDropped runs). */
export const MAX_QUEUED_CONF_CHANGES = 64;

/** Callbacks the host raises to the server. */
export interface RaftHostEvents {
  /** Leader or role changed (softState). `lead` is 0 when there is no leader. */
  onLeaderChange(lead: number, state: StateType, term: number): void;
  /** ReadIndex answers: each ctx was confirmed at `index`. */
  onReadStates(states: ReadState[]): void;
  /** Messages for peers (already in send order). */
  send(messages: Message[]): void;
  /** A snapshot arrived from the leader and must be installed in the state machine before `advance`. */
  onSnapshot?(snapshot: Snapshot): void;
}

/** What {@link RaftHost.boot} starts the core from. */
export interface RaftBoot {
  /** This member's Raft node ID. */
  id: number;
  /** The in-memory stable log the core reads (filled here from the replayed WAL). */
  storage: MemoryStorage;
  /** The configuration the log starts from (re-derived from cluster.json on every start). */
  confState: ConfState;
  /** What the WAL replayed: its snapshot marker, entries after it, and the last HardState. */
  replay: { snapshot?: Snapshot | null; entries: Entry[]; hardState?: HardState | null };
  /** A member that joined a running cluster starts with an empty log (the leader's snapshot brings everything). */
  joined: boolean;
  /** The index the state machine already applied (the consistent index). */
  applied: number;
  /** Election timeout in ticks (one tick per heartbeat interval). */
  electionTick: number;
  /** A seed for the core's election-timeout randomisation. */
  seed: number;
  logger: RaftLogger;
}

/** Drives one RawNode: ticks, steps, proposals, Ready processing. */
export class RaftHost {
  /**
   * Builds the Raft core for a starting member and the host driving it (the core is never reachable otherwise):
   * the log starts from `confState` (a snapshot holding it), or, for a new cluster, Raft's bootstrap entries; the
   * replayed WAL is appended and the HardState recovered against the applied index (src/server/recovered-state.ts).
   * PreVote and CheckQuorum are on (etcd 3.4's defaults for etcd members). Throws MembershipError when the WAL lost
   * applied records.
   */
  static boot(b: RaftBoot, log: LogSink, apply: ApplySink, events: RaftHostEvents, onDropped: (datas: Uint8Array[]) => void): RaftHost {
    const { storage, confState, replay } = b;
    if (replay.snapshot) storage.applySnapshot({ ...replay.snapshot, metadata: { ...replay.snapshot.metadata, confState } });
    else if (!b.joined) {
      RawNode.bootstrap(storage, confState.voters);
      if (confState.learners.length > 0) storage.applySnapshot({ ...storage.snapshot(), metadata: { ...storage.snapshot().metadata, confState } });
    }
    if (replay.entries.length > 0) storage.append(replay.entries);
    if (replay.hardState) storage.setHardState(replay.hardState);
    storage.setHardState(recoverHardState(storage.initialState().hardState, b.applied, storage.lastIndex()));
    const node = new RawNode({
      id: b.id,
      electionTick: b.electionTick,
      heartbeatTick: 1,
      storage,
      applied: b.applied,
      preVote: true,
      checkQuorum: true,
      rand: seededRandom(b.seed),
      logger: b.logger,
    });
    return new RaftHost(node, storage, log, apply, events, onDropped);
  }

  private inFlight: Ready | null = null;
  private scheduled = false;
  private stopped = false;
  private lastLead = 0;
  private lastState: StateType = StateType.Follower;
  private proposalsQueued: Uint8Array[] = [];
  private readsQueued: Uint8Array[] = [];
  private confChangesQueued: { data: Uint8Array; onDropped: () => void }[] = [];
  /** True while committed entries are held in the core because the apply sink is full. */
  private applyPaused = false;
  /** The last HardState handed to the WAL (term and vote changes must be fsynced; commit changes need not). */
  private hardState: HardState;
  private readonly onDropped: (datas: Uint8Array[]) => void;
  /** Per-stage write latency stamps (proposed, durable, committed), when the server measures them. */
  stages: WriteStages | null = null;

  constructor(
    private readonly node: RawNode,
    private readonly storage: MemoryStorage,
    private readonly log: LogSink,
    private readonly apply: ApplySink,
    private readonly events: RaftHostEvents,
    onDropped: (datas: Uint8Array[]) => void,
  ) {
    this.onDropped = onDropped;
    this.hardState = storage.initialState().hardState;
  }

  /** One Raft tick (every --heartbeat-interval ms). */
  tick(): void {
    this.node.tick();
    this.schedule();
  }

  /** Feeds a message from a peer into the core. Malformed messages are the transport's to reject. */
  step(m: Message): void {
    this.node.step(m);
    this.schedule();
  }

  /** Starts an election now (a one-voter cluster need not wait an election timeout). */
  campaign(): void {
    this.node.campaign();
    this.schedule();
  }

  /** Asks the core to hand leadership to voter `to` (Raft thesis §3.10); the outcome shows up as a leader change. */
  transferLeader(to: number): void {
    this.node.transferLeader(to);
    this.schedule();
  }

  /** The core's status (etcd raft Status): term, commit index, leader, and the leader's progress of each follower. */
  status(): ReturnType<RawNode['status']> {
    return this.node.status();
  }

  /** The core's current term. */
  term(): number {
    return this.node.status().term;
  }

  /** The core's commit index (O(1), unlike status()). */
  commitIndex(): number {
    return this.node.raft.raftLog.committed;
  }

  /** Applies a committed ConfChange to the core's configuration (etcd raft: RawNode.ApplyConfChange). */
  applyConfChange(cc: Parameters<RawNode['applyConfChange']>[0]): void {
    this.node.applyConfChange(cc);
  }

  /** The transport could not deliver to `id`: the core drops that follower to probe state (etcd: ReportUnreachable). */
  reportUnreachable(id: number): void {
    this.node.reportUnreachable(id);
  }

  /** A snapshot send to `id` finished (etcd: ReportSnapshot). */
  reportSnapshot(id: number, ok: boolean): void {
    this.node.reportSnapshot(id, ok);
  }

  /**
   * Queues an entry's data; everything queued in this event-loop turn is proposed together. False (nothing queued)
   * past MAX_QUEUED_PROPOSALS.
   */
  propose(data: Uint8Array): boolean {
    if (this.proposalsQueued.length >= MAX_QUEUED_PROPOSALS) return false;
    this.proposalsQueued.push(data);
    this.schedule();
    return true;
  }

  /** True while committed entries wait in the core for room in the apply sink. */
  isApplyPaused(): boolean {
    return this.applyPaused;
  }

  /**
   * Proposes a ConfChange entry with `data` (the host's encoding, src/server/conf-change.ts) in the next run;
   * `onDropped` is called when the core refuses it (no leader, leadership transfer in progress).
   */
  proposeConfChange(data: Uint8Array, onDropped: () => void): void {
    if (this.confChangesQueued.length >= MAX_QUEUED_CONF_CHANGES) {
      onDropped();
      return;
    }
    this.confChangesQueued.push({ data, onDropped });
    this.schedule();
  }

  /**
   * Queues a ReadIndex request identified by `ctx`; answered through `onReadStates`. Past MAX_QUEUED_READS it is
   * not queued: the caller's retry (ReadIndex.retry) asks again.
   */
  readIndex(ctx: Uint8Array): void {
    if (this.readsQueued.length >= MAX_QUEUED_READS) return;
    this.readsQueued.push(ctx);
    this.schedule();
  }

  /** Called by the WAL client when the outstanding Ready is durable. */
  persisted(): void {
    const rd = this.inFlight;
    if (rd === null) throw new Error('raft host: durable notification with no Ready in flight');
    this.inFlight = null;
    if (rd.snapshot) this.storage.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) {
      this.storage.append(rd.entries);
      this.stages?.reached('durable', rd.entries[0]!.index, rd.entries[rd.entries.length - 1]!.index);
    }
    if (rd.hardState) this.storage.setHardState(rd.hardState);
    if (rd.messagesAfterPersist.length > 0) this.events.send(rd.messagesAfterPersist);
    this.node.advance(rd);
    // The next Ready (entries this fsync committed, proposals that queued meanwhile) is taken now rather than in
    // a later check phase: under load an event-loop turn is tens of ms of I/O callbacks.
    if (!this.stopped) this.run();
  }

  /** A Ready must be durable before advance when it appends entries, installs a snapshot, or changes term or vote. */
  private mustSync(rd: Ready): boolean {
    if (rd.entries.length > 0 || rd.snapshot) return true;
    const hs = rd.hardState;
    return hs !== undefined && (hs.term !== this.hardState.term || hs.vote !== this.hardState.vote);
  }

  private finish(rd: Ready): void {
    if (rd.messagesAfterPersist.length > 0) this.events.send(rd.messagesAfterPersist);
    this.node.advance(rd);
    this.schedule();
  }

  /**
   * Stops driving the core: no Ready is taken after this (one already in flight still completes). Called by the
   * server before it closes the WAL, so a run scheduled earlier cannot append to a closing log.
   */
  stop(): void {
    this.stopped = true;
  }

  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (!this.stopped) this.run();
    });
  }

  /**
   * A full apply sink pauses the hand-over of committed entries (they stay in the core's log) instead of failing;
   * the host resumes when the sink reports room (etcd-io/raft applyingEntsPaused).
   */
  private checkApplyRoom(): void {
    if (this.applyPaused || this.apply.hasRoom()) return;
    this.applyPaused = true;
    this.node.setApplyPaused(true);
    void this.apply.whenRoom().then(() => {
      this.applyPaused = false;
      this.node.setApplyPaused(false);
      this.schedule();
    });
  }

  private run(): void {
    if (this.proposalsQueued.length > 0) {
      const queued = this.proposalsQueued;
      this.proposalsQueued = [];
      // The core takes at most MAX_PROPOSAL_BATCH entries per call, fewer than a full queue holds.
      for (let from = 0; from < queued.length; from += MAX_PROPOSAL_BATCH) {
        const batch = from === 0 && queued.length <= MAX_PROPOSAL_BATCH ? queued : queued.slice(from, from + MAX_PROPOSAL_BATCH);
        const before = this.node.raft.raftLog.lastIndex();
        try {
          this.node.proposeBatch(batch);
          this.stages?.proposed(before + 1, this.node.raft.raftLog.lastIndex());
        } catch {
          this.onDropped(batch);
        }
      }
    }
    if (this.confChangesQueued.length > 0) {
      const ccs = this.confChangesQueued;
      this.confChangesQueued = [];
      for (const cc of ccs) {
        try {
          this.node.proposeConfChange(cc.data);
        } catch {
          cc.onDropped();
        }
      }
    }
    if (this.readsQueued.length > 0) {
      const reads = this.readsQueued;
      this.readsQueued = [];
      for (const ctx of reads) this.node.readIndex(ctx);
    }
    this.checkApplyRoom();
    if (this.inFlight !== null || !this.node.hasReady()) return;
    const rd = this.node.ready();
    if (rd.softState && (rd.softState.lead !== this.lastLead || rd.softState.raftState !== this.lastState)) {
      this.lastLead = rd.softState.lead;
      this.lastState = rd.softState.raftState;
      this.events.onLeaderChange(this.lastLead, this.lastState, rd.hardState?.term ?? this.node.status().term);
    }
    if (rd.messages.length > 0) this.events.send(rd.messages);
    if (rd.snapshot && this.events.onSnapshot) this.events.onSnapshot(rd.snapshot);
    if (rd.committedEntries.length > 0) {
      this.apply.apply(rd.committedEntries);
      this.stages?.reached('committed', rd.committedEntries[0]!.index, rd.committedEntries[rd.committedEntries.length - 1]!.index);
    }
    if (rd.readStates.length > 0) this.events.onReadStates(rd.readStates);
    if (!this.mustSync(rd)) {
      // Only the commit index moved (or nothing to persist): it is recoverable, so it is written behind the
      // next fsync instead of waiting for one (etcd: raft.MustSync).
      if (rd.hardState) {
        this.log.appendLazy(rd.hardState);
        this.storage.setHardState(rd.hardState);
        this.hardState = rd.hardState;
      }
      this.finish(rd);
      return;
    }
    this.inFlight = rd;
    if (rd.hardState) this.hardState = rd.hardState;
    this.log.append(rd.hardState ?? null, rd.entries, rd.snapshot ?? null);
  }
}
