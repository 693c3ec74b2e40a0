/**
 * The process-wide prom-client registry and every etcd-named metric (main thread only; worker threads feed
 * their histograms through `src/metrics/shared-histogram.ts`).
 *
 * Usage:
 * ```ts
 * import { metrics, registry } from '../metrics/registry';
 * metrics.etcd_mvcc_put_total.inc(); metrics.etcd_debugging_mvcc_put_total.inc(); // etcd bumps both
 * metrics.etcd_network_peer_sent_bytes_total.inc({ To: peerIdHex }, n);
 * setGaugeFunc('etcd_mvcc_db_total_size_in_bytes', () => env.stat().size);
 * ```
 * Metric objects are keyed by their exact etcd name (see `etcd-specs.ts` for help/labels/buckets).
 */
import * as fs from 'node:fs';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import {
  ETCD_METRIC_SPECS,
  EtcdMetricName,
  LabelsOf,
  MetricSpec,
  SHARED_HISTOGRAM_NAMES,
  bucketsOf,
} from './etcd-specs';

export {
  ETCD_METRIC_SPECS,
  WAL_FSYNC_DURATION,
  BACKEND_COMMIT_DURATION,
  SHARED_HISTOGRAM_NAMES,
  bucketsOf,
  exponentialBuckets,
} from './etcd-specs';
export type { EtcdMetricName, LabelsOf, MetricSpec } from './etcd-specs';

/** The etcd release whose metrics and version strings we mirror. */
export const ETCD_SERVER_VERSION = '3.4.23';

type Specs = typeof ETCD_METRIC_SPECS;
type SharedName = 'etcd_disk_wal_fsync_duration_seconds' | 'etcd_disk_backend_commit_duration_seconds';

/** Metric names this registry creates itself (all of etcd's except the two shared-memory histograms). */
export type LocalMetricName = Exclude<EtcdMetricName, SharedName>;

/** The prom-client object type for etcd metric `N` (label names typed from the spec). */
export type MetricOf<N extends EtcdMetricName> = Specs[N]['type'] extends 'counter'
  ? Counter<LabelsOf<N>>
  : Specs[N]['type'] extends 'gauge'
    ? Gauge<LabelsOf<N>>
    : Histogram<LabelsOf<N>>;

/** Gauges that etcd computes at scrape time (Go GaugeFunc); their value comes from {@link EtcdMetrics.setGaugeFunc}. */
export type GaugeFuncName = {
  [N in LocalMetricName]: Specs[N] extends { readonly func: true } ? N : never;
}[LocalMetricName];

/** Ring names reported by `etcetera_ring_occupancy_bytes{ring}` (free-form; these are the ones in architecture.md). */
export type RingName = 'walIn' | 'applyIn' | 'applyOut' | (string & {});

/** Every metric object plus the helpers bound to one registry. */
export type EtcdMetrics = { readonly [N in LocalMetricName]: MetricOf<N> } & {
  /** etcetera-only: bytes currently queued in each SPSC ring (collect-time callback, see setRingOccupancySource). */
  readonly etcetera_ring_occupancy_bytes: Gauge<'ring'>;
  /** etcetera-only: Node's default process_virtual_memory_max_bytes equivalent of client_golang's process collector. */
  readonly process_virtual_memory_max_bytes: Gauge;
  /** The registry all of the above are registered on. */
  readonly registry: Registry;
  /**
   * Install the scrape-time source of a GaugeFunc metric (e.g. `etcd_mvcc_db_total_size_in_bytes` ← LMDB size).
   * `fn` returns the value (units per the metric's name); it may be async. Replaces any previous source;
   * until one is set the gauge reports 0.
   */
  setGaugeFunc(name: GaugeFuncName, fn: () => number | Promise<number>): void;
  /** Install the scrape-time source of `etcetera_ring_occupancy_bytes`: ring name → bytes in use. */
  setRingOccupancySource(fn: () => Record<string, number> | Iterable<readonly [RingName, number]>): void;
  /** Set `etcd_server_id{server_id="<hex>"} 1` (etcd: member ID printed in lower-case hex, no padding). */
  setServerId(memberId: number | bigint): void;
  /** Set `etcd_cluster_version{cluster_version="<major.minor>"} 1`, clearing any previous version label. */
  setClusterVersion(version: string): void;
  /**
   * Pre-create every gRPC method's counters at 0 for all 17 gRPC codes, as go-grpc-prometheus'
   * `InitializeMetrics` does (etcd calls it at start, so the series exist before the first RPC).
   */
  preinitializeGrpcMethods(methods: readonly GrpcMethodInfo[]): void;
};

