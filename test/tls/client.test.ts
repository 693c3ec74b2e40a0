/**
 * TLS on the client port, differential against etcd 3.4: one member of each, https client and metrics URLs with
 * --cert-file/--key-file, --client-cert-auth with --trusted-ca-file, and --cipher-suites; the same operations on
 * both. Covers etcdctl and the etcd3 npm client over TLS, /health and /metrics over HTTP/1.1 (with and without
 * ALPN) and HTTP/2, the JSON gateway, handshake refusals (no client certificate, another CA, TLS 1.1, a cipher
 * suite not allowed), a certificate replaced on disk seen by new connections, and the certificate CN acting as
 * the auth user when a request carries no token.
 */
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Etcd3 } from 'etcd3';
import { startServer, hasEtcd, hasEtcdctl, NO_ETCD, type ServerHandle, type ServerKind } from '../helpers/servers';
import { etcdctl } from '../helpers/etcdctl';
import { killAllChildren } from '../helpers/procs';
import { makePki, type CertPair, type TestPki } from './certs';
import { ctlTls, h2Get, httpsReady, httpsRequest, probe, type ClientCreds } from './harness';

const skip = !hasEtcd() || !hasEtcdctl() ? NO_ETCD : undefined;
const KINDS: ServerKind[] = ['etcd', 'etcetera'];
/** Allowed TLS 1.2 suites (Go names, as etcd takes them); the keys are ECDSA P-256. */
const SUITES = ['TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305'];

/** etcdctl timeouts for calls expected to fail (the helper's defaults are long for a loaded machine). */
const SHORT = ['--dial-timeout=2s', '--command-timeout=3s'];

let pki: TestPki;
let root: ClientCreds;
let alice: ClientCreds;
const servers = new Map<ServerKind, ServerHandle>();
/** The server certificate files each member was started with (replaced on disk by the rotation test). */
const serverFiles = new Map<ServerKind, CertPair>();

before(async () => {
  if (skip) return;
  pki = makePki();
  root = { ca: pki.good.cert, cert: pki.issue('client-root', 'root') };
  alice = { ca: pki.good.cert, cert: pki.issue('client-alice', 'alice') };
  await Promise.all(KINDS.map(async (kind) => {
    const files = pki.issue(`server-${kind}`, `server-${kind}`);
    serverFiles.set(kind, files);
    servers.set(kind, await startServer(kind, {
      clientScheme: 'https',
      extraArgs: [`--cert-file=${files.cert}`, `--key-file=${files.key}`, '--client-cert-auth', `--trusted-ca-file=${pki.good.cert}`, `--cipher-suites=${SUITES.join(',')}`],
      ready: httpsReady(root),
    }));
  }));
});

after(async () => {
  await Promise.all([...servers.values()].map((h) => h.stop()));
  await killAllChildren();
});

const both = async <T>(fn: (h: ServerHandle, kind: ServerKind) => Promise<T>): Promise<Record<ServerKind, T>> => {
  const [etcd, etcetera] = await Promise.all(KINDS.map((k) => fn(servers.get(k)!, k)));
  return { etcd: etcd!, etcetera: etcetera! };
};

test('etcdctl over https with --cacert --cert --key: put and get answer as etcd does', { skip, timeout: 60_000 }, async () => {
  const r = await both(async (h) => {
    const put = await etcdctl(h.clientUrl, [...ctlTls(root), 'put', 'tls-k', 'tls-v']);
    const get = await etcdctl(h.clientUrl, [...ctlTls(root), 'get', 'tls-k']);
    return [put.code, put.stdout, get.code, get.stdout];
  });
  assert.deepEqual(r.etcd, [0, 'OK\n', 0, 'tls-k\ntls-v\n']);
  assert.deepEqual(r.etcetera, r.etcd);
});

test('etcd3 npm client over TLS with a client certificate', { skip, timeout: 60_000 }, async () => {
  const r = await both(async (h) => {
    const c = new Etcd3({
      hosts: h.clientUrl,
      credentials: { rootCertificate: fs.readFileSync(root.ca), certChain: fs.readFileSync(root.cert!.cert), privateKey: fs.readFileSync(root.cert!.key) },
    });
    try {
      await c.put('npm-k').value('npm-v');
      return [await c.get('npm-k').string(), await c.getAll().prefix('npm-').keys()];
    } finally {
      c.close();
    }
  });
  assert.deepEqual(r.etcd, ['npm-v', ['npm-k']]);
  assert.deepEqual(r.etcetera, r.etcd);
});

