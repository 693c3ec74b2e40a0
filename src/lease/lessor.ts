/**
 * The lessor (etcd: lease/lessor.go semantics, etcd 3.4): which leases exist and, on the leader only, when each
 * one expires.
 *
 * Lease state that every member must agree on (existence, granted TTL, attached keys) lives in the MVCC store and
 * changes only through Raft (LeaseGrant / LeaseRevoke / LeaseCheckpoint entries, src/apply/applier.ts). What lives
 * here is the leader's clock: id → {ttlSeconds, expiryMs}.
 *
 *  - On every member the lessor mirrors the set of stored leases (it rescans the store after applied batches,
 *    at most every {@link EXPIRY_CHECK_INTERVAL_MS}) to keep etcd's granted/revoked counters. Followers keep no
 *    expiry: their leases never expire locally ("forever", as etcd's non-primary lessor).
 *  - When this member becomes leader it is promoted once everything committed before its term is applied (a
 *    linearizable barrier): every lease gets expiry = now + remaining TTL + one election timeout (etcd's
 *    Promote(extend)), so a new leader never expires a lease earlier than the old one would have; when many leases
 *    would expire together they are spread out so revocations stay under the revoke rate.
 *  - Every {@link EXPIRY_CHECK_INTERVAL_MS} the primary collects expired leases (at most
 *    {@link REVOKES_PER_ROUND} per round) and proposes a LeaseRevoke for each through Raft, at most
 *    {@link MAX_PENDING_REVOKES} in flight, so every member deletes the same keys at the same revision. A lease
 *    whose revoke did not complete is retried after {@link EXPIRED_LEASE_RETRY_MS}.
 *  - Renew (keep-alive) and TimeToLive are answered by the primary only; anyone else gets {@link NotPrimaryError}
 *    and the caller forwards to the leader.
 *  - Answers are linearizable with Grant / Revoke proposed through any member (issue 8): a revoke acknowledged by a
 *    follower is committed on the leader but may not be applied there yet, and the in-memory map learns of it only
 *    on the next rescan. So before answering, renew waits until this member applied everything it knows committed
 *    (etcd 3.5 waitAppliedIndex; cheap, no network round), TimeToLive and Leases wait for a ReadIndex barrier
 *    (which also covers a deposed leader that does not know it yet), and every answer checks the applied store for
 *    the lease: a lease the store no longer has is forgotten and answered not found.
 *  - Lease checkpoints (etcd 3.4 --experimental-enable-lease-checkpoint): the primary schedules a checkpoint one
 *    interval after a lease is learned, promoted or checkpointed, when its remaining TTL exceeds the interval; when
 *    due, a lease not renewed back to its full TTL gets its remaining TTL (seconds, rounded up) proposed in a
 *    LeaseCheckpoint entry (at most {@link MAX_CHECKPOINT_BATCH} per entry), which every member stores. A new
 *    leader starts expiries from the stored remaining TTL, so leader changes do not reset long leases. A renewal
 *    of a lease with a stored remaining TTL proposes a checkpoint of 0 to clear it (etcd's Renew).
 */
import type { MemberEventSource } from '../member-events';
import { EntryKind, type Propose } from '../wire/entry';
import { messageType, pb } from '../wire/codec';
import { EtcdError, etcdError } from '../errors';
import { metrics } from '../metrics/registry';

const LeaseCheckpointRequest = messageType('etcdserverpb.LeaseCheckpointRequest');

/** How often the primary looks for expired leases (etcd lessor runLoop: 500 ms). */
export const EXPIRY_CHECK_INTERVAL_MS = 500;
/** Most leases revoked per second (etcd lessor.go leaseRevokeRate). */
export const LEASE_REVOKE_RATE = 1000;
/** Most expired leases handed to revocation per check round (etcd: leaseRevokeRate / 2 per 500 ms). */
export const REVOKES_PER_ROUND = LEASE_REVOKE_RATE / 2;
/** Most LeaseRevoke proposals of expired leases in flight at once (etcd server.go maxPendingRevokes). */
export const MAX_PENDING_REVOKES = 16;
/** An expired lease whose revoke has not completed is handed out again after this long (etcd: 3 s). */
export const EXPIRED_LEASE_RETRY_MS = 3000;
/** Most leases in one LeaseCheckpoint entry (etcd lessor.go maxLeaseCheckpointBatchSize). */
export const MAX_CHECKPOINT_BATCH = 1000;
/** Most LeaseCheckpoint entries proposed per check round (etcd: leaseCheckpointRate / 2 per 500 ms). */
export const CHECKPOINT_BATCHES_PER_ROUND = 500;

