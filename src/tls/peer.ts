/**
 * TLS between members (etcd: --peer-cert-file, --peer-key-file, --peer-trusted-ca-file, --peer-client-cert-auth,
 * --peer-cert-allowed-cn, --peer-auto-tls). Both directions present the peer certificate; the listener requires
 * and verifies the dialer's when --peer-client-cert-auth is on; the dialer verifies the listener's against the
 * trusted CA and its URL's host (skipped for self-signed material, as etcd). With --peer-cert-allowed-cn the
 * other side's CN must match, both ways (etcd's AllowedCN check sits in the shared TLS config). Refusals are
 * logged with the remote address and the reason.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { TlsSource } from './source';

/** Logger surface used here (pino order). */
interface WarnLogger {
  warn(obj: Record<string, unknown>, msg: string): void;
}

/** A TCP endpoint (the transport's HostPort). */
interface Endpoint {
  host: string;
  port: number;
}

/** Longest TLS handshake on the peer port, ms; a slower peer is dropped (Go's default handshake timeout is 10 s). */
export const PEER_TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/** The CN of a certificate's subject, or '' (for logs). */
function cnOf(cert: tls.PeerCertificate | undefined): string {
  const cn = cert?.subject?.CN;
  return (Array.isArray(cn) ? cn[0] : cn) ?? '';
}

/**
 * The peer transport's security (src/transport PeerSecurity) over `source`. `connect` returns a TLS socket whose
 * writes are queued until the handshake completes; a rejected certificate or CN destroys it with the reason.
 */
export function peerSecurity(source: TlsSource, logger: WarnLogger): { connect(hp: Endpoint): net.Socket; createServer(onConnection: (sock: net.Socket) => void): net.Server } {
  return {
    connect(hp: Endpoint): net.Socket {
      const sock = tls.connect({ host: hp.host, port: hp.port, ...source.clientOptions(hp.host) });
      sock.setNoDelay(true);
      sock.setKeepAlive(true, 10_000);
      sock.once('secureConnect', () => {
        const cert = sock.getPeerCertificate();
        if (!source.cnAllowed(cert)) {
          logger.warn({ remote: `${hp.host}:${hp.port}`, cn: cnOf(cert), 'allowed-cn': source.info.allowedCn }, 'rejected peer certificate: CommonName authentication failed');
          sock.destroy(new Error('CommonName authentication failed'));
        }
      });
      return sock;
    },
    createServer(onConnection: (sock: net.Socket) => void): net.Server {
      const server = tls.createServer({ ...source.serverOptions(), handshakeTimeout: PEER_TLS_HANDSHAKE_TIMEOUT_MS }, (sock) => {
        sock.setNoDelay(true);
        sock.setKeepAlive(true, 10_000);
        const cert = sock.getPeerCertificate();
        if (!source.cnAllowed(cert)) {
          logger.warn({ remote: `${sock.remoteAddress}:${sock.remotePort}`, cn: cnOf(cert), 'allowed-cn': source.info.allowedCn }, 'rejected peer connection: CommonName authentication failed');
          sock.destroy();
          return;
        }
        onConnection(sock);
      });
      source.attach(server);
      server.on('tlsClientError', (err, sock) => {
        logger.warn({ remote: `${sock.remoteAddress}:${sock.remotePort}`, error: err.message }, 'rejected peer connection: TLS handshake failed');
      });
      return server;
    },
  };
}
