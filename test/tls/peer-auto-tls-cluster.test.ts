/**
 * A 3-member cluster on `--peer-auto-tls` (and `--auto-tls` on the client side), etcd 3.4 and etcetera run the same
 * steps side by side: the members form over https peer URLs with self-signed certificates, agree on one leader,
 * replicate a write to every member, and a member killed and restarted rejoins (it reuses its generated pairs under
 * <data-dir>/fixtures, as etcd does) and catches up with a write made while it was down.
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startServer, hasEtcd, hasEtcdctl, NO_ETCD, type ServerHandle, type ServerKind } from '../helpers/servers';
import { etcdctl } from '../helpers/etcdctl';
import { killAllChildren } from '../helpers/procs';
import { ctlTls, httpsReady, type ClientCreds } from './harness';

const skip = !hasEtcd() || !hasEtcdctl() ? NO_ETCD : undefined;
const handles: ServerHandle[] = [];
after(async () => {
  await Promise.all(handles.map((h) => h.stop()));
  await killAllChildren();
});

const insecure: ClientCreds = { ca: '', insecure: true };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns `want` (bounded); returns the last answer either way. */
async function until<T>(probe: () => Promise<T>, want: T, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = await probe();
  while (JSON.stringify(last) !== JSON.stringify(want) && Date.now() < deadline) {
    await sleep(200);
    last = await probe();
  }
  return last;
}

/** The leader id each member reports in its own Status (etcdctl over TLS, no verification). */
async function leaders(endpoints: string[]): Promise<string[]> {
  const r = await etcdctl(endpoints, [...ctlTls(insecure), 'endpoint', 'status', '-w', 'json']);
  return [...r.stdout.matchAll(/"leader":(\d+)/g)].map((m) => m[1]);
}

/** A member's serializable read of `key` (its own copy, no leader round trip): the value or ''. */
async function localValue(endpoint: string, key: string): Promise<string> {
  const r = await etcdctl(endpoint, [...ctlTls(insecure), '--consistency=s', 'get', key, '--print-value-only']);
  return r.code === 0 ? r.stdout : `error ${r.code}`;
}

/** SHA of a generated pair's certificate file (to see whether a restart regenerated it). */
function fixture(h: ServerHandle, side: string): string {
  return fs.readFileSync(path.join(h.dataDir, 'fixtures', side, 'cert.pem'), 'latin1');
}

async function scenario(kind: ServerKind): Promise<Record<string, unknown>> {
  const h = await startServer(kind, {
    members: 3, clientScheme: 'https', peerScheme: 'https', extraArgs: ['--auto-tls', '--peer-auto-tls'], ready: httpsReady(insecure),
  });
  handles.push(h);
  const [m1, m2, m3] = h.members!;
  const out: Record<string, unknown> = {};
  const oneLeader = async (): Promise<boolean> => {
    const ids = await leaders(h.endpoints);
    return ids.length === 3 && ids[0] !== '0' && ids.every((x) => x === ids[0]);
  };
  out.elected = await until(oneLeader, true);
  const members = await etcdctl(m1.clientUrl, [...ctlTls(insecure), 'member', 'list', '-w', 'json']);
  out.peerUrls = [...members.stdout.matchAll(/"peerURLs":\["([a-z]+):/g)].map((m) => m[1]);
  out.put = (await etcdctl(m1.clientUrl, [...ctlTls(insecure), 'put', 'k1', 'v1'])).stdout;
  out.replicated = await Promise.all([m1, m2, m3].map((m) => until(() => localValue(m.clientUrl, 'k1'), 'v1\n')));

  // Member 2 down: the other two still have a quorum and take a write it misses.
  const peerCert = fixture(m2, 'peer');
  await m2.kill('SIGKILL');
  // Killing the leader costs an election first: retried (bounded) until accepted.
  out.putWhileDown = await until(async () => {
    const r = await etcdctl(m3.clientUrl, [...ctlTls(insecure), '--command-timeout=5s', 'put', 'k2', 'v2']);
    return r.code === 0 ? r.stdout : r.stderr;
  }, 'OK\n');
  const m2b = await m2.restart();
  handles.push(m2b);
  out.caughtUp = await until(() => localValue(m2b.clientUrl, 'k2'), 'v2\n');
  out.samePeerCertAfterRestart = fixture(m2b, 'peer') === peerCert;
  out.electedAfterRestart = await until(async () => {
    const ids = await leaders([m1.clientUrl, m2b.clientUrl, m3.clientUrl]);
    return ids.length === 3 && ids[0] !== '0' && ids.every((x) => x === ids[0]);
  }, true);
  out.putViaRestarted = (await etcdctl(m2b.clientUrl, [...ctlTls(insecure), 'put', 'k3', 'v3'])).stdout;
  out.replicatedAfterRestart = await Promise.all([m1, m3].map((m) => until(() => localValue(m.clientUrl, 'k3'), 'v3\n')));
  return out;
}

test('3 members on --peer-auto-tls and --auto-tls: form, elect, replicate, a killed member rejoins; etcd 3.4 and etcetera alike', { skip, timeout: 180_000 }, async () => {
  const [etcd, etcetera] = await Promise.all([scenario('etcd'), scenario('etcetera')]);
  assert.deepEqual(etcd, {
    elected: true, peerUrls: ['https', 'https', 'https'], put: 'OK\n', replicated: ['v1\n', 'v1\n', 'v1\n'],
    putWhileDown: 'OK\n', caughtUp: 'v2\n', samePeerCertAfterRestart: true, electedAfterRestart: true, putViaRestarted: 'OK\n',
    replicatedAfterRestart: ['v3\n', 'v3\n'],
  });
  assert.deepEqual(etcetera, etcd);
});
