/**
 * The configuration one member runs with (etcd: embed.Config / etcdserver.ServerConfig). Built by the command line
 * (src/cli/flags.ts parses etcd's flags, environment and config file into it); the server only reads it.
 */
import type { LogLevel } from '../log';
import type { TlsInfo } from '../tls/source';

/** One `--initial-cluster` entry: `name=url1,name=url2` groups into `{ name, peerUrls: [url1, url2] }`. */
export interface InitialClusterMember {
  name: string;
  peerUrls: string[];
}

/** The parsed server configuration. URLs are normalized (trimmed), de-duplicated and sorted as etcd does. */
export interface ServerConfig {
  /** 'serve' normally; 'version' / 'help' when --version / --help was given (other fields are then defaults). */
  mode: 'serve' | 'version' | 'help';
  /** Path of the YAML config file that supplied everything, or null (flags/env mode). */
  configFile: string | null;
  /** --name, default "default". */
  name: string;
  /** --data-dir, default `${name}.etcetera` (etcd: `${name}.etcd`). */
  dataDir: string;
  /** --listen-client-urls, default [http://localhost:2379]. */
  listenClientUrls: string[];
  /** --advertise-client-urls, default [http://localhost:2379]. */
  advertiseClientUrls: string[];
  /** --listen-peer-urls, default [http://localhost:2380]. */
  listenPeerUrls: string[];
  /** --initial-advertise-peer-urls, default [http://localhost:2380]. */
  initialAdvertisePeerUrls: string[];
  /** --listen-metrics-urls, default [] (extra listeners serving /metrics and /health). */
  listenMetricsUrls: string[];
  /** --initial-cluster, default `${name}=${initialAdvertisePeerUrls}`; members in order of first appearance. */
  initialCluster: InitialClusterMember[];
  /** --initial-cluster-state, default 'new'. */
  initialClusterState: 'new' | 'existing';
  /** --initial-cluster-token, default 'etcd-cluster'. */
  initialClusterToken: string;
  /** --heartbeat-interval in milliseconds, default 100. */
  heartbeatIntervalMs: number;
  /** --election-timeout in milliseconds, default 1000 (≥ 5 × heartbeat, ≤ 50000). */
  electionTimeoutMs: number;
  /** --snapshot-count: committed entries between snapshots, default 100000. */
  snapshotCount: number;
  /**
   * Effective backend quota in bytes: the flag value, or 2 GiB (2147483648) when the flag is 0 (default).
   * Negative means the quota is disabled (etcd reports the negative value in etcd_server_quota_backend_bytes).
   */
  quotaBackendBytes: number;
  /** --max-txn-ops: operations per transaction, default 128. */
  maxTxnOps: number;
  /** --max-request-bytes: largest client request in bytes, default 1572864 (1.5 MiB). */
  maxRequestBytes: number;
  /** --max-concurrent-streams: HTTP/2 streams per client connection, default 2^32-1 (optional: flags always set it). */
  maxConcurrentStreams?: number;
  /** --grpc-keepalive-min-time in ms (default 5 s): clients pinging more often are sent GOAWAY too_many_pings. */
  grpcKeepaliveMinTimeMs?: number;
  /** --grpc-keepalive-interval in ms (default 2 h; 0 = no server pings). */
  grpcKeepaliveIntervalMs?: number;
  /** --grpc-keepalive-timeout in ms (default 20 s): a server ping unanswered this long closes the connection. */
  grpcKeepaliveTimeoutMs?: number;
  /** --max-wals: WAL files to retain (0 = unlimited), default 5. */
  maxWals: number;
  /** --max-snapshots: snapshot files to retain (0 = unlimited), default 5. */
  maxSnapshots: number;
  /** --auth-token: 'simple' (default) or 'jwt,pub-key=…,priv-key=…,sign-method=…[,ttl=…]' (src/auth/tokens.ts). */
  authToken: string;
  /** --auth-token-ttl: seconds a simple token lives without use, default 300. */
  authTokenTtlSeconds: number;
  /** --bcrypt-cost: cost of password hashes, default 10 (etcd bcrypt.DefaultCost). */
  bcryptCost: number;
  /** --log-level, default 'info'. */
  logLevel: LogLevel;
  /** --logger: always 'zap' here ('capnslog' is accepted and mapped to zap with a warning). */
  logger: 'zap';
  /** --experimental-watch-progress-notify-interval in milliseconds, default 600000 (10m). */
  watchProgressNotifyIntervalMs: number;
  /** --auto-compaction-mode, default 'periodic'. */
  autoCompactionMode: 'periodic' | 'revision';
  /** --auto-compaction-retention as given, default '0' (disabled). */
  autoCompactionRetention: string;
  /** Periodic mode: retention in milliseconds (a bare number means hours, as etcd); 0 = disabled. */
  autoCompactionRetentionMs: number;
  /** Revision mode: revisions to retain; 0 = disabled. */
  autoCompactionRetentionRevisions: number;
  /** --experimental-initial-corrupt-check: compare HashKV with peers before serving (default false). */
  initialCorruptCheck: boolean;
  /** --experimental-corrupt-check-time in milliseconds: the leader's periodic check; 0 (default) = off. */
  corruptCheckTimeMs: number;
  /** --experimental-enable-lease-checkpoint: the leader persists remaining lease TTLs through Raft (default false). */
  enableLeaseCheckpoint: boolean;
  /** --experimental-lease-checkpoint-interval in milliseconds (etcd 3.5's flag; etcd 3.4's fixed 5m is the default). */
  leaseCheckpointIntervalMs: number;
  /** --enable-pprof: accepted for compatibility, ignored (a warning is recorded). */
  enablePprof: boolean;
  /** --cert-file, --key-file, --trusted-ca-file, --client-cert-auth (selfCert false; set at start by --auto-tls). */
  clientTls: TlsInfo;
  /** --peer-cert-file, --peer-key-file, --peer-trusted-ca-file, --peer-client-cert-auth, --peer-cert-allowed-cn. */
  peerTls: TlsInfo;
  /** --auto-tls: generate a self-signed client certificate under <data-dir>/fixtures/client when none is given. */
  clientAutoTls: boolean;
  /** --peer-auto-tls: likewise under <data-dir>/fixtures/peer. */
  peerAutoTls: boolean;
  /** --cipher-suites: Go suite names, checked and mapped at start (src/tls/cipher-suites.ts); [] = defaults. */
  cipherSuites: string[];
  /** --enable-v2 (etcd 3.4, default false): serve the v2 keys API under /v2/ on the client port. */
  enableV2: boolean;
  /** Non-fatal remarks for the caller to log (ignored flags, shadowed env vars, unknown config keys...). */
  warnings: string[];
}
