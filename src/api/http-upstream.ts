/**
 * Where the member's private HTTP/1 app (uWebSockets.js: /health, /metrics, the JSON gateway, v2) listens, and how
 * the client listener and the HTTP/2 bridge reach it. Normally a Unix socket in a directory only the member's user
 * may enter, so no other local user or container sharing the network namespace can reach the HTTP APIs around the
 * client port's TLS and --client-cert-auth; a loopback TCP port only when uWS cannot listen on a Unix socket.
 */
import type * as http from 'node:http';
import * as net from 'node:net';

/** The private HTTP/1 app's address: a Unix socket path, or a 127.0.0.1 port (fallback). */
export type HttpUpstream = { socketPath: string } | { port: number };

/** Opens a connection to the private app. */
export function connectUpstream(u: HttpUpstream): net.Socket {
  return 'socketPath' in u ? net.connect({ path: u.socketPath }) : net.connect({ host: '127.0.0.1', port: u.port, noDelay: true });
}

/** The address part of http.request options for the private app. */
export function upstreamRequestOptions(u: HttpUpstream): Pick<http.RequestOptions, 'socketPath' | 'host' | 'port'> {
  return 'socketPath' in u ? { socketPath: u.socketPath } : { host: '127.0.0.1', port: u.port };
}
