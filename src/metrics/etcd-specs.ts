/**
 * The catalogue of every metric etcd 3.4 exports: exact name, Prometheus type, help text, label names and
 * histogram bucket layout. Written from the metric definitions of etcd v3.4.23 (Debian package
 * golang-etcd-server-dev, the metrics.go file of each package) and cross-checked against a live `etcd` 3.4.23 scrape
 * (test/metrics/fixtures/etcd-3.4.23-scrape.txt). `source` names the etcd file that defines each metric.
 *
 * Buckets are given as Prometheus `ExponentialBuckets(start, factor, count)` triples; see {@link bucketsOf}.
 * `func: true` marks a metric that etcd computes on scrape (a Go GaugeFunc): here a gauge whose value is
 * pulled from a callback at collect time.
 */

/** Prometheus metric type of a catalogue entry. */
export type MetricType = 'counter' | 'gauge' | 'histogram';

/** One catalogue entry (see the module comment). */
export interface MetricSpec {
  readonly type: MetricType;
  readonly help: string;
  readonly labels: readonly string[];
  readonly buckets?: { readonly start: number; readonly factor: number; readonly count: number };
  readonly func?: boolean;
  readonly source: string;
}

/** etcd 3.4's metrics, keyed by full metric name. */
export const ETCD_METRIC_SPECS = {
  etcd_debugging_auth_revision: { type: 'gauge', help: "The current revision of auth store.", labels: [], func: true, source: 'auth/metrics.go' },
  etcd_server_health_success: { type: 'counter', help: "The total number of successful health checks", labels: [], source: 'etcdserver/api/etcdhttp/metrics.go' },
  etcd_server_health_failures: { type: 'counter', help: "The total number of failed health checks", labels: [], source: 'etcdserver/api/etcdhttp/metrics.go' },
  etcd_cluster_version: { type: 'gauge', help: "Which version is running. 1 for 'cluster_version' label with current cluster version", labels: ['cluster_version'], source: 'etcdserver/api/membership/metrics.go' },
  etcd_network_active_peers: { type: 'gauge', help: "The current number of active peer connections.", labels: ['Local', 'Remote'], source: 'etcdserver/api/rafthttp/metrics.go' },
  etcd_network_disconnected_peers_total: { type: 'counter', help: "The total number of disconnected peers.", labels: ['Local', 'Remote'], source: 'etcdserver/api/rafthttp/metrics.go' },
  etcd_network_peer_sent_bytes_total: { type: 'counter', help: "The total number of bytes sent to peers.", labels: ['To'], source: 'etcdserver/api/rafthttp/metrics.go' },
  etcd_network_peer_received_bytes_total: { type: 'counter', help: "The total number of bytes received from peers.", labels: ['From'], source: 'etcdserver/api/rafthttp/metrics.go' },
  etcd_network_peer_sent_failures_total: { type: 'counter', help: "The total number of send failures from peers.", labels: ['To'], source: 'etcdserver/api/rafthttp/metrics.go' },
  etcd_network_peer_received_failures_total: { type: 'counter', help: "The total number of receive failures from peers.", labels: ['From'], source: 'etcdserver/api/rafthttp/metrics.go' },
  etcd_network_snapshot_send_success: { type: 'counter', help: "Total number of successful snapshot sends", labels: ['To'], source: 'etcdserver/api/rafthttp/metrics.go' },
  etcd_network_snapshot_send_inflights_total: { type: 'gauge', help: "Total number of inflight snapshot sends", labels: ['To'], source: 'etcdserver/api/rafthttp/metrics.go' },
  etcd_network_snapshot_send_failures: { type: 'counter', help: "Total number of snapshot send failures", labels: ['To'], source: 'etcdserver/api/rafthttp/metrics.go' },
  etcd_network_snapshot_send_total_duration_seconds: { type: 'histogram', help: "Total latency distributions of v3 snapshot sends", labels: ['To'], buckets: { start: 0.1, factor: 2, count: 10 }, source: 'etcdserver/api/rafthttp/metrics.go' },
  etcd_network_snapshot_receive_success: { type: 'counter', help: "Total number of successful snapshot receives", labels: ['From'], source: 'etcdserver/api/rafthttp/metrics.go' },
  etcd_network_snapshot_receive_inflights_total: { type: 'gauge', help: "Total number of inflight snapshot receives", labels: ['From'], source: 'etcdserver/api/rafthttp/metrics.go' },
  etcd_network_snapshot_receive_failures: { type: 'counter', help: "Total number of snapshot receive failures", labels: ['From'], source: 'etcdserver/api/rafthttp/metrics.go' },
  etcd_network_snapshot_receive_total_duration_seconds: { type: 'histogram', help: "Total latency distributions of v3 snapshot receives", labels: ['From'], buckets: { start: 0.1, factor: 2, count: 10 }, source: 'etcdserver/api/rafthttp/metrics.go' },
  etcd_network_peer_round_trip_time_seconds: { type: 'histogram', help: "Round-Trip-Time histogram between peers", labels: ['To'], buckets: { start: 0.0001, factor: 2, count: 16 }, source: 'etcdserver/api/rafthttp/metrics.go' },
  etcd_debugging_snap_save_marshalling_duration_seconds: { type: 'histogram', help: "The marshalling cost distributions of save called by snapshot.", labels: [], buckets: { start: 0.001, factor: 2, count: 14 }, source: 'etcdserver/api/snap/metrics.go' },
  etcd_debugging_snap_save_total_duration_seconds: { type: 'histogram', help: "The total latency distributions of save called by snapshot.", labels: [], buckets: { start: 0.001, factor: 2, count: 14 }, source: 'etcdserver/api/snap/metrics.go' },
  etcd_snap_fsync_duration_seconds: { type: 'histogram', help: "The latency distributions of fsync called by snap.", labels: [], buckets: { start: 0.001, factor: 2, count: 14 }, source: 'etcdserver/api/snap/metrics.go' },
  etcd_snap_db_save_total_duration_seconds: { type: 'histogram', help: "The total latency distributions of v3 snapshot save", labels: [], buckets: { start: 0.1, factor: 2, count: 10 }, source: 'etcdserver/api/snap/metrics.go' },
  etcd_snap_db_fsync_duration_seconds: { type: 'histogram', help: "The latency distributions of fsyncing .snap.db file", labels: [], buckets: { start: 0.001, factor: 2, count: 14 }, source: 'etcdserver/api/snap/metrics.go' },
  etcd_http_received_total: { type: 'counter', help: "Counter of requests received into the system (successfully parsed and authd).", labels: ['method'], source: 'etcdserver/api/v2http/metrics.go' },
  etcd_http_failed_total: { type: 'counter', help: "Counter of handle failures of requests (non-watches), by method (GET/PUT etc.) and code (400, 500 etc.).", labels: ['method', 'code'], source: 'etcdserver/api/v2http/metrics.go' },
  etcd_http_successful_duration_seconds: { type: 'histogram', help: "Bucketed histogram of processing time (s) of successfully handled requests (non-watches), by method (GET/PUT etc.).", labels: ['method'], buckets: { start: 0.0005, factor: 2, count: 13 }, source: 'etcdserver/api/v2http/metrics.go' },
  etcd_debugging_store_reads_total: { type: 'counter', help: "Total number of reads action by (get/getRecursive), local to this member.", labels: ['action'], source: 'etcdserver/api/v2store/metrics.go' },
  etcd_debugging_store_writes_total: { type: 'counter', help: "Total number of writes (e.g. set/compareAndDelete) seen by this member.", labels: ['action'], source: 'etcdserver/api/v2store/metrics.go' },
  etcd_debugging_store_reads_failed_total: { type: 'counter', help: "Failed read actions by (get/getRecursive), local to this member.", labels: ['action'], source: 'etcdserver/api/v2store/metrics.go' },
  etcd_debugging_store_writes_failed_total: { type: 'counter', help: "Failed write actions (e.g. set/compareAndDelete), seen by this member.", labels: ['action'], source: 'etcdserver/api/v2store/metrics.go' },
  etcd_debugging_store_expires_total: { type: 'counter', help: "Total number of expired keys.", labels: [], source: 'etcdserver/api/v2store/metrics.go' },
  etcd_debugging_store_watch_requests_total: { type: 'counter', help: "Total number of incoming watch requests (new or reestablished).", labels: [], source: 'etcdserver/api/v2store/metrics.go' },
  etcd_debugging_store_watchers: { type: 'gauge', help: "Count of currently active watchers.", labels: [], source: 'etcdserver/api/v2store/metrics.go' },
  etcd_network_client_grpc_sent_bytes_total: { type: 'counter', help: "The total number of bytes sent to grpc clients.", labels: [], source: 'etcdserver/api/v3rpc/metrics.go' },
  etcd_network_client_grpc_received_bytes_total: { type: 'counter', help: "The total number of bytes received from grpc clients.", labels: [], source: 'etcdserver/api/v3rpc/metrics.go' },
  etcd_network_server_stream_failures_total: { type: 'counter', help: "The total number of stream failures from the local server.", labels: ['Type', 'API'], source: 'etcdserver/api/v3rpc/metrics.go' },
  etcd_server_client_requests_total: { type: 'counter', help: "The total number of client requests per client version.", labels: ['type', 'client_api_version'], source: 'etcdserver/api/v3rpc/metrics.go' },
  etcd_server_has_leader: { type: 'gauge', help: "Whether or not a leader exists. 1 is existence, 0 is not.", labels: [], source: 'etcdserver/metrics.go' },
  etcd_server_is_leader: { type: 'gauge', help: "Whether or not this member is a leader. 1 if is, 0 otherwise.", labels: [], source: 'etcdserver/metrics.go' },
  etcd_server_leader_changes_seen_total: { type: 'counter', help: "The number of leader changes seen.", labels: [], source: 'etcdserver/metrics.go' },
  etcd_server_is_learner: { type: 'gauge', help: "Whether or not this member is a learner. 1 if is, 0 otherwise.", labels: [], source: 'etcdserver/metrics.go' },
  etcd_server_learner_promote_failures: { type: 'counter', help: "The total number of failed learner promotions (likely learner not ready) while this member is leader.", labels: ['Reason'], source: 'etcdserver/metrics.go' },
  etcd_server_learner_promote_successes: { type: 'counter', help: "The total number of successful learner promotions while this member is leader.", labels: [], source: 'etcdserver/metrics.go' },
  etcd_server_heartbeat_send_failures_total: { type: 'counter', help: "The total number of leader heartbeat send failures (likely overloaded from slow disk).", labels: [], source: 'etcdserver/metrics.go' },
  etcd_server_slow_apply_total: { type: 'counter', help: "The total number of slow apply requests (likely overloaded from slow disk).", labels: [], source: 'etcdserver/metrics.go' },
  etcd_server_snapshot_apply_in_progress_total: { type: 'gauge', help: "1 if the server is applying the incoming snapshot. 0 if none.", labels: [], source: 'etcdserver/metrics.go' },
  etcd_server_proposals_committed_total: { type: 'gauge', help: "The total number of consensus proposals committed.", labels: [], source: 'etcdserver/metrics.go' },
  etcd_server_proposals_applied_total: { type: 'gauge', help: "The total number of consensus proposals applied.", labels: [], source: 'etcdserver/metrics.go' },
  etcd_server_proposals_pending: { type: 'gauge', help: "The current number of pending proposals to commit.", labels: [], source: 'etcdserver/metrics.go' },
  etcd_server_proposals_failed_total: { type: 'counter', help: "The total number of failed proposals seen.", labels: [], source: 'etcdserver/metrics.go' },
  etcd_server_slow_read_indexes_total: { type: 'counter', help: "The total number of pending read indexes not in sync with leader's or timed out read index requests.", labels: [], source: 'etcdserver/metrics.go' },
  etcd_server_read_indexes_failed_total: { type: 'counter', help: "The total number of failed read indexes seen.", labels: [], source: 'etcdserver/metrics.go' },
  etcd_debugging_server_lease_expired_total: { type: 'counter', help: "The total number of expired leases.", labels: [], source: 'etcdserver/metrics.go' },
  etcd_server_quota_backend_bytes: { type: 'gauge', help: "Current backend storage quota size in bytes.", labels: [], source: 'etcdserver/metrics.go' },
  etcd_server_version: { type: 'gauge', help: "Which version is running. 1 for 'server_version' label with current version.", labels: ['server_version'], source: 'etcdserver/metrics.go' },
  etcd_server_go_version: { type: 'gauge', help: "Which Go version server is running with. 1 for 'server_go_version' label with current version.", labels: ['server_go_version'], source: 'etcdserver/metrics.go' },
  etcd_server_id: { type: 'gauge', help: "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.", labels: ['server_id'], source: 'etcdserver/metrics.go' },
  os_fd_used: { type: 'gauge', help: "The number of used file descriptors.", labels: [], source: 'etcdserver/metrics.go' },
  os_fd_limit: { type: 'gauge', help: "The file descriptor limit.", labels: [], source: 'etcdserver/metrics.go' },
  etcd_debugging_lease_granted_total: { type: 'counter', help: "The total number of granted leases.", labels: [], source: 'lease/metrics.go' },
  etcd_debugging_lease_revoked_total: { type: 'counter', help: "The total number of revoked leases.", labels: [], source: 'lease/metrics.go' },
  etcd_debugging_lease_renewed_total: { type: 'counter', help: "The number of renewed leases seen by the leader.", labels: [], source: 'lease/metrics.go' },
  etcd_debugging_lease_ttl_total: { type: 'histogram', help: "Bucketed histogram of lease TTLs.", labels: [], buckets: { start: 1, factor: 2, count: 24 }, source: 'lease/metrics.go' },
  etcd_disk_backend_commit_duration_seconds: { type: 'histogram', help: "The latency distributions of commit called by backend.", labels: [], buckets: { start: 0.001, factor: 2, count: 14 }, source: 'mvcc/backend/metrics.go' },
  etcd_debugging_disk_backend_commit_rebalance_duration_seconds: { type: 'histogram', help: "The latency distributions of commit.rebalance called by bboltdb backend.", labels: [], buckets: { start: 0.001, factor: 2, count: 14 }, source: 'mvcc/backend/metrics.go' },
  etcd_debugging_disk_backend_commit_spill_duration_seconds: { type: 'histogram', help: "The latency distributions of commit.spill called by bboltdb backend.", labels: [], buckets: { start: 0.001, factor: 2, count: 14 }, source: 'mvcc/backend/metrics.go' },
  etcd_debugging_disk_backend_commit_write_duration_seconds: { type: 'histogram', help: "The latency distributions of commit.write called by bboltdb backend.", labels: [], buckets: { start: 0.001, factor: 2, count: 14 }, source: 'mvcc/backend/metrics.go' },
  etcd_disk_backend_defrag_duration_seconds: { type: 'histogram', help: "The latency distribution of backend defragmentation.", labels: [], buckets: { start: 0.1, factor: 2, count: 13 }, source: 'mvcc/backend/metrics.go' },
  etcd_disk_backend_snapshot_duration_seconds: { type: 'histogram', help: "The latency distribution of backend snapshots.", labels: [], buckets: { start: 0.01, factor: 2, count: 17 }, source: 'mvcc/backend/metrics.go' },
  etcd_disk_defrag_inflight: { type: 'gauge', help: "Whether or not defrag is active on the member. 1 means active, 0 means not.", labels: [], source: 'mvcc/backend/metrics.go' },
  etcd_mvcc_range_total: { type: 'counter', help: "Total number of ranges seen by this member.", labels: [], source: 'mvcc/metrics.go' },
  etcd_debugging_mvcc_range_total: { type: 'counter', help: "Total number of ranges seen by this member.", labels: [], source: 'mvcc/metrics.go' },
  etcd_mvcc_put_total: { type: 'counter', help: "Total number of puts seen by this member.", labels: [], source: 'mvcc/metrics.go' },
  etcd_debugging_mvcc_put_total: { type: 'counter', help: "Total number of puts seen by this member.", labels: [], source: 'mvcc/metrics.go' },
  etcd_mvcc_delete_total: { type: 'counter', help: "Total number of deletes seen by this member.", labels: [], source: 'mvcc/metrics.go' },
  etcd_debugging_mvcc_delete_total: { type: 'counter', help: "Total number of deletes seen by this member.", labels: [], source: 'mvcc/metrics.go' },
  etcd_mvcc_txn_total: { type: 'counter', help: "Total number of txns seen by this member.", labels: [], source: 'mvcc/metrics.go' },
  etcd_debugging_mvcc_txn_total: { type: 'counter', help: "Total number of txns seen by this member.", labels: [], source: 'mvcc/metrics.go' },
  etcd_debugging_mvcc_keys_total: { type: 'gauge', help: "Total number of keys.", labels: [], source: 'mvcc/metrics.go' },
  etcd_debugging_mvcc_watch_stream_total: { type: 'gauge', help: "Total number of watch streams.", labels: [], source: 'mvcc/metrics.go' },
  etcd_debugging_mvcc_watcher_total: { type: 'gauge', help: "Total number of watchers.", labels: [], source: 'mvcc/metrics.go' },
  etcd_debugging_mvcc_slow_watcher_total: { type: 'gauge', help: "Total number of unsynced slow watchers.", labels: [], source: 'mvcc/metrics.go' },
  etcd_debugging_mvcc_events_total: { type: 'counter', help: "Total number of events sent by this member.", labels: [], source: 'mvcc/metrics.go' },
  etcd_debugging_mvcc_pending_events_total: { type: 'gauge', help: "Total number of pending events to be sent.", labels: [], source: 'mvcc/metrics.go' },
  etcd_debugging_mvcc_index_compaction_pause_duration_milliseconds: { type: 'histogram', help: "Bucketed histogram of index compaction pause duration.", labels: [], buckets: { start: 0.5, factor: 2, count: 14 }, source: 'mvcc/metrics.go' },
  etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds: { type: 'histogram', help: "Bucketed histogram of db compaction pause duration.", labels: [], buckets: { start: 1, factor: 2, count: 13 }, source: 'mvcc/metrics.go' },
  etcd_debugging_mvcc_db_compaction_total_duration_milliseconds: { type: 'histogram', help: "Bucketed histogram of db compaction total duration.", labels: [], buckets: { start: 100, factor: 2, count: 14 }, source: 'mvcc/metrics.go' },
  etcd_debugging_mvcc_db_compaction_keys_total: { type: 'counter', help: "Total number of db keys compacted.", labels: [], source: 'mvcc/metrics.go' },
  etcd_mvcc_db_total_size_in_bytes: { type: 'gauge', help: "Total size of the underlying database physically allocated in bytes.", labels: [], func: true, source: 'mvcc/metrics.go' },
  etcd_debugging_mvcc_db_total_size_in_bytes: { type: 'gauge', help: "Total size of the underlying database physically allocated in bytes.", labels: [], func: true, source: 'mvcc/metrics.go' },
  etcd_mvcc_db_total_size_in_use_in_bytes: { type: 'gauge', help: "Total size of the underlying database logically in use in bytes.", labels: [], func: true, source: 'mvcc/metrics.go' },
  etcd_mvcc_db_open_read_transactions: { type: 'gauge', help: "The number of currently open read transactions", labels: [], func: true, source: 'mvcc/metrics.go' },
  etcd_mvcc_hash_duration_seconds: { type: 'histogram', help: "The latency distribution of storage hash operation.", labels: [], buckets: { start: 0.01, factor: 2, count: 15 }, source: 'mvcc/metrics.go' },
  etcd_mvcc_hash_rev_duration_seconds: { type: 'histogram', help: "The latency distribution of storage hash by revision operation.", labels: [], buckets: { start: 0.01, factor: 2, count: 15 }, source: 'mvcc/metrics.go' },
  etcd_debugging_mvcc_current_revision: { type: 'gauge', help: "The current revision of store.", labels: [], func: true, source: 'mvcc/metrics.go' },
  etcd_debugging_mvcc_compact_revision: { type: 'gauge', help: "The revision of the last compaction in store.", labels: [], func: true, source: 'mvcc/metrics.go' },
  etcd_debugging_mvcc_total_put_size_in_bytes: { type: 'gauge', help: "The total size of put kv pairs seen by this member.", labels: [], source: 'mvcc/metrics.go' },
  etcd_grpc_proxy_watchers_coalescing_total: { type: 'gauge', help: "Total number of current watchers coalescing", labels: [], source: 'proxy/grpcproxy/metrics.go' },
  etcd_grpc_proxy_events_coalescing_total: { type: 'counter', help: "Total number of events coalescing", labels: [], source: 'proxy/grpcproxy/metrics.go' },
  etcd_grpc_proxy_cache_keys_total: { type: 'gauge', help: "Total number of keys/ranges cached", labels: [], source: 'proxy/grpcproxy/metrics.go' },
  etcd_grpc_proxy_cache_hits_total: { type: 'gauge', help: "Total number of cache hits", labels: [], source: 'proxy/grpcproxy/metrics.go' },
  etcd_grpc_proxy_cache_misses_total: { type: 'gauge', help: "Total number of cache misses", labels: [], source: 'proxy/grpcproxy/metrics.go' },
  etcd_proxy_requests_total: { type: 'counter', help: "Counter requests incoming by method.", labels: ['method'], source: 'proxy/httpproxy/metrics.go' },
  etcd_proxy_handled_total: { type: 'counter', help: "Counter of requests fully handled (by authoratitave servers)", labels: ['method', 'code'], source: 'proxy/httpproxy/metrics.go' },
  etcd_proxy_dropped_total: { type: 'counter', help: "Counter of requests dropped on the proxy.", labels: ['method', 'proxying_error'], source: 'proxy/httpproxy/metrics.go' },
  etcd_proxy_handling_duration_seconds: { type: 'histogram', help: "Bucketed histogram of handling time of successful events (non-watches), by method (GET/PUT etc.).", labels: ['method'], buckets: { start: 0.0005, factor: 2, count: 13 }, source: 'proxy/httpproxy/metrics.go' },
  etcd_disk_wal_fsync_duration_seconds: { type: 'histogram', help: "The latency distributions of fsync called by WAL.", labels: [], buckets: { start: 0.001, factor: 2, count: 14 }, source: 'wal/metrics.go' },
  etcd_disk_wal_write_bytes_total: { type: 'gauge', help: "Total number of bytes written in WAL.", labels: [], source: 'wal/metrics.go' },
  // go-grpc-prometheus v1.2 server metrics, as registered by etcd 3.4's v3rpc (grpc_prometheus.Register).
  grpc_server_started_total: { type: 'counter', help: "Total number of RPCs started on the server.", labels: ['grpc_type', 'grpc_service', 'grpc_method'], source: 'github.com/grpc-ecosystem/go-grpc-prometheus/server_metrics.go' },
  grpc_server_handled_total: { type: 'counter', help: "Total number of RPCs completed on the server, regardless of success or failure.", labels: ['grpc_type', 'grpc_service', 'grpc_method', 'grpc_code'], source: 'github.com/grpc-ecosystem/go-grpc-prometheus/server_metrics.go' },
  grpc_server_msg_received_total: { type: 'counter', help: "Total number of RPC stream messages received on the server.", labels: ['grpc_type', 'grpc_service', 'grpc_method'], source: 'github.com/grpc-ecosystem/go-grpc-prometheus/server_metrics.go' },
  grpc_server_msg_sent_total: { type: 'counter', help: "Total number of gRPC stream messages sent by the server.", labels: ['grpc_type', 'grpc_service', 'grpc_method'], source: 'github.com/grpc-ecosystem/go-grpc-prometheus/server_metrics.go' },
} as const satisfies Record<string, MetricSpec>;