/**
 * etcd's minimum lease TTL in seconds (etcdserver/server.go: ⌈(3·electionTicks/2)·heartbeat⌉ with
 * electionTicks = ⌊election timeout / heartbeat⌋): 2 s with the default 100 ms / 1000 ms. Grants below it are
 * raised to it, and LeaseGrant answers the raised TTL.
 */
export function minLeaseTtlSeconds(electionTimeoutMs: number, heartbeatIntervalMs: number): number {
  const electionTicks = Math.floor(electionTimeoutMs / heartbeatIntervalMs);
  const minTtlMs = Math.floor((3 * electionTicks) / 2) * heartbeatIntervalMs;
  return Math.ceil(minTtlMs / 1000);
}

/** Thrown by renew/timeToLive when this member is not the (promoted) leader: forward to the leader instead. */
export class NotPrimaryError extends Error {
  constructor() {
    super('lessor is not primary');
    this.name = 'NotPrimaryError';
  }
}

/** A stored lease as the MVCC reader returns it (seconds). */
export interface StoredLease {
  id: number;
  ttl: number;
  remainingTtl: number;
}

/** What the lessor needs of the server (EtcdServer satisfies it together with a barrier). */
export interface LessorHost {
  /** Proposes a request through Raft; resolves the encoded response, rejects EtcdError. */
  propose: Propose;
  leader(): { lead: number; isLeader: boolean; term: number };
  /** 'leader' (lead, isLeader, term) and 'applied' (appliedIndex) (src/member-events.ts). */
  readonly events: MemberEventSource;
  readonly reader: {
    lease(id: number): StoredLease | undefined;
    leases(): StoredLease[];
    leaseKeys(id: number): Buffer[];
  };
  /** Resolves once everything committed before the call is applied locally (a linearizable read point). */
  barrier(): Promise<void>;
  /**
   * Null when `reader` can be read now; otherwise resolves when the running store swap (Defragment, snapshot
   * install) ends, or rejects EtcdError Timeout after the request timeout.
   */
  whenReadable(): Promise<void> | null;
  /** True when this member applied every entry it knows committed (synchronous; the renew fast path). */
  appliedCommitted(): boolean;
  /** Resolves once this member applied every entry it knew committed at the call (etcd 3.5 waitAppliedIndex). */
  waitAppliedCommitted(): Promise<void>;
}

/** Options of {@link Lessor}. */
export interface LessorOptions {
  host: LessorHost;
  /** etcd --election-timeout (ms): the extension given to every lease on promotion. */
  electionTimeoutMs: number;
  logger?: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
  /** Clock (ms); tests inject one. */
  now?: () => number;
  /** Lease checkpoint interval (ms) when --experimental-enable-lease-checkpoint is on; absent = no checkpoints. */
  checkpointIntervalMs?: number;
}

interface LeaseState {
  ttl: number;
  /** Absolute expiry (ms); Infinity while this member is not primary. */
  expiryMs: number;
  /** Not handed to revocation again before this time (ms). */
  retryAtMs: number;
  /** Renewals waiting for an expired lease to be revoked (or for demotion). */
  waiters: Array<(outcome: 'revoked' | 'demoted') => void> | null;
  /** Remaining TTL (s) of the last checkpoint this member knows; 0 = none (etcd Lease.remainingTTL). */
  remainingTtl: number;
  /** When the primary checkpoints this lease next (ms); Infinity = not scheduled. */
  checkpointAtMs: number;
}

/** Answer of {@link Lessor.timeToLive}. */
export interface TimeToLive {
  /** Remaining seconds, truncated (etcd: int64(Remaining().Seconds())). */
  ttl: number;
  grantedTtl: number;
  keys: Buffer[];
}

const NOT_FOUND = (): EtcdError => etcdError('LeaseNotFound');

/** The leader's in-memory lessor. Construct, then {@link Lessor.start}; {@link Lessor.stop} on shutdown. */
export class Lessor {
  private readonly host: LessorHost;
  private readonly now: () => number;
  private readonly leases = new Map<number, LeaseState>();
  private primary = false;
  private promoting: Promise<void> | null = null;
  /** Bumped on every promotion/demotion; async work started under an older epoch is abandoned. */
  private epoch = 0;
  private dirty = true;
  private timer: NodeJS.Timeout | null = null;
  private revokeQueue: number[] = [];
  private revokesInFlight = 0;
  private stopped = false;
  private readonly onLeader = (_lead: number, isLeader: boolean): void => this.leaderChanged(isLeader);
  private readonly onApplied = (): void => {
    this.dirty = true;
  };

