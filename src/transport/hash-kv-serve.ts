/**
 * The listening side of a HashKV connection (etcd: the peer listener's GET /members/hashkv handler): one request
 * frame in, one answer frame out, then the connection closes. The handshake was checked by the caller.
 */
import type * as net from 'node:net';
import { ByteQueue, FrameType, HandshakeStatus, encodeAnswer, frameHeader, readFrame } from './frame';
import { HANDSHAKE_TIMEOUT_MS, errText, type TransportLogger } from './context';

/** A HashKV request is a few bytes (a revision); anything larger is a protocol violation. */
export const HASHKV_REQUEST_MAX_BYTES = 1024;

/**
 * Serves one HashKV query on `sock` whose handshake was accepted; `rq` holds the bytes read after the handshake.
 * The request frame must arrive within HANDSHAKE_TIMEOUT_MS (ms); the answer waits for `handler` as long as the
 * dialer keeps the connection (the dialer bounds it with its request timeout).
 */
export function serveHashKV(sock: net.Socket, rq: ByteQueue, handler: (request: Uint8Array) => Promise<Uint8Array>, log: TransportLogger): void {
  sock.write(encodeAnswer(HandshakeStatus.Ok));
  const idle = setTimeout(() => sock.destroy(), HANDSHAKE_TIMEOUT_MS);
  let asked = false;
  const reply = (type: FrameType, payload: Uint8Array): void => {
    if (sock.destroyed) return;
    sock.end(Buffer.concat([frameHeader(type, payload.length), payload]));
  };
  const onData = (chunk?: Buffer): void => {
    if (asked) return;
    if (chunk) rq.push(chunk);
    const r = readFrame(rq, HASHKV_REQUEST_MAX_BYTES);
    if (r.kind === 'more') return;
    asked = true;
    clearTimeout(idle);
    rq.clear();
    if (r.kind === 'error' || r.type !== FrameType.HashKVRequest) {
      log.warn({ remote: `${sock.remoteAddress}:${sock.remotePort}`, reason: r.kind === 'error' ? r.reason : `frame type ${r.type}` }, 'closing inbound peer connection');
      sock.destroy();
      return;
    }
    handler(Uint8Array.from(r.payload)).then(
      (answer) => reply(FrameType.HashKVResponse, answer),
      (e: unknown) => {
        const text = (e as { details?: string }).details ?? errText(e);
        log.warn({ error: text }, 'failed to get hashKV');
        reply(FrameType.HashKVError, Buffer.from(text, 'utf8'));
      },
    );
  };
  sock.on('data', onData);
  sock.on('close', () => clearTimeout(idle));
  onData();
}
