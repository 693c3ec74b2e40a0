/**
 * A member with client and peer TLS and client-certificate auth on both ports, started only from a config file
 * (`--config-file`, etcd's YAML keys with `client-transport-security` / `peer-transport-security`) and only from
 * ETCD_* variables (no command-line flag at all), etcd 3.4 and etcetera each started the same way. Compared: what
 * etcdctl with the CA and a client certificate can do, what is refused without a certificate, without the CA or in
 * plaintext (and etcdctl's message), and whether the peer port completes a TLS 1.2 handshake with and without a
 * client certificate.
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { hasEtcd, hasEtcdctl, NO_ETCD, etceteraCli, type ServerHandle, type ServerKind } from '../helpers/servers';
import { etcdctl, etcdctlError } from '../helpers/etcdctl';
import { freePort } from '../helpers/ports';
import { track, trackTempDir, killAllChildren } from '../helpers/procs';
import { makePki, type CertPair } from './certs';
import { ctlTls, httpsReady, probe, type ClientCreds } from './harness';

const skip = !hasEtcd() || !hasEtcdctl() ? NO_ETCD : undefined;
const stops: Array<() => Promise<void>> = [];
after(async () => {
  await Promise.all(stops.map((s) => s()));
  await killAllChildren();
});

const pki = makePki();
const server = pki.issue('server', 'member');
const client = pki.issue('client', 'client');
const trusted: ClientCreds = { ca: pki.good.cert, cert: client };
const caOnly: ClientCreds = { ca: pki.good.cert };

/** The ports and files of one member. */
interface Layout { name: string; dataDir: string; client: string; peer: string; pair: CertPair }

async function layout(tag: string): Promise<Layout> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `etcetera-test-${tag}-`));
  trackTempDir(dataDir);
  return { name: 'm1', dataDir, client: `https://127.0.0.1:${await freePort()}`, peer: `https://127.0.0.1:${await freePort()}`, pair: server };
}

/** etcd 3.4's YAML configuration for `l` (the keys of embed.configYAML). */
function yamlConfig(l: Layout): string {
  const sec = (extra: string): string => [
    `  cert-file: ${l.pair.cert}`, `  key-file: ${l.pair.key}`, '  client-cert-auth: true', `  trusted-ca-file: ${pki.good.cert}`, extra,
  ].filter((x) => x !== '').join('\n');
  return [
    `name: ${l.name}`, `data-dir: ${l.dataDir}`,
    `listen-client-urls: ${l.client}`, `advertise-client-urls: ${l.client}`,
    `listen-peer-urls: ${l.peer}`, `initial-advertise-peer-urls: ${l.peer}`,
    `initial-cluster: ${l.name}=${l.peer}`, 'initial-cluster-state: new', 'initial-cluster-token: config-file-test',
    'heartbeat-interval: 20', 'election-timeout: 200', 'logger: zap', 'log-level: warn',
    'client-transport-security:', sec(''),
    'peer-transport-security:', sec(''),
    '',
  ].join('\n');
}

/** The same configuration as ETCD_* variables. */
function envConfig(l: Layout): Record<string, string> {
  return {
    ETCD_NAME: l.name, ETCD_DATA_DIR: l.dataDir,
    ETCD_LISTEN_CLIENT_URLS: l.client, ETCD_ADVERTISE_CLIENT_URLS: l.client,
    ETCD_LISTEN_PEER_URLS: l.peer, ETCD_INITIAL_ADVERTISE_PEER_URLS: l.peer,
    ETCD_INITIAL_CLUSTER: `${l.name}=${l.peer}`, ETCD_INITIAL_CLUSTER_STATE: 'new', ETCD_INITIAL_CLUSTER_TOKEN: 'env-test',
    ETCD_HEARTBEAT_INTERVAL: '20', ETCD_ELECTION_TIMEOUT: '200', ETCD_LOGGER: 'zap', ETCD_LOG_LEVEL: 'warn',
    ETCD_CERT_FILE: l.pair.cert, ETCD_KEY_FILE: l.pair.key, ETCD_CLIENT_CERT_AUTH: 'true', ETCD_TRUSTED_CA_FILE: pki.good.cert,
    ETCD_PEER_CERT_FILE: l.pair.cert, ETCD_PEER_KEY_FILE: l.pair.key, ETCD_PEER_CLIENT_CERT_AUTH: 'true', ETCD_PEER_TRUSTED_CA_FILE: pki.good.cert,
  };
}