  constructor(private readonly opts: LessorOptions) {
    this.host = opts.host;
    this.now = opts.now ?? Date.now;
  }

  /** Subscribes to the server's events and starts the periodic check. */
  start(): void {
    this.host.events.on('leader', this.onLeader);
    this.host.events.on('applied', this.onApplied);
    this.timer = setInterval(() => this.tick(), EXPIRY_CHECK_INTERVAL_MS);
    this.timer.unref();
    this.sync();
    if (this.host.leader().isLeader) this.leaderChanged(true);
  }

  /** Stops timers and wakes every waiting renewal (as a demotion). */
  stop(): void {
    this.stopped = true;
    this.host.events.off('leader', this.onLeader);
    this.host.events.off('applied', this.onApplied);
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.demote();
  }

  /** True once promoted (leader and every lease loaded with an expiry). */
  isPrimary(): boolean {
    return this.primary;
  }

  /** True while this member leads, promoted or about to be. */
  isLeading(): boolean {
    return this.primary || this.promoting !== null;
  }

  /** Number of leases this member knows (tests, metrics). */
  size(): number {
    return this.leases.size;
  }

  /**
   * Lease ids, soonest expiry first on the primary (etcd Leases() sorts by expiry), by id elsewhere, as of the
   * map's last rescan (not linearizable: see {@link linearizableLeaseIds}).
   */
  leaseIds(): number[] {
    this.syncIfDirty();
    return this.sortedIds();
  }

  /**
   * etcd api: Lease.LeaseLeases, linearizable: after a ReadIndex barrier the map is rescanned from the store, so
   * every grant and revoke acknowledged before the call is reflected. Sorted as {@link leaseIds}.
   * @throws EtcdError from the barrier (NoLeader, Timeout, Stopped, ...).
   */
  async linearizableLeaseIds(): Promise<number[]> {
    await this.host.barrier();
    await this.whenReadable(() => this.sync());
    return this.sortedIds();
  }

  private sortedIds(): number[] {
    const all = [...this.leases.entries()];
    all.sort((a, b) => (a[1].expiryMs === b[1].expiryMs ? a[0] - b[0] : a[1].expiryMs - b[1].expiryMs));
    return all.map((e) => e[0]);
  }

  // ------------------------------------------------------------------ primary operations

  /**
   * Renews a lease on the primary (etcd lessor.Renew): expiry = now + TTL. Resolves the granted TTL.
   * @throws NotPrimaryError (forward to the leader), EtcdError LeaseNotFound (also for a lease that expired and
   *   was revoked while this call waited).
   */
  async renew(id: number): Promise<number> {
    if (!this.host.appliedCommitted()) {
      const epoch = this.epoch;
      await this.host.waitAppliedCommitted();
      if (epoch !== this.epoch) throw new NotPrimaryError();
    }
    const l = await this.primaryLookup(id);
    if (l.expiryMs <= this.now()) {
      // Expired, revocation pending: answer once it is done (etcd waits for the revoke or a demotion).
      const outcome = await new Promise<'revoked' | 'demoted'>((resolve) => (l.waiters ??= []).push(resolve));
      if (outcome === 'demoted') throw new NotPrimaryError();
      throw NOT_FOUND();
    }
    return this.refresh(id, l);
  }

  /**
   * Synchronous renew for the common case (primary, lease known, not expired); undefined when the slow path
   * ({@link renew}) is needed.
   */
  tryRenewSync(id: number): number | undefined {
    if (!this.primary || !this.host.appliedCommitted()) return undefined;
    const l = this.leases.get(id);
    if (l === undefined || l.expiryMs <= this.now() || !this.stored(id)) return undefined;
    return this.refresh(id, l);
  }

  private refresh(id: number, l: LeaseState): number {
    l.expiryMs = this.now() + l.ttl * 1000;
    l.retryAtMs = 0;
    metrics.etcd_debugging_lease_renewed_total.inc();
    // etcd Renew: a stored remaining TTL would outlive this renewal on a new leader; clear it through Raft.
    if (this.opts.checkpointIntervalMs !== undefined && l.remainingTtl > 0) this.proposeCheckpoints([{ ID: id, remaining_TTL: 0 }], this.epoch);
    return l.ttl;
  }