/** Every etcd 3.4 metric name in {@link ETCD_METRIC_SPECS}. */
export type EtcdMetricName = keyof typeof ETCD_METRIC_SPECS;

/** The label names of metric `N`, as a string-literal union (never for label-less metrics). */
export type LabelsOf<N extends EtcdMetricName> = (typeof ETCD_METRIC_SPECS)[N]['labels'][number];

/**
 * Upper bounds of Prometheus `ExponentialBuckets(start, factor, count)`: `start * factor^i` for i in [0, count).
 * Values are rounded the way Go prints float64 (products of exact powers of two times the start are exact
 * enough; we round to 12 significant digits to avoid 0.30000000000000004-style noise).
 */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(Number((start * Math.pow(factor, i)).toPrecision(12)));
  return out;
}

/** Bucket upper bounds (seconds, milliseconds, ... per the metric's name) of histogram `name`. */
export function bucketsOf(name: EtcdMetricName): number[] {
  const s: MetricSpec = ETCD_METRIC_SPECS[name];
  if (!s.buckets) throw new Error(`${name} is not a histogram`);
  return exponentialBuckets(s.buckets.start, s.buckets.factor, s.buckets.count);
}

/**
 * Histograms fed from worker threads through `src/metrics/shared-histogram.ts`. Register them with
 * `registerSharedHistogram(registry, spec.name, spec.help, SharedHistogram.create(spec.buckets))`.
 * etcd: wal/metrics.go (fsync per WAL batch), mvcc/backend/metrics.go (backend commit).
 */
export const WAL_FSYNC_DURATION = {
  name: 'etcd_disk_wal_fsync_duration_seconds',
  help: ETCD_METRIC_SPECS.etcd_disk_wal_fsync_duration_seconds.help,
  buckets: bucketsOf('etcd_disk_wal_fsync_duration_seconds'),
} as const;

/** See {@link WAL_FSYNC_DURATION}. Backend (LMDB write transaction) commit latency, seconds. */
export const BACKEND_COMMIT_DURATION = {
  name: 'etcd_disk_backend_commit_duration_seconds',
  help: ETCD_METRIC_SPECS.etcd_disk_backend_commit_duration_seconds.help,
  buckets: bucketsOf('etcd_disk_backend_commit_duration_seconds'),
} as const;

/** Names of histograms that the main-thread registry must NOT create itself (they come from shared memory). */
export const SHARED_HISTOGRAM_NAMES: readonly EtcdMetricName[] = [WAL_FSYNC_DURATION.name, BACKEND_COMMIT_DURATION.name];
