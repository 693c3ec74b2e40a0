/**
 * The ReadIndex protocol of linearizable reads (Raft thesis §6.4; etcd: EtcdServer.linearizableReadLoop): reads that
 * arrive in the same turn of the event loop share one round; the round's context goes to Raft, which answers with
 * the commit index a quorum confirmed; each read then waits until the applied index reaches it.
 *
 * Bounds: at most MAX_READS_PER_ROUND reads join one round (a new round starts past it), at most
 * MAX_READ_ROUNDS_IN_FLIGHT rounds are outstanding (a read needing one more is refused with "too many requests"); the applied-index waiters
 * are bounded by AppliedIndexWaiters (a read past that bound is refused with "too many requests"). A round not
 * answered within READ_INDEX_RETRY_MS is asked again with the same context; one not answered within the request
 * timeout fails its reads with NoLeader (no leader known) or Timeout.
 */
import { etcdError, type EtcdError, type ErrorName } from '../errors';
import type { ReadState } from '../raft';
import type { AppliedIndexWaiters } from './read-waiters';

/** Reads queued for one ReadIndex round are capped so one round's confirmation stays bounded. */
export const MAX_READS_PER_ROUND = 10_000;

/** ReadIndex rounds sent and not yet answered at most; a read that would start one more gets "too many requests". */
export const MAX_READ_ROUNDS_IN_FLIGHT = 1024;

/** A ReadIndex request not answered within this long is sent again, in ms (etcd: readIndexRetryTime). */
export const READ_INDEX_RETRY_MS = 500;

interface ReadRound {
  /** When the round was last sent to Raft (ms); 0 until its first send. */
  sentAtMs: number;
  ctx: Buffer;
  waiters: { resolve: () => void; reject: (e: EtcdError) => void }[];
}

/** What {@link ReadIndex} needs of the member. */
export interface ReadIndexOptions {
  /** Hands a round's context to Raft (RaftHost.readIndex). */
  send(ctx: Uint8Array): void;
  /** The applied-index waiters the confirmed reads wait on. */
  applied: AppliedIndexWaiters;
  /** How long a round may stay unanswered before its reads fail, in ms (etcd's request timeout). */
  timeoutMs: number;
  /** True while no leader is known (a timed-out round then fails with NoLeader rather than Timeout). */
  noLeader(): boolean;
}

/** ReadIndex rounds in flight and the reads waiting on them. */
export class ReadIndex {
  private current: ReadRound | null = null;
  private readonly inFlight = new Map<string, ReadRound>();
  private seq = 0;

  constructor(private readonly opts: ReadIndexOptions) {}

  /** Rounds sent (or about to be) and not yet answered. */
  get roundsInFlight(): number {
    return this.inFlight.size;
  }

  /**
   * Joins the current round (or starts one, sent on the next turn of the event loop) and resolves once the applied
   * index reaches the commit index the round confirmed. Rejects EtcdError: NoLeader / Timeout (no answer within
   * timeoutMs), LeaderChanged (see {@link failAll}), RequestTooManyRequests (applied-index waiters full, or
   * MAX_READ_ROUNDS_IN_FLIGHT rounds outstanding).
   */
  wait(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let round = this.current;
      if (round === null || round.waiters.length >= MAX_READS_PER_ROUND) {
        if (this.inFlight.size >= MAX_READ_ROUNDS_IN_FLIGHT) {
          reject(etcdError('RequestTooManyRequests'));
          return;
        }
        const ctx = Buffer.alloc(8);
        ctx.writeDoubleLE(++this.seq);
        round = { ctx, waiters: [], sentAtMs: 0 };
        this.current = round;
        this.inFlight.set(ctx.toString('hex'), round);
        const r = round;
        setImmediate(() => {
          if (this.current === r) this.current = null;
          r.sentAtMs = Date.now();
          this.opts.send(r.ctx);
        });
        setTimeout(() => {
          if (this.inFlight.delete(r.ctx.toString('hex'))) {
            for (const w of r.waiters) w.reject(etcdError(this.opts.noLeader() ? 'NoLeader' : 'Timeout'));
          }
        }, this.opts.timeoutMs).unref();
      }
      round.waiters.push({ resolve, reject });
    });
  }

  /** Called every tick: a round can be lost (no leader yet, leader changed, message dropped), so ask again, same ctx. */
  retry(nowMs: number): void {
    for (const r of this.inFlight.values()) {
      if (r.sentAtMs !== 0 && nowMs - r.sentAtMs >= READ_INDEX_RETRY_MS) {
        r.sentAtMs = nowMs;
        this.opts.send(r.ctx);
      }
    }
  }

  /** Raft's answers: each confirmed round's reads wait for the applied index to reach the confirmed index. */
  onReadStates(states: ReadState[]): void {
    for (const s of states) {
      const key = Buffer.from(s.requestCtx).toString('hex');
      const round = this.inFlight.get(key);
      if (round === undefined) continue;
      this.inFlight.delete(key);
      for (const w of round.waiters) {
        if (!this.opts.applied.wait(s.index, w.resolve)) w.reject(etcdError('RequestTooManyRequests'));
      }
    }
  }

  /**
   * Rejects every outstanding round's reads with `code`: LeaderChanged when a new leader appears (etcd 3.4
   * linearizableReadLoop: the old leader will never answer), Stopped on shutdown.
   */
  failAll(code: ErrorName): void {
    if (this.inFlight.size === 0) return;
    const rounds = [...this.inFlight.values()];
    this.inFlight.clear();
    this.current = null;
    for (const r of rounds) for (const w of r.waiters) w.reject(etcdError(code));
  }
}
