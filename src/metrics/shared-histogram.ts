/**
 * Exposes a shared-memory histogram (src/ring/shared-histogram.ts, written by a worker thread) through the main
 * thread's prom-client registry.
 */
import type { Metric, Registry } from 'prom-client';
import type { SharedHistogram } from '../ring/shared-histogram';

export { ETCD_DISK_DURATION_BUCKETS_SECONDS, SharedHistogram } from '../ring/shared-histogram';

/**
 * Exposes a SharedHistogram through a prom-client Registry as a real histogram: cumulative `<name>_bucket{le}`,
 * `<name>_sum`, `<name>_count`. The object is prom-client-compatible (name, help, type, aggregator, get(), reset())
 * and registered with registry.registerMetric.
 * @throws Error from prom-client when the name is already registered.
 */
export function registerSharedHistogram(registry: Registry, name: string, help: string, hist: SharedHistogram): void {
  const metric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    labelNames: [] as string[],
    get: async () => {
      const { cumulative, sum, count } = hist.snapshot();
      const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
      hist.bucketUpperBounds.forEach((le, i) => values.push({ labels: { le }, value: cumulative[i]!, metricName: `${name}_bucket` }));
      values.push({ labels: { le: '+Inf' }, value: cumulative[cumulative.length - 1]!, metricName: `${name}_bucket` });
      values.push({ labels: {}, value: sum, metricName: `${name}_sum` });
      values.push({ labels: {}, value: count, metricName: `${name}_count` });
      return { name, help, type: 'histogram', aggregator: 'sum', values };
    },
    reset: () => {
      /* shared state is owned by the writer thread; resetting from a reader is not supported */
    },
  };
  registry.registerMetric(metric as unknown as Metric);
}
