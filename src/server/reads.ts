/**
 * The read path of a member (etcd: EtcdServer.linearizableReadNotify, v3_server Range, etcdhttp checkHealth): one
 * capability composing the ReadIndex rounds (./read-index.ts) with the applied-index waiters (./read-waiters.ts).
 * A linearizable Range waits for a round and then for the applied index; a serializable one reads at once; both
 * wait (bounded) for a running store swap. /health's read through Raft is a round raced against a 1 s timer.
 *
 * Bounds are those of its parts: MAX_READ_ROUNDS_IN_FLIGHT rounds, MAX_READS_PER_ROUND reads per round,
 * MAX_WAITING_READS applied-index waiters; past any of them a read is refused with "too many requests".
 *
 * It sees the member only through {@link ReadsHost}; the server (src/server/etcd-server.ts) wires it.
 */
import { etcdError, type ErrorName } from '../errors';
import type { ReadState } from '../raft';
import type { RangeRequest } from '../wire/codec';
import type { HeaderIdentity } from '../mvcc';
import { metrics } from '../metrics/registry';
import { ReadIndex } from './read-index';
import { AppliedIndexWaiters } from './read-waiters';
import type { StateMachine } from './state-machine';

/** How long /health waits for its read through Raft, in ms (etcd: checkHealth's 1 s context). */
export const HEALTH_READ_TIMEOUT_MS = 1000;

/** What the read path needs of the member. */
export interface ReadsHost {
  /** The state machine reads are served from (main-thread LMDB reader) and whose swaps reads wait out. */
  readonly sm: Pick<StateMachine, 'range' | 'whenReadable' | 'appliedIndex'>;
  /** Hands a ReadIndex round's context to Raft (RaftHost.readIndex). */
  sendReadIndex(ctx: Uint8Array): void;
  /** etcd's request timeout, in ms: a round, an applied-index wait and a swap wait are bounded by it. */
  readonly timeoutMs: number;
  /** True while no leader is known. */
  noLeader(): boolean;
  /** True once the member stopped or was removed (reads fail with "server stopped"). */
  stopped(): boolean;
  /** True while this member is a learner (linearizable reads are refused, as etcd 3.4). */
  isLearner(): boolean;
  /** Response header identity (cluster, member, term). */
  header(): HeaderIdentity;
  /** /health's local checks (etcd checkHealth before its read): leader known, no alarm, no fault. */
  health(): { health: boolean; reason: string };
}

/** One member's read path. */
export class Reads {
  private readonly waiters: AppliedIndexWaiters;
  private readonly rounds: ReadIndex;

  constructor(private readonly host: ReadsHost) {
    this.waiters = new AppliedIndexWaiters(host.sm.appliedIndex());
    this.rounds = new ReadIndex({
      send: (ctx) => host.sendReadIndex(ctx),
      applied: this.waiters,
      timeoutMs: host.timeoutMs,
      noLeader: () => host.noLeader(),
    });
  }

  /** ReadIndex rounds sent and not yet answered. */
  get roundsInFlight(): number {
    return this.rounds.roundsInFlight;
  }

  /**
   * etcd api: KV.Range. Linearizable reads wait for a ReadIndex round and the applied index; serializable ones do
   * not. Resolves with the encoded RangeResponse. Rejects EtcdError: Stopped, NotSupportedForLearner (linearizable
   * on a learner), NoLeader / Timeout / LeaderChanged / RequestTooManyRequests (the round), Compacted / FutureRev.
   */
  range(req: RangeRequest): Promise<Uint8Array> {
    if (this.host.stopped()) return Promise.reject(etcdError('Stopped'));
    if (req.serializable) return this.readNow(req);
    if (this.host.isLearner()) return Promise.reject(etcdError('NotSupportedForLearner'));
    return this.rounds.wait().then(() => this.readNow(req));
  }

  private readNow(req: RangeRequest): Promise<Uint8Array> {
    // During a defragment or snapshot install the store is being swapped: wait for it (bounded) like etcd does.
    const swapping = this.whenReadable();
    if (swapping !== null) return swapping.then(() => this.readNow(req));
    try {
      metrics.etcd_mvcc_range_total.inc();
      metrics.etcd_debugging_mvcc_range_total.inc();
      return Promise.resolve(this.host.sm.range(req, this.host.header()));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * etcd linearizableReadNotify: resolves once a ReadIndex round confirmed leadership and the index is applied.
   * Rejects EtcdError Stopped, NotSupportedForLearner, and the round's errors (see {@link range}).
   */
  linearizableWait(): Promise<void> {
    if (this.host.stopped()) return Promise.reject(etcdError('Stopped'));
    if (this.host.isLearner()) return Promise.reject(etcdError('NotSupportedForLearner'));
    return this.rounds.wait();
  }

  /**
   * Resolves once this member applied `index`; rejects EtcdError Timeout after the request timeout, or
   * RequestTooManyRequests when MAX_WAITING_READS waiters are queued.
   */
  waitApplied(index: number): Promise<void> {
    if (this.host.sm.appliedIndex() >= index) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(etcdError('Timeout')), this.host.timeoutMs);
      t.unref();
      if (!this.waiters.wait(index, () => { clearTimeout(t); resolve(); })) {
        clearTimeout(t);
        reject(etcdError('RequestTooManyRequests'));
      }
    });
  }

  /**
   * Null when the reader can be read now; otherwise resolves when the running store swap (Defragment, snapshot
   * install) ends, or rejects EtcdError Timeout after the request timeout.
   */
  whenReadable(): Promise<void> | null {
    const p = this.host.sm.whenReadable();
    if (p === null) return null;
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(etcdError('Timeout')), this.host.timeoutMs);
      t.unref();
      void p.then(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /**
   * /health as etcd 3.4 answers it (etcdhttp checkHealth): the host's local checks, then a read through Raft that
   * must finish within HEALTH_READ_TIMEOUT_MS (etcd does a quorum GET; here a ReadIndex round up to the applied
   * index), so a member that knows a leader but cannot reach a quorum reports itself unhealthy. Never rejects.
   */
  async healthCheck(): Promise<{ health: boolean; reason: string }> {
    const h = this.host.health();
    if (!h.health) return h;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), HEALTH_READ_TIMEOUT_MS);
    });
    try {
      const ok = await Promise.race([this.rounds.wait().then(() => true, () => false), timedOut]);
      return ok ? h : { health: false, reason: 'RAFT READ FAILED' };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Raft's ReadIndex answers (RaftHost's onReadStates). */
  onReadStates(states: ReadState[]): void {
    this.rounds.onReadStates(states);
  }

  /** Called every Raft tick: rounds unanswered for READ_INDEX_RETRY_MS are asked again. */
  tick(nowMs: number): void {
    this.rounds.retry(nowMs);
  }

  /** The apply worker reached `appliedIndex`: reads waiting for it (or less) are served. */
  applied(appliedIndex: number): void {
    this.waiters.advance(appliedIndex);
  }

  /**
   * Fails every outstanding round's reads with `code`: LeaderChanged when a new leader appears (etcd 3.4
   * linearizableReadLoop), Stopped on shutdown.
   */
  failAll(code: ErrorName): void {
    this.rounds.failAll(code);
  }
}
