/**
 * Auto-compaction (`--auto-compaction-mode periodic|revision`, `--auto-compaction-retention`), with etcd 3.4's
 * semantics (etcd: etcdserver/api/v3compactor, periodic.go and revision.go) and its zap log lines.
 *
 *  - periodic, retention P (a Go duration, or hours when a bare number): the current revision is sampled every
 *    P/10 (P capped at 1 h first), keeping the last P/(P/10)+1 samples, so the oldest sample is the revision seen
 *    one retention ago. The first compaction happens P after start, then every min(P, 1 h), each to that oldest
 *    sample. A failed compaction is retried at the next sample.
 *  - revision, retention R: every 5 minutes, compact to current revision − R unless that is ≤ 0 or the revision
 *    last compacted.
 *
 * Only the leader compacts: the server pauses the compactor when this member is not the leader and resumes it when
 * it becomes leader; sampling goes on while paused. Compaction is proposed through Raft like a client's
 * KV.Compact; "required revision has been compacted" counts as done, as in etcd.
 */
import type { Logger } from '../log';
import { Errors, EtcdError } from '../errors';
import { goDuration } from '../go-duration';

/** etcd v3compactor revInterval: how often the revision compactor looks. */
export const REVISION_COMPACT_INTERVAL_MS = 5 * 60_000;
/** etcd periodic.go: the sampling (and retry) interval is the retention (capped at 1 h) divided by this. */
export const PERIODIC_SAMPLES_PER_RETENTION = 10;
/** etcd periodic.go: compactions happen at most every hour, however long the retention. */
export const MAX_PERIODIC_INTERVAL_MS = 3600_000;

/** The time source the compactors run on; tests inject a manual one. */
export interface CompactorClock {
  /** Milliseconds on any monotonic scale. */
  now(): number;
  /** Calls `fn` after `ms` milliseconds; returns a function that cancels it. */
  after(ms: number, fn: () => void): () => void;
}

/** The wall clock with unref'd timers (a pending compaction never keeps the process alive). */
export const systemClock: CompactorClock = {
  now: () => performance.now(),
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  },
};

/** What a compactor needs of the member. */
export interface CompactorHost {
  /** This member's current MVCC revision. */
  revision(): number;
  /** Compacts through Raft (KV.Compact with `revision`); rejects EtcdError as a client's Compact would. */
  compact(revision: number): Promise<void>;
}

/** Options of {@link startCompactor}. */
export interface CompactorOptions {
  mode: 'periodic' | 'revision';
  /** Periodic mode: retention in milliseconds. */
  retentionMs: number;
  /** Revision mode: revisions to keep. */
  retentionRevisions: number;
  host: CompactorHost;
  logger: Logger;
  clock?: CompactorClock;
}

/** A running compactor (etcd v3compactor.Compactor). */
export interface Compactor {
  /** Stop compacting (this member is not the leader). */
  pause(): void;
  /** Compact again (this member became the leader). */
  resume(): void;
  /** Stop for good; an in-flight compaction finishes but nothing is scheduled after it. */
  stop(): void;
}

/**
 * Starts the compactor `opts` describe, paused (call resume() when leading); returns null when the retention is 0
 * (auto-compaction disabled, etcd's default).
 */
export function startCompactor(opts: CompactorOptions): Compactor | null {
  const clock = opts.clock ?? systemClock;
  if (opts.mode === 'periodic') return opts.retentionMs > 0 ? new PeriodicCompactor(opts.retentionMs, opts.host, opts.logger, clock) : null;
  return opts.retentionRevisions > 0 ? new RevisionCompactor(opts.retentionRevisions, opts.host, opts.logger, clock) : null;
}

function isCompacted(e: unknown): boolean {
  return e instanceof EtcdError && e.id === Errors.Compacted.id;
}

/** Shared pause/stop state and the timer of the next step. */
abstract class LoopCompactor implements Compactor {
  protected paused = true;
  protected stopped = false;
  private cancel: (() => void) | null = null;

