/**
 * Main-thread exposure of the counters the apply worker keeps in its shared status words (src/apply/apply-status.ts
 * ApplyWord.Mvcc*, the compaction word histograms) and of the WAL worker's written bytes: read at scrape time, no
 * thread hop.
 *
 * A worker's words count from 0 since that worker started; a snapshot restore starts a new worker (new words). The
 * accumulator therefore samples the words after every applied batch (the server's onApplied, which also sees the
 * old worker's last batch before it is replaced) and at scrape time, and adds each word's increase to a running
 * total, starting again from 0 when the words object changes. Totals are exact and monotonic.
 */
import { ApplyWord, WORD_HISTOGRAMS, type ApplyStatus, type WordHistogramName } from '../apply/apply-status';
import {
  metrics as defaultMetrics, setCounterSource, setGaugeSource, setHistogramSource, type EtcdMetrics,
} from '../metrics/registry';

/** Cumulative words accumulated across apply workers. */
const COUNTER_WORDS = [
  ApplyWord.MvccPuts, ApplyWord.MvccDeletes, ApplyWord.MvccTxns, ApplyWord.MvccRanges, ApplyWord.MvccPutBytes,
  ApplyWord.MvccCompactionKeys,
] as const;

function histogramWords(): number[] {
  const out: number[] = [];
  for (const h of Object.values(WORD_HISTOGRAMS)) for (let i = 0; i < h.count + 3; i++) out.push(h.offset + i);
  return out;
}

/** Running totals of cumulative apply words across apply workers (see module doc). */
export class ApplyWordTotals {
  private readonly words: number[] = [...COUNTER_WORDS, ...histogramWords()];
  private readonly last = new Map<number, number>();
  private readonly total = new Map<number, number>();
  private source: ApplyStatus | null = null;

  /** Adds the increase of every word since the previous sample of the same words object. */
  sample(status: ApplyStatus | undefined): void {
    if (!status) return;
    if (status !== this.source) {
      this.source = status;
      this.last.clear();
    }
    for (const w of this.words) {
      const v = status.loadAt(w);
      const d = v - (this.last.get(w) ?? 0);
      if (d > 0) this.total.set(w, (this.total.get(w) ?? 0) + d);
      this.last.set(w, v);
    }
  }

  /** The accumulated total of word `w`. */
  get(w: number): number {
    return this.total.get(w) ?? 0;
  }

  /** Accumulated word histogram: sum, count, non-cumulative buckets (last = +Inf). */
  histogram(name: WordHistogramName): { sum: number; count: number; buckets: number[] } {
    const h = WORD_HISTOGRAMS[name];
    const buckets: number[] = [];
    for (let i = 0; i <= h.count; i++) buckets.push(this.get(h.offset + 2 + i));
    return { sum: this.get(h.offset), count: this.get(h.offset + 1), buckets };
  }
}

/** What installApplyMetrics reads. */
export interface ApplyMetricsSource {
  totals: ApplyWordTotals;
  /** The current apply worker's status words (sampled at scrape time). */
  applyStatus(): ApplyStatus | undefined;
  /** Live keys (the current worker's ApplyWord.MvccKeys). */
  liveKeys(): number;
  /** Bytes the WAL worker wrote since it started. */
  walWriteBytes(): number;
}

/**
 * Feeds the etcd metrics counted by the workers from `src` at scrape time (etcd mvcc/metrics.go and
 * wal/metrics.go names; every etcd counter and its etcd_debugging_* twin get the same value, as etcd bumps both).
 * Range totals add the main thread's reads (`etcd_mvcc_range_total` is also bumped by the server's Range path).
 */
export function installApplyMetrics(src: ApplyMetricsSource, m: EtcdMetrics = defaultMetrics): void {
  const at = (w: ApplyWord) => (): number => {
    src.totals.sample(src.applyStatus());
    return src.totals.get(w);
  };
  setCounterSource(m.etcd_mvcc_put_total, at(ApplyWord.MvccPuts));
  setCounterSource(m.etcd_debugging_mvcc_put_total, at(ApplyWord.MvccPuts));
  setCounterSource(m.etcd_mvcc_delete_total, at(ApplyWord.MvccDeletes));
  setCounterSource(m.etcd_debugging_mvcc_delete_total, at(ApplyWord.MvccDeletes));
  setCounterSource(m.etcd_mvcc_txn_total, at(ApplyWord.MvccTxns));
  setCounterSource(m.etcd_debugging_mvcc_txn_total, at(ApplyWord.MvccTxns));
  // The main thread's Range path inc()s these directly; the apply worker's ranges (txn compares and range ops,
  // prev_kv reads) are added on top.
  setCounterSource(m.etcd_mvcc_range_total, at(ApplyWord.MvccRanges));
  setCounterSource(m.etcd_debugging_mvcc_range_total, at(ApplyWord.MvccRanges));
  setCounterSource(m.etcd_debugging_mvcc_db_compaction_keys_total, at(ApplyWord.MvccCompactionKeys));
  const putBytes = at(ApplyWord.MvccPutBytes);
  setGaugeSource(m.etcd_debugging_mvcc_total_put_size_in_bytes, putBytes);
  setGaugeSource(m.etcd_debugging_mvcc_keys_total, () => src.liveKeys());
  setGaugeSource(m.etcd_disk_wal_write_bytes_total, () => src.walWriteBytes());
  for (const name of Object.keys(WORD_HISTOGRAMS) as WordHistogramName[]) {
    setHistogramSource(m[name], () => {
      src.totals.sample(src.applyStatus());
      return src.totals.histogram(name);
    });
  }
}