/** go-grpc-prometheus `grpc_type` label values. */
export type GrpcType = 'unary' | 'client_stream' | 'server_stream' | 'bidi_stream';

/** A gRPC method as go-grpc-prometheus labels it: `grpc_service` is the full service name (`etcdserverpb.KV`). */
export interface GrpcMethodInfo {
  service: string;
  method: string;
  type: GrpcType;
}

/** gRPC status code names as go-grpc-prometheus writes them into `grpc_code` (codes.Code.String()). */
export const GRPC_CODES = [
  'OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists',
  'PermissionDenied', 'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange', 'Unimplemented',
  'Internal', 'Unavailable', 'DataLoss', 'Unauthenticated',
] as const;

/** Count open file descriptors of this process (Linux /proc; 0 elsewhere). */
function countOpenFds(): number {
  try {
    return fs.readdirSync('/proc/self/fd').length;
  } catch {
    return 0;
  }
}

/**
 * Read a soft limit from /proc/self/limits. Returns Go's float64(math.MaxUint64) for "unlimited", as
 * client_golang's procfs-based collectors print it, or undefined when /proc is unavailable.
 */
function readProcLimit(label: string): number | undefined {
  try {
    const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith(label));
    if (!line) return undefined;
    const soft = line.slice(label.length).trim().split(/\s+/)[0];
    return soft === 'unlimited' ? 18446744073709551615 : Number(soft);
  } catch {
    return undefined;
  }
}

/** Gauges whose value we compute ourselves at scrape time. etcd: etcdserver/metrics.go monitorFileDescriptor. */
const BUILTIN_GAUGE_SOURCES: Partial<Record<EtcdMetricName, () => number | undefined>> = {
  os_fd_used: countOpenFds,
  os_fd_limit: () => readProcLimit('Max open files'),
};

/**
 * Create every etcd 3.4 metric (except the two worker-fed histograms, see {@link SHARED_HISTOGRAM_NAMES}) on
 * `registry`, with etcd's exact names, help texts, types, label names and buckets, plus the etcetera-specific
 * gauges. Also sets the constant series etcd sets at start (`etcd_server_version`, `etcd_server_go_version`).
 * Does not install Node's default metrics (see {@link createEtcdRegistry}).
 * Throws if a name is already registered on `registry` (prom-client's duplicate check).
 */
export function createEtcdMetrics(registry: Registry, opts: { serverVersion?: string } = {}): EtcdMetrics {
  const gaugeFuncs = new Map<string, () => number | Promise<number>>();
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(ETCD_METRIC_SPECS) as EtcdMetricName[]) {
    if ((SHARED_HISTOGRAM_NAMES as readonly string[]).includes(name)) continue;
    const spec: MetricSpec = ETCD_METRIC_SPECS[name];
    const base = { name, help: spec.help, labelNames: [...spec.labels], registers: [registry] };
    if (spec.type === 'counter') out[name] = new Counter(base);
    else if (spec.type === 'histogram') out[name] = new Histogram({ ...base, buckets: bucketsOf(name) });
    else if (spec.func || BUILTIN_GAUGE_SOURCES[name]) {
      const builtin = BUILTIN_GAUGE_SOURCES[name];
      out[name] = new Gauge({
        ...base,
        async collect() {
          const fn = builtin ?? gaugeFuncs.get(name);
          if (!fn) return;
          const v = await fn();
          if (v !== undefined) this.set(v);
        },
      });
    } else out[name] = new Gauge(base);
  }

  let ringSource: (() => Record<string, number> | Iterable<readonly [RingName, number]>) | undefined;
  const ringGauge = new Gauge({
    name: 'etcetera_ring_occupancy_bytes',
    help: 'Bytes currently queued in each single-producer single-consumer ring between threads.',
    labelNames: ['ring'],
    registers: [registry],
    collect() {
      if (!ringSource) return;
      const v = ringSource();
      const entries = Symbol.iterator in v ? (v as Iterable<readonly [string, number]>) : Object.entries(v);
      for (const [ring, bytes] of entries) this.set({ ring }, bytes);
    },
  });
  const vmMax = new Gauge({
    name: 'process_virtual_memory_max_bytes',
    help: 'Maximum amount of virtual memory available in bytes.',
    registers: [registry],
    collect() { const v = readProcLimit('Max address space'); if (v !== undefined) this.set(v); },
  });

  const m = out as { [N in LocalMetricName]: MetricOf<N> };
  m.etcd_server_version.set({ server_version: opts.serverVersion ?? ETCD_SERVER_VERSION }, 1);
  m.etcd_server_go_version.set({ server_go_version: process.version }, 1);

  return Object.assign(m, {
    etcetera_ring_occupancy_bytes: ringGauge,
    process_virtual_memory_max_bytes: vmMax,
    registry,
    setGaugeFunc(name: GaugeFuncName, fn: () => number | Promise<number>): void {
      gaugeFuncs.set(name, fn);
    },
    setRingOccupancySource(fn: () => Record<string, number> | Iterable<readonly [RingName, number]>): void {
      ringSource = fn;
    },
    setServerId(memberId: number | bigint): void {
      m.etcd_server_id.reset();
      m.etcd_server_id.set({ server_id: BigInt(memberId).toString(16) }, 1);
    },
    setClusterVersion(version: string): void {
      m.etcd_cluster_version.reset();
      m.etcd_cluster_version.set({ cluster_version: version }, 1);
    },
    preinitializeGrpcMethods(methods: readonly GrpcMethodInfo[]): void {
      for (const { service, method, type } of methods) {
        const l = { grpc_type: type, grpc_service: service, grpc_method: method };
        m.grpc_server_started_total.inc(l, 0);
        m.grpc_server_msg_received_total.inc(l, 0);
        m.grpc_server_msg_sent_total.inc(l, 0);
        for (const code of GRPC_CODES) m.grpc_server_handled_total.inc({ ...l, grpc_code: code }, 0);
      }
    },
  });
}

