/**
 * Peer URL parsing. `--listen-peer-urls` / `--initial-advertise-peer-urls` are written `http://host:port`
 * (etcd's form, `https://` with TLS); the bytes inside are our own protocol (see README.md).
 */

/** A TCP endpoint. `host` has no IPv6 brackets; `port` is 0..65535 (0 only makes sense for listening). */
export interface HostPort {
  host: string;
  port: number;
  /** True for an `https://` URL: the connection is TLS (src/tls/peer.ts). */
  secure?: boolean;
}

/**
 * Parse `http://host:port` (also `tcp://host:port` or a bare `host:port`) into a {@link HostPort}.
 * A URL without a port gets etcd's peer default 2380.
 * Throws `Error` on an unparsable URL, an unknown scheme or a path other than "/".
 */
export function parsePeerUrl(raw: string): HostPort {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `tcp://${raw}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new Error(`invalid peer URL "${raw}"`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:' && u.protocol !== 'tcp:') throw new Error(`peer URL "${raw}": unsupported scheme`);
  if (u.pathname !== '' && u.pathname !== '/') throw new Error(`peer URL "${raw}": must not have a path`);
  let host = u.hostname;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host === '') throw new Error(`peer URL "${raw}": missing host`);
  // WHATWG URL drops a scheme's default port (":80" for http), so recover it from the raw text.
  let port: number;
  if (u.port !== '') port = Number(u.port);
  else if (/:80\/?$/.test(raw)) port = 80;
  else if (/:443\/?$/.test(raw)) port = 443;
  else port = 2380;
  return u.protocol === 'https:' ? { host, port, secure: true } : { host, port };
}
