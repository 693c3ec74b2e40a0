/**
 * One-shot queries over the peer port: dial, handshake, optionally send one request frame, read one answer frame,
 * close. The membership query (member-fetch.ts) and the corruption check's HashKV (hash-kv-fetch.ts) use it.
 */
import {
  ANSWER_BYTES,
  ANSWER_MAGIC,
  ByteQueue,
  type ConnKind,
  type FrameType,
  HandshakeStatus,
  encodeHandshake,
  frameHeader,
  handshakeStatusText,
  readFrame,
} from './frame';
import { parsePeerUrl } from './url';
import { dialPeer, type PeerSecurity } from './context';

/** What {@link queryPeer} sends and expects. */
export interface PeerQuery {
  /** Connection kind announced in the handshake. */
  kind: ConnKind;
  /** Handshake IDs (0 when the listener does not check them). */
  clusterId: bigint;
  from: number;
  to: number;
  /** One frame sent after the handshake, or none. */
  request?: { type: FrameType; payload: Uint8Array };
  /** Frame types accepted as the answer. */
  answers: FrameType[];
  /** What the query is, for error messages ("membership", "hashKV"). */
  what: string;
  /** Bound of the whole query (ms). */
  timeoutMs: number;
  /** Cap on the answer's payload (bytes). */
  maxBytes: number;
  /** TLS for an https URL. */
  security?: PeerSecurity;
}

/**
 * Runs `q` against the member listening on peer URL `url`. Resolves with the answer frame's type and payload;
 * rejects on a refused handshake, a broken or closed connection, an unexpected frame, or after `q.timeoutMs`.
 */
export function queryPeer(url: string, q: PeerQuery): Promise<{ type: number; payload: Uint8Array }> {
  const hp = parsePeerUrl(url);
  return new Promise((resolve, reject) => {
    const sock = dialPeer(hp, q.security);
    const rq = new ByteQueue();
    let answer = -1;
    let done = false;
    const finish = (err: Error | null, out?: { type: number; payload: Uint8Array }): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(out!);
    };
    const timer = setTimeout(() => finish(new Error(`no ${q.what} answer from ${url} within ${q.timeoutMs} ms`)), q.timeoutMs);
    sock.on('connect', () => {
      sock.cork();
      sock.write(encodeHandshake(q.kind, q.clusterId, q.from, q.to));
      if (q.request) {
        sock.write(frameHeader(q.request.type, q.request.payload.length));
        sock.write(q.request.payload);
      }
      sock.uncork();
    });
    sock.on('data', (chunk: Buffer) => {
      rq.push(chunk);
      if (answer < 0) {
        if (rq.length < ANSWER_BYTES) return;
        const a = rq.take(ANSWER_BYTES);
        answer = a.readUInt32LE(0) === ANSWER_MAGIC ? a[6] : 255;
        if (answer !== HandshakeStatus.Ok) {
          finish(new Error(`${url} refused the ${q.what} query: ${answer === 255 ? 'bad handshake answer' : handshakeStatusText(answer)}`));
          return;
        }
      }
      const r = readFrame(rq, q.maxBytes);
      if (r.kind === 'more') return;
      if (r.kind === 'error') finish(new Error(`bad ${q.what} answer from ${url}: ${r.reason}`));
      else if (!q.answers.includes(r.type)) finish(new Error(`unexpected frame type ${r.type} from ${url}`));
      else finish(null, { type: r.type, payload: Uint8Array.from(r.payload) });
    });
    sock.on('error', (e) => finish(e));
    sock.on('close', () => finish(new Error(`${url} closed the ${q.what} connection`)));
  });
}
