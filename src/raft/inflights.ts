/**
 * Sliding window of in-flight MsgApp (etcd raft: tracker/inflights.go). Each slot records the last entry index
 * of one MsgApp sent to a follower in replicate state; the leader stops sending when the window is full and frees
 * slots as MsgAppResp acknowledge indexes. Capacity = maxInflightMsgs.
 */
import { invariant } from './types';

/** Bounded ring buffer of in-flight MsgApp last indexes (capacity `size`). */
export class Inflights {
  private start = 0;
  private count = 0;
  private readonly buffer: number[];

  /** @param size window capacity (messages), > 0. */
  constructor(readonly size: number) {
    invariant(Number.isInteger(size) && size > 0, `inflights size must be a positive integer, got ${size}`);
    this.buffer = new Array<number>(size).fill(0);
  }

  /** Records a MsgApp whose last entry is `index`. Indexes must increase. Throws if the window is full. */
  add(index: number): void {
    invariant(!this.full(), 'cannot add into a full inflights');
    if (this.count > 0) {
      const lastIdx = this.buffer[(this.start + this.count - 1) % this.size];
      invariant(index > lastIdx, () => `inflights must be added in increasing order: ${index} after ${lastIdx}`);
    }
    this.buffer[(this.start + this.count) % this.size] = index;
    this.count++;
  }

  /** Frees every in-flight message whose last index is <= to. */
  freeLE(to: number): void {
    if (this.count === 0 || to < this.buffer[this.start]) return;
    let i = 0;
    let idx = this.start;
    for (; i < this.count; i++) {
      if (to < this.buffer[idx]) break;
      idx = (idx + 1) % this.size;
    }
    this.count -= i;
    this.start = idx;
    if (this.count === 0) this.start = 0;
  }

  /** Frees the oldest in-flight message (used on heartbeat response to unstick a full window). */
  freeFirstOne(): void {
    if (this.count === 0) return;
    this.freeLE(this.buffer[this.start]);
  }

  /** True when no more MsgApp may be sent. */
  full(): boolean {
    return this.count === this.size;
  }

  /** Messages currently in flight. */
  len(): number {
    return this.count;
  }

  /** Empties the window. */
  reset(): void {
    this.count = 0;
    this.start = 0;
  }
}