  constructor(protected readonly host: CompactorHost, protected readonly logger: Logger, protected readonly clock: CompactorClock) {}

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  stop(): void {
    this.stopped = true;
    this.cancel?.();
    this.cancel = null;
  }

  protected schedule(ms: number, step: () => Promise<void>): void {
    if (this.stopped) return;
    this.cancel = this.clock.after(ms, () => {
      this.cancel = null;
      step().catch((e: unknown) => this.logger.error({ error: String(e) }, 'auto compaction step failed'));
    });
  }
}

/** etcd v3compactor.Periodic. */
class PeriodicCompactor extends LoopCompactor {
  private readonly sampleMs: number;
  private readonly compactEveryMs: number;
  private readonly keep: number;
  private readonly revs: number[] = [];
  private lastSuccessMs: number;
  private waitMs: number;
  private readonly period: string;

  constructor(private readonly periodMs: number, host: CompactorHost, logger: Logger, clock: CompactorClock) {
    super(host, logger, clock);
    this.compactEveryMs = Math.min(periodMs, MAX_PERIODIC_INTERVAL_MS);
    this.sampleMs = this.compactEveryMs / PERIODIC_SAMPLES_PER_RETENTION;
    this.keep = Math.floor(periodMs / this.sampleMs) + 1;
    this.lastSuccessMs = clock.now();
    this.waitMs = periodMs; // the first compaction waits a whole retention
    this.period = goDuration(periodMs * 1e6);
    this.sample();
  }

  private sample(): void {
    this.revs.push(this.host.revision());
    if (this.revs.length > this.keep) this.revs.shift(); // revs[0]: the revision one retention ago
    this.schedule(this.sampleMs, () => this.step());
  }

  private async step(): Promise<void> {
    if (this.stopped) return;
    if (this.paused || this.clock.now() - this.lastSuccessMs < this.waitMs) return this.sample();
    this.waitMs = this.compactEveryMs;
    const rev = this.revs[0]!;
    const t0 = this.clock.now();
    this.logger.info({ revision: rev, 'compact-period': this.period }, 'starting auto periodic compaction');
    try {
      await this.host.compact(rev);
      this.done(rev, t0);
    } catch (e) {
      if (isCompacted(e)) this.done(rev, t0);
      else this.logger.warn({ revision: rev, 'compact-period': this.period, 'retry-interval': goDuration(this.sampleMs * 1e6), error: (e as Error).message }, 'failed auto periodic compaction');
    }
    this.sample();
  }

  private done(rev: number, t0: number): void {
    this.logger.info({ revision: rev, 'compact-period': this.period, took: goDuration((this.clock.now() - t0) * 1e6) }, 'completed auto periodic compaction');
    this.lastSuccessMs = this.clock.now();
  }
}

/** etcd v3compactor.Revision. */
class RevisionCompactor extends LoopCompactor {
  private prev = 0;

  constructor(private readonly retention: number, host: CompactorHost, logger: Logger, clock: CompactorClock) {
    super(host, logger, clock);
    this.next();
  }

  private next(): void {
    this.schedule(REVISION_COMPACT_INTERVAL_MS, () => this.step());
  }

  private async step(): Promise<void> {
    if (this.stopped) return;
    const rev = this.host.revision() - this.retention;
    if (this.paused || rev <= 0 || rev === this.prev) return this.next();
    const t0 = this.clock.now();
    this.logger.info({ revision: rev, 'revision-compaction-retention': this.retention }, 'starting auto revision compaction');
    try {
      await this.host.compact(rev);
      this.done(rev, t0);
    } catch (e) {
      if (isCompacted(e)) this.done(rev, t0);
      else {
        this.logger.warn(
          { revision: rev, 'revision-compaction-retention': this.retention, 'retry-interval': goDuration(REVISION_COMPACT_INTERVAL_MS * 1e6), error: (e as Error).message },
          'failed auto revision compaction',
        );
      }
    }
    this.next();
  }

  private done(rev: number, t0: number): void {
    this.prev = rev;
    this.logger.info({ revision: rev, 'revision-compaction-retention': this.retention, took: goDuration((this.clock.now() - t0) * 1e6) }, 'completed auto revision compaction');
  }
}
