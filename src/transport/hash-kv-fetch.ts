/** The asking side of a peer's HashKV over the peer port (etcd: getPeerHashKVHTTP, GET /members/hashkv). */
import { ConnKind, FrameType } from './frame';
import type { PeerSecurity } from './context';
import { queryPeer } from './peer-query';

/** A HashKV answer is a few dozen bytes; a larger frame is a protocol violation. */
export const HASHKV_ANSWER_MAX_BYTES = 64 * 1024;

/** The peer answered with an error (its text, e.g. etcd's compacted or future revision error). */
export class PeerHashKVError extends Error {
  override readonly name = 'PeerHashKVError';
}

/** Who asks: the cluster ID (the listener checks it) and this member's ID; TLS for https URLs. */
export interface HashKVAsker { clusterId: bigint | number; localId: number; security?: PeerSecurity }

/**
 * Sends `request` (the host's encoding) to the member `peerId` listening on peer URL `url` over a HashKV connection,
 * over TLS for an https URL. Resolves with the answer bytes. @throws PeerHashKVError with the peer's error text;
 * Error on a refused or broken connection or after `timeoutMs` (ms).
 */
export async function fetchPeerHashKV(url: string, peerId: number, request: Uint8Array, timeoutMs: number, asker: HashKVAsker): Promise<Uint8Array> {
  const r = await queryPeer(url, {
    kind: ConnKind.HashKV, clusterId: BigInt(asker.clusterId), from: asker.localId, to: peerId,
    request: { type: FrameType.HashKVRequest, payload: request },
    answers: [FrameType.HashKVResponse, FrameType.HashKVError], what: 'hashKV', timeoutMs, maxBytes: HASHKV_ANSWER_MAX_BYTES, security: asker.security,
  });
  if (r.type === FrameType.HashKVError) throw new PeerHashKVError(Buffer.from(r.payload).toString('utf8'));
  return r.payload;
}