/**
 * A fresh registry with Node's default metrics (`process_*`, `nodejs_*` incl. `nodejs_eventloop_lag_*`)
 * and all etcd metrics from {@link createEtcdMetrics}. Used for the process singleton below and by tests.
 */
export function createEtcdRegistry(opts: { serverVersion?: string } = {}): { registry: Registry; metrics: EtcdMetrics } {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 });
  return { registry, metrics: createEtcdMetrics(registry, opts) };
}

const singleton = createEtcdRegistry();

/** The process-wide registry scraped by `/metrics` (main thread). */
export const registry: Registry = singleton.registry;

/** The process-wide etcd metric objects, keyed by exact etcd metric name. */
export const metrics: EtcdMetrics = singleton.metrics;

/** Shorthand for `metrics.setGaugeFunc` on the process-wide registry. */
export function setGaugeFunc(name: GaugeFuncName, fn: () => number | Promise<number>): void {
  metrics.setGaugeFunc(name, fn);
}

/** Runs `fn` whenever `metric` is collected (before its value is read), after any collect hook it already had. */
export function onCollect(metric: object, fn: () => void): void {
  const m = metric as { collect?: () => unknown };
  const previous = m.collect;
  m.collect = function (this: unknown) {
    const r = previous?.call(this);
    fn();
    return r;
  };
}

/**
 * Feeds an unlabelled counter from a cumulative source read at scrape time (e.g. a counter a worker thread keeps
 * in shared memory). The counter only ever moves up by the source's increase since the last scrape, so it stays
 * monotonic even if the source were to go back.
 */
export function setCounterSource(counter: Counter, fn: () => number): void {
  let pushed = 0;
  onCollect(counter, () => {
    const v = fn();
    if (v > pushed) {
      counter.inc(v - pushed);
      pushed = v;
    }
  });
}

/** Feeds an unlabelled gauge from a source read at scrape time. */
export function setGaugeSource(gauge: Gauge, fn: () => number): void {
  onCollect(gauge, () => gauge.set(fn()));
}

/**
 * Feeds an unlabelled histogram from cumulative totals kept elsewhere (sum, count and non-cumulative per-bucket
 * counts in the histogram's bucket order, last = +Inf), read at scrape time. Overwrites the histogram's state.
 */
export function setHistogramSource(histogram: Histogram, fn: () => { sum: number; count: number; buckets: readonly number[] }): void {
  onCollect(histogram, () => {
    const h = histogram as unknown as { upperBounds: number[]; hashMap: Record<string, { sum: number; count: number; bucketValues: Record<number, number> }> };
    const entry = Object.values(h.hashMap)[0];
    if (entry === undefined) return;
    const v = fn();
    h.upperBounds.forEach((b, i) => (entry.bucketValues[b] = v.buckets[i] ?? 0));
    entry.sum = v.sum;
    entry.count = v.count;
  });
}

/** Shorthand for `metrics.setRingOccupancySource` on the process-wide registry. */
export function setRingOccupancySource(fn: () => Record<string, number> | Iterable<readonly [RingName, number]>): void {
  metrics.setRingOccupancySource(fn);
}
