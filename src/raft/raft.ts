/**
 * The Raft state machine proper (etcd raft: raft.go). Pure and deterministic: it consumes messages and ticks and
 * produces messages and log changes, which RawNode packages into Ready batches.
 *
 * Differences from classic etcd raft (documented choice, fixes etcd issue #14370): the leader's own Progress.match
 * advances only when the host reports its log durable (RawNode.advance → Raft.onPersisted), so no entry is ever
 * counted towards a quorum before the leader itself has persisted it.
 */
import { RaftLog } from './log';
import { Progress, ProgressState, ProgressTracker, VoteResult } from './progress';
import { MAX_PENDING_READS, ReadOnly } from './readonly';
import {
  ConfState,
  Entry,
  EntryType,
  ErrCompacted,
  ErrSnapshotTemporarilyUnavailable,
  HardState,
  Message,
  MessageType,
  NONE,
  RaftConfig,
  RaftLogger,
  ReadState,
  Snapshot,
  SoftState,
  StateType,
  bytesKey,
  invariant,
  isAfterPersistMessage,
  isEmptyHardState,
  isEmptySnapshot,
  makeMessage,
  payloadsSize,
  voteRespType,
} from './types';

/** Context marking a vote request caused by leader transfer; it bypasses the leader lease (Raft thesis §3.10). */
export const CAMPAIGN_TRANSFER = new TextEncoder().encode('CampaignTransfer');
const CAMPAIGN_TRANSFER_KEY = bytesKey(CAMPAIGN_TRANSFER);

/** Default limits. */
export const DEFAULT_MAX_SIZE_PER_MSG = 1 << 20;
export const DEFAULT_MAX_INFLIGHT_MSGS = 256;
export const DEFAULT_MAX_UNCOMMITTED_SIZE = 1 << 30;
export const DEFAULT_MAX_COMMITTED_SIZE_PER_READY = 16 << 20;
/** Max ReadIndex requests queued while a new leader has not yet committed an entry in its term. */
export const MAX_PENDING_READ_INDEX_MESSAGES = 4096;
/** Max outgoing messages buffered between two Ready (a bug guard, not a flow-control knob). */
export const MAX_BUFFERED_MESSAGES = 1 << 20;

type CampaignType = 'pre-election' | 'election' | 'transfer';

/** A membership change applied by the host once its ConfChange entry is committed (simple, one node at a time). */
export interface ConfChange {
  type: 'addNode' | 'removeNode' | 'addLearner';
  nodeId: number;
}

/**
 * One Raft peer's state machine (etcd raft: raft struct). Drive it through RawNode; fields are public for tests and
 * the simulator only. Throws RaftInvariantError on broken invariants (never for bad input from peers).
 */
export class Raft {
  readonly id: number;
  term = 0;
  vote = NONE;
  lead = NONE;
  state: StateType = StateType.Follower;
  readonly raftLog: RaftLog;
  trk: ProgressTracker;
  /** Messages that may be sent at once. */
  msgs: Message[] = [];
  /** Messages to send only after the current Ready is durable. */
  msgsAfterPersist: Message[] = [];
  readStates: ReadState[] = [];
  leadTransferee = NONE;
  /** Index of the latest proposed ConfChange; a new one is refused until it is applied. */
  pendingConfIndex = 0;
  /** Bytes of uncommitted payload appended by this leader. */
  uncommittedSize = 0;
  readOnly = new ReadOnly();
  pendingReadIndexMessages: Message[] = [];
  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;

  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly heartbeatTimeout: number;
  readonly electionTimeout: number;
  readonly maxMsgSize: number;
  readonly maxUncommittedSize: number;
  readonly maxInflight: number;
  private readonly rand: () => number;
  private readonly logger: RaftLogger | undefined;