test('/health and /metrics over https: HTTP/1.1 with ALPN, without ALPN, and HTTP/2', { skip, timeout: 60_000 }, async () => {
  const r = await both(async (h) => {
    const out: Record<string, unknown> = {};
    for (const [name, url] of [['client', h.clientUrl], ['metrics', h.metricsUrl]] as const) {
      const h1 = await httpsRequest(`${url}/health`, root, { alpn: ['http/1.1'] });
      const noAlpn = await httpsRequest(`${url}/health`, root);
      const m1 = await httpsRequest(`${url}/metrics`, root, { alpn: ['http/1.1'] });
      out[name] = {
        h1: [h1.status, JSON.parse(h1.body)],
        noAlpn: [noAlpn.status, JSON.parse(noAlpn.body), noAlpn.alpn],
        metricsH1: [m1.status, /^etcd_server_has_leader 1$/m.test(m1.body)],
      };
    }
    const h2 = await h2Get(h.clientUrl, '/health', root);
    const m2 = await h2Get(h.clientUrl, '/metrics', root);
    out.h2 = [h2.status, JSON.parse(h2.body), h2.alpn, m2.status, /^etcd_server_has_leader 1$/m.test(m2.body)];
    return out;
  });
  assert.deepEqual(r.etcd.h2, [200, { health: 'true' }, 'h2', 200, true]);
  assert.deepEqual(r.etcd.client, { h1: [200, { health: 'true' }], noAlpn: [200, { health: 'true' }, false], metricsH1: [200, true] });
  // Known difference: etcd (Go) offers only h2 and goes on without ALPN for an http/1.1-only client; Node's TLS
  // server fails a handshake without a common protocol, so etcetera also offers http/1.1 and selects it.
  assert.deepEqual(r.etcetera, r.etcd);
});

test('JSON gateway over https: put then range', { skip, timeout: 60_000 }, async () => {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  const r = await both(async (h) => {
    const put = await httpsRequest(`${h.clientUrl}/v3/kv/put`, root, { alpn: ['http/1.1'], body: JSON.stringify({ key: b64('gw-k'), value: b64('gw-v') }) });
    const range = await httpsRequest(`${h.clientUrl}/v3/kv/range`, root, { alpn: ['http/1.1'], body: JSON.stringify({ key: b64('gw-k') }) });
    const kvs = (JSON.parse(range.body) as { kvs: Array<{ key: string; value: string }> }).kvs.map((kv) => [kv.key, kv.value]);
    return [put.status, range.status, kvs];
  });
  assert.deepEqual(r.etcd, [200, 200, [[b64('gw-k'), b64('gw-v')]]]);
  assert.deepEqual(r.etcetera, r.etcd);
});

test('--client-cert-auth: no certificate or one from another CA is refused at the handshake', { skip, timeout: 60_000 }, async () => {
  const stranger: ClientCreds = { ca: pki.good.cert, cert: pki.issue('client-stranger', 'root', pki.other) };
  const r = await both(async (h) => {
    const none = await probe(h.clientUrl, { ca: root.ca });
    const foreign = await probe(h.clientUrl, stranger);
    const good = await probe(h.clientUrl, root);
    // A refused client only gives up at its timeouts: keep them short.
    const ctlNone = await etcdctl(h.clientUrl, [...ctlTls({ ca: root.ca }), ...SHORT, 'get', 'tls-k']);
    const ctlForeign = await etcdctl(h.clientUrl, [...ctlTls(stranger), ...SHORT, 'get', 'tls-k']);
    const ctlGood = await etcdctl(h.clientUrl, [...ctlTls(root), 'get', 'tls-k']);
    return {
      none: none.ok, foreign: foreign.ok, good: good.ok,
      ctl: [ctlNone.code !== 0, ctlForeign.code !== 0, ctlGood.code, ctlGood.stdout],
    };
  });
  assert.deepEqual(r.etcd, { none: false, foreign: false, good: true, ctl: [true, true, 0, 'tls-k\ntls-v\n'] });
  assert.deepEqual(r.etcetera, r.etcd);
});

