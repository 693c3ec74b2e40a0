/**
 * Pure statistics for the bench tool: percentiles, histogram buckets, mean/stddev and per-second samples.
 *
 * Every function is unit-agnostic (what goes in comes out: pass seconds, get seconds) unless its name says
 * otherwise. The semantics follow the report printed by etcd's benchmark tool (etcd tools/benchmark, the
 * `pkg/report` package: report.go, timeseries.go) so that our numbers are comparable with etcd's:
 * - percentiles use the rank `ceil(p·(n+1)/100) − 1` on the ascending samples, clamped to [0, n−1];
 * - the standard deviation is the population one (divide by n);
 * - the histogram has 10 equal-width buckets between fastest and slowest, printed as 11 rows whose bounds are
 *   fastest, fastest+w, …, slowest: each row counts the samples above the previous bound and at most its own.
 * No I/O, no clocks.
 */

/** The percentiles (in %) etcd's benchmark prints under "Latency distribution". */
export const PERCENTILES: readonly number[] = [10, 25, 50, 75, 90, 95, 99, 99.9];

/** Number of equal-width histogram buckets (etcd prints them as BUCKETS + 1 bound rows). */
export const BUCKETS = 10;

/** Returns an ascending copy of `values` (numeric sort; the input is not modified). */
export function sortedCopy(values: ArrayLike<number>): Float64Array {
  const out = Float64Array.from(values as ArrayLike<number>);
  out.sort();
  return out;
}

/** True when `values` is in ascending order. */
export function isSorted(values: ArrayLike<number>): boolean {
  for (let i = 1; i < values.length; i++) if (values[i] < values[i - 1]) return false;
  return true;
}

/**
 * The p-th percentile (0 < p ≤ 100) of ascending `sorted` samples, as etcd's report computes it:
 * index `ceil(p·(n+1)/100) − 1`, clamped to the array. Returns 0 for an empty array.
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return 0;
  let idx = Math.ceil((p * (n + 1)) / 100) - 1;
  if (idx < 0) idx = 0;
  if (idx >= n) idx = n - 1;
  return sorted[idx];
}

/** `percentile` for each of `ps` (default: etcd's 10 … 99.9). Same order as `ps`. */
export function percentiles(sorted: ArrayLike<number>, ps: readonly number[] = PERCENTILES): number[] {
  return ps.map((p) => percentile(sorted, p));
}

/** Arithmetic mean and population standard deviation of `values` ({0, 0} when empty). Two-pass, so stable. */
export function meanStddev(values: ArrayLike<number>): { mean: number; stddev: number } {
  const n = values.length;
  if (n === 0) return { mean: 0, stddev: 0 };
  let sum = 0;
  for (let i = 0; i < n; i++) sum += values[i];
  const mean = sum / n;
  let sq = 0;
  for (let i = 0; i < n; i++) {
    const d = values[i] - mean;
    sq += d * d;
  }
  return { mean, stddev: Math.sqrt(sq / n) };
}

/** One histogram row: `bound` is the row's upper bound (same unit as the samples), `count` the samples in it. */
export interface HistogramRow {
  bound: number;
  count: number;
}

/**
 * Histogram of ascending `sorted` samples in etcd's shape: `buckets` equal-width buckets between the fastest
 * and the slowest sample, returned as `buckets + 1` rows with bounds fastest + i·width (the last bound is the
 * slowest itself). Row 0 holds the samples equal to the fastest; row i > 0 the samples in (bound[i−1], bound[i]].
 * The counts always add up to `sorted.length`. Empty input → [].
 */
export function histogram(sorted: ArrayLike<number>, buckets: number = BUCKETS): HistogramRow[] {
  const n = sorted.length;
  if (n === 0) return [];
  const fastest = sorted[0];
  const slowest = sorted[n - 1];
  const width = (slowest - fastest) / buckets;
  const rows: HistogramRow[] = [];
  for (let i = 0; i < buckets; i++) rows.push({ bound: fastest + width * i, count: 0 });
  rows.push({ bound: slowest, count: 0 });
  let b = 0;
  for (let i = 0; i < n; i++) {
    const v = sorted[i];
    while (b < rows.length - 1 && v > rows[b].bound) b++;
    rows[b].count++;
  }
  return rows;
}

