/**
 * Per-stage latency of local writes (issue 11 item 3): how long an entry this member proposed spends between
 * proposed (handed to the Raft core) → durable (its WAL fdatasync returned) → committed (handed to the apply
 * worker) → applied (its result came back) → answered (the reactor ran the replies' continuations).
 *
 * Stamps are kept per Raft index in fixed rings (no per-request allocation) and observed per batch into
 * SharedHistogram-backed etcetera_ metrics (plain typed-array stores; prom-client only reads them at scrape).
 * Only entries appended locally by the leader are timed; a follower's forwarded proposals have no local index.
 */
import { registry } from '../metrics/registry';
import { registerSharedHistogram, SharedHistogram } from '../metrics/shared-histogram';

/** Raft indexes tracked at once; older stamps are overwritten (a slot carries its index, so stale ones are skipped). */
export const WRITE_STAGE_SLOTS = 1 << 14;

/** 100 µs × 2^n, n = 0..16 (0.1 ms .. 6.55 s), in seconds. */
export const WRITE_STAGE_BUCKETS_SECONDS: readonly number[] = Array.from({ length: 17 }, (_, n) => Number((0.0001 * 2 ** n).toPrecision(12)));

/** The stages after "proposed", in order; each histogram measures the time from the previous stage. */
export const WRITE_STAGES = ['durable', 'committed', 'applied', 'answered'] as const;
/** One of {@link WRITE_STAGES}. */
export type WriteStage = (typeof WRITE_STAGES)[number];

const STAGE_HELP: Record<WriteStage, string> = {
  durable: 'Seconds from a write entering the Raft core to its WAL fdatasync returning (leader, local entries).',
  committed: 'Seconds from a write being durable to its hand-over to the apply worker as committed.',
  applied: 'Seconds from a committed write being handed to the apply worker to its result reaching the main thread.',
  answered: "Seconds from a write's apply result reaching the main thread to the reactor having run its reply.",
};

/** The stamps and histograms of the write stages of one member. */
export class WriteStages {
  private readonly mask = WRITE_STAGE_SLOTS - 1;
  private readonly tag = new Float64Array(WRITE_STAGE_SLOTS).fill(-1);
  /** Time of the last stage reached by each slot's index, ms (performance.now()). */
  private readonly at = new Float64Array(WRITE_STAGE_SLOTS);
  /** Next stage each slot waits for (index into WRITE_STAGES). */
  private readonly next = new Uint8Array(WRITE_STAGE_SLOTS);
  /** The process's histograms (members in one process share them, as they share the registry). */
  readonly histograms: Record<WriteStage, SharedHistogram> = processHistograms();

  /** Entries `first..last` (inclusive) entered the Raft core now. */
  proposed(first: number, last: number): void {
    const now = performance.now();
    for (let i = first; i <= last; i++) {
      const s = i & this.mask;
      this.tag[s] = i;
      this.at[s] = now;
      this.next[s] = 0;
    }
  }

  /** Entries `first..last` reached `stage` now; only those whose previous stage was stamped are observed. */
  reached(stage: WriteStage, first: number, last: number): void {
    if (last < first) return;
    const k = WRITE_STAGES.indexOf(stage);
    const hist = this.histograms[stage];
    const now = performance.now();
    // Past the ring size the older indexes' slots were reused: start where stamps can still be ours.
    for (let i = Math.max(first, last - this.mask); i <= last; i++) {
      const s = i & this.mask;
      if (this.tag[s] !== i || this.next[s] !== k) continue;
      hist.observe((now - this.at[s]!) / 1000);
      this.at[s] = now;
      this.next[s] = k + 1;
    }
  }

  /**
   * Entries `first..last` were settled now: they count as answered once the reactor has run the replies'
   * continuations (the promise jobs queued by the settle), i.e. in the next check phase.
   */
  answeredSoon(first: number, last: number): void {
    setImmediate(() => this.reached('answered', first, last));
  }
}

let histograms: Record<WriteStage, SharedHistogram> | null = null;

/** The histograms, registered on the process registry as `etcetera_write_<stage>_duration_seconds` on first use. */
function processHistograms(): Record<WriteStage, SharedHistogram> {
  if (histograms === null) {
    const h = {} as Record<WriteStage, SharedHistogram>;
    for (const s of WRITE_STAGES) {
      h[s] = SharedHistogram.create(WRITE_STAGE_BUCKETS_SECONDS);
      registerSharedHistogram(registry, `etcetera_write_${s}_duration_seconds`, STAGE_HELP[s], h[s]);
    }
    histograms = h;
  }
  return histograms;
}
