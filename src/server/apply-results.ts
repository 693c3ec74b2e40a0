/**
 * What happens when the apply worker answers (etcd: EtcdServer.applyAll / applyEntries' tail): each applied batch
 * settles the proposals waiting for it, serves the reads waiting for its index, stamps the write stages, moves the
 * proposal metrics and the apply-worker counters, raises NOSPACE when applied writes took the backend over the
 * quota, and publishes `applied` / `mvccEvents` to the services; the worker's fault (a code from its status words,
 * src/apply/apply-status.ts) goes to the write path, which fails every waiting proposal.
 *
 * It sees the member only through {@link ApplyResultsHost}; the server (src/server/etcd-server.ts) wires it.
 */
import type { ApplyResult } from '../apply/batch-format';
import type { ApplyFaultCode, ApplyStatus } from '../apply/apply-status';
import { metrics } from '../metrics/registry';
import type { ApplyWordTotals } from './apply-metrics';
import type { ServerEvents } from './events';
import type { PendingProposals } from './pending-proposals';
import type { StateMachine } from './state-machine';
import type { WriteStages } from './write-stages';

/** What the apply-result handling needs of the member. */
export interface ApplyResultsHost {
  /** The proposals answered by the results (their request IDs). */
  readonly pending: Pick<PendingProposals, 'settle' | 'size'>;
  /** Reads waiting for an applied index (src/server/reads.ts). */
  readonly reads: { applied(appliedIndex: number): void };
  /** Per-stage write latency (null: not measured). */
  readonly stages: Pick<WriteStages, 'reached' | 'answeredSoon'> | null;
  /** Apply-worker counters accumulated across workers. */
  readonly applyTotals: Pick<ApplyWordTotals, 'sample'>;
  /** The current apply worker's status words. */
  applyStatus(): ApplyStatus | undefined;
  /** --quota-backend-bytes (negative: no quota). */
  readonly quotaBytes: number;
  /** The backend size compared with the quota, in bytes (the db file size). */
  backendSize(): number;
  /** Proposes the NOSPACE alarm for this member (src/server/health.ts NoSpaceAlarm.raise). */
  raiseNoSpace(): void;
  /** The member's typed events (`applied`, `mvccEvents`, `restored`). */
  readonly events: Pick<ServerEvents, 'emit'>;
  /** Snapshot trigger every --snapshot-count applied entries (src/server/snapshotter.ts). */
  snapshotApplied(appliedIndex: number): void;
  /** The apply worker stopped on a fault (WritePath.applyFailed: refuse writes, fail every waiting proposal). */
  applyFailed(message: string, code: ApplyFaultCode): void;
}

/** One member's handling of apply results. */
export class ApplyResults {
  private lastApplied: number;
  private lastBackendSize = 0;

  /** `appliedIndex`: the state machine's applied index when the member started. */
  constructor(private readonly host: ApplyResultsHost, appliedIndex: number) {
    this.lastApplied = appliedIndex;
  }

  /** Subscribes to `sm`'s applied batches, its fault and its restores (kept across apply-worker replacements). */
  attach(sm: Pick<StateMachine, 'onApplied' | 'onFatal' | 'onRestored'>): void {
    sm.onApplied((appliedIndex, results, mvccEvents) => this.onApplied(appliedIndex, results, mvccEvents));
    sm.onFatal((message, code) => this.host.applyFailed(message, code));
    sm.onRestored(() => this.host.events.emit('restored'));
  }

  /**
   * One applied batch: `appliedIndex` is the worker's applied index after it (equal to the previous one for a
   * batch of no entries, e.g. after a restore), `results` answer local proposals by request ID (others' are
   * ignored), `mvccEvents` are the encoded watch events of the batch, in revision order.
   */
  onApplied(appliedIndex: number, results: ApplyResult[], mvccEvents: Buffer[]): void {
    const h = this.host;
    const first = this.lastApplied + 1;
    h.stages?.reached('applied', first, appliedIndex);
    for (const r of results) h.pending.settle(r.requestId, r.errorId, r.response);
    if (results.length > 0) h.stages?.answeredSoon(first, appliedIndex);
    h.reads.applied(appliedIndex);
    if (appliedIndex > this.lastApplied) metrics.etcd_server_proposals_applied_total.inc(appliedIndex - this.lastApplied);
    this.lastApplied = appliedIndex;
    metrics.etcd_server_proposals_pending.set(h.pending.size);
    h.applyTotals.sample(h.applyStatus());
    // etcd raises NOSPACE at apply time when a write takes the backend over the quota: here when applied writes
    // made the size cross it (not on every batch, so a disarmed alarm stays down until the next write attempt).
    const size = h.backendSize();
    if (h.quotaBytes >= 0 && size >= h.quotaBytes && this.lastBackendSize < h.quotaBytes) h.raiseNoSpace();
    this.lastBackendSize = size;
    h.events.emit('applied', appliedIndex);
    h.snapshotApplied(appliedIndex);
    h.events.emit('mvccEvents', mvccEvents);
  }

  /** A defragment shrank the backend to `sizeBytes`: a later crossing of the quota raises NOSPACE again. */
  backendResized(sizeBytes: number): void {
    this.lastBackendSize = sizeBytes;
  }
}
