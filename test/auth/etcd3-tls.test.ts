/**
 * The `etcd3` npm client against a TLS member with --client-cert-auth and auth enabled, differential against
 * etcd 3.4 (the same steps on both, the same answers expected): user and role management with its error
 * classes, password login, permission errors mapped to its error classes, re-authentication after the simple
 * token expired (--auth-token-ttl=1), the expired token refused with `etcdserver: invalid auth token`, and the
 * certificate CN acting as the user when no password is configured.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { startServer, hasEtcd, NO_ETCD, type ServerHandle, type ServerKind } from '../helpers/servers';
import { RawClient } from '../helpers/grpc';
import { makePki } from '../tls/certs';
import { etcd3Credentials, fileResources, httpsReady, type ClientCreds } from '../tls/harness';

const skip = !hasEtcd() ? NO_ETCD : undefined;
/** Longer than --auth-token-ttl=1 with margin for a loaded machine. */
const EXPIRY_WAIT_MS = 3_000;
const { handles, closers } = fileResources();

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The error's etcd3 class name, or 'ok' when `fn` resolves (with its value appended when it is a string). */
async function outcome(fn: () => Promise<unknown>): Promise<string> {
  try {
    const v = await fn();
    return typeof v === 'string' ? `ok ${v}` : 'ok';
  } catch (e) {
    return (e as Error).constructor.name;
  }
}

async function scenario(kind: ServerKind): Promise<Record<string, string>> {
  const pki = makePki();
  const creds = (cn: string): ClientCreds => ({ ca: pki.good.cert, cert: pki.issue(`${kind}-${cn}`, cn) });
  const root = creds('root');
  const alice = creds('alice');
  const stranger = creds('stranger');
  const server = pki.issue(`${kind}-server`, 'server');
  const h = await startServer(kind, {
    clientScheme: 'https',
    extraArgs: [`--cert-file=${server.cert}`, `--key-file=${server.key}`, '--client-cert-auth', `--trusted-ca-file=${pki.good.cert}`, '--auth-token-ttl=1'],
    ready: httpsReady(root),
  });
  handles.push(h);
  const client = (who: ClientCreds, auth?: { username: string; password: string }): Etcd3 => {
    const c = new Etcd3({
      hosts: h.clientUrl,
      credentials: etcd3Credentials(who),
      ...(auth ? { auth } : {}),
    });
    closers.push(() => c.close());
    return c;
  };
  const out: Record<string, string> = {};

  // Management through the etcd3 client, before auth is on (the root certificate may do anything).
  const admin = client(root);
  out.addRoot = await outcome(async () => { await admin.user('root').create('rootpw'); await admin.role('root').create(); await admin.user('root').addRole('root'); });
  out.addRole = await outcome(async () => { await admin.role('app-rw').create(); });
  out.addRoleAgain = await outcome(async () => { await admin.role('app-rw').create(); });
  out.grant = await outcome(async () => { await admin.role('app-rw').grant({ permission: 'Readwrite', range: admin.range({ prefix: '/app/' }) }); });
  out.addAlice = await outcome(async () => { await admin.user('alice').create('apw'); await admin.user('alice').addRole('app-rw'); });
  out.grantToNobody = await outcome(async () => { await admin.user('nobody').addRole('app-rw'); });
  out.revokeNotGranted = await outcome(async () => { await admin.user('alice').removeRole('root'); });
  out.aliceRoles = await outcome(async () => (await admin.user('alice').roles()).map((r) => r.name).join(','));
  out.enable = await outcome(() => admin.auth.authEnable());

  // Password login (the token wins over the certificate, whose CN is a user that does not exist).
  const byPassword = client(stranger, { username: 'alice', password: 'apw' });
  out.put = await outcome(async () => { await byPassword.put('/app/k').value('v1'); });
  out.get = await outcome(() => byPassword.get('/app/k').string() as Promise<string>);
  out.putOutside = await outcome(async () => { await byPassword.put('/other').value('x'); });
  out.getOutside = await outcome(() => byPassword.get('/other').string() as Promise<string>);
  out.adminByAlice = await outcome(async () => { await byPassword.user('bob').create('x'); });
  // The token expires after 1 s unused: the client gets "invalid auth token", logs in again and retries.
  await sleep(EXPIRY_WAIT_MS);
  out.getAfterExpiry = await outcome(() => byPassword.get('/app/k').string() as Promise<string>);
  out.putAfterExpiry = await outcome(async () => { await byPassword.put('/app/k').value('v2'); });
  out.wrongPassword = await outcome(() => client(stranger, { username: 'alice', password: 'nope' }).get('/app/k').string() as Promise<string>);

  // The same expiry seen without the client's retry: the raw token is refused once expired.
  const raw = new RawClient(h.clientUrl, {}, grpc.credentials.createSsl(fs.readFileSync(pki.good.cert), fs.readFileSync(stranger.cert!.key), fs.readFileSync(stranger.cert!.cert)));
  closers.push(() => raw.close());
  raw.token = (await raw.call('Auth', 'Authenticate', { name: 'alice', password: 'apw' })).token;
  out.rawFresh = await outcome(async () => { await raw.range({ key: Buffer.from('/app/k') }); });
  await sleep(EXPIRY_WAIT_MS);
  out.rawExpired = await raw.range({ key: Buffer.from('/app/k') }).then(() => 'ok', (e: { code: number; details: string }) => `${e.code} ${e.details}`);

  // No password configured: the certificate's CN is the user.
  const byCert = client(alice);
  out.certGet = await outcome(() => byCert.get('/app/k').string() as Promise<string>);
  out.certPutOutside = await outcome(async () => { await byCert.put('/other').value('x'); });
  out.strangerGet = await outcome(() => client(stranger).get('/app/k').string() as Promise<string>);
  return out;
}

test('etcd3 client over TLS with auth: login, re-authentication after token expiry, error classes (etcd 3.4 alike)', { skip, timeout: 180_000 }, async () => {
  const [etcd, etcetera] = await Promise.all([scenario('etcd'), scenario('etcetera')]);
  // The oracle answers what the test means to check (so a change of etcd's behaviour is noticed, not absorbed).
  assert.equal(etcd.addRoleAgain, 'EtcdRoleExistsError');
  assert.equal(etcd.grantToNobody, 'EtcdUserNotFoundError');
  assert.equal(etcd.putOutside, 'EtcdPermissionDeniedError');
  assert.equal(etcd.getAfterExpiry, 'ok v1');
  assert.equal(etcd.wrongPassword, 'EtcdAuthenticationFailedError');
  assert.equal(etcd.rawExpired, '16 etcdserver: invalid auth token');
  assert.equal(etcd.certGet, 'ok v2');
  assert.deepEqual(etcetera, etcd);
  console.log(`both: ${JSON.stringify(etcetera)}`);
});
