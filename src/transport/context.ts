/**
 * The peer transport's named limits (bytes, ms; every queue of src/transport is bounded by one of these), its
 * options, metrics and logger shapes, and the state shared by outgoing links and inbound connections.
 */
import * as net from 'node:net';
import type { Message } from '../raft';
import type { HostPort } from './url';
import type { EtcdMetrics } from '../metrics/registry';


// ---------------------------------------------------------------------------------------------------------------
// Named limits (bytes, ms). Every queue in this module is bounded by one of these.

/** Default cap on one frame's payload (bytes); a bigger declared frame closes the connection. */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;
/**
 * Default cap on bytes queued for one peer (bytes): the socket's unsent bytes while connected, our pending list
 * while the handshake runs. A batch that would exceed it is dropped and counted (Raft retransmits); one batch is
 * always accepted into an empty queue so a single large MsgApp is never starved.
 */
export const DEFAULT_PEER_QUEUE_MAX_BYTES = 16 * 1024 * 1024;
/** First reconnect delay (ms); doubles per failed attempt. */
export const RECONNECT_BACKOFF_MIN_MS = 100;
/** Reconnect delay ceiling (ms). */
export const RECONNECT_BACKOFF_MAX_MS = 5_000;
/** Reconnect delays are multiplied by a factor in [1 - JITTER, 1 + JITTER] (then capped). */
export const RECONNECT_JITTER = 0.2;
/** Time allowed from TCP connect to an answered handshake, both sides (ms). */
export const HANDSHAKE_TIMEOUT_MS = 5_000;
/** Default interval between pings on each outgoing stream (ms). */
export const DEFAULT_PING_INTERVAL_MS = 2_000;
/** An outgoing stream with no pong for this long is considered dead and redialed (ms). */
export const PONG_TIMEOUT_MS = 10_000;
/** Snapshot data is cut into frames of at most this many bytes. */
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
/** Sender waits for 'drain' once this many snapshot bytes are unsent in the socket (bytes). */
export const SNAPSHOT_SEND_HIGH_WATER_BYTES = 4 * 1024 * 1024;
/** Receiver pauses the snapshot socket once this many received bytes wait for the consumer (bytes). */
export const SNAPSHOT_RECV_BUFFER_MAX_BYTES = 8 * 1024 * 1024;
/** A snapshot connection with no traffic for this long is aborted, both sides (ms). */
export const SNAPSHOT_IDLE_TIMEOUT_MS = 30_000;
/**
 * After the last snapshot byte the sender waits this long for the receiver's ack, i.e. for `onSnapshot` to
 * install the snapshot (ms). The idle timeout is off on the receiving side during that time.
 */
export const SNAPSHOT_ACK_TIMEOUT_MS = 10 * 60_000;
/** Cap on simultaneously open inbound connections (streams + snapshots + not-yet-authenticated). */
export const MAX_INBOUND_CONNECTIONS = 1024;
/** Repeated identical warnings (same peer, same reason) are logged at most once per this period (ms). */
export const LOG_REPEAT_MS = 30_000;
/** Size cap of the repeated-warning suppression table (entries). */
export const LOG_REPEAT_TABLE_MAX = 1024;

// ---------------------------------------------------------------------------------------------------------------

/** The subset of the etcd metrics this module updates (all etcd names, `src/metrics/etcd-specs.ts`). */
export type TransportMetrics = Pick<
  EtcdMetrics,
  | 'etcd_network_peer_sent_bytes_total'
  | 'etcd_network_peer_received_bytes_total'
  | 'etcd_network_peer_sent_failures_total'
  | 'etcd_network_peer_received_failures_total'
  | 'etcd_network_peer_round_trip_time_seconds'
  | 'etcd_network_active_peers'
  | 'etcd_network_disconnected_peers_total'
  | 'etcd_network_snapshot_send_success'
  | 'etcd_network_snapshot_send_failures'
  | 'etcd_network_snapshot_send_inflights_total'
  | 'etcd_network_snapshot_send_total_duration_seconds'
  | 'etcd_network_snapshot_receive_success'
  | 'etcd_network_snapshot_receive_failures'
  | 'etcd_network_snapshot_receive_inflights_total'
  | 'etcd_network_snapshot_receive_total_duration_seconds'
>;

