/**
 * Waiters for "applied index ≥ N" (etcd: pkg/wait WaitTime), used by linearizable reads after ReadIndex
 * and by anything that must observe its own write. Kept as a min-ordered list: reads arrive with
 * non-decreasing indexes almost always, so insertion is O(1) at the tail in the common case.
 */

/** Upper bound on reads waiting at once; past it, new reads are refused with "too many requests". */
export const MAX_WAITING_READS = 100_000;

interface Waiter {
  index: number;
  resolve: () => void;
}

/** Resolves callbacks once the applied index reaches their target. */
export class AppliedIndexWaiters {
  private readonly waiters: Waiter[] = [];
  private applied: number;

  constructor(appliedIndex: number) {
    this.applied = appliedIndex;
  }

  /** Number of waiting callbacks. */
  get size(): number {
    return this.waiters.length;
  }

  /**
   * Calls `resolve` once the applied index is ≥ `index` (immediately if already).
   * Returns false when the queue is full (MAX_WAITING_READS) and the caller must refuse the read.
   */
  wait(index: number, resolve: () => void): boolean {
    if (index <= this.applied) {
      resolve();
      return true;
    }
    if (this.waiters.length >= MAX_WAITING_READS) return false;
    const w: Waiter = { index, resolve };
    const last = this.waiters[this.waiters.length - 1];
    if (last === undefined || last.index <= index) {
      this.waiters.push(w);
    } else {
      let i = this.waiters.length - 1;
      while (i > 0 && (this.waiters[i - 1] as Waiter).index > index) i--;
      this.waiters.splice(i, 0, w);
    }
    return true;
  }

  /** Records a new applied index and resolves every waiter at or below it. */
  advance(appliedIndex: number): void {
    if (appliedIndex <= this.applied) return;
    this.applied = appliedIndex;
    let n = 0;
    while (n < this.waiters.length && (this.waiters[n] as Waiter).index <= appliedIndex) n++;
    if (n === 0) return;
    const ready = this.waiters.splice(0, n);
    for (const w of ready) w.resolve();
  }
}
