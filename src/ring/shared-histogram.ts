/**
 * A Prometheus histogram whose state lives in a SharedArrayBuffer, so a worker thread (e.g. the WAL worker timing
 * fdatasync) observes and the main thread's prom-client registry exposes it.
 *
 * Layout (Float64Array): `[0] sum of observations (seconds)`, `[1] count`, `[2 + i] observations falling into bucket
 * i` (non-cumulative; i = bucketUpperBounds.length is the +Inf bucket). Single writer per histogram with plain
 * stores; a reader may see a snapshot that is one observation behind on some fields (acceptable for metrics,
 * never torn per field on 64-bit platforms). The main thread exposes it with metrics/shared-histogram.ts
 * registerSharedHistogram.
 */

/** etcd's buckets for etcd_disk_wal_fsync_duration_seconds / etcd_disk_backend_commit_duration_seconds:
 * 0.001 × 2^n seconds, n = 0..13 (1 ms .. 8.192 s). */
export const ETCD_DISK_DURATION_BUCKETS_SECONDS: readonly number[] = Array.from({ length: 14 }, (_, n) =>
  Number((0.001 * 2 ** n).toPrecision(12)),
);

/** Shared-memory histogram (see module doc). */
export class SharedHistogram {
  private readonly f64: Float64Array;

  private constructor(
    /** The SharedArrayBuffer to pass to another thread (with the bucket bounds) for attach(). */
    readonly sab: SharedArrayBuffer,
    /** Upper bounds (le), strictly increasing, without +Inf. */
    readonly bucketUpperBounds: readonly number[],
  ) {
    this.f64 = new Float64Array(sab);
  }

  /** Bytes needed for a histogram with `bucketCount` finite buckets. */
  static sizeBytes(bucketCount: number): number {
    return (3 + bucketCount) * 8;
  }

  /**
   * Allocates a zeroed histogram.
   * @param bucketUpperBounds strictly increasing finite upper bounds (seconds for duration histograms).
   * @throws RangeError when the bounds are empty, not finite or not increasing.
   */
  static create(bucketUpperBounds: readonly number[]): SharedHistogram {
    checkBounds(bucketUpperBounds);
    return new SharedHistogram(new SharedArrayBuffer(SharedHistogram.sizeBytes(bucketUpperBounds.length)), [...bucketUpperBounds]);
  }

  /**
   * Attaches to a histogram created elsewhere (same bounds).
   * @throws RangeError when the buffer size does not match the bounds.
   */
  static attach(sab: SharedArrayBuffer, bucketUpperBounds: readonly number[]): SharedHistogram {
    checkBounds(bucketUpperBounds);
    if (sab.byteLength !== SharedHistogram.sizeBytes(bucketUpperBounds.length)) {
      throw new RangeError(`shared histogram buffer of ${sab.byteLength} bytes does not match ${bucketUpperBounds.length} buckets`);
    }
    return new SharedHistogram(sab, [...bucketUpperBounds]);
  }

  /** Records one observation (single writer thread per histogram). Non-finite values are ignored. */
  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const b = this.bucketUpperBounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.f64[2 + i]! += 1;
    this.f64[0]! += value;
    this.f64[1]! += 1;
  }

  /**
   * Adds observations already counted per bucket: `counts[i]` fall into bucket i (non-cumulative, the last entry is
   * +Inf; as many entries as bounds + 1), `sum` is their total. Single writer thread, like observe().
   * @throws RangeError when `counts` has the wrong length.
   */
  addCounts(counts: ArrayLike<number>, sum: number): void {
    if (counts.length !== this.bucketUpperBounds.length + 1) throw new RangeError(`expected ${this.bucketUpperBounds.length + 1} bucket counts, got ${counts.length}`);
    let n = 0;
    for (let i = 0; i < counts.length; i++) {
      this.f64[2 + i]! += counts[i]!;
      n += counts[i]!;
    }
    this.f64[0]! += sum;
    this.f64[1]! += n;
  }

  /** Snapshot: cumulative counts per bound (last = +Inf), sum and count. */
  snapshot(): { cumulative: number[]; sum: number; count: number } {
    const cumulative: number[] = [];
    let acc = 0;
    for (let i = 0; i <= this.bucketUpperBounds.length; i++) {
      acc += this.f64[2 + i]!;
      cumulative.push(acc);
    }
    return { cumulative, sum: this.f64[0]!, count: this.f64[1]! };
  }
}

function checkBounds(bounds: readonly number[]): void {
  if (bounds.length === 0) throw new RangeError('a histogram needs at least one bucket');
  for (let i = 0; i < bounds.length; i++) {
    if (!Number.isFinite(bounds[i]!) || (i > 0 && bounds[i]! <= bounds[i - 1]!)) {
      throw new RangeError('histogram bucket bounds must be finite and strictly increasing');
    }
  }
}
