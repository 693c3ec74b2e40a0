/**
 * The Raft log as Raft sees it: stable storage + the unstable tail, plus the commit and applied indexes
 * (etcd raft: log.go raftLog). Implements log matching, conflict detection and the fast back-off hint
 * (Raft paper §5.3; etcd raft findConflictByTerm).
 */
import { Unstable } from './unstable';
import { Entry, ErrCompacted, ErrUnavailable, Snapshot, Storage, invariant, limitSize } from './types';

/** Stable storage + unstable tail + commit/applied indexes. Invariant: applied <= committed <= lastIndex. */
export class RaftLog {
  readonly storage: Storage;
  readonly unstable: Unstable;
  /** Highest index known committed (Raft paper figure 2 commitIndex). */
  committed: number;
  /** Highest index handed to the state machine (applied after the Ready carrying it is advanced). */
  applied: number;
  /** Max bytes of committed entries per Ready. */
  readonly maxApplyingSize: number;

  /** Builds the log over storage; committed/applied start at the snapshot index. */
  constructor(storage: Storage, maxApplyingSize: number) {
    this.storage = storage;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applied = first - 1;
    this.maxApplyingSize = maxApplyingSize;
  }

  /** First available index (after the latest snapshot). */
  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  /** Last index in the log. */
  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** Term of the last entry. */
  lastTerm(): number {
    const t = this.term(this.lastIndex());
    invariant(t !== undefined, 'unexpected error when getting the last term');
    return t;
  }

  /**
   * Term of entry i, or undefined if i is compacted (< firstIndex-1) or beyond lastIndex.
   * Index 0 has term 0.
   */
  term(i: number): number | undefined {
    const dummy = this.firstIndex() - 1;
    if (i < dummy || i > this.lastIndex()) return undefined;
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    try {
      return this.storage.term(i);
    } catch (e) {
      if (e instanceof ErrCompacted || e instanceof ErrUnavailable) return undefined;
      throw e;
    }
  }

  /** True if entry i exists with term t. */
  matchTerm(i: number, t: number): boolean {
    const lt = this.term(i);
    return lt !== undefined && lt === t;
  }

  /** Raft paper §5.4.1 voting restriction: is (lasti, term) at least as up-to-date as our last entry? */
  isUpToDate(lasti: number, term: number): boolean {
    const lt = this.lastTerm();
    return term > lt || (term === lt && lasti >= this.lastIndex());
  }

  /**
   * Index of the first entry of ents that conflicts with the log (different term) or is new; 0 if all of ents
   * are already present with matching terms.
   */
  findConflict(ents: Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Fast back-off (etcd raft findConflictByTerm): the largest index <= index whose term <= term, with that term;
   * stops at the first unknown (compacted) index, returning term 0 there.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    const MAX_STEPS = 1 << 30;
    let steps = 0;
    for (let i = index; i >= 0; i--) {
      invariant(++steps < MAX_STEPS, 'findConflictByTerm: loop bound exceeded');
      const t = this.term(i);
      if (t === undefined) return { index: i, term: 0 };
      if (t <= term) return { index: i, term: t };
    }
    return { index: 0, term: 0 };
  }