  /**
   * TimeToLive on the primary (etcd lessor.Lookup + Remaining). @throws NotPrimaryError, EtcdError LeaseNotFound.
   */
  async timeToLive(id: number, withKeys: boolean): Promise<TimeToLive> {
    if (!this.primary && this.promoting === null) throw new NotPrimaryError();
    const epoch = this.epoch;
    await this.host.barrier();
    if (epoch !== this.epoch) throw new NotPrimaryError();
    const l = await this.primaryLookup(id);
    const keys = withKeys ? await this.whenReadable(() => this.host.reader.leaseKeys(id)) : [];
    const remainingMs = l.expiryMs - this.now();
    return { ttl: Math.trunc(remainingMs / 1000), grantedTtl: l.ttl, keys };
  }

  /** The lease's state on the primary, loading it from the store (after a barrier) if not yet known. */
  private async primaryLookup(id: number): Promise<LeaseState> {
    if (!this.primary) {
      if (this.promoting === null) throw new NotPrimaryError();
      const epoch = this.epoch;
      await this.promoting;
      if (!this.primary || epoch !== this.epoch) throw new NotPrimaryError();
    }
    const epoch = this.epoch;
    let rec = await this.whenReadable(() => this.host.reader.lease(id));
    if (!this.primary || epoch !== this.epoch) throw new NotPrimaryError();
    let l = this.leases.get(id);
    if (l !== undefined) {
      // Known here but revoked through another member and applied since the last rescan.
      if (rec === undefined) {
        this.forget(id);
        throw NOT_FOUND();
      }
      return l;
    }
    // Granted through another member and not yet seen by the periodic rescan: the store may have it already,
    // or will once everything committed so far is applied.
    if (rec === undefined) {
      await this.host.barrier();
      rec = await this.whenReadable(() => this.host.reader.lease(id));
      if (!this.primary || epoch !== this.epoch) throw new NotPrimaryError();
    }
    l = this.leases.get(id);
    if (l !== undefined) return l;
    if (rec === undefined) throw NOT_FOUND();
    return this.learn(rec.id, rec.ttl, rec.remainingTtl);
  }

  /** True when the applied store still has the lease; false too while the store is being swapped (slow path). */
  private stored(id: number): boolean {
    return this.host.whenReadable() === null && this.host.reader.lease(id) !== undefined;
  }

  /**
   * Runs the synchronous store read `read` once the store is readable (a Defragment or snapshot install swaps it;
   * the old reader is closed meanwhile). @throws EtcdError Timeout when the swap outlasts the request timeout.
   */
  private async whenReadable<T>(read: () => T): Promise<T> {
    for (;;) {
      const p = this.host.whenReadable();
      if (p === null) return read();
      await p;
    }
  }

  // ------------------------------------------------------------------ what the API layer tells us

  /** A LeaseGrant this member proposed was applied here. */
  granted(id: number, ttl: number): void {
    if (!this.leases.has(id)) this.learn(id, ttl);
  }

  /** A LeaseRevoke this member proposed was applied here (or the lease was not found). */
  revoked(id: number): void {
    this.forget(id);
  }

  // ------------------------------------------------------------------ membership of the lease set

  private learn(id: number, ttl: number, remainingTtl = 0): LeaseState {
    const l: LeaseState = { ttl, expiryMs: this.primary ? this.now() + ttl * 1000 : Infinity, retryAtMs: 0, waiters: null, remainingTtl, checkpointAtMs: Infinity };
    this.leases.set(id, l);
    this.scheduleCheckpoint(l);
    metrics.etcd_debugging_lease_granted_total.inc();
    metrics.etcd_debugging_lease_ttl_total.observe(ttl);
    return l;
  }

  private forget(id: number): void {
    const l = this.leases.get(id);
    if (l === undefined) return;
    this.leases.delete(id);
    metrics.etcd_debugging_lease_revoked_total.inc();
    if (l.waiters !== null) for (const w of l.waiters) w('revoked');
  }

