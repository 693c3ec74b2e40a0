/**
 * Proposals waiting for their apply result (etcd: pkg/wait Wait keyed by request ID).
 *
 * Every entry has the same timeout, so insertion order is deadline order: expiry walks the Map from the
 * front on each Raft tick instead of arming one timer per request (no per-request timer allocation).
 */
import { EtcdError, etcdError, etcdErrorById } from '../errors';
import { MAX_PENDING_PROPOSALS } from './flow-limits';

/** Called once with the proposal's outcome: an EtcdError, or null and the apply worker's encoded response. */
export type ProposalDone = (err: EtcdError | null, response?: Uint8Array) => void;

interface Pending {
  deadlineMs: number;
  bytes: number;
  done: ProposalDone;
}

/** Registry of in-flight proposals keyed by request ID. */
export class PendingProposals {
  private readonly byId = new Map<number, Pending>();
  private totalBytes = 0;

  constructor(private readonly timeoutMs: number) {}

  /** Number of proposals in flight (etcd_server_proposals_pending counts these). */
  get size(): number {
    return this.byId.size;
  }

  /** Bytes of proposal data in flight (the `bytes` given to add), for the flow check (src/server/flow-limits.ts). */
  get bytes(): number {
    return this.totalBytes;
  }

  /**
   * Registers a waiter for a proposal of `bytes` bytes; answers `done` at once with TooManyRequests (and returns
   * false) when MAX_PENDING_PROPOSALS is reached.
   */
  add(requestId: number, nowMs: number, done: ProposalDone, bytes = 0): boolean {
    if (this.byId.size >= MAX_PENDING_PROPOSALS) {
      done(etcdError('RequestTooManyRequests'));
      return false;
    }
    this.byId.set(requestId, { deadlineMs: nowMs + this.timeoutMs, bytes, done });
    this.totalBytes += bytes;
    return true;
  }

  private take(requestId: number): Pending | undefined {
    const p = this.byId.get(requestId);
    if (p === undefined) return undefined;
    this.byId.delete(requestId);
    this.totalBytes -= p.bytes;
    return p;
  }

  /** Delivers an apply result; unknown IDs (another member's request, or one that timed out) are ignored. */
  settle(requestId: number, errorId: number, response: Uint8Array): void {
    const p = this.take(requestId);
    if (p === undefined) return;
    if (errorId === 0) p.done(null, response);
    else p.done(etcdErrorById(errorId));
  }

  /** Fails one proposal (e.g. it was dropped before reaching the log). */
  fail(requestId: number, err: EtcdError): void {
    const p = this.take(requestId);
    if (p === undefined) return;
    p.done(err);
  }

  /** Rejects every proposal whose deadline has passed with etcd's "request timed out". Returns how many. */
  expire(nowMs: number): number {
    let n = 0;
    for (const [id, p] of this.byId) {
      if (p.deadlineMs > nowMs) break;
      this.take(id);
      p.done(etcdError('Timeout'));
      n++;
    }
    return n;
  }

  /** Rejects everything with `err` (shutdown). */
  failAll(err: EtcdError): void {
    const all = [...this.byId.values()];
    this.byId.clear();
    this.totalBytes = 0;
    for (const p of all) p.done(err);
  }
}