  /**
   * Builds a node from cfg and the state in cfg.storage (HardState, ConfState). Starts as follower.
   * Throws RaftInvariantError on an invalid config or inconsistent storage.
   */
  constructor(cfg: RaftConfig) {
    invariant(Number.isSafeInteger(cfg.id) && cfg.id > 0, 'cannot use none as id');
    invariant(Number.isInteger(cfg.heartbeatTick) && cfg.heartbeatTick > 0, 'heartbeat tick must be greater than 0');
    invariant(Number.isInteger(cfg.electionTick) && cfg.electionTick > cfg.heartbeatTick, 'election tick must be greater than heartbeat tick');
    invariant(typeof cfg.rand === 'function', 'rand source required');
    this.id = cfg.id;
    this.maxMsgSize = cfg.maxSizePerMsg ?? DEFAULT_MAX_SIZE_PER_MSG;
    this.maxInflight = cfg.maxInflightMsgs ?? DEFAULT_MAX_INFLIGHT_MSGS;
    invariant(this.maxInflight > 0, 'max inflight messages must be greater than 0');
    this.maxUncommittedSize = cfg.maxUncommittedEntriesSize ?? DEFAULT_MAX_UNCOMMITTED_SIZE;
    this.checkQuorum = cfg.checkQuorum ?? true;
    this.preVote = cfg.preVote ?? true;
    this.heartbeatTimeout = cfg.heartbeatTick;
    this.electionTimeout = cfg.electionTick;
    this.rand = cfg.rand;
    this.logger = cfg.logger;
    this.raftLog = new RaftLog(cfg.storage, cfg.maxCommittedSizePerReady ?? DEFAULT_MAX_COMMITTED_SIZE_PER_READY);
    const { hardState, confState } = cfg.storage.initialState();
    this.trk = new ProgressTracker(this.maxInflight);
    this.trk.applyConfState(confState, this.raftLog.lastIndex() + 1);
    if (!isEmptyHardState(hardState)) this.loadState(hardState);
    if (cfg.applied !== undefined && cfg.applied > this.raftLog.applied) this.raftLog.appliedTo(cfg.applied);
    this.becomeFollower(this.term, NONE);
    this.log('info', `newRaft ${this.id} [voters: ${[...this.trk.voters]}, term: ${this.term}, commit: ${this.raftLog.committed}, applied: ${this.raftLog.applied}, lastindex: ${this.raftLog.lastIndex()}]`);
  }

  private log(level: 'debug' | 'info' | 'warn', msg: string): void {
    if (this.logger) this.logger(level, msg);
  }

  private loadState(hs: HardState): void {
    const first = this.raftLog.committed;
    const last = this.raftLog.lastIndex();
    invariant(hs.commit <= last, () => `${this.id} state.commit ${hs.commit} is out of range [${first}, ${last}]`);
    this.raftLog.committed = Math.max(hs.commit, first);
    this.term = hs.term;
    this.vote = hs.vote;
  }

  /** Current SoftState. */
  softState(): SoftState {
    return { lead: this.lead, raftState: this.state };
  }

  /** Current HardState. */
  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  /** A voter that is not waiting for a snapshot may campaign. */
  promotable(): boolean {
    const pr = this.trk.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && this.raftLog.unstable.snapshot === undefined;
  }

  // ---------------------------------------------------------------- sending

  /** Queues m (stamping from/term) into msgs or msgsAfterPersist. */
  private send(m: Message): void {
    m.from = this.id;
    const t = m.type;
    if (t === MessageType.MsgVote || t === MessageType.MsgVoteResp || t === MessageType.MsgPreVote || t === MessageType.MsgPreVoteResp) {
      invariant(m.term !== 0, () => `term should be set when sending ${MessageType[t]}`);
    } else {
      invariant(m.term === 0, () => `term should not be set when sending ${MessageType[t]} (was ${m.term})`);
      if (t !== MessageType.MsgProp && t !== MessageType.MsgReadIndex) m.term = this.term;
    }
    invariant(m.to !== this.id && m.to !== NONE, () => `bad destination ${m.to} for ${MessageType[t]}`);
    invariant(this.msgs.length + this.msgsAfterPersist.length < MAX_BUFFERED_MESSAGES, 'too many buffered messages: host is not calling ready()');
    if (isAfterPersistMessage(t)) this.msgsAfterPersist.push(m);
    else this.msgs.push(m);
  }