/** Starts `kind` with exactly `args` and `env` (the test's own ETCD_* variables removed); resolves once https serves. */
async function launch(kind: ServerKind, l: Layout, args: string[], env: Record<string, string>): Promise<void> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_')));
  const [cmd, argv] = kind === 'etcd' ? [process.env.ETCD_BIN ?? 'etcd', args] : [process.execPath, [etceteraCli(), ...args]];
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...base, ...env } });
  track(child);
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-20_000)));
  child.stderr.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-20_000)));
  let running = true;
  const exited = new Promise<void>((r) => child.once('exit', () => { running = false; r(); }));
  stops.push(async () => { if (running) child.kill('SIGTERM'); await exited; });
  const handle = { clientUrl: l.client, isRunning: () => running } as unknown as ServerHandle;
  try {
    await httpsReady(trusted, 60_000)(handle);
  } catch (e) {
    throw new Error(`${kind} ${args.join(' ')}: ${(e as Error).message}\n${out.slice(-3000)}`);
  }
}

/** What etcdctl and a TLS 1.2 peer-port handshake observe on a member serving `l`. */
async function observe(l: Layout): Promise<Record<string, string | boolean>> {
  const quick = ['--dial-timeout=2s', '--command-timeout=3s'];
  const put = await etcdctl(l.client, [...ctlTls(trusted), 'put', 'k', 'v']);
  const get = await etcdctl(l.client, [...ctlTls(trusted), 'get', 'k', '--print-value-only']);
  const noCert = await etcdctl(l.client, [...ctlTls(caOnly), ...quick, 'get', 'k']);
  const noCa = await etcdctl(l.client, [`--cert=${client.cert}`, `--key=${client.key}`, ...quick, 'get', 'k']);
  const plain = await etcdctl(l.client.replace('https:', 'http:'), [...quick, 'get', 'k']);
  const tls12 = { maxVersion: 'TLSv1.2' as const };
  const peerWithCert = await probe(l.peer, trusted, tls12);
  const peerNoCert = await probe(l.peer, caOnly, tls12);
  return {
    put: `${put.code} ${put.stdout}`,
    get: `${get.code} ${get.stdout}`,
    noCert: `${noCert.code} ${etcdctlError(noCert.stderr)}`,
    noCa: `${noCa.code} ${etcdctlError(noCa.stderr)}`,
    plain: `${plain.code} ${etcdctlError(plain.stderr)}`,
    peerHandshakeWithCert: peerWithCert.serverCn === 'member',
    peerHandshakeWithoutCert: peerNoCert.serverCn !== undefined,
  };
}

async function scenario(kind: ServerKind): Promise<Record<string, unknown>> {
  const fromFile = await layout(`${kind}-file`);
  const file = path.join(fromFile.dataDir, '..', `${path.basename(fromFile.dataDir)}.yml`);
  fs.writeFileSync(file, yamlConfig(fromFile));
  trackTempDir(file);
  const fromEnv = await layout(`${kind}-env`);
  await Promise.all([launch(kind, fromFile, [`--config-file=${file}`], {}), launch(kind, fromEnv, [], envConfig(fromEnv))]);
  return { configFile: await observe(fromFile), env: await observe(fromEnv) };
}

test('TLS with client-cert auth from --config-file and from ETCD_* variables only: etcd 3.4 and etcetera serve and refuse alike', { skip, timeout: 120_000 }, async () => {
  const [etcd, etcetera] = await Promise.all([scenario('etcd'), scenario('etcetera')]);
  const expected = {
    put: '0 OK\n',
    get: '0 v\n',
    noCert: '1 DeadlineExceeded | Error: context deadline exceeded',
    noCa: '1 DeadlineExceeded | Error: context deadline exceeded',
    plain: '1 DeadlineExceeded | Error: context deadline exceeded',
    peerHandshakeWithCert: true,
    peerHandshakeWithoutCert: false,
  };
  assert.deepEqual(etcd, { configFile: expected, env: expected });
  assert.deepEqual(etcetera, etcd);
});
