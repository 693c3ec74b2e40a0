/**
 * In-memory stable storage (etcd raft: storage.go MemoryStorage). Holds what the host has made durable: the
 * HardState, the latest snapshot and the entries after it. ents[0] is a dummy entry carrying the snapshot's
 * index/term so that term(snapshotIndex) is answerable.
 */
import {
  ConfState,
  Entry,
  EntryType,
  ErrCompacted,
  ErrSnapOutOfDate,
  ErrUnavailable,
  HardState,
  Snapshot,
  Storage,
  invariant,
  limitSize,
} from './types';

/** Storage backed by arrays in memory. Not thread-safe (Raft is single-threaded). */
export class MemoryStorage implements Storage {
  private hardState: HardState = { term: 0, vote: 0, commit: 0 };
  private snap: Snapshot = { metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: new Uint8Array(0) };
  /** ents[i] has raft log index ents[0].index + i; ents[0] is the dummy at the snapshot position. */
  private ents: Entry[] = [{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) }];

  /**
   * @param confState optional initial membership recorded at index 0 (tests / custom bootstraps); a normal
   * cluster uses RawNode.bootstrap instead.
   */
  constructor(confState?: ConfState) {
    if (confState) this.snap.metadata.confState = { voters: [...confState.voters], learners: [...confState.learners] };
  }

  /** @inheritdoc */
  initialState(): { hardState: HardState; confState: ConfState } {
    return {
      hardState: { ...this.hardState },
      confState: { voters: [...this.snap.metadata.confState.voters], learners: [...this.snap.metadata.confState.learners] },
    };
  }

  /** Records the persisted HardState. */
  setHardState(hs: HardState): void {
    this.hardState = { ...hs };
  }

  private offset(): number {
    return this.ents[0].index;
  }

  /** @inheritdoc */
  entries(lo: number, hi: number, maxSizeBytes: number): Entry[] {
    const off = this.offset();
    if (lo <= off) throw new ErrCompacted();
    if (hi > this.lastIndex() + 1) throw new ErrUnavailable();
    invariant(lo <= hi, () => `MemoryStorage.entries: lo ${lo} > hi ${hi}`);
    if (this.ents.length === 1 || lo === hi) return [];
    return limitSize(this.ents.slice(lo - off, hi - off), maxSizeBytes);
  }

  /** @inheritdoc */
  term(i: number): number {
    const off = this.offset();
    if (i < off) throw new ErrCompacted();
    if (i - off >= this.ents.length) throw new ErrUnavailable();
    return this.ents[i - off].term;
  }

  /** @inheritdoc */
  lastIndex(): number {
    return this.ents[0].index + this.ents.length - 1;
  }

  /** @inheritdoc */
  firstIndex(): number {
    return this.ents[0].index + 1;
  }

  /** @inheritdoc */
  snapshot(): Snapshot {
    return this.snap;
  }

  /**
   * Replaces the storage content with snapshot s (a follower installing a leader's snapshot).
   * Throws ErrSnapOutOfDate if s is not newer than the current snapshot.
   */
  applySnapshot(s: Snapshot): void {
    if (this.snap.metadata.index >= s.metadata.index) throw new ErrSnapOutOfDate();
    this.snap = s;
    this.ents = [{ term: s.metadata.term, index: s.metadata.index, type: EntryType.Normal, data: new Uint8Array(0) }];
  }

  /**
   * Records a snapshot of the state machine as of applied index `index` (which must be in the log) and returns it.
   * Does not discard entries (call compact). Throws ErrSnapOutOfDate if index <= the current snapshot index.
   */
  createSnapshot(index: number, cs: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.snap.metadata.index) throw new ErrSnapOutOfDate();
    invariant(index <= this.lastIndex(), () => `snapshot ${index} is out of bound lastindex(${this.lastIndex()})`);
    const term = this.ents[index - this.offset()].term;
    this.snap = { metadata: { index, term, confState: { voters: [...cs.voters], learners: [...cs.learners] } }, data };
    return this.snap;
  }

  /**
   * Discards entries up to and including `index` (log compaction, Raft paper §7). `index` must be <= lastIndex and
   * should be covered by a snapshot. Throws ErrCompacted if index <= the current first index - 1.
   */
  compact(index: number): void {
    const off = this.offset();
    if (index <= off) throw new ErrCompacted();
    invariant(index <= this.lastIndex(), () => `compact ${index} is out of bound lastindex(${this.lastIndex()})`);
    const i = index - off;
    const first = this.ents[i];
    this.ents = [{ term: first.term, index: first.index, type: EntryType.Normal, data: new Uint8Array(0) }, ...this.ents.slice(i + 1)];
  }

  /**
   * Appends entries, truncating any existing suffix that starts at or after ents[0].index (conflict resolution is
   * done by Raft; this just makes storage mirror the log). Entries at or below the snapshot index are ignored.
   * Throws RaftInvariantError if ents leave a gap after lastIndex or are not contiguous.
   */
  append(ents: Entry[]): void {
    if (ents.length === 0) return;
    for (let k = 1; k < ents.length; k++) {
      invariant(ents[k].index === ents[k - 1].index + 1, 'MemoryStorage.append: entries not contiguous');
    }
    const first = this.firstIndex();
    const last = ents[0].index + ents.length - 1;
    if (last < first) return; // entirely compacted away
    if (first > ents[0].index) ents = ents.slice(first - ents[0].index);
    const off = ents[0].index - this.offset();
    invariant(off <= this.ents.length, () => `missing log entry [last: ${this.lastIndex()}, append at: ${ents[0].index}]`);
    // In place: the common case is a pure append, and copying the whole log per Ready is quadratic.
    // Safe because entries() hands out slices, never this array.
    if (off < this.ents.length) this.ents.length = off; // truncate a conflicting suffix
    for (const e of ents) this.ents.push(e);
  }
}
