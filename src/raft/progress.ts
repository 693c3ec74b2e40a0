/**
 * Leader-side view of each peer's log (etcd raft: tracker/progress.go and tracker.go) and the majority quorum
 * arithmetic (etcd raft: quorum/majority.go). Progress states: probe (one MsgApp per heartbeat until a match is
 * found), replicate (optimistic pipelining within the inflight window), snapshot (waiting for InstallSnapshot).
 */
import { Inflights } from './inflights';
import { ConfState, RaftInvariantError, invariant } from './types';

/** Replication state of one follower. */
export enum ProgressState {
  Probe = 'StateProbe',
  Replicate = 'StateReplicate',
  Snapshot = 'StateSnapshot',
}

/** Replication progress of one peer as tracked by the leader (Raft paper figure 2 nextIndex/matchIndex). */
export class Progress {
  /** Highest index known replicated (and durable) on the peer. */
  match: number;
  /** Next index to send. */
  next: number;
  state: ProgressState = ProgressState.Probe;
  /** In snapshot state: index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Heard from the peer since the last CheckQuorum round. */
  recentActive = false;
  /** In probe state: a MsgApp is outstanding; wait for a response or heartbeat response. */
  msgAppFlowPaused = false;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(match: number, next: number, maxInflight: number, isLearner: boolean) {
    this.match = match;
    this.next = next;
    this.inflights = new Inflights(maxInflight);
    this.isLearner = isLearner;
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  /** Enter probe state; after a snapshot, resume after the snapshot index. */
  becomeProbe(): void {
    if (this.state === ProgressState.Snapshot) {
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1;
    }
  }

  /** Enter replicate state (pipelined MsgApp). */
  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  /** Enter snapshot state while InstallSnapshot at snapshotIndex is in flight. */
  becomeSnapshot(snapshotIndex: number): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
  }

  /** Book-keeping after sending a MsgApp whose last entry is lastIndex (entries > 0) (etcd: UpdateOnEntriesSend). */
  sentEntries(entries: number, lastIndex: number): void {
    if (this.state === ProgressState.Replicate) {
      if (entries > 0) {
        invariant(lastIndex >= this.next, 'sentEntries: lastIndex < next');
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex);
      }
    } else if (this.state === ProgressState.Probe) {
      this.msgAppFlowPaused = true;
    } else {
      throw new RaftInvariantError(`sending append in unhandled state ${this.state}`);
    }
  }

  /** A non-rejecting MsgAppResp acknowledged index n; returns true if match advanced. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.msgAppFlowPaused = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * A rejecting MsgAppResp for MsgApp at `rejected` with follower hint `matchHint`: move next back.
   * Returns false if the rejection is stale (etcd raft: MaybeDecrTo).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1, 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  /** True if the leader must not send MsgApp to this peer now. */
  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.msgAppFlowPaused;
      case ProgressState.Replicate:
        return this.inflights.full();
      case ProgressState.Snapshot:
        return true;
    }
  }
}

/** Outcome of a vote count. */
export enum VoteResult {
  Pending,
  Lost,
  Won,
}

/** Membership + per-peer progress + votes (etcd raft: tracker.ProgressTracker, majority config only). */
export class ProgressTracker {
  voters: Set<number> = new Set();
  learners: Set<number> = new Set();
  progress: Map<number, Progress> = new Map();
  votes: Map<number, boolean> = new Map();

  constructor(readonly maxInflight: number) {}

  /** Installs membership cs; progress for new peers starts at (match 0, next nextIndex). */
  applyConfState(cs: ConfState, nextIndex: number): void {
    for (const v of cs.voters) invariant(Number.isSafeInteger(v) && v > 0, `invalid voter id ${v}`);
    for (const l of cs.learners) {
      invariant(Number.isSafeInteger(l) && l > 0, `invalid learner id ${l}`);
      invariant(!cs.voters.includes(l), `node ${l} is both voter and learner`);
    }
    this.voters = new Set(cs.voters);
    this.learners = new Set(cs.learners);
    const next = new Map<number, Progress>();
    for (const id of [...cs.voters, ...cs.learners]) {
      const old = this.progress.get(id);
      if (old) {
        old.isLearner = this.learners.has(id);
        next.set(id, old);
      } else {
        next.set(id, new Progress(0, nextIndex, this.maxInflight, this.learners.has(id)));
      }
    }
    this.progress = next;
  }

  /** Current membership. */
  confState(): ConfState {
    return { voters: [...this.voters].sort((a, b) => a - b), learners: [...this.learners].sort((a, b) => a - b) };
  }

  /** Majority size of the voter set. */
  quorum(): number {
    return Math.floor(this.voters.size / 2) + 1;
  }

  /** True if id is the only voter. */
  isSingleton(): boolean {
    return this.voters.size === 1;
  }

  /** Largest index replicated on a majority of voters (Raft paper §5.3; etcd quorum.CommittedIndex). */
  committed(): number {
    const n = this.voters.size;
    if (n === 0) return Number.MAX_SAFE_INTEGER; // no voters: nothing constrains (etcd semantics)
    const matches: number[] = [];
    for (const id of this.voters) matches.push(this.progress.get(id)?.match ?? 0);
    matches.sort((a, b) => b - a);
    return matches[this.quorum() - 1];
  }

  /** Records id's vote (first vote wins); non-voters are ignored when tallying. */
  recordVote(id: number, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  /** Clears votes. */
  resetVotes(): void {
    this.votes.clear();
  }

  /** Tally: granted/rejected counts among voters and the result. */
  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    const q = this.quorum();
    const missing = this.voters.size - granted - rejected;
    let result = VoteResult.Lost;
    if (granted >= q) result = VoteResult.Won;
    else if (granted + missing >= q) result = VoteResult.Pending;
    return { granted, rejected, result };
  }

  /** Vote result for an arbitrary acknowledgement set (ReadIndex heartbeat acks). */
  voteResultOf(acks: Set<number>): VoteResult {
    let granted = 0;
    for (const id of this.voters) if (acks.has(id)) granted++;
    if (granted >= this.quorum()) return VoteResult.Won;
    return granted + (this.voters.size - granted) >= this.quorum() ? VoteResult.Pending : VoteResult.Lost;
  }

  /** CheckQuorum (Raft thesis §6.2): were a majority of voters recently active? */
  quorumActive(): boolean {
    const acks = new Set<number>();
    for (const id of this.voters) if (this.progress.get(id)?.recentActive) acks.add(id);
    return this.voteResultOf(acks) === VoteResult.Won;
  }
}
