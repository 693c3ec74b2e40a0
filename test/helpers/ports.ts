/**
 * Free loopback TCP ports for test servers.
 *
 * Ports come from below Linux's ephemeral range (32768–60999 by default): a port the kernel handed out for a
 * listen(0) probe can be taken, before the server binds it, as the local port of any outgoing connection (the
 * test clients make thousands), which then fails the server with EADDRINUSE. Below that range only listeners
 * compete, so a candidate is picked at random, checked by binding it, and remembered so this process never hands
 * it out twice.
 */
import * as net from 'node:net';

/** Lowest port handed out (above the registered services most machines run). */
const MIN_PORT = 12000;
/** Highest port handed out: just below the kernel's default ephemeral range. */
const MAX_PORT = 32767;
/** Candidates tried before giving up. */
const MAX_ATTEMPTS = 200;

const handedOut = new Set<number>();

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** Resolves a currently free TCP port on 127.0.0.1, outside the ephemeral range, not handed out before by this process. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const port = MIN_PORT + Math.floor(Math.random() * (MAX_PORT - MIN_PORT + 1));
    if (handedOut.has(port)) continue;
    if (await bindable(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`freePort: no free port in ${MIN_PORT}-${MAX_PORT} after ${MAX_ATTEMPTS} attempts`);
}

/** `n` distinct free ports. */
export async function freePorts(n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await freePort());
  return out;
}
