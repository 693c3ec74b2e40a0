/**
 * Peer transport: batched binary Raft messages between members over plain TCP (see README.md for the why,
 * frame.ts for the wire format, peer-transport.ts for {@link PeerTransport} (outbound side and lifecycle);
 * peer-link.ts the outgoing stream to one peer, inbound.ts the connections peers dial to us (handshake, message
 * streams), snapshot-receive.ts + snapshot-stream.ts a received snapshot, member-fetch.ts the joining member's
 * membership query, hash-kv-fetch.ts / hash-kv-serve.ts a peer's HashKV for the corruption checks and
 * peer-query.ts their one-shot query, context.ts the named limits and shared state).
 */
export { PeerTransport } from './peer-transport';
export { fetchPeerMembers } from './member-fetch';
export { fetchPeerHashKV, PeerHashKVError, type HashKVAsker } from './hash-kv-fetch';
export {
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
} from './context';
export type { PeerSecurity, PeerTransportOptions, SnapshotData, TransportLogger, TransportMetrics, TransportStats } from './context';
export { ConnKind, FrameType, HandshakeStatus, PROTOCOL_VERSION, encodeHandshake, frameHeader } from './frame';
export { parsePeerUrl } from './url';
export type { HostPort } from './url';