test('TLS 1.2 minimum and --cipher-suites: TLS 1.1 and a suite not listed are refused', { skip, timeout: 60_000 }, async () => {
  const r = await both(async (h) => {
    const tls11 = await probe(h.clientUrl, root, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' });
    const tls12 = await probe(h.clientUrl, root, { minVersion: 'TLSv1', maxVersion: 'TLSv1.2', ciphers: 'DEFAULT:@SECLEVEL=0' });
    const listed = await probe(h.clientUrl, root, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
    const unlisted = await probe(h.clientUrl, root, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' });
    return {
      tls11: [tls11.ok, tls11.error],
      tls12: [tls12.ok, tls12.protocol],
      listed: [listed.ok, listed.cipher],
      unlisted: [unlisted.ok, unlisted.error],
    };
  });
  // The refusals are the server's alerts (protocol version, handshake failure), not a client-side limit.
  assert.deepEqual(r.etcd, {
    tls11: [false, 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION'],
    tls12: [true, 'TLSv1.2'],
    listed: [true, 'ECDHE-ECDSA-AES128-GCM-SHA256'],
    unlisted: [false, 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE'],
  });
  assert.deepEqual(r.etcetera, r.etcd);
});

test('certificate files replaced on disk: new connections get the new certificate without a restart', { skip, timeout: 60_000 }, async () => {
  const before = await both(async (h) => (await probe(h.clientUrl, root)).serverCn);
  assert.deepEqual(before, { etcd: 'server-etcd', etcetera: 'server-etcetera' });
  const half = await both(async (h, kind) => {
    const next = pki.issue(`rotated-${kind}`, `rotated-${kind}`);
    const files = serverFiles.get(kind)!;
    // Replace atomically, key first: a reader never sees a half-written file.
    let halfDone: [boolean, string | undefined] = [false, undefined];
    for (const [from, to] of [[next.key, files.key], [next.cert, files.cert]] as const) {
      const tmp = path.join(path.dirname(to), `.${path.basename(to)}.tmp`);
      fs.copyFileSync(from, tmp);
      fs.renameSync(tmp, to);
      // New key, old certificate: the pair does not load, and etcd fails the handshake rather than serve the old one.
      if (to === files.key) { const p = await probe(h.clientUrl, root, { maxVersion: 'TLSv1.2' }); halfDone = [p.ok, p.serverCn]; }
    }
    return halfDone;
  });
  assert.deepEqual(half, { etcd: [false, undefined], etcetera: [false, undefined] });
  const after = await both(async (h) => {
    const p = await probe(h.clientUrl, root);
    const ctl = await etcdctl(h.clientUrl, [...ctlTls(root), 'get', 'tls-k', '--print-value-only']);
    return [p.ok, p.serverCn, ctl.stdout];
  });
  assert.deepEqual(after, { etcd: [true, 'rotated-etcd', 'tls-v\n'], etcetera: [true, 'rotated-etcetera', 'tls-v\n'] });
});

test('auth enabled with --client-cert-auth: a request without token acts as the certificate CN user', { skip, timeout: 90_000 }, async () => {
  const script: Array<[ClientCreds, string[]]> = [
    [root, ['user', 'add', 'root', '--new-user-password=rootpw']],
    [root, ['role', 'add', 'root']],
    [root, ['user', 'grant-role', 'root', 'root']],
    [root, ['user', 'add', 'alice', '--new-user-password=alicepw']],
    [root, ['role', 'add', 'app-ro']],
    [root, ['role', 'grant-permission', 'app-ro', 'read', 'app/', '--prefix=true']],
    [root, ['user', 'grant-role', 'alice', 'app-ro']],
    [root, ['put', 'app/x', '1']],
    [root, ['auth', 'enable']],
    [root, ['put', 'app/y', '2']],
    [alice, ['get', 'app/', '--prefix', '--keys-only']],
    [alice, ['put', 'app/z', '3']],
    [alice, ['get', 'tls-k']],
    [root, ['get', 'tls-k', '--print-value-only']],
    [root, ['user', 'list']],
    // An explicit user overrides the certificate, as in etcd.
    [alice, ['--user=root:rootpw', 'get', 'tls-k', '--print-value-only']],
  ];
  const r = await both(async (h) => {
    const out: string[] = [];
    for (const [who, args] of script) {
      const res = await etcdctl(h.clientUrl, [...ctlTls(who), ...args]);
      // etcdctl's retry warnings carry timestamps and client ids: keep its final Error line only.
      const err = res.stderr.split('\n').filter((l) => l.startsWith('Error:')).join('\n');
      out.push(`${who.cert === root.cert ? 'root' : 'alice'} ${args.join(' ')} → ${res.code} ${res.stdout}${err}`);
    }
    return out;
  });
  assert.match(r.etcd[11]!, /permission denied/);
  assert.match(r.etcd[13]!, /→ 0 tls-v/);
  assert.deepEqual(r.etcetera, r.etcd);
});