/** Minimal structured logger (pino's `(fields, msg)` order; `src/log.ts` loggers fit). */
export interface TransportLogger {
  debug(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

/** Snapshot data as handed to the receiver or taken by the sender. */
export type SnapshotData = AsyncIterable<Uint8Array> | Buffer;

/** Constructor options of {@link PeerTransport}. */
export interface PeerTransportOptions {
  /** This member's ID (positive integer ≤ 2^53-1). */
  memberId: number;
  /** Cluster ID; a peer announcing another one is refused (mismatched --initial-cluster-token). */
  clusterId: number | bigint;
  /** `--listen-peer-urls`, e.g. `http://127.0.0.1:2380`; port 0 binds an ephemeral port (see `start()`). */
  listenUrls: string[];
  /** Member ID → that member's peer URLs. An entry for `memberId` itself is ignored. */
  peers: Map<number, string[]>;
  /** Called once per received frame with its decoded batch, in the sender's order. Exceptions are logged. */
  onMessages: (msgs: Message[]) => void;
  /**
   * Called when a peer streams a snapshot: `meta` as given to the sender's `sendSnapshot`, `data` an async
   * iterable over the bytes (backpressured: the socket is paused while the consumer lags). Resolve once installed
   * (the sender's promise then resolves), reject to report failure. Data not consumed before it settles is
   * discarded. Without this handler every incoming snapshot is refused.
   */
  onSnapshot?: (from: number, meta: Uint8Array, data: SnapshotData) => Promise<void>;
  /**
   * Answers a Members connection (a joining member asking who is in the cluster; etcd: GET /members on the peer
   * port): the bytes returned are sent as is. Without this handler Members connections are refused.
   */
  onMembersRequest?: () => Uint8Array;
  /**
   * Answers a HashKV connection (the corruption check of a peer; etcd: GET /members/hashkv on the peer port): gets
   * the request bytes, resolves the answer bytes; a rejection's message (EtcdError details when present) is sent back
   * as the error text. Without this handler HashKV connections are refused.
   */
  onHashKVRequest?: (request: Uint8Array) => Promise<Uint8Array>;
  /** True for a member ID removed from the cluster: its connections are refused with MemberRemoved. */
  isRemoved?: (id: number) => boolean;
  /** Called when a peer refused us as removed from the cluster (the host stops, as etcd does). */
  onRemoved?: () => void;
  /** Called when messages to `id` were dropped or its stream broke; the host calls `RawNode.reportUnreachable`. */
  onUnreachable?: (id: number) => void;
  /** Called when a `sendSnapshot` to `id` finishes; the host calls `RawNode.reportSnapshot(id, ok ? finish : failure)`. */
  onSnapshotStatus?: (id: number, ok: boolean) => void;
  /** TLS for `https://` peer URLs (src/tls/peer.ts); without it an https URL fails to connect or listen. */
  security?: PeerSecurity;
  /** Logger; default `createLogger('info')` from `src/log.ts` with `{component: 'peer-transport'}`. */
  logger?: TransportLogger;
  /** Cap on a frame's payload (bytes); default {@link DEFAULT_MAX_FRAME_BYTES}. Applies to both directions. */
  maxFrameBytes?: number;
  /** Per-peer outgoing queue cap (bytes); default {@link DEFAULT_PEER_QUEUE_MAX_BYTES}. */
  maxQueueBytes?: number;
  /** Ping interval per outgoing stream (ms); default {@link DEFAULT_PING_INTERVAL_MS}. */
  pingIntervalMs?: number;
  /** Metric objects to update; default the process-wide ones from `src/metrics/registry.ts`. */
  metrics?: TransportMetrics;
}

/** Counters for tests and debugging (monotonic; messages, not bytes, unless named so). */
export interface TransportStats {
  /** Messages dropped because a peer was down, its queue full, or the batch unsendable. */
  droppedMessages: number;
  /** Frames of messages written to sockets. */
  sentFrames: number;
  /** Frames of messages received and decoded. */
  receivedFrames: number;
  /** Inbound connections closed for a protocol violation (bad handshake, oversized frame, undecodable bytes). */
  rejectedConnections: number;
}

/** Lower-case hex without padding, as etcd prints member IDs (types.ID.String()). */
export function hex(id: number | bigint): string {
  return BigInt(id).toString(16);
}

export function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Internal state shared by links and inbound connections. */
export interface Ctx {
  readonly memberId: number;
  readonly localHex: string;
  readonly clusterId: bigint;
  readonly maxFrameBytes: number;
  readonly maxQueueBytes: number;
  readonly pingIntervalMs: number;
  readonly log: TransportLogger;
  readonly m: TransportMetrics;
  readonly stats: TransportStats;
  isClosed(): boolean;
  /** Opens a connection to a peer URL (plain TCP, or TLS for https). */
  dial(hp: HostPort): net.Socket;
  unreachable(id: number): void;
  removed(): void;
  logRepeat(key: string, level: 'warn' | 'error', fields: Record<string, unknown>, msg: string): void;
}


/**
 * TLS on the peer port (etcd: --peer-cert-file, --peer-client-cert-auth, ...): implemented outside the transport
 * (src/tls/peer.ts) so that the transport only sees sockets.
 */
export interface PeerSecurity {
  /** A TLS connection to `hp` (the socket emits 'connect' then carries plaintext; handshake failures are 'error'). */
  connect(hp: HostPort): net.Socket;
  /** A server whose connection callback receives authenticated TLS sockets. */
  createServer(onConnection: (sock: net.Socket) => void): net.Server;
}

/**
 * Dials a peer URL: plain TCP for http, `security.connect` for https. An https URL without `security` gives a
 * socket that fails with an error naming the missing flags (as a refused connection would), never plaintext.
 */
export function dialPeer(hp: HostPort, security: PeerSecurity | undefined): net.Socket {
  if (!hp.secure) return net.connect({ host: hp.host, port: hp.port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 10_000 });
  if (security !== undefined) return security.connect(hp);
  const sock = new net.Socket();
  process.nextTick(() => sock.destroy(new Error(`https peer URL ${hp.host}:${hp.port} but no peer TLS (--peer-cert-file, --peer-key-file or --peer-auto-tls)`)));
  return sock;
}
