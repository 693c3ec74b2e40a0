/**
 * TLS at start, differential against etcd 3.4: an https client or peer URL without certificate refuses to start
 * with etcd's message and a non-zero exit, an unknown --cipher-suites name likewise; certificate flags with
 * http:// URLs only warn; --auto-tls and --peer-auto-tls generate self-signed pairs under <data-dir>/fixtures and
 * serve etcdctl --insecure-skip-tls-verify.
 */
import { describe, test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { startServer, hasEtcd, hasEtcdctl, NO_ETCD, type ServerHandle, type ServerKind, type StartOptions } from '../helpers/servers';
import { etcdctl } from '../helpers/etcdctl';
import { killAllChildren } from '../helpers/procs';
import { makePki } from './certs';
import { ctlTls, httpsReady, type ClientCreds } from './harness';

const skip = !hasEtcd() || !hasEtcdctl() ? NO_ETCD : undefined;
const KINDS: ServerKind[] = ['etcd', 'etcetera'];
const handles: ServerHandle[] = [];
after(async () => {
  await Promise.all(handles.map((h) => h.stop()));
  await killAllChildren();
});

/** Starts `kind` with `opts`, records it for cleanup. */
async function start(kind: ServerKind, opts: StartOptions): Promise<ServerHandle> {
  const h = await startServer(kind, opts);
  handles.push(h);
  return h;
}

/** Runs both with `opts` (not waiting), returns their exit codes and whether `message` is in their output. */
async function refusal(opts: StartOptions, message: RegExp): Promise<Record<ServerKind, [number | null, boolean]>> {
  const [etcd, etcetera] = await Promise.all(KINDS.map(async (k) => {
    const h = await start(k, { ...opts, noWait: true });
    const { code } = await h.exited;
    return [code, message.test(h.output())] as [number | null, boolean];
  }));
  return { etcd: etcd!, etcetera: etcetera! };
}

// The cases are independent processes on their own ports: run them side by side.
describe('TLS at start', { concurrency: true }, () => {
  test('refusals at start (https client or peer URL without certificate, unknown cipher suite): etcd\'s messages, exit 1', { skip, timeout: 60_000 }, async () => {
    // All six processes at once: each only parses its flags and exits.
    const [client, peer, suite] = await Promise.all([
      refusal({ clientScheme: 'https' }, /TLS key\/cert \(--cert-file, --key-file\) must be provided for client url https:\/\/127\.0\.0\.1:\d+ with HTTPS scheme/),
      refusal({ peerScheme: 'https' }, /cannot listen on TLS for 127\.0\.0\.1:\d+: KeyFile and CertFile are not presented/),
      refusal({ extraArgs: ['--cipher-suites=TLS_NOT_A_SUITE'] }, /unexpected TLS cipher suite \\"TLS_NOT_A_SUITE\\"/),
    ]);
    assert.deepEqual(client, { etcd: [1, true], etcetera: [1, true] });
    assert.deepEqual(peer, { etcd: [1, true], etcetera: [1, true] });
    assert.deepEqual(suite, { etcd: [1, true], etcetera: [1, true] });
  });

  test('certificate flags with http:// URLs: a warning, and the member serves plaintext', { skip, timeout: 60_000 }, async () => {
    const pki = makePki();
    const pair = pki.issue('plain', 'plain');
    const r = await Promise.all(KINDS.map(async (k) => {
      const h = await start(k, { extraArgs: [`--cert-file=${pair.cert}`, `--key-file=${pair.key}`, '--client-cert-auth', `--trusted-ca-file=${pki.good.cert}`] });
      const put = await etcdctl(h.clientUrl, ['put', 'plain-k', 'v']);
      return [put.code, put.stdout, /scheme is HTTP while key and cert files are present; ignoring key and cert files/.test(h.output())];
    }));
    assert.deepEqual(r, [[0, 'OK\n', true], [0, 'OK\n', true]]);
  });

  test('--auto-tls and --peer-auto-tls: self-signed pairs under <data-dir>/fixtures, etcdctl --insecure-skip-tls-verify', { skip, timeout: 60_000 }, async () => {
    const insecure: ClientCreds = { ca: '', insecure: true };
    const r = await Promise.all(KINDS.map(async (k) => {
      const h = await start(k, { clientScheme: 'https', peerScheme: 'https', extraArgs: ['--auto-tls', '--peer-auto-tls'], ready: httpsReady(insecure) });
      const put = await etcdctl(h.clientUrl, [...ctlTls(insecure), 'put', 'auto-k', 'auto-v']);
      const get = await etcdctl(h.clientUrl, [...ctlTls(insecure), 'get', 'auto-k', '--print-value-only']);
      const refused = await etcdctl(h.clientUrl, ['--cacert=/dev/null', '--dial-timeout=2s', '--command-timeout=3s', 'get', 'auto-k']);
      const files = ['client', 'peer'].map((side) => {
        const dir = path.join(h.dataDir, 'fixtures', side);
        const cert = new X509Certificate(fs.readFileSync(path.join(dir, 'cert.pem')));
        return [fs.existsSync(path.join(dir, 'key.pem')), cert.checkIP('127.0.0.1') === '127.0.0.1', cert.verify(cert.publicKey)];
      });
      return [put.stdout, get.stdout, refused.code !== 0, files];
    }));
    assert.deepEqual(r[0], ['OK\n', 'auto-v\n', true, [[true, true, true], [true, true, true]]]);
    assert.deepEqual(r[1], r[0]);
  });
});
