/** The joining side of a membership query over the peer port (etcd: a joining member's GET /members). */
import { ConnKind, FrameType } from './frame';
import type { PeerSecurity } from './context';
import { queryPeer } from './peer-query';

/**
 * Asks the member listening on `url` (a peer URL, `http://host:port`) for its membership over a Members connection
 * (etcd: the joining member's GET /members), over TLS for an https URL (`security`). Resolves with the payload the peer's `onMembersRequest` produced;
 * rejects on a refused or broken connection, or after `timeoutMs` (ms).
 */
export async function fetchPeerMembers(url: string, timeoutMs: number, maxBytes = 4 * 1024 * 1024, security?: PeerSecurity): Promise<Uint8Array> {
  const r = await queryPeer(url, {
    kind: ConnKind.Members, clusterId: 0n, from: 0, to: 0, answers: [FrameType.Members], what: 'membership', timeoutMs, maxBytes, security,
  });
  return r.payload;
}