  /**
   * AppendEntries receiver (Raft paper figure 2): if entry `index` has term `logTerm`, append ents (dropping any
   * conflicting suffix), raise commit to min(committed, last new index) and return the last new index;
   * otherwise return undefined. Throws RaftInvariantError if a committed entry would be overwritten.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastnewi = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      invariant(ci > this.committed, () => `entry ${ci} conflicts with committed entry [committed(${this.committed})]`);
      this.append(ents.slice(ci - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastnewi));
    return lastnewi;
  }

  /** Appends ents to the unstable tail (truncating conflicts after committed); returns the new last index. */
  append(ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0].index - 1;
    invariant(after >= this.committed, () => `after(${after}) is out of range [committed(${this.committed})]`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /** Raises the commit index (never lowers it). Throws if tocommit > lastIndex. */
  commitTo(tocommit: number): void {
    if (this.committed < tocommit) {
      invariant(this.lastIndex() >= tocommit, () => `tocommit(${tocommit}) is out of range [lastIndex(${this.lastIndex()})]`);
      this.committed = tocommit;
    }
  }

  /** Leader commit rule (Raft paper §5.4.2): commit maxIndex only if its entry is from `term`. */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.term(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  /** Records that the state machine has been handed entries through i. */
  appliedTo(i: number): void {
    if (i === 0) return;
    invariant(this.committed >= i && i >= this.applied, () => `applied(${i}) is out of range [prevApplied(${this.applied}), committed(${this.committed})]`);
    this.applied = i;
  }

  /**
   * Last index that is durable and consistent with this log: entries below the unstable tail. With a pending
   * snapshot, nothing beyond the old state is stable.
   */
  stableLastIndex(): number {
    if (this.unstable.snapshot) return 0; // nothing is known consistent until the snapshot is durable
    if (this.unstable.entries.length > 0) return this.unstable.offset - 1;
    return this.storage.lastIndex();
  }

  /**
   * While true, committed entries are not handed out (etcd-io/raft: applyingEntsPaused): the host's state machine
   * has no room. They stay in the log and are handed out once the host clears it.
   */
  applyPaused = false;

  /** True if there are committed, durable entries not yet applied (and no snapshot pending, apply not paused). */
  hasNextCommittedEnts(): boolean {
    if (this.unstable.snapshot || this.applyPaused) return false;
    return Math.min(this.committed, this.stableLastIndex()) > this.applied;
  }

  /** Committed, durable, unapplied entries, at most maxApplyingSize bytes (but at least one). */
  nextCommittedEnts(): Entry[] {
    if (this.unstable.snapshot || this.applyPaused) return [];
    const hi = Math.min(this.committed, this.stableLastIndex());
    if (hi <= this.applied) return [];
    return this.slice(this.applied + 1, hi + 1, this.maxApplyingSize);
  }

  /** Entries from i through the end, at most maxSize bytes (at least one). Throws ErrCompacted if i < firstIndex. */
  entries(i: number, maxSize: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxSize);
  }

  /** Every entry (tests/debug). */
  allEntries(): Entry[] {
    return this.entries(this.firstIndex(), Number.MAX_SAFE_INTEGER);
  }

  /**
   * Entries [lo, hi) across storage and the unstable tail, limited to maxSize bytes (at least one).
   * Throws ErrCompacted if lo < firstIndex; RaftInvariantError if hi > lastIndex+1.
   */
  slice(lo: number, hi: number, maxSize: number): Entry[] {
    invariant(lo <= hi, () => `invalid slice ${lo} > ${hi}`);
    const fi = this.firstIndex();
    if (lo < fi) throw new ErrCompacted();
    invariant(hi <= this.lastIndex() + 1, () => `slice[${lo},${hi}) out of bound [${fi},${this.lastIndex()}]`);
    if (lo === hi) return [];
    let ents: Entry[] = [];
    const uoff = this.unstable.offset;
    if (lo < uoff) {
      const stableHi = Math.min(hi, uoff);
      let stored: Entry[];
      try {
        stored = this.storage.entries(lo, stableHi, maxSize);
      } catch (e) {
        if (e instanceof ErrUnavailable) throw new Error(`entries[${lo}:${stableHi}) is unavailable from storage`);
        throw e;
      }
      if (stored.length < stableHi - lo) return stored; // size limit reached inside storage
      ents = stored;
    }
    if (hi > uoff) {
      const u = this.unstable.slice(Math.max(lo, uoff), hi);
      ents = ents.length > 0 ? ents.concat(u) : u;
    }
    return limitSize(ents, maxSize);
  }

  /** The snapshot to send a lagging follower: the pending unstable one, else storage's (may throw). */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Replaces the log with snapshot s; commit moves to its index (Raft paper §7). */
  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }
}
