/**
 * How an online defragment's copy catches up with a store that kept applying while it was made (etcd 3.4 instead
 * stops the world for the whole copy, its issue #9222). The state machine's part:
 *
 *   1. tee: from the start, every batch handed to the apply worker is also kept here (bounded: MAX_TEE_BYTES; at
 *      the bound the state machine has no room and Raft keeps further entries until the copy is done);
 *   2. the copy (src/mvcc/copy.ts, in a child process) is one read transaction's state, at some consistent index X;
 *   3. shadow: a second apply worker is started on the copy and handed the kept batches, then every new batch, in
 *      order (the applier skips entries at or below the store's consistent index, so those ≤ X are no-ops);
 *   4. once the shadow has caught up with the live worker, the state machine's swap holds new entries, lets both
 *      workers drain and renames the copy into place: the only pause reads and writes see.
 */
import type { Entry } from '../raft';
import type { ApplyClient } from '../apply/client';

/** Bytes of entry data kept for the copy while it is being made, at most; then new entries wait. */
export const MAX_TEE_BYTES = 64 * 1024 * 1024;
/** How long the shadow worker may take to catch up with the live one before the swap goes ahead anyway, ms. */
export const CATCH_UP_TIMEOUT_MS = 60_000;
/** How often catch-up progress is checked, ms. */
const POLL_MS = 5;

/** The tee and the shadow apply worker of one online defragment (see the file comment). */
export class DefragCatchUp {
  private tee: Entry[][] | null = [];
  private teeBytes = 0;
  private endTee!: () => void;
  private readonly teeEnded = new Promise<void>((resolve) => { this.endTee = resolve; });
  private shadow: ApplyClient | null = null;
  private abortReason: string | null = null;

  /** True once {@link abort} ran (a snapshot install, close, or a shadow failure). */
  get aborted(): boolean {
    return this.abortReason !== null;
  }

  /** Takes a batch just handed to the live apply worker (ascending indexes). Never throws. */
  handed(entries: Entry[]): void {
    if (this.abortReason !== null || entries.length === 0) return;
    if (this.tee !== null) {
      this.tee.push(entries);
      for (const e of entries) this.teeBytes += e.data.length;
    } else if (this.shadow !== null) {
      try {
        this.shadow.apply(entries);
      } catch (e) {
        this.abort(`defragment's shadow apply worker failed: ${(e as Error).message}`);
      }
    }
  }

  /** False while the tee is at MAX_TEE_BYTES or the shadow worker's queue is at its bound. */
  hasRoom(): boolean {
    if (this.abortReason !== null) return true;
    if (this.tee !== null) return this.teeBytes < MAX_TEE_BYTES;
    return this.shadow === null || this.shadow.hasRoom();
  }

  /** Resolves once {@link hasRoom} may be true again (never rejects). */
  whenRoom(): Promise<void> {
    if (this.tee !== null) return this.teeEnded;
    return this.shadow?.whenRoom() ?? Promise.resolve();
  }

  /** Stops feeding the copy; the defragment fails at its next step and removes the copy. */
  abort(reason = 'defragment aborted: the store was replaced by a snapshot or closed'): void {
    if (this.abortReason === null) this.abortReason = reason;
    this.tee = null;
    this.teeBytes = 0;
    this.endTee();
  }

  /** @throws Error with the abort reason once aborted. */
  throwIfAborted(): void {
    if (this.abortReason !== null) throw new Error(this.abortReason);
  }

  /**
   * Makes `client` (an apply worker started on the copy) the shadow: hands it every kept batch, then (through
   * {@link handed}) every new one. Closes it and throws if already aborted.
   */
  async startShadow(client: ApplyClient): Promise<void> {
    if (this.abortReason !== null) {
      await client.close();
      this.throwIfAborted();
    }
    const kept = this.tee ?? [];
    this.tee = null;
    this.teeBytes = 0;
    this.shadow = client;
    this.endTee();
    // Synchronously, so no batch handed meanwhile can overtake the kept ones.
    for (const b of kept) this.handed(b);
  }

  /**
   * Resolves once the shadow has applied as far as `liveApplied()` (the live worker's applied index) — or after
   * CATCH_UP_TIMEOUT_MS, since the swap drains whatever is left anyway. @throws when aborted or the shadow failed.
   */
  async caughtUp(liveApplied: () => number): Promise<void> {
    const deadline = Date.now() + CATCH_UP_TIMEOUT_MS;
    for (;;) {
      this.throwIfAborted();
      const s = this.shadow;
      if (s === null) return;
      const fatal = s.fatal();
      if (fatal !== null) {
        this.abort(`defragment's shadow apply worker failed: ${fatal}`);
        this.throwIfAborted();
      }
      if (s.appliedIndex() >= liveApplied() || Date.now() > deadline) return;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  /** Lets the shadow worker apply what it was handed and stop (idempotent). */
  async closeShadow(): Promise<void> {
    const s = this.shadow;
    this.shadow = null;
    if (s !== null) await s.close();
  }
}
