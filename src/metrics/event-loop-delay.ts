/**
 * `etcetera_event_loop_delay_seconds`: how late the main thread's event loop runs a timer (issue 11 item 5: the
 * reactor must never block), as a Prometheus histogram fed from `perf_hooks.monitorEventLoopDelay`.
 *
 * Node's monitor keeps an HDR histogram of the intervals between its timer's runs (each interval includes the
 * `resolution` itself, which is subtracted here). Every FOLD_INTERVAL_MS its percentile table is folded into
 * bucket counts (the count at a bound is the highest percentile whose value is at or below it, so the bucket
 * counts are exact up to the HDR's precision) and the monitor is reset. Cost: one timer per resolution in libuv
 * (C++), one fold per second in JS.
 */
import { monitorEventLoopDelay, type Histogram } from 'node:perf_hooks';
import { registry } from './registry';
import { registerSharedHistogram, SharedHistogram } from './shared-histogram';

/** Sampling period of the monitor, ms (prom-client's own lag gauges use the same). */
export const EVENT_LOOP_RESOLUTION_MS = 10;
/** How often the monitor's table is folded into the histogram, ms. */
export const FOLD_INTERVAL_MS = 1000;
/** 0.25 ms × 2^n, n = 0..14 (0.25 ms .. 4.1 s), in seconds. */
export const EVENT_LOOP_DELAY_BUCKETS_SECONDS: readonly number[] = Array.from({ length: 15 }, (_, n) => Number((0.00025 * 2 ** n).toPrecision(12)));

const NAME = 'etcetera_event_loop_delay_seconds';
const HELP = "Seconds the main thread's event loop ran a timer late (perf_hooks.monitorEventLoopDelay, resolution subtracted).";

let started: { hist: SharedHistogram; monitor: Histogram; fold: () => void } | null = null;

/**
 * Folds `monitor`'s current table into `hist` (delays minus `resolutionMs`) and resets the monitor. Exported for
 * tests; the process's own monitor folds itself every FOLD_INTERVAL_MS.
 */
export function foldInto(hist: SharedHistogram, monitor: Histogram, resolutionMs: number): void {
  const count = monitor.count;
  if (count === 0) return;
  const bounds = hist.bucketUpperBounds;
  const cumulative = new Array<number>(bounds.length).fill(0);
  const offsetNs = resolutionMs * 1e6;
  // percentiles: ascending percentile → value (ns) at it; the share of samples at or below a value is its percentile.
  for (const [pct, valueNs] of monitor.percentiles) {
    const delaySeconds = Math.max(0, valueNs - offsetNs) / 1e9;
    for (let i = 0; i < bounds.length; i++) {
      if (delaySeconds <= bounds[i]!) cumulative[i] = Math.max(cumulative[i]!, Math.round((pct / 100) * count));
    }
  }
  const counts = new Array<number>(bounds.length + 1);
  let prev = 0;
  for (let i = 0; i < bounds.length; i++) {
    counts[i] = Math.max(0, cumulative[i]! - prev);
    prev = Math.max(prev, cumulative[i]!);
  }
  counts[bounds.length] = Math.max(0, count - prev);
  hist.addCounts(counts, (Math.max(0, monitor.mean - offsetNs) / 1e9) * count);
  monitor.reset();
}

/**
 * Starts the process's event-loop delay histogram (idempotent; the timers are unref'd) and registers it on the
 * process registry. Returns the histogram.
 */
export function startEventLoopDelayHistogram(): SharedHistogram {
  if (started !== null) return started.hist;
  const hist = SharedHistogram.create(EVENT_LOOP_DELAY_BUCKETS_SECONDS);
  const monitor = monitorEventLoopDelay({ resolution: EVENT_LOOP_RESOLUTION_MS });
  monitor.enable();
  const fold = (): void => foldInto(hist, monitor, EVENT_LOOP_RESOLUTION_MS);
  setInterval(fold, FOLD_INTERVAL_MS).unref();
  registerSharedHistogram(registry, NAME, HELP, hist);
  started = { hist, monitor, fold };
  return hist;
}