  /** Rescans the store: learns leases granted elsewhere, forgets revoked ones. O(leases). */
  private sync(): void {
    let stored: StoredLease[];
    try {
      stored = this.host.reader.leases();
    } catch (err) {
      this.opts.logger?.warn({ err }, 'lessor: reading leases failed');
      return;
    }
    this.dirty = false;
    const seen = new Set<number>();
    for (const rec of stored) {
      seen.add(rec.id);
      const known = this.leases.get(rec.id);
      if (known === undefined) this.learn(rec.id, rec.ttl, rec.remainingTtl);
      else known.remainingTtl = rec.remainingTtl;
    }
    if (seen.size !== this.leases.size) {
      for (const id of [...this.leases.keys()]) if (!seen.has(id)) this.forget(id);
    }
  }

  private syncIfDirty(): void {
    // While the store is swapped the rescan waits for the next tick (the old reader is closed).
    if (this.dirty && this.host.whenReadable() === null) this.sync();
  }

  // ------------------------------------------------------------------ promotion / demotion

  private leaderChanged(isLeader: boolean): void {
    if (this.stopped) return;
    if (isLeader) {
      if (this.primary || this.promoting !== null) return;
      const epoch = ++this.epoch;
      const p = this.promote(epoch);
      this.promoting = p;
      void p.finally(() => {
        if (this.promoting === p) this.promoting = null;
      });
    } else if (this.primary || this.promoting !== null) {
      this.demote();
    }
  }

  /** Waits until everything committed before this term is applied, then gives every lease an expiry. */
  private async promote(epoch: number): Promise<void> {
    for (;;) {
      try {
        await this.host.barrier();
        break;
      } catch {
        if (epoch !== this.epoch || this.stopped) return;
        await new Promise((r) => setTimeout(r, 100).unref());
        if (epoch !== this.epoch || this.stopped) return;
      }
    }
    if (epoch !== this.epoch || this.stopped) return;
    let records: StoredLease[];
    try {
      records = await this.whenReadable(() => {
        this.sync();
        return this.host.reader.leases();
      });
    } catch (err) {
      // The store stayed swapped past the request timeout: try the promotion again.
      this.opts.logger?.warn({ err }, 'lessor: promotion could not read the leases; retrying');
      return this.promote(epoch);
    }
    if (epoch !== this.epoch || this.stopped) return;
    const extendMs = this.opts.electionTimeoutMs;
    const now = this.now();
    const stored = new Map<number, StoredLease>();
    for (const rec of records) stored.set(rec.id, rec);
    for (const [id, l] of this.leases) {
      const rec = stored.get(id);
      l.remainingTtl = rec?.remainingTtl ?? 0;
      const remaining = l.remainingTtl > 0 ? l.remainingTtl : l.ttl;
      l.expiryMs = now + extendMs + remaining * 1000;
      l.retryAtMs = 0;
    }
    this.spreadExpiries(now);
    this.primary = true;
    for (const l of this.leases.values()) this.scheduleCheckpoint(l);
    this.opts.logger?.info({ leases: this.leases.size }, 'lessor promoted: lease expiries start on this member');
  }

  /**
   * When more leases exist than can be revoked in one second, leases expiring in the same one-second window
   * beyond 3/4 of the revoke rate are pushed later, so a new leader does not face a revoke pile-up
   * (the same policy as etcd's Promote).
   */
  private spreadExpiries(now: number): void {
    if (this.leases.size < LEASE_REVOKE_RATE) return;
    const sorted = [...this.leases.values()].sort((a, b) => a.expiryMs - b.expiryMs);
    const perSecond = Math.floor((3 * LEASE_REVOKE_RATE) / 4);
    let windowStart = sorted[0]!.expiryMs - now;
    let windowEnd = windowStart + 1000;
    let count = 0;
    for (const l of sorted) {
      const remaining = l.expiryMs - now;
      if (remaining > windowEnd) {
        windowStart = remaining;
        windowEnd = windowStart + 1000;
        count = 1;
        continue;
      }
      count++;
      if (count <= perSecond) continue;
      const delay = 1000 * (count / perSecond) - (remaining - windowStart);
      windowEnd = windowStart + delay;
      l.expiryMs += Math.max(0, delay); // same remaining TTL, pushed back by `delay`
    }
  }

  private demote(): void {
    this.epoch++;
    this.primary = false;
    this.promoting = null;
    this.revokeQueue = [];
    for (const l of this.leases.values()) {
      l.expiryMs = Infinity;
      l.retryAtMs = 0;
      l.checkpointAtMs = Infinity;
      if (l.waiters !== null) {
        const ws = l.waiters;
        l.waiters = null;
        for (const w of ws) w('demoted');
      }
    }
  }

  // ------------------------------------------------------------------ expiry