/** Bar length (0…`width` characters) of each row, scaled so the fullest row gets `width` (etcd uses 40). */
export function barLengths(rows: readonly HistogramRow[], width = 40): number[] {
  let max = 0;
  for (const r of rows) if (r.count > max) max = r.count;
  return rows.map((r) => (max > 0 ? Math.floor((r.count * width) / max) : 0));
}

/** Everything the report prints about one set of successful requests. Latencies in seconds. */
export interface Summary {
  /** Wall time of the run, seconds. */
  totalSec: number;
  /** Successful requests (= number of latency samples). */
  count: number;
  /** Failed requests. */
  errors: number;
  /** Failed requests by message. */
  errorDist: Record<string, number>;
  slowestSec: number;
  fastestSec: number;
  averageSec: number;
  stddevSec: number;
  /** Successful requests per second of `totalSec`. */
  rps: number;
  /** [percent, seconds] for each of PERCENTILES. */
  percentiles: Array<[number, number]>;
  histogram: HistogramRow[];
}

/**
 * Builds a Summary from the ascending latencies (seconds) of the successful requests, the run's wall time
 * (seconds) and the error counts by message.
 */
export function summarize(sortedSec: ArrayLike<number>, totalSec: number, errorDist: Record<string, number> = {}): Summary {
  const n = sortedSec.length;
  const { mean, stddev } = meanStddev(sortedSec);
  let errors = 0;
  for (const k of Object.keys(errorDist)) errors += errorDist[k];
  return {
    totalSec,
    count: n,
    errors,
    errorDist: { ...errorDist },
    slowestSec: n ? sortedSec[n - 1] : 0,
    fastestSec: n ? sortedSec[0] : 0,
    averageSec: mean,
    stddevSec: stddev,
    rps: totalSec > 0 ? n / totalSec : 0,
    percentiles: PERCENTILES.map((p) => [p, percentile(sortedSec, p)] as [number, number]),
    histogram: histogram(sortedSec),
  };
}

/** One per-second sample (etcd's `--sample` time series). Latencies in nanoseconds. */
export interface SecondPoint {
  /** Unix second in which the requests started. */
  unixSecond: number;
  minNs: number;
  avgNs: number;
  maxNs: number;
  /** Requests started in that second. */
  count: number;
}

/**
 * Groups requests by the unix second in which they started. `startsMs[i]` is request i's wall-clock start
 * (ms since the epoch) and `latNs[i]` its latency (ns). Seconds without requests between the first and the
 * last one appear with count 0. Ascending by second.
 */
export function timeSeries(startsMs: ArrayLike<number>, latNs: ArrayLike<number>): SecondPoint[] {
  const m = new Map<number, SecondPoint>();
  for (let i = 0; i < startsMs.length; i++) {
    const s = Math.floor(startsMs[i] / 1000);
    const lat = latNs[i];
    const p = m.get(s);
    if (!p) m.set(s, { unixSecond: s, minNs: lat, avgNs: lat, maxNs: lat, count: 1 });
    else {
      if (lat < p.minNs) p.minNs = lat;
      if (lat > p.maxNs) p.maxNs = lat;
      p.avgNs += lat; // running sum until the end
      p.count++;
    }
  }
  if (m.size === 0) return [];
  const keys = [...m.keys()];
  const lo = Math.min(...keys);
  const hi = Math.max(...keys);
  const out: SecondPoint[] = [];
  for (let s = lo; s <= hi; s++) {
    const p = m.get(s);
    if (!p) out.push({ unixSecond: s, minNs: 0, avgNs: 0, maxNs: 0, count: 0 });
    else out.push({ ...p, avgNs: p.avgNs / p.count });
  }
  return out;
}
