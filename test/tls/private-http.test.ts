/**
 * With https client URLs and --client-cert-auth, the HTTP APIs (gateway, /metrics, /health) must not be reachable
 * around TLS. etcetera serves them from a uWebSockets.js app behind the client listener; that app must listen on
 * no TCP port of its own (a Unix socket in a 0700 directory instead). Differential against etcd 3.4: the TCP
 * ports a member listens on are exactly its client, peer and metrics ports, and the HTTP answers still arrive
 * through the TLS port (HTTP/1.1) as on etcd.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { startServer, hasEtcd, NO_ETCD, type ServerHandle, type ServerKind } from '../helpers/servers';
import { makePki } from './certs';
import { fileResources, httpsReady, httpsRequest, type ClientCreds } from './harness';

const skip = !hasEtcd() ? NO_ETCD : process.platform !== 'linux' ? 'needs /proc' : undefined;
const { handles } = fileResources();

/** TCP ports in LISTEN state held by process `pid` (from /proc: its socket inodes matched in /proc/net/tcp{,6}). */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch { /* closed meanwhile */ }
  }
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!fs.existsSync(table)) continue;
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // sl local_address rem_address st ... inode (field 9)
      if (f.length > 9 && f[3] === '0A' && inodes.has(f[9]!)) ports.add(parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return [...ports].sort((a, b) => a - b);
}

const portOf = (url: string): number => Number(new URL(url).port);

test('https client URLs: the member listens on no TCP port but its client, peer and metrics ports (etcd 3.4 alike)', { skip, timeout: 120_000 }, async () => {
  const pki = makePki();
  const root: ClientCreds = { ca: pki.good.cert, cert: pki.issue('root', 'root') };
  const server = pki.issue('server', 'server');
  const seen = await Promise.all((['etcd', 'etcetera'] as ServerKind[]).map(async (kind) => {
    const h: ServerHandle = await startServer(kind, {
      clientScheme: 'https',
      extraArgs: [`--cert-file=${server.cert}`, `--key-file=${server.key}`, '--client-cert-auth', `--trusted-ca-file=${pki.good.cert}`],
      ready: httpsReady(root),
    });
    handles.push(h);
    const expected = [portOf(h.clientUrl), portOf(h.peerUrl), portOf(h.metricsUrl)].sort((a, b) => a - b);
    const health = await httpsRequest(`${h.clientUrl}/health`, root, { alpn: ['http/1.1'] });
    return { extraPorts: listeningPorts(h.pid).filter((p) => !expected.includes(p)), listensOnAll: expected.every((p) => listeningPorts(h.pid).includes(p)), health: health.status };
  }));
  assert.deepEqual(seen[0], { extraPorts: [], listensOnAll: true, health: 200 }, 'etcd');
  assert.deepEqual(seen[1], seen[0], 'etcetera');
});