  private tick(): void {
    if (this.stopped) return;
    this.syncIfDirty();
    if (this.primary) this.revokeExpired();
    if (this.primary && this.opts.checkpointIntervalMs !== undefined) this.checkpointDue();
  }

  // ------------------------------------------------------------------ checkpoints

  /**
   * etcd scheduleCheckpointIfNeeded: on the primary, a lease whose (checkpointed or granted) TTL exceeds the
   * interval is checkpointed one interval from now.
   */
  private scheduleCheckpoint(l: LeaseState): void {
    const intervalMs = this.opts.checkpointIntervalMs;
    if (intervalMs === undefined || !this.primary) return;
    const ttl = l.remainingTtl > 0 ? l.remainingTtl : l.ttl;
    if (ttl * 1000 > intervalMs) l.checkpointAtMs = this.now() + intervalMs;
  }

  /**
   * etcd checkpointScheduledLeases: proposes the remaining TTL of every lease whose checkpoint is due, in batches of
   * {@link MAX_CHECKPOINT_BATCH}; an expired lease or one renewed back to its full TTL is skipped (not rescheduled).
   */
  private checkpointDue(): void {
    const now = this.now();
    let batch: Array<{ ID: number; remaining_TTL: number }> = [];
    let batches = 0;
    for (const [id, l] of this.leases) {
      if (l.checkpointAtMs > now) continue;
      l.checkpointAtMs = Infinity;
      if (l.expiryMs <= now) continue;
      const remaining = Math.ceil((l.expiryMs - now) / 1000);
      if (remaining >= l.ttl) continue;
      batch.push({ ID: id, remaining_TTL: remaining });
      if (batch.length === MAX_CHECKPOINT_BATCH) {
        this.proposeCheckpoints(batch, this.epoch);
        batch = [];
        if (++batches === CHECKPOINT_BATCHES_PER_ROUND) return;
      }
    }
    if (batch.length > 0) this.proposeCheckpoints(batch, this.epoch);
  }

  /** Proposes one LeaseCheckpoint entry; once applied, records the TTLs and reschedules (etcd lessor.Checkpoint). */
  private proposeCheckpoints(checkpoints: Array<{ ID: number; remaining_TTL: number }>, epoch: number): void {
    const req = LeaseCheckpointRequest.encode({ checkpoints }).finish();
    this.host.propose(EntryKind.LeaseCheckpoint, req).then(
      () => {
        for (const c of checkpoints) {
          const l = this.leases.get(c.ID);
          if (l === undefined) continue;
          l.remainingTtl = c.remaining_TTL;
          if (epoch === this.epoch) this.scheduleCheckpoint(l);
        }
      },
      (err: unknown) => this.opts.logger?.warn({ err: (err as Error).message }, 'failed to checkpoint leases'),
    );
  }

  /** Finds up to REVOKES_PER_ROUND expired leases and queues their revocation. */
  private revokeExpired(): void {
    if (this.revokeQueue.length > 0) return; // the previous round is still being revoked (etcd drops the round too)
    const now = this.now();
    const found: number[] = [];
    for (const [id, l] of this.leases) {
      if (l.expiryMs > now || l.retryAtMs > now) continue;
      l.retryAtMs = now + EXPIRED_LEASE_RETRY_MS;
      found.push(id);
      if (found.length >= REVOKES_PER_ROUND) break;
    }
    if (found.length === 0) return;
    this.revokeQueue = found;
    this.pumpRevokes(this.epoch);
  }

  private pumpRevokes(epoch: number): void {
    while (this.revokesInFlight < MAX_PENDING_REVOKES && this.revokeQueue.length > 0 && epoch === this.epoch) {
      const id = this.revokeQueue.shift()!;
      this.revokesInFlight++;
      const req = pb.LeaseRevokeRequest.encode({ ID: id }).finish();
      this.host.propose(EntryKind.LeaseRevoke, req).then(
        () => {
          metrics.etcd_debugging_server_lease_expired_total.inc();
          this.forget(id);
        },
        (err: unknown) => {
          if (err instanceof EtcdError && err.details === etcdError('LeaseNotFound').details) this.forget(id);
          else this.opts.logger?.warn({ 'lease-id': id.toString(16).padStart(16, '0'), err: (err as Error).message }, 'failed to revoke lease');
        },
      ).finally(() => {
        this.revokesInFlight--;
        this.pumpRevokes(this.epoch);
      });
    }
  }
}
