/** The joining side of a membership query over the peer port (etcd: a joining member's GET /members). */
import {
  ANSWER_BYTES,
  ANSWER_MAGIC,
  ByteQueue,
  ConnKind,
  FrameType,
  HandshakeStatus,
  encodeHandshake,
  handshakeStatusText,
  readFrame,
} from './frame';
import { parsePeerUrl } from './url';
import { dialPeer, type PeerSecurity } from './context';


/**
 * Asks the member listening on `url` (a peer URL, `http://host:port`) for its membership over a Members connection
 * (etcd: the joining member's GET /members), over TLS for an https URL (`security`). Resolves with the payload the peer's `onMembersRequest` produced;
 * rejects on a refused or broken connection, or after `timeoutMs` (ms).
 */
export function fetchPeerMembers(url: string, timeoutMs: number, maxBytes = 4 * 1024 * 1024, security?: PeerSecurity): Promise<Uint8Array> {
  const hp = parsePeerUrl(url);
  return new Promise<Uint8Array>((resolve, reject) => {
    const sock = dialPeer(hp, security);
    const rq = new ByteQueue();
    let answer = -1;
    let done = false;
    const finish = (err: Error | null, payload?: Uint8Array): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(payload as Uint8Array);
    };
    const timer = setTimeout(() => finish(new Error(`no membership answer from ${url} within ${timeoutMs} ms`)), timeoutMs);
    sock.on('connect', () => sock.write(encodeHandshake(ConnKind.Members, 0n, 0, 0)));
    sock.on('data', (chunk: Buffer) => {
      rq.push(chunk);
      if (answer < 0) {
        if (rq.length < ANSWER_BYTES) return;
        const a = rq.take(ANSWER_BYTES);
        answer = a.readUInt32LE(0) === ANSWER_MAGIC ? a[6] : 255;
        if (answer !== HandshakeStatus.Ok) {
          finish(new Error(`${url} refused the membership query: ${answer === 255 ? 'bad handshake answer' : handshakeStatusText(answer)}`));
          return;
        }
      }
      const r = readFrame(rq, maxBytes);
      if (r.kind === 'more') return;
      if (r.kind === 'error') finish(new Error(`bad membership answer from ${url}: ${r.reason}`));
      else if (r.type !== FrameType.Members) finish(new Error(`unexpected frame type ${r.type} from ${url}`));
      else finish(null, Uint8Array.from(r.payload));
    });
    sock.on('error', (e) => finish(e));
    sock.on('close', () => finish(new Error(`${url} closed the membership connection`)));
  });
}
