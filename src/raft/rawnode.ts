/**
 * RawNode: the host-facing wrapper around Raft (etcd raft: rawnode.go), packaging the state machine's output into
 * Ready batches. Exactly one Ready may be outstanding: ready() → host persists/sends/applies → advance(rd).
 * Steps, ticks and proposals may happen while a Ready is outstanding; their effects go into the next Ready, which
 * is how group commit happens.
 */
import { ConfChange, Raft } from './raft';
import { ProgressState } from './progress';
import { MemoryStorage } from './storage';
import {
  ConfState,
  EntryType,
  ErrProposalDropped,
  HardState,
  Message,
  MessageType,
  NONE,
  RaftConfig,
  Ready,
  SoftState,
  StateType,
  hardStateEqual,
  invariant,
  isEmptyHardState,
  makeMessage,
} from './types';

/** Snapshot of a node's state for monitoring (etcd raft: Status). */
export interface RaftStatus {
  id: number;
  term: number;
  vote: number;
  lead: number;
  state: StateType;
  commit: number;
  applied: number;
  lastIndex: number;
  /** Present on the leader: each peer's replication progress. */
  progress?: Map<number, { match: number; next: number; state: string }>;
}

/** Message types a peer may legitimately send; everything else is local and refused from the network. */
function isLocalMsg(t: MessageType): boolean {
  return (
    t === MessageType.MsgHup ||
    t === MessageType.MsgBeat ||
    t === MessageType.MsgUnreachable ||
    t === MessageType.MsgSnapStatus ||
    t === MessageType.MsgCheckQuorum
  );
}

/** Max entries per proposeBatch call (a guard against runaway batches). */
export const MAX_PROPOSAL_BATCH = 1 << 16;

/**
 * Host-facing Raft node (etcd raft: RawNode). Single-threaded; one Ready outstanding at a time.
 * Throws ErrProposalDropped from propose*, RaftInvariantError on API misuse (ready() twice, wrong advance()).
 */
export class RawNode {
  /** The wrapped state machine (exposed for tests and the simulator; do not mutate). */
  readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  private outstanding: Ready | undefined;

  /**
   * Creates a node from cfg (see RaftConfig). The storage must already hold the node's durable state (bootstrap
   * a fresh cluster with RawNode.bootstrap). Throws RaftInvariantError on an invalid config.
   */
  constructor(cfg: RaftConfig) {
    this.raft = new Raft(cfg);
    this.prevSoftState = this.raft.softState();
    this.prevHardState = this.raft.hardState();
  }

  /**
   * Initialises an empty storage for a brand-new cluster whose voters are `voters` (like etcd's initial cluster):
   * writes a snapshot at index 1, term 1 with ConfState {voters} and empty data, and HardState {term 1, commit 1}.
   * Every member must be bootstrapped with the same voter list. Throws RaftInvariantError if the storage is not
   * empty or the voter list is invalid.
   */
  static bootstrap(storage: MemoryStorage, voters: number[]): void {
    invariant(voters.length > 0, 'bootstrap: must have at least one voter');
    invariant(new Set(voters).size === voters.length, 'bootstrap: duplicate voter');
    for (const v of voters) invariant(Number.isSafeInteger(v) && v > 0, `bootstrap: invalid voter id ${v}`);
    invariant(storage.lastIndex() === 0 && storage.snapshot().metadata.index === 0, 'bootstrap: storage is not empty');
    storage.applySnapshot({
      metadata: { index: 1, term: 1, confState: { voters: [...voters].sort((a, b) => a - b), learners: [] } },
      data: new Uint8Array(0),
    });
    storage.setHardState({ term: 1, vote: NONE, commit: 1 });
  }

  /** Advances the logical clock one tick (election/heartbeat timers are counted in ticks). */
  tick(): void {
    this.raft.tick();
  }

  /**
   * Feeds a message received from a peer. Local-only message types and messages from unknown peers that are
   * responses are ignored. Never throws for stale or unexpected messages; throws RaftInvariantError only if the
   * log would be corrupted (a broken invariant).
   */
  step(m: Message): void {
    if (isLocalMsg(m.type)) return;
    if (m.from === NONE || m.from === this.raft.id) return;
    this.raft.step(m);
  }

  /** Starts an election now (as if the election timeout elapsed). */
  campaign(): void {
    this.raft.step(makeMessage({ type: MessageType.MsgHup, from: this.raft.id }));
  }

  /**
   * Proposes one normal entry with `data` (Raft paper §5.3). On a follower it is forwarded to the leader.
   * Throws ErrProposalDropped if there is no leader, a leader transfer is in progress, the uncommitted-size limit
   * is reached, or this node is a candidate.
   */
  propose(data: Uint8Array): void {
    this.proposeBatch([data]);
  }

  /** Proposes several normal entries in one MsgProp (same rules and errors as propose). */
  proposeBatch(datas: Uint8Array[]): void {
    if (datas.length === 0) return;
    invariant(datas.length <= MAX_PROPOSAL_BATCH, `proposeBatch: more than ${MAX_PROPOSAL_BATCH} entries`);
    this.proposeEntries(datas.map((data) => ({ term: 0, index: 0, type: EntryType.Normal, data })));
  }

  /** Proposes a ConfChange entry whose data the host encodes; apply it later with applyConfChange. */
  proposeConfChange(data: Uint8Array): void {
    this.proposeEntries([{ term: 0, index: 0, type: EntryType.ConfChange, data }]);
  }

  private proposeEntries(entries: { term: number; index: number; type: EntryType; data: Uint8Array }[]): void {
    const ok = this.raft.step(makeMessage({ type: MessageType.MsgProp, from: this.raft.id, entries }));
    if (!ok) throw new ErrProposalDropped();
  }

