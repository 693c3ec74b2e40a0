/**
 * Peer transport: batched binary Raft messages between members over plain TCP (see README.md for the why,
 * frame.ts for the wire format, transport.ts for {@link PeerTransport}).
 */
export {
  PeerTransport,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_PEER_QUEUE_MAX_BYTES,
  DEFAULT_PING_INTERVAL_MS,
  HANDSHAKE_TIMEOUT_MS,
  MAX_INBOUND_CONNECTIONS,
  PONG_TIMEOUT_MS,
  RECONNECT_BACKOFF_MAX_MS,
  RECONNECT_BACKOFF_MIN_MS,
  RECONNECT_JITTER,
  SNAPSHOT_ACK_TIMEOUT_MS,
  SNAPSHOT_CHUNK_BYTES,
  SNAPSHOT_IDLE_TIMEOUT_MS,
  SNAPSHOT_RECV_BUFFER_MAX_BYTES,
  SNAPSHOT_SEND_HIGH_WATER_BYTES,
  fetchPeerMembers,
} from './transport';
export type { PeerTransportOptions, SnapshotData, TransportLogger, TransportMetrics, TransportStats } from './transport';
export { ConnKind, FrameType, HandshakeStatus, PROTOCOL_VERSION, encodeHandshake, frameHeader } from './frame';
export { parsePeerUrl } from './url';
export type { HostPort } from './url';
