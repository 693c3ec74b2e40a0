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

/** The subject CN of a peer certificate ('' when it has none). */
export function certCommonName(cert: tls.PeerCertificate | undefined): string {
  const raw = cert?.subject?.CN;
  const cn = Array.isArray(raw) ? raw[0] : raw;
  return typeof cn === 'string' ? cn : '';
}

/**
 * Records the CN of `sock`'s verified certificate until the socket closes. A certificate without CN is recorded as
 * '': etcd still gives such a call an identity (an empty user name at the current auth revision), which KV checks
 * answer with "permission denied" rather than the "user name is empty" of a call without any certificate.
 */
export function rememberClientCert(sock: net.Socket, cert: tls.PeerCertificate | undefined): void {
  if (cert === undefined || cert.subject === undefined) return;
  const cn = certCommonName(cert);
  const key = peerKey(sock);
  cnByPeer.set(key, cn);
  sock.once('close', () => { if (cnByPeer.get(key) === cn) cnByPeer.delete(key); });
}

/** True while some open connection has a recorded CN (lets a call skip building its peer string otherwise). */
export function anyClientCertRecorded(): boolean {
  return cnByPeer.size > 0;
}

/** The CN recorded for a call's peer (`address:port` as grpc-js reports it), or null. */
export function clientCertCommonName(peer: string): string | null {
  return cnByPeer.get(peer) ?? null;
}

/** The parts of Node's JSStreamSocket (the wrapper http2 puts around a Duplex) used to give it a peer address. */
interface WrappedDuplexSocket {
  remoteAddress?: string;
  stream?: { remoteAddress?: string; remotePort?: number; remoteFamily?: string };
  _peername?: { address: string; port?: number; family?: string };
}

/**
 * Makes grpc-js report the client's `address:port` as the peer of calls on injected Duplex connections (the TLS
 * ones). Node's HTTP/2 wraps a Duplex in a socket whose address is unknown, so grpc-js's getPeer() says "unknown";
 * the address copied onto the Duplex by the listener is set as that wrapper's peer name. Reaches into grpc-js's
 * HTTP/2 servers (private `http2Servers`) and Node's wrapper (`stream`, `_peername`); returns false when either
 * is not found, in which case calls have no certificate identity (auth then answers "user name is empty").
 */
export function exposeInjectedPeers(grpcServer: object): boolean {
  const servers = (grpcServer as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map)) return false;
  for (const s of servers.keys() as IterableIterator<{ on?: unknown; prependListener(ev: 'session', fn: (session: { socket: unknown }) => void): void }>) {
    if (typeof s.on !== 'function') continue;
    s.prependListener('session', (session) => {
      const sock = session.socket as WrappedDuplexSocket;
      const inner = sock.stream;
      if (sock.remoteAddress === undefined && inner?.remoteAddress !== undefined) {
        sock._peername = { address: inner.remoteAddress, port: inner.remotePort, family: inner.remoteFamily };
      }
    });
  }
  return servers.size > 0;
}