  /**
   * Requests a linearizable read point (Raft thesis §6.4). The answer arrives as a ReadState with the same
   * `ctx` in a later Ready; ctx must be unique among in-flight reads. Dropped silently (no ReadState ever) if
   * there is no known leader or limits are hit — the host must time out and retry.
   */
  readIndex(ctx: Uint8Array): void {
    this.raft.step(makeMessage({ type: MessageType.MsgReadIndex, from: NONE, context: ctx }));
  }

  /**
   * Asks the cluster to transfer leadership to voter `to` (Raft thesis §3.10); forwarded to the leader if needed.
   * Ignored if there is no leader, `to` is a learner/unknown, or `to` is already the leader.
   */
  transferLeader(to: number): void {
    // The transferee travels in `index` so that a follower forwarding the request keeps it (etcd's forwarding
    // overwrites `from`).
    this.raft.step(makeMessage({ type: MessageType.MsgTransferLeader, from: to, index: to }));
  }

  /** Applies a committed ConfChange (host decoded it from an entry) and returns the new ConfState. */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /** The transport could not reach peer `id`: the leader stops pipelining to it (probe state). */
  reportUnreachable(id: number): void {
    this.raft.step(makeMessage({ type: MessageType.MsgUnreachable, from: id }));
  }

  /** Result of sending a MsgSnap to `id` (ok = delivered and applied by the transport). */
  reportSnapshot(id: number, ok: boolean): void {
    this.raft.step(makeMessage({ type: MessageType.MsgSnapStatus, from: id, reject: !ok }));
  }

  /** True if ready() would return something to do. Always false while a Ready is outstanding. */
  hasReady(): boolean {
    if (this.outstanding) return false;
    const r = this.raft;
    const ss = r.softState();
    if (ss.lead !== this.prevSoftState.lead || ss.raftState !== this.prevSoftState.raftState) return true;
    const hs = r.hardState();
    if (!isEmptyHardState(hs) && !hardStateEqual(hs, this.prevHardState)) return true;
    const u = r.raftLog.unstable;
    if (u.nextSnapshot() || u.nextEntries().length > 0) return true;
    if (r.msgs.length > 0 || r.msgsAfterPersist.length > 0 || r.readStates.length > 0) return true;
    return r.raftLog.hasNextCommittedEnts();
  }

  /**
   * Returns the next batch of work (see Ready for the host contract) and marks it outstanding.
   * Throws RaftInvariantError if the previous Ready has not been advanced.
   */
  ready(): Ready {
    invariant(this.outstanding === undefined, 'ready() called while a Ready is outstanding (call advance first)');
    const r = this.raft;
    const u = r.raftLog.unstable;
    const rd: Ready = {
      readStates: r.readStates,
      entries: u.nextEntries(),
      committedEntries: r.raftLog.nextCommittedEnts(),
      messages: r.msgs,
      messagesAfterPersist: r.msgsAfterPersist,
    };
    const snap = u.nextSnapshot();
    if (snap) rd.snapshot = snap;
    const ss = r.softState();
    if (ss.lead !== this.prevSoftState.lead || ss.raftState !== this.prevSoftState.raftState) {
      rd.softState = ss;
      this.prevSoftState = ss;
    }
    const hs = r.hardState();
    if (!isEmptyHardState(hs) && !hardStateEqual(hs, this.prevHardState)) {
      rd.hardState = hs;
      this.prevHardState = hs;
    }
    r.msgs = [];
    r.msgsAfterPersist = [];
    r.readStates = [];
    u.acceptInProgress();
    this.outstanding = rd;
    return rd;
  }

  /**
   * The host has made rd durable (snapshot, entries, HardState), sent its messages and handed committedEntries to
   * the state machine. Marks them stable/applied; a leader then counts its own log as matched and may commit.
   * Throws RaftInvariantError if rd is not the outstanding Ready.
   */
  advance(rd: Ready): void {
    invariant(this.outstanding === rd, 'advance() called with a Ready that is not the outstanding one');
    this.outstanding = undefined;
    const log = this.raft.raftLog;
    if (rd.snapshot) {
      const si = rd.snapshot.metadata.index;
      log.unstable.stableSnapTo(si);
      if (si > log.applied) log.appliedTo(si);
    }
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1];
      log.unstable.stableTo(last.index, last.term);
    }
    if (rd.committedEntries.length > 0) {
      const last = rd.committedEntries[rd.committedEntries.length - 1];
      if (last.index > log.applied) log.appliedTo(last.index);
      this.raft.reduceUncommittedSize(rd.committedEntries);
    }
    this.raft.onPersisted();
  }

  /**
   * Pauses (true) or resumes handing committed entries out in Ready.committedEntries (etcd-io/raft's
   * applyingEntsPaused). Everything else (appends, messages, commits) goes on; the entries wait in the log.
   */
  setApplyPaused(paused: boolean): void {
    this.raft.raftLog.applyPaused = paused;
  }

  /** True while a Ready has been returned by ready() but not yet advanced. */
  hasOutstandingReady(): boolean {
    return this.outstanding !== undefined;
  }

  /** Current status (etcd raft: Status); progress only on the leader. */
  status(): RaftStatus {
    const r = this.raft;
    const st: RaftStatus = {
      id: r.id,
      term: r.term,
      vote: r.vote,
      lead: r.lead,
      state: r.state,
      commit: r.raftLog.committed,
      applied: r.raftLog.applied,
      lastIndex: r.raftLog.lastIndex(),
    };
    if (r.state === StateType.Leader) {
      st.progress = new Map();
      for (const [id, pr] of r.trk.progress) st.progress.set(id, { match: pr.match, next: pr.next, state: pr.state as ProgressState });
    }
    return st;
  }
}
