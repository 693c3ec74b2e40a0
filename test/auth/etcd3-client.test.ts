/**
 * Auth with the `etcd3` npm client: its roles / users API against etcetera, login with a password, permission
 * errors mapped to its error classes, and re-authentication once a simple token expired (--auth-token-ttl=1).
 * JWT tokens (--auth-token jwt,…, keys made at test time): signature checked, expiry enforced, a token signed by
 * another key refused.
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import * as jose from 'jose';
import { Etcd3, EtcdPermissionDeniedError, EtcdAuthenticationFailedError, EtcdRoleExistsError, EtcdUserNotFoundError } from 'etcd3';
import { startEtcetera, type ServerHandle } from '../helpers/servers';
import { RawClient } from '../helpers/grpc';
import { killAllChildren } from '../helpers/procs';
import { makeJwtKeys } from '../helpers/jwt-keys';

const handles: ServerHandle[] = [];
const clients: Array<{ close(): void }> = [];
after(async () => {
  for (const c of clients) c.close();
  await Promise.all(handles.map((h) => h.stop()));
  await killAllChildren();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const hostOf = (h: ServerHandle): string => h.clientUrl.replace(/^http:\/\//, '');

/** Creates root (role root) and `alice` with read-write on prefix /app/ through the etcd3 client, then enables auth. */
async function setUp(h: ServerHandle): Promise<void> {
  const admin = new Etcd3({ hosts: hostOf(h) });
  try {
    await admin.user('root').create('rootpw');
    await admin.role('root').create();
    await admin.user('root').addRole('root');
    const role = await admin.role('app-rw').create();
    await assert.rejects(admin.role('app-rw').create(), EtcdRoleExistsError);
    await role.grant({ permission: 'Readwrite', range: admin.range({ prefix: '/app/' }) });
    await admin.user('alice').create('apw');
    await admin.user('alice').addRole('app-rw');
    assert.deepEqual(await admin.user('alice').roles().then((rs) => rs.map((r) => r.name)), ['app-rw']);
    const perms = await admin.role('app-rw').permissions();
    assert.equal(perms.length, 1);
    assert.equal(perms[0]!.permission, 'Readwrite');
    await assert.rejects(admin.user('nobody').addRole('app-rw'), EtcdUserNotFoundError);
    await admin.auth.authEnable();
  } finally {
    admin.close();
  }
}

test('etcd3 client: login, permission errors, re-authentication after the simple token expired', { timeout: 120_000 }, async () => {
  const h = await startEtcetera({ extraArgs: ['--auth-token-ttl=1'] });
  handles.push(h);
  await setUp(h);
  const alice = new Etcd3({ hosts: hostOf(h), auth: { username: 'alice', password: 'apw' } });
  clients.push(alice);
  await alice.put('/app/k').value('v1');
  assert.equal(await alice.get('/app/k').string(), 'v1');
  await assert.rejects(async () => { await alice.put('/other').value('x'); }, EtcdPermissionDeniedError);
  await assert.rejects(alice.get('/other').string(), EtcdPermissionDeniedError);
  // The token expires after 1 s unused; the client gets "invalid auth token", logs in again and retries.
  await sleep(2500);
  assert.equal(await alice.get('/app/k').string(), 'v1');
  await alice.put('/app/k').value('v2');
  assert.equal(await alice.get('/app/k').string(), 'v2');
  const wrong = new Etcd3({ hosts: hostOf(h), auth: { username: 'alice', password: 'nope' } });
  clients.push(wrong);
  await assert.rejects(wrong.get('/app/k').string(), EtcdAuthenticationFailedError);
  // The token of a simple-token login no longer works once expired (raw client, no retry).
  const raw = new RawClient(h.clientUrl);
  clients.push(raw);
  const { token } = await raw.call('Auth', 'Authenticate', { name: 'alice', password: 'apw' });
  raw.token = token;
  await raw.range({ key: Buffer.from('/app/k') });
  await sleep(2500);
  await assert.rejects(raw.range({ key: Buffer.from('/app/k') }), (e: { code: number; details: string }) => e.code === 16 && e.details === 'etcdserver: invalid auth token');
});

test('JWT tokens: signed with the configured key, expiry enforced, another key refused', { timeout: 120_000 }, async () => {
  const { pub, priv, privateKey, publicKey } = makeJwtKeys();
  const h = await startEtcetera({ extraArgs: [`--auth-token=jwt,pub-key=${pub},priv-key=${priv},sign-method=RS256,ttl=3s`] });
  handles.push(h);
  await setUp(h);
  const raw = new RawClient(h.clientUrl);
  clients.push(raw);
  const { token } = await raw.call('Auth', 'Authenticate', { name: 'alice', password: 'apw' });
  const claims = jose.decodeJwt(token);
  assert.equal(claims['username'], 'alice');
  assert.equal(typeof claims['revision'], 'number');
  const { payload } = await jose.jwtVerify(token, publicKey, { algorithms: ['RS256'] });
  assert.equal(payload['username'], 'alice');
  raw.token = token;
  await raw.put({ key: Buffer.from('/app/j'), value: Buffer.from('v') });
  await assert.rejects(raw.put({ key: Buffer.from('/zzz'), value: Buffer.from('v') }), (e: { code: number }) => e.code === 7);

  const invalid = (e: { code: number; details: string }): boolean => e.code === 16 && e.details === 'etcdserver: invalid auth token';
  // Same claims, signed with a key the server does not know.
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  raw.token = await new jose.SignJWT({ username: 'root', revision: claims['revision'] as number })
    .setProtectedHeader({ alg: 'RS256' }).setExpirationTime('1h').sign(other);
  await assert.rejects(raw.range({ key: Buffer.from('/app/j') }), invalid);
  // A tampered payload under the genuine signature.
  const [hdr, , sig] = token.split('.');
  const forged = Buffer.from(JSON.stringify({ ...claims, username: 'root' })).toString('base64url');
  raw.token = `${hdr}.${forged}.${sig}`;
  await assert.rejects(raw.range({ key: Buffer.from('/app/j') }), invalid);
  // Expired: the server's own key, exp in the past.
  raw.token = await new jose.SignJWT({ username: 'alice', revision: claims['revision'] as number })
    .setProtectedHeader({ alg: 'RS256' }).setExpirationTime(Math.floor(Date.now() / 1000) - 10).sign(privateKey);
  await assert.rejects(raw.range({ key: Buffer.from('/app/j') }), invalid);
  // The genuine token expires after its ttl (3 s).
  raw.token = token;
  await raw.range({ key: Buffer.from('/app/j') });
  await sleep(4500);
  await assert.rejects(raw.range({ key: Buffer.from('/app/j') }), invalid);
});
