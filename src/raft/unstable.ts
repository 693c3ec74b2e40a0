/**
 * The not-yet-durable tail of the Raft log (etcd raft: log_unstable.go). Holds entries (and possibly an incoming
 * snapshot) that were accepted by Raft but not yet confirmed persisted by the host through RawNode.advance.
 *
 * Entries [offset, offsetInProgress) have been handed to the host in the outstanding Ready; entries from
 * offsetInProgress on have not been handed out yet.
 */
import { Entry, Snapshot, invariant } from './types';

/** Unstable log tail; see the module comment. Invariant: entries[i].index === offset + i. */
export class Unstable {
  /** Pending incoming snapshot (follower), if any. */
  snapshot: Snapshot | undefined;
  /** True if `snapshot` was handed to the host in the outstanding Ready. */
  snapshotInProgress = false;
  /** Unstable entries; entries[i] has index offset + i. */
  entries: Entry[] = [];
  /** Index of entries[0]. */
  offset: number;
  /** First index not yet handed out in a Ready. */
  offsetInProgress: number;

  /** @param offset index of the first unstable entry (storage lastIndex + 1). */
  constructor(offset: number) {
    this.offset = offset;
    this.offsetInProgress = offset;
  }

  /** Snapshot index + 1 if a snapshot is pending, else undefined. */
  maybeFirstIndex(): number | undefined {
    return this.snapshot ? this.snapshot.metadata.index + 1 : undefined;
  }

  /** Last unstable entry index, or the pending snapshot index, else undefined. */
  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot ? this.snapshot.metadata.index : undefined;
  }

  /** Term of index i if known here (an unstable entry or the pending snapshot's index), else undefined. */
  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot && this.snapshot.metadata.index === i) return this.snapshot.metadata.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    return this.entries[i - this.offset].term;
  }

  /** Entries not yet handed to the host. */
  nextEntries(): Entry[] {
    const inProgress = this.offsetInProgress - this.offset;
    return inProgress >= this.entries.length ? [] : this.entries.slice(inProgress);
  }

  /** The pending snapshot if not yet handed to the host. */
  nextSnapshot(): Snapshot | undefined {
    return this.snapshot && !this.snapshotInProgress ? this.snapshot : undefined;
  }

  /** Marks everything currently held as handed to the host (called when a Ready is produced). */
  acceptInProgress(): void {
    if (this.entries.length > 0) this.offsetInProgress = this.offset + this.entries.length;
    if (this.snapshot) this.snapshotInProgress = true;
  }

  /**
   * The host persisted entries through (i, t): drop them. Ignored if entry i no longer has term t (it was
   * truncated and replaced meanwhile) or lies before offset (a snapshot superseded it).
   */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    if (gt === undefined || gt !== t || i < this.offset) return;
    const n = i + 1 - this.offset;
    this.entries = this.entries.slice(n);
    this.offset = i + 1;
    this.offsetInProgress = Math.max(this.offsetInProgress, this.offset);
  }

  /** The host persisted the snapshot at index i: drop it if it is still the pending one. */
  stableSnapTo(i: number): void {
    if (this.snapshot && this.snapshot.metadata.index === i) {
      this.snapshot = undefined;
      this.snapshotInProgress = false;
    }
  }

  /** Replaces everything by snapshot s (InstallSnapshot, Raft paper §7). */
  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.offsetInProgress = this.offset;
    this.entries = [];
    this.snapshot = s;
    this.snapshotInProgress = false;
  }

  /** Appends ents (contiguous), truncating any unstable suffix they overwrite (log matching, Raft paper §5.3). */
  truncateAndAppend(ents: Entry[]): void {
    if (ents.length === 0) return;
    const from = ents[0].index;
    if (from === this.offset + this.entries.length) {
      this.entries = this.entries.concat(ents);
    } else if (from <= this.offset) {
      // Replaces the whole unstable tail (and shadows stable entries >= from).
      this.offset = from;
      this.offsetInProgress = from;
      this.entries = ents.slice();
    } else {
      this.entries = this.entries.slice(0, from - this.offset).concat(ents);
      this.offsetInProgress = Math.min(this.offsetInProgress, from);
    }
  }

  /** Unstable entries [lo, hi). Throws RaftInvariantError when out of bounds. */
  slice(lo: number, hi: number): Entry[] {
    invariant(lo <= hi, () => `unstable.slice: invalid [${lo}, ${hi})`);
    const upper = this.offset + this.entries.length;
    invariant(lo >= this.offset && hi <= upper, () => `unstable.slice [${lo}, ${hi}) out of bound [${this.offset}, ${upper}]`);
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