  /** Sends a MsgApp (or MsgSnap) to `to` if allowed by its Progress (etcd raft: maybeSendAppend). */
  maybeSendAppend(to: number, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    invariant(prevIndex <= this.raftLog.lastIndex(), () => `progress of ${to} next ${pr.next} beyond lastIndex ${this.raftLog.lastIndex()}`);
    const prevTerm = this.raftLog.term(prevIndex);
    let ents: Entry[] | undefined;
    if (prevTerm !== undefined) {
      try {
        ents = this.raftLog.entries(pr.next, this.maxMsgSize);
      } catch (e) {
        if (!(e instanceof ErrCompacted)) throw e;
      }
    }
    if (prevTerm === undefined || ents === undefined) return this.maybeSendSnapshot(to, pr);
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send(makeMessage({ type: MessageType.MsgApp, to, index: prevIndex, logTerm: prevTerm, entries: ents, commit: this.raftLog.committed }));
    pr.sentEntries(ents.length, ents.length > 0 ? ents[ents.length - 1].index : prevIndex);
    return true;
  }

  /** InstallSnapshot to a follower whose next entry is compacted (Raft paper §7). */
  private maybeSendSnapshot(to: number, pr: Progress): boolean {
    if (!pr.recentActive) return false;
    let snap: Snapshot;
    try {
      snap = this.raftLog.snapshot();
    } catch (e) {
      if (e instanceof ErrSnapshotTemporarilyUnavailable) return false;
      throw e;
    }
    invariant(!isEmptySnapshot(snap), 'need non-empty snapshot');
    this.log('debug', `${this.id} sending snapshot [index ${snap.metadata.index}, term ${snap.metadata.term}] to ${to}`);
    pr.becomeSnapshot(snap.metadata.index);
    this.send(makeMessage({ type: MessageType.MsgSnap, to, snapshot: snap }));
    return true;
  }

  /** Sends MsgApp to `to` even if it carries no entries. */
  sendAppend(to: number): void {
    this.maybeSendAppend(to, true);
  }

  /** Sends MsgApp to every other peer (voters and learners). */
  bcastAppend(): void {
    for (const id of this.trk.progress.keys()) if (id !== this.id) this.sendAppend(id);
  }

  private sendHeartbeat(to: number, ctx: Uint8Array | undefined): void {
    const pr = this.trk.progress.get(to);
    if (!pr) return;
    // Never advance a follower's commit beyond what it is known to hold (etcd raft: sendHeartbeat).
    const commit = Math.min(pr.match, this.raftLog.committed);
    this.send(makeMessage({ type: MessageType.MsgHeartbeat, to, commit, context: ctx }));
  }

  private bcastHeartbeatWithCtx(ctx: Uint8Array | undefined): void {
    for (const id of this.trk.progress.keys()) if (id !== this.id) this.sendHeartbeat(id, ctx);
  }

  private bcastHeartbeat(): void {
    this.bcastHeartbeatWithCtx(this.readOnly.lastPendingRequestCtx());
  }

  // ---------------------------------------------------------------- commit & append

  /** Advances the commit index to the quorum-replicated index if it is from the current term (§5.4.2). */
  maybeCommit(): boolean {
    return this.raftLog.maybeCommit(this.trk.committed(), this.term);
  }

  /** Leader appends entries (assigning term/index); false if the uncommitted-size limit refuses them. */
  private appendEntry(es: Entry[]): boolean {
    let li = this.raftLog.lastIndex();
    for (let i = 0; i < es.length; i++) {
      es[i] = { term: this.term, index: li + 1 + i, type: es[i].type, data: es[i].data };
    }
    if (!this.increaseUncommittedSize(es)) {
      this.log('warn', `${this.id} appending new entries to log would exceed uncommitted entry size limit; dropping proposal`);
      return false;
    }
    li = this.raftLog.append(es);
    return true;
  }

  private increaseUncommittedSize(ents: Entry[]): boolean {
    const s = payloadsSize(ents);
    if (this.maxUncommittedSize > 0 && this.uncommittedSize > 0 && s > 0 && this.uncommittedSize + s > this.maxUncommittedSize) return false;
    this.uncommittedSize += s;
    return true;
  }

