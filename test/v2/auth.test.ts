/**
 * Differential test of the v2 auth API (`/v2/auth/…`, etcd 3.4 with `--enable-v2=true`): the same sequence of user,
 * role and enable/disable requests (with and without basic-auth credentials) against etcd and etcetera; status,
 * Content-Type, Allow, the JSON body and how far each request moved the v2 store index (X-Etcd-Index of a root GET
 * afterwards) compared. Also the keys API under auth: guest access, a user limited to a prefix, bad passwords (401
 * code 110), and the auth state surviving a restart of the etcetera member.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { hasEtcd, NO_ETCD } from '../helpers/servers';
import { request, type HttpAnswer } from '../gateway/http';
import { v2Pair } from './v2-http';

const pair = v2Pair();

const basic = (user: string, pw: string): string => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;
const ROOT = basic('root', 'rootpw');

interface Step {
  method?: string;
  path: string;
  body?: string;
  auth?: string;
  form?: boolean;
}

async function index(base: string): Promise<number> {
  const a = await request(base, 'GET', '/v2/keys/', undefined, { authorization: ROOT });
  return Number(a.headers['x-etcd-index']);
}

function view(a: HttpAnswer, moved: number): unknown {
  let body: unknown = a.body;
  try {
    body = a.body === '' ? '' : JSON.parse(a.body);
  } catch {
    // text answers (405)
  }
  // etcd lists a key's children in Go map order; the auth lists are sorted by name on both sides.
  if (body !== null && typeof body === 'object' && 'node' in body) {
    const n = (body as { node: { nodes?: unknown[]; modifiedIndex?: number; createdIndex?: number } }).node;
    delete n.modifiedIndex;
    delete n.createdIndex;
    n.nodes?.sort();
  }
  if (body !== null && typeof body === 'object' && 'index' in body) delete (body as { index?: number }).index;
  return {
    status: a.status,
    contentType: a.headers['content-type'],
    allow: a.headers['allow'],
    clusterId: a.headers['x-etcd-cluster-id'] !== undefined,
    trailingNewline: a.body.endsWith('\n'),
    body,
    moved,
  };
}

async function send(base: string, s: Step): Promise<unknown> {
  const before = await index(base);
  const headers: Record<string, string> = {};
  if (s.auth !== undefined) headers.authorization = s.auth;
  if (s.form) headers['content-type'] = 'application/x-www-form-urlencoded';
  const a = await request(base, s.method ?? 'GET', s.path, s.body, headers);
  // A write's index moves before it is answered; reads must not move it.
  return view(a, (await index(base)) - before);
}

async function run(steps: Step[]): Promise<void> {
  for (const [i, s] of steps.entries()) {
    const [a, b] = await Promise.all([send(pair.etcd.clientUrl, s), send(pair.etc.clientUrl, s)]);
    assert.deepEqual(b, a, `step ${i}: ${s.method ?? 'GET'} ${s.path} ${s.body ?? ''}`);
  }
}

const A = '/v2/auth';
const json = (v: unknown): string => JSON.stringify(v);

test('v2 auth: users, roles, enable/disable, keys under auth', { skip: !hasEtcd() && NO_ETCD }, async () => {
  await run([
    { path: `${A}/enable` },
    { path: `${A}/users` },
    { path: `${A}/roles` },
    { path: `${A}/roles/root` },
    { path: `${A}/roles/guest` },
    { path: `${A}/users/root` },
    { method: 'POST', path: `${A}/users/x` },
    { method: 'POST', path: `${A}/users` },
    { method: 'PATCH', path: `${A}/enable` },
    { path: `${A}` },
    { path: `${A}/nope` },
    { method: 'PUT', path: `${A}/enable` },
    { method: 'DELETE', path: `${A}/enable` },
    // the first change takes etcd's setup indexes too
    { method: 'PUT', path: `${A}/roles/r1`, body: json({ role: 'r1' }) },
    { method: 'PUT', path: `${A}/roles/r1`, body: json({ role: 'r1' }) },
    { method: 'PUT', path: `${A}/roles/r1`, body: json({ role: 'r1', grant: { kv: { read: ['/foo/*'], write: ['/foo/*'] } } }) },
    { method: 'PUT', path: `${A}/roles/r1`, body: json({ role: 'r1', grant: { kv: { read: ['/foo/*'] } } }) },
    { method: 'PUT', path: `${A}/roles/r1`, body: json({ role: 'r1', revoke: { kv: { read: ['/zz'] } } }) },
    { method: 'PUT', path: `${A}/roles/r2`, body: json({ role: 'r2', permissions: { kv: { read: ['/a'] } } }) },
    { method: 'PUT', path: `${A}/roles/r2`, body: json({ role: 'r2', revoke: { kv: { read: ['/a'] } } }) },
    { method: 'PUT', path: `${A}/roles/r2`, body: json({ role: 'r3' }) },
    { method: 'PUT', path: `${A}/roles/r2`, body: json({ role: 'r2', permissions: { kv: { read: ['/a'] } }, grant: { kv: { read: ['/c'] } } }) },
    { method: 'PUT', path: `${A}/roles/root`, body: json({ role: 'root' }) },
    { method: 'DELETE', path: `${A}/roles/root` },
    { method: 'DELETE', path: `${A}/roles/r2` },
    { method: 'DELETE', path: `${A}/roles/r2` },
    { method: 'PUT', path: `${A}/roles/r9`, body: json({ role: 'r9', grant: { kv: { read: ['/a'] } } }) },
    { method: 'PUT', path: `${A}/users/al`, body: 'garbage' },
    { method: 'PUT', path: `${A}/users/al`, body: json({ user: 'bo' }) },
    { method: 'PUT', path: `${A}/users/al`, body: json({ user: 'al' }) },
    { method: 'PUT', path: `${A}/users/al`, body: json({ user: 'al', grant: ['r1'] }) },
    { method: 'PUT', path: `${A}/users/al`, body: json({ user: 'al', roles: ['x'], grant: ['r1'] }) },
    { method: 'PUT', path: `${A}/users/al`, body: json({ user: 'al', password: 'alpw' }) },
    { method: 'PUT', path: `${A}/users/al`, body: json({ user: 'al' }) },
    { method: 'PUT', path: `${A}/users/al`, body: json({ user: 'al', grant: ['r1'] }) },
    { method: 'PUT', path: `${A}/users/al`, body: json({ user: 'al', grant: ['r1'] }) },
    { method: 'PUT', path: `${A}/users/al`, body: json({ user: 'al', revoke: ['r2'] }) },
    { method: 'PUT', path: `${A}/users/bo`, body: json({ user: 'bo', password: 'bopw', roles: ['r1'] }) },
    { method: 'PUT', path: `${A}/users/bo`, body: json({ user: 'bo', password: 'bopw', roles: ['r1'] }) },
    { method: 'PUT', path: `${A}/users/cy`, body: json({ user: 'cy', password: 'cypw', roles: ['gone'] }) },
    { path: `${A}/users/cy` },
    { path: `${A}/users/al` },
    { path: `${A}/users/` },
    { path: `${A}/users` },
    { path: `${A}/roles` },
    { method: 'DELETE', path: `${A}/users/cy` },
    { method: 'DELETE', path: `${A}/users/cy` },
    { method: 'PUT', path: `${A}/enable` },
    { method: 'PUT', path: `${A}/users/root`, body: json({ user: 'root', password: 'rootpw' }) },
    { method: 'PUT', path: `${A}/users/root`, body: json({ user: 'root', password: 'rootpw' }) },
    { path: `${A}/users/root` },
    // enable: the guest role is created with full access, then the flag
    { method: 'PUT', path: `${A}/enable` },
    { path: `${A}/enable` },
    { path: `${A}/users` },
    { path: `${A}/users`, auth: basic('root', 'wrong') },
    { path: `${A}/users`, auth: basic('al', 'alpw') },
    { path: `${A}/users`, auth: ROOT },
    { path: `${A}/roles/guest`, auth: ROOT },
    { method: 'PUT', path: `${A}/enable`, auth: ROOT },
    { method: 'OPTIONS', path: `${A}/users` },
    // membership changes need root while auth is on
    { method: 'PUT', path: '/v2/members/zz', body: '{}' },
    { method: 'DELETE', path: '/v2/members/1234' },
    { method: 'DELETE', path: '/v2/members/1234', auth: basic('al', 'alpw') },
    { method: 'DELETE', path: '/v2/members/1234', auth: ROOT },
    { method: 'DELETE', path: `${A}/users/root`, auth: ROOT },
    // keys: guest has full access until its role is narrowed; al reaches /foo only
    { method: 'PUT', path: '/v2/keys/k', body: 'value=1', form: true },
    { method: 'PUT', path: '/v2/keys/foo/a', body: 'value=1', form: true, auth: basic('al', 'alpw') },
    { method: 'PUT', path: '/v2/keys/k', body: 'value=2', form: true, auth: basic('al', 'alpw') },
    { method: 'GET', path: '/v2/keys/k', auth: basic('al', 'alpw') },
    { method: 'GET', path: '/v2/keys/foo/a', auth: basic('al', 'wrong') },
    { method: 'GET', path: '/v2/keys/foo/a', auth: basic('nobody', 'x') },
    { method: 'PUT', path: `${A}/roles/guest`, body: json({ role: 'guest', revoke: { kv: { read: ['/*'], write: ['/*'] } } }), auth: ROOT },
    { method: 'GET', path: '/v2/keys/k' },
    { method: 'PUT', path: '/v2/keys/k', body: 'value=3', form: true },
    { method: 'GET', path: '/v2/keys/k', auth: ROOT },
    { method: 'DELETE', path: `${A}/enable` },
    { method: 'DELETE', path: `${A}/enable`, auth: basic('al', 'alpw') },
    { method: 'DELETE', path: `${A}/enable`, auth: ROOT },
    { method: 'DELETE', path: `${A}/enable`, auth: ROOT },
    { path: `${A}/enable` },
    { method: 'GET', path: '/v2/keys/k' },
    { method: 'DELETE', path: `${A}/roles/guest` },
    { path: `${A}/roles` },
    // without the guest role, requests without credentials are refused while auth is on
    { method: 'PUT', path: `${A}/enable` },
    { method: 'PUT', path: `${A}/enable`, auth: ROOT },
    { method: 'DELETE', path: `${A}/roles/guest`, auth: ROOT },
    { method: 'GET', path: '/v2/keys/k' },
    { method: 'GET', path: '/v2/keys/k', auth: ROOT },
    // etcd answers a revoke of root's own role but root keeps it
    { method: 'PUT', path: `${A}/users/root`, body: json({ user: 'root', revoke: ['root'] }), auth: ROOT },
    { path: `${A}/users/root`, auth: ROOT },
    { method: 'PUT', path: `${A}/users/root`, body: json({ user: 'root', grant: ['r1'] }), auth: ROOT },
    { method: 'DELETE', path: `${A}/enable`, auth: ROOT },
  ]);
});

test('v2 auth state survives a restart', { skip: !hasEtcd() && NO_ETCD }, async () => {
  let etc = pair.etc;
  const put = await request(etc.clientUrl, 'PUT', `${A}/users/dee`, json({ user: 'dee', password: 'deepw' }), { authorization: ROOT });
  assert.ok(put.status === 201 || put.status === 200, put.body);
  const before = await request(etc.clientUrl, 'GET', `${A}/users`, undefined, { authorization: ROOT });
  await etc.stop({ keepData: true });
  etc = pair.etc = await etc.restart();
  const after = await request(etc.clientUrl, 'GET', `${A}/users`, undefined, { authorization: ROOT });
  assert.equal(after.status, 200);
  assert.equal(after.body, before.body);
  assert.match(after.body, /"user":"dee"/);
});
