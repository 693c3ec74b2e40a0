/**
 * One listening socket per client URL serving both gRPC and plain HTTP, as etcd does on :2379 (etcd: cmux
 * splitting HTTP/2 from HTTP/1.1). The first bytes of a connection decide: the HTTP/2 connection preface
 * ("PRI * HTTP/2.0") goes to the grpc-js server through its connection injector; anything else is HTTP/1 and
 * is piped to the uWebSockets.js app listening on a private loopback port (/metrics, /health, /version...).
 * The sniff costs one read per connection, nothing per request.
 */
import * as net from 'node:net';

/** Bytes that identify an HTTP/2 client connection preface (RFC 9113 §3.4). */
const H2_PREFACE_HEAD = Buffer.from('PRI ');
/** Time a new connection may stay silent before it is closed (ms). */
export const FIRST_BYTES_TIMEOUT_MS = 10_000;

/** Options of {@link listenClientUrl}. */
export interface ClientListenerOptions {
  host: string;
  port: number; // 0 = any free port
  injectGrpc(socket: net.Socket): void;
  /** Loopback port of the uWebSockets.js app that answers HTTP/1. */
  httpPort: number;
}

/**
 * Listens on host:port and splits connections between gRPC and HTTP/1.
 * Resolves with the net.Server and the bound port; rejects on a listen error (EADDRINUSE, EACCES).
 */
export function listenClientUrl(opts: ClientListenerOptions): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer({ noDelay: true }, (sock) => {
    sock.setTimeout(FIRST_BYTES_TIMEOUT_MS, () => sock.destroy());
    sock.once('error', () => sock.destroy());
    sock.once('data', (chunk: Buffer) => {
      sock.setTimeout(0);
      sock.pause();
      sock.unshift(chunk);
      if (chunk.length >= H2_PREFACE_HEAD.length && chunk.subarray(0, H2_PREFACE_HEAD.length).equals(H2_PREFACE_HEAD)) {
        sock.removeAllListeners('error');
        opts.injectGrpc(sock);
        return;
      }
      const upstream = net.connect({ host: '127.0.0.1', port: opts.httpPort, noDelay: true });
      upstream.on('error', () => sock.destroy());
      sock.on('error', () => upstream.destroy());
      sock.pipe(upstream).pipe(sock);
      sock.resume();
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      const addr = server.address() as net.AddressInfo;
      resolve({ server, port: addr.port });
    });
  });
}

/** Splits "http://host:port" into host and port; throws TypeError on anything else. */
export function hostPortOf(url: string): { host: string; port: number } {
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError(`unsupported URL scheme in ${url}`);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = u.port === '' ? (u.protocol === 'https:' ? 443 : 80) : Number(u.port);
  return { host, port };
}