  /** Releases uncommitted-size budget for entries handed to the state machine. */
  reduceUncommittedSize(ents: Entry[]): void {
    if (this.uncommittedSize === 0) return;
    const s = payloadsSize(ents);
    this.uncommittedSize = s > this.uncommittedSize ? 0 : this.uncommittedSize - s;
  }

  /**
   * The host made the log durable through the raft log's stable index (RawNode.advance). A leader now counts its
   * own entries as matched and may commit (thesis §10.2.1 with etcd #14370's fix).
   */
  onPersisted(): void {
    if (this.state !== StateType.Leader) return;
    const pr = this.trk.progress.get(this.id);
    if (!pr) return;
    if (pr.maybeUpdate(this.raftLog.stableLastIndex())) {
      if (this.maybeCommit()) {
        this.releasePendingReadIndexMessages();
        this.bcastAppend();
      }
    }
  }

  // ---------------------------------------------------------------- state transitions

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.trk.resetVotes();
    const last = this.raftLog.lastIndex();
    const selfMatch = this.raftLog.stableLastIndex();
    for (const [id, old] of this.trk.progress) {
      const pr = new Progress(0, last + 1, this.maxInflight, old.isLearner);
      if (id === this.id) {
        pr.match = selfMatch;
        pr.recentActive = true;
      }
      this.trk.progress.set(id, pr);
    }
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly = new ReadOnly();
    this.pendingReadIndexMessages = [];
  }

  private resetRandomizedElectionTimeout(): void {
    const r = this.rand();
    invariant(r >= 0 && r < 1, `rand() must return [0,1), got ${r}`);
    this.randomizedElectionTimeout = this.electionTimeout + Math.floor(r * this.electionTimeout);
  }

  /** Become follower of `lead` at `term` (Raft paper §5.2). */
  becomeFollower(term: number, lead: number): void {
    this.reset(term);
    this.lead = lead;
    this.state = StateType.Follower;
    this.log('debug', `${this.id} became follower at term ${this.term}`);
  }

  /** Start an election: new term, vote for self (Raft paper §5.2). */
  becomeCandidate(): void {
    invariant(this.state !== StateType.Leader, 'invalid transition [leader -> candidate]');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = StateType.Candidate;
    this.log('info', `${this.id} became candidate at term ${this.term}`);
  }

  /** PreVote phase (Raft thesis §9.6): no term change, no vote. */
  becomePreCandidate(): void {
    invariant(this.state !== StateType.Leader, 'invalid transition [leader -> pre-candidate]');
    this.trk.resetVotes();
    this.lead = NONE;
    this.state = StateType.PreCandidate;
    this.log('info', `${this.id} became pre-candidate at term ${this.term}`);
  }

  /** Become leader; append the empty entry of the new term (Raft thesis §6.4: commit an entry of its own term). */
  becomeLeader(): void {
    invariant(this.state !== StateType.Follower, 'invalid transition [follower -> leader]');
    this.reset(this.term);
    this.lead = this.id;
    this.state = StateType.Leader;
    const self = this.trk.progress.get(this.id);
    if (self) self.becomeReplicate();
    this.pendingConfIndex = this.raftLog.lastIndex();
    const ok = this.appendEntry([{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) }]);
    invariant(ok, 'empty entry was dropped');
    this.uncommittedSize = 0; // the no-op does not count against the limit
    this.log('info', `${this.id} became leader at term ${this.term}`);
  }

  private hup(t: CampaignType): void {
    if (this.state === StateType.Leader) return;
    if (!this.promotable()) {
      this.log('warn', `${this.id} is unpromotable and can not campaign`);
      return;
    }
    this.campaign(t);
  }

  private campaign(t: CampaignType): void {
    let term: number;
    let voteMsg: MessageType;
    if (t === 'pre-election') {
      this.becomePreCandidate();
      voteMsg = MessageType.MsgPreVote;
      term = this.term + 1; // the term we would campaign for; not adopted yet
    } else {
      this.becomeCandidate();
      voteMsg = MessageType.MsgVote;
      term = this.term;
    }
    const res = this.poll(this.id, voteRespType(voteMsg), true);
    if (res === VoteResult.Won) {
      // single-voter cluster
      if (t === 'pre-election') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    const ctx = t === 'transfer' ? CAMPAIGN_TRANSFER : undefined;
    const lastIndex = this.raftLog.lastIndex();
    const lastTerm = this.raftLog.lastTerm();
    for (const id of [...this.trk.voters].sort((a, b) => a - b)) {
      if (id === this.id) continue;
      this.send(makeMessage({ type: voteMsg, to: id, term, index: lastIndex, logTerm: lastTerm, context: ctx }));
    }
  }

  private poll(id: number, _t: MessageType, granted: boolean): VoteResult {
    this.trk.recordVote(id, granted);
    return this.trk.tallyVotes().result;
  }

  // ---------------------------------------------------------------- ticks

  /** Advances the logical clock by one tick (election timeout or heartbeat). */
  tick(): void {
    if (this.state === StateType.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step(makeMessage({ type: MessageType.MsgHup, from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(makeMessage({ type: MessageType.MsgCheckQuorum, from: this.id }));
      // Leader transfer must finish within one election timeout (Raft thesis §3.10).
      if (this.state === StateType.Leader && this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.state !== StateType.Leader) return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(makeMessage({ type: MessageType.MsgBeat, from: this.id }));
    }
  }

  // ---------------------------------------------------------------- step

  /**
   * Processes one message (etcd raft: raft.Step). Returns false if a proposal/read was dropped (MsgProp or
   * MsgReadIndex that cannot be handled), true otherwise. Stale or irrelevant messages are ignored.
   */
  step(m: Message): boolean {
    if (m.term === 0) {
      // local message (or a forwarded proposal / read index)
    } else if (m.term > this.term) {
      if (m.type === MessageType.MsgVote || m.type === MessageType.MsgPreVote) {
        const force = bytesKey(m.context) === CAMPAIGN_TRANSFER_KEY;
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        if (!force && inLease) {
          // Leader lease (Raft thesis §4.2.3): we heard from a leader recently; ignore disruptive candidates.
          this.log('info', `${this.id} ignored ${MessageType[m.type]} from ${m.from} at term ${m.term}: lease not expired`);
          return true;
        }
      }
      if (m.type === MessageType.MsgPreVote) {
        // never change term on a pre-vote request
      } else if (m.type === MessageType.MsgPreVoteResp && !m.reject) {
        // the term will be adopted when the pre-election is won
      } else if (m.type === MessageType.MsgApp || m.type === MessageType.MsgHeartbeat || m.type === MessageType.MsgSnap) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === MessageType.MsgHeartbeat || m.type === MessageType.MsgApp)) {
        // Tell a stale leader about the newer term so it steps down (needed with PreVote/CheckQuorum).
        this.send(makeMessage({ type: MessageType.MsgAppResp, to: m.from }));
      } else if (m.type === MessageType.MsgPreVote) {
        this.send(makeMessage({ type: MessageType.MsgPreVoteResp, to: m.from, term: this.term, reject: true }));
      }
      return true;
    }

    switch (m.type) {
      case MessageType.MsgHup:
        this.hup(this.preVote ? 'pre-election' : 'election');
        return true;
      case MessageType.MsgVote:
      case MessageType.MsgPreVote: {
        const canVote =
          this.vote === m.from ||
          (this.vote === NONE && this.lead === NONE) ||
          (m.type === MessageType.MsgPreVote && m.term > this.term);
        if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
          this.send(makeMessage({ type: voteRespType(m.type), to: m.from, term: m.term }));
          if (m.type === MessageType.MsgVote) {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send(makeMessage({ type: voteRespType(m.type), to: m.from, term: this.term, reject: true }));
        }
        return true;
      }
      default:
        switch (this.state) {
          case StateType.Leader:
            return this.stepLeader(m);
          case StateType.Candidate:
          case StateType.PreCandidate:
            return this.stepCandidate(m);
          case StateType.Follower:
            return this.stepFollower(m);
        }
    }
  }

  private stepLeader(m: Message): boolean {
    switch (m.type) {
      case MessageType.MsgBeat:
        this.bcastHeartbeat();
        return true;
      case MessageType.MsgCheckQuorum: {
        if (!this.trk.quorumActive()) {
          this.log('warn', `${this.id} stepped down to follower since quorum is not active`);
          this.becomeFollower(this.term, NONE);
        }
        for (const [id, pr] of this.trk.progress) pr.recentActive = id === this.id;
        return true;
      }
      case MessageType.MsgProp: {
        invariant(m.entries.length > 0, `${this.id} stepped empty MsgProp`);
        if (!this.trk.progress.has(this.id)) return false; // removed from the configuration
        if (this.leadTransferee !== NONE) return false; // Raft thesis §3.10
        const ents = m.entries.map((e) => ({ ...e }));
        for (let i = 0; i < ents.length; i++) {
          if (ents[i].type === EntryType.ConfChange) {
            if (this.pendingConfIndex > this.raftLog.applied) {
              ents[i] = { term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) };
            } else {
              this.pendingConfIndex = this.raftLog.lastIndex() + i + 1;
            }
          }
        }
        if (!this.appendEntry(ents)) return false;
        this.bcastAppend();
        return true;
      }
      case MessageType.MsgReadIndex: {
        if (!this.committedEntryInCurrentTerm()) {
          // Raft thesis §6.4: a new leader must commit an entry of its term before serving reads.
          if (this.pendingReadIndexMessages.length >= MAX_PENDING_READ_INDEX_MESSAGES) return false;
          this.pendingReadIndexMessages.push(m);
          return true;
        }
        return this.sendMsgReadIndexResponse(m);
      }
      default:
        break;
    }

    // MsgTransferLeader names its transferee in `index` (kept when a follower forwards it), else in `from`.
    const peer = m.type === MessageType.MsgTransferLeader && m.index !== 0 ? m.index : m.from;
    const pr = this.trk.progress.get(peer);
    if (!pr) return true;
    switch (m.type) {
      case MessageType.MsgAppResp: {
        pr.recentActive = true;
        if (m.reject) {
          let nextProbeIdx = m.rejectHint;
          if (m.logTerm > 0) nextProbeIdx = this.raftLog.findConflictByTerm(m.rejectHint, m.logTerm).index;
          if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
            if (pr.state === ProgressState.Replicate) pr.becomeProbe();
            this.sendAppend(m.from);
          }
        } else {
          const oldPaused = pr.isPaused();
          if (pr.maybeUpdate(m.index)) {
            if (pr.state === ProgressState.Probe) {
              pr.becomeReplicate();
            } else if (pr.state === ProgressState.Snapshot && pr.match + 1 >= this.raftLog.firstIndex()) {
              pr.becomeProbe();
              pr.becomeReplicate();
            } else if (pr.state === ProgressState.Replicate) {
              pr.inflights.freeLE(m.index);
            }
            if (this.maybeCommit()) {
              this.releasePendingReadIndexMessages();
              this.bcastAppend();
            } else if (oldPaused) {
              this.sendAppend(m.from);
            }
            // Fill the inflight window (bounded by it; probe state sends at most one).
            const limit = this.maxInflight + 1;
            for (let i = 0; i < limit && this.maybeSendAppend(m.from, false); i++) {
              /* keep sending */
            }
            if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) {
              this.sendTimeoutNow(m.from);
            }
          }
        }
        return true;
      }
      case MessageType.MsgHeartbeatResp: {
        pr.recentActive = true;
        pr.msgAppFlowPaused = false;
        // Recover a replicate stream whose MsgApps were all lost (window full, nothing acked).
        if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
        if (pr.match < this.raftLog.lastIndex() || pr.state === ProgressState.Probe) this.sendAppend(m.from);
        if (m.context === undefined || m.context.length === 0) return true;
        const acks = this.readOnly.recvAck(m.from, m.context);
        if (this.trk.voteResultOf(acks) !== VoteResult.Won) return true;
        for (const rs of this.readOnly.advance(m.context)) {
          const resp = this.responseToReadIndexReq(rs.req, rs.index);
          if (resp) this.send(resp);
        }
        return true;
      }
      case MessageType.MsgSnapStatus: {
        if (pr.state !== ProgressState.Snapshot) return true;
        if (m.reject) pr.pendingSnapshot = 0;
        pr.becomeProbe();
        // Wait for a heartbeat response before probing again.
        pr.msgAppFlowPaused = true;
        return true;
      }
      case MessageType.MsgUnreachable:
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        return true;
      case MessageType.MsgTransferLeader: {
        if (pr.isLearner) return true;
        const transferee = peer;
        if (this.leadTransferee !== NONE) {
          if (this.leadTransferee === transferee) return true;
          this.abortLeaderTransfer();
        }
        if (transferee === this.id) return true;
        this.electionElapsed = 0;
        this.leadTransferee = transferee;
        if (pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(transferee);
        else this.sendAppend(transferee);
        return true;
      }
      default:
        return true;
    }
  }

  private stepCandidate(m: Message): boolean {
    const myVoteResp = this.state === StateType.PreCandidate ? MessageType.MsgPreVoteResp : MessageType.MsgVoteResp;
    switch (m.type) {
      case MessageType.MsgProp:
      case MessageType.MsgReadIndex:
        return false;
      case MessageType.MsgApp:
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return true;
      case MessageType.MsgHeartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return true;
      case MessageType.MsgSnap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return true;
      case myVoteResp: {
        const res = this.poll(m.from, m.type, !m.reject);
        if (res === VoteResult.Won) {
          if (this.state === StateType.PreCandidate) {
            this.campaign('election');
          } else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (res === VoteResult.Lost) {
          this.becomeFollower(this.term, NONE);
        }
        return true;
      }
      default:
        return true;
    }
  }

  private stepFollower(m: Message): boolean {
    switch (m.type) {
      case MessageType.MsgProp:
        if (this.lead === NONE) return false;
        this.send({ ...m, to: this.lead, term: 0 });
        return true;
      case MessageType.MsgApp:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return true;
      case MessageType.MsgHeartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return true;
      case MessageType.MsgSnap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return true;
      case MessageType.MsgTransferLeader:
        if (this.lead === NONE) return true;
        this.send({ ...m, to: this.lead, term: 0 });
        return true;
      case MessageType.MsgTimeoutNow:
        // Leader transfer: campaign at once, skipping PreVote and the lease (Raft thesis §3.10).
        this.hup('transfer');
        return true;
      case MessageType.MsgReadIndex:
        if (this.lead === NONE) return false;
        this.send({ ...m, to: this.lead, term: 0 });
        return true;
      case MessageType.MsgReadIndexResp:
        this.readStates.push({ index: m.index, requestCtx: m.context ?? new Uint8Array(0) });
        return true;
      default:
        return true;
    }
  }

  // ---------------------------------------------------------------- follower handlers

  private handleAppendEntries(m: Message): void {
    if (m.index < this.raftLog.committed) {
      this.send(makeMessage({ type: MessageType.MsgAppResp, to: m.from, index: this.raftLog.committed }));
      return;
    }
    const lastnewi = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastnewi !== undefined) {
      this.send(makeMessage({ type: MessageType.MsgAppResp, to: m.from, index: lastnewi }));
      return;
    }
    // Reject with a hint for fast back-off (etcd raft: findConflictByTerm; Raft paper §5.3 optimisation).
    const hintIndex = Math.min(m.index, this.raftLog.lastIndex());
    const hint = this.raftLog.findConflictByTerm(hintIndex, m.logTerm);
    this.send(makeMessage({ type: MessageType.MsgAppResp, to: m.from, index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term }));
  }

  private handleHeartbeat(m: Message): void {
    this.raftLog.commitTo(Math.min(m.commit, this.raftLog.lastIndex()));
    this.send(makeMessage({ type: MessageType.MsgHeartbeatResp, to: m.from, context: m.context }));
  }

  private handleSnapshot(m: Message): void {
    invariant(m.snapshot !== undefined, 'MsgSnap without snapshot');
    if (this.restore(m.snapshot)) {
      this.send(makeMessage({ type: MessageType.MsgAppResp, to: m.from, index: this.raftLog.lastIndex() }));
    } else {
      this.send(makeMessage({ type: MessageType.MsgAppResp, to: m.from, index: this.raftLog.committed }));
    }
  }

  /** Installs snapshot s if it is newer than the commit index and includes us; returns true if restored. */
  restore(s: Snapshot): boolean {
    const md = s.metadata;
    if (md.index <= this.raftLog.committed) return false;
    invariant(this.state === StateType.Follower, 'non-follower attempted to restore snapshot');
    const cs = md.confState;
    if (!cs.voters.includes(this.id) && !cs.learners.includes(this.id)) {
      this.log('warn', `${this.id} attempted to restore snapshot but it is not in the ConfState`);
      return false;
    }
    if (this.raftLog.matchTerm(md.index, md.term)) {
      // Our log already has the snapshot's last entry: just fast-forward the commit index.
      this.raftLog.commitTo(md.index);
      return false;
    }
    this.raftLog.restore(s);
    this.trk = new ProgressTracker(this.maxInflight);
    this.trk.applyConfState(cs, this.raftLog.lastIndex() + 1);
    this.log('info', `${this.id} restored snapshot [index: ${md.index}, term: ${md.term}]`);
    return true;
  }

  // ---------------------------------------------------------------- read index & transfer

  private committedEntryInCurrentTerm(): boolean {
    return this.raftLog.term(this.raftLog.committed) === this.term;
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const msgs = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of msgs) this.sendMsgReadIndexResponse(m);
  }

  private sendMsgReadIndexResponse(m: Message): boolean {
    if (this.trk.isSingleton() && this.trk.voters.has(this.id)) {
      const resp = this.responseToReadIndexReq(m, this.raftLog.committed);
      if (resp) this.send(resp);
      return true;
    }
    if (!this.readOnly.addRequest(this.raftLog.committed, m)) return false;
    this.readOnly.recvAck(this.id, m.context);
    this.bcastHeartbeatWithCtx(m.context);
    return true;
  }

  private responseToReadIndexReq(req: Message, readIndex: number): Message | undefined {
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index: readIndex, requestCtx: req.context ?? new Uint8Array(0) });
      return undefined;
    }
    return makeMessage({ type: MessageType.MsgReadIndexResp, to: req.from, index: readIndex, context: req.context });
  }

  private sendTimeoutNow(to: number): void {
    this.send(makeMessage({ type: MessageType.MsgTimeoutNow, to }));
  }

  /** Cancels an in-progress leader transfer. */
  abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  // ---------------------------------------------------------------- membership

  /**
   * Applies a committed membership change (one node at a time, Raft thesis §4.1) and returns the new ConfState.
   * The host calls this when it applies a ConfChange entry. Throws RaftInvariantError for an invalid node ID.
   */
  applyConfChange(cc: ConfChange): ConfState {
    invariant(Number.isSafeInteger(cc.nodeId) && cc.nodeId > 0, `invalid node id ${cc.nodeId}`);
    const cs = this.trk.confState();
    const voters = new Set(cs.voters);
    const learners = new Set(cs.learners);
    if (cc.type === 'addNode') {
      learners.delete(cc.nodeId);
      voters.add(cc.nodeId);
    } else if (cc.type === 'addLearner') {
      if (!voters.has(cc.nodeId)) learners.add(cc.nodeId);
    } else {
      voters.delete(cc.nodeId);
      learners.delete(cc.nodeId);
    }
    const next: ConfState = { voters: [...voters].sort((a, b) => a - b), learners: [...learners].sort((a, b) => a - b) };
    this.trk.applyConfState(next, this.raftLog.lastIndex() + 1);
    if (this.state === StateType.Leader) {
      const self = this.trk.progress.get(this.id);
      if (self) self.recentActive = true;
      if (this.maybeCommit()) this.bcastAppend();
      else this.bcastAppend();
      if (this.leadTransferee !== NONE && !this.trk.voters.has(this.leadTransferee)) this.abortLeaderTransfer();
    }
    return next;
  }
}
