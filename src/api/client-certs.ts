/**
 * Verified client certificates by connection, for `--client-cert-auth` with auth enabled (etcd AuthInfoFromTLS:
 * a call without a token acts as the CN of its certificate). grpc-js exposes a call's certificate only when its
 * session runs on a TLSSocket, but TLS connections reach it through a Duplex (see client-listener.ts), so the
 * listener records each verified certificate's CN under the connection's `address:port`, the string grpc-js
 * reports as the call's peer, until the connection closes. Bounded by the open connections.
 */
import type * as net from 'node:net';
import type * as tls from 'node:tls';

const cnByPeer = new Map<string, string>();

/** grpc-js's peer string for a socket (server-interceptors getPeer: `${remoteAddress}:${remotePort}`). */
function peerKey(sock: net.Socket): string {
  return `${sock.remoteAddress}:${sock.remotePort}`;
}

/** Records the CN of `sock`'s verified certificate until the socket closes; a certificate without CN is ignored. */
export function rememberClientCert(sock: net.Socket, cert: tls.PeerCertificate | undefined): void {
  const raw = cert?.subject?.CN;
  const cn = Array.isArray(raw) ? raw[0] : raw;
  if (typeof cn !== 'string' || cn === '') return;
  const key = peerKey(sock);
  cnByPeer.set(key, cn);
  sock.once('close', () => { if (cnByPeer.get(key) === cn) cnByPeer.delete(key); });
}

/** The CN recorded for a call's peer (`address:port` as grpc-js reports it), or null. */
export function clientCertCommonName(peer: string): string | null {
  return cnByPeer.get(peer) ?? null;
}
