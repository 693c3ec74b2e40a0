/**
 * `etcdserver: revision of auth store is old`, differential against etcd 3.4. A JWT carries the auth revision it was
 * issued under; once the auth store changed (here: root adds a user), a request with that token was admitted under
 * an older revision, and etcd refuses the key operations — checked at admission for reads and at apply time for
 * writes — while admin RPCs (which do not look at the revision) still pass. A new login gets a token of the
 * current revision. Each answer (result or gRPC code and text) is compared with etcd's, one by one.
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { startServer, hasEtcd, NO_ETCD, type ServerHandle, type ServerKind } from '../helpers/servers';
import { RawClient } from '../helpers/grpc';
import { killAllChildren } from '../helpers/procs';
import { makeJwtKeys } from '../helpers/jwt-keys';

const skip = !hasEtcd() ? NO_ETCD : undefined;
const handles: ServerHandle[] = [];
const clients: RawClient[] = [];
after(async () => {
  for (const c of clients) c.close();
  await Promise.all(handles.map((h) => h.stop()));
  await killAllChildren();
});

const b = (s: string): Buffer => Buffer.from(s);

/** The outcome of a call, without the parts that differ between servers (headers, IDs, revisions). */
async function outcome(c: RawClient, service: string, method: string, req: object, pick: (ok: any) => unknown = () => 'ok'): Promise<unknown> {
  const r = await c.settle(service, method, req);
  return r.err !== undefined ? `${r.err.code} ${r.err.details}` : pick(r.ok);
}

async function scenario(kind: ServerKind, pub: string, priv: string): Promise<Record<string, unknown>> {
  const h = await startServer(kind, { extraArgs: [`--auth-token=jwt,pub-key=${pub},priv-key=${priv},sign-method=RS256,ttl=10m`] });
  handles.push(h);
  const root = new RawClient(h.clientUrl);
  const alice = new RawClient(h.clientUrl);
  clients.push(root, alice);
  await root.put({ key: b('/app/k'), value: b('v') });
  await root.call('Auth', 'UserAdd', { name: 'root', password: 'rootpw' });
  await root.call('Auth', 'RoleAdd', { name: 'root' });
  await root.call('Auth', 'UserGrantRole', { user: 'root', role: 'root' });
  await root.call('Auth', 'RoleAdd', { name: 'app' });
  await root.call('Auth', 'RoleGrantPermission', { name: 'app', perm: { permType: 2, key: b('/app/'), rangeEnd: b('/app0') } });
  await root.call('Auth', 'UserAdd', { name: 'alice', password: 'apw' });
  await root.call('Auth', 'UserGrantRole', { user: 'alice', role: 'app' });
  await root.call('Auth', 'AuthEnable', {});
  root.token = (await root.call('Auth', 'Authenticate', { name: 'root', password: 'rootpw' })).token;
  alice.token = (await alice.call('Auth', 'Authenticate', { name: 'alice', password: 'apw' })).token;
  const value = (ok: { kvs: Array<{ value: Buffer }> }): string => ok.kvs.map((kv) => kv.value.toString()).join(',');
  const out: Record<string, unknown> = {};
  out.freshRange = await outcome(alice, 'KV', 'Range', { key: b('/app/k') }, value);
  out.freshPut = await outcome(alice, 'KV', 'Put', { key: b('/app/k'), value: b('v2') });
  // The auth store moves on: every token issued before is of an old revision.
  await root.call('Auth', 'UserAdd', { name: 'bob', password: 'bpw' });
  out.staleRange = await outcome(alice, 'KV', 'Range', { key: b('/app/k') }, value);
  out.stalePut = await outcome(alice, 'KV', 'Put', { key: b('/app/k'), value: b('v3') });
  out.staleDelete = await outcome(alice, 'KV', 'DeleteRange', { key: b('/app/k') });
  out.staleTxn = await outcome(alice, 'KV', 'Txn', { success: [{ requestRange: { key: b('/app/k') } }] });
  out.staleOutsideRange = await outcome(alice, 'KV', 'Range', { key: b('/other') });
  out.staleRootRange = await outcome(root, 'KV', 'Range', { key: b('/app/k') }, value);
  out.staleRootUserList = await outcome(root, 'Auth', 'UserList', {}, (ok: { users: string[] }) => ok.users.join(','));
  out.staleRootUserGet = await outcome(root, 'Auth', 'UserGet', { name: 'bob' });
  alice.token = (await alice.call('Auth', 'Authenticate', { name: 'alice', password: 'apw' })).token;
  out.reloginRange = await outcome(alice, 'KV', 'Range', { key: b('/app/k') }, value);
  out.reloginPut = await outcome(alice, 'KV', 'Put', { key: b('/app/k'), value: b('v4') });
  return out;
}

test('a JWT of an older auth revision: "revision of auth store is old" for key operations, as etcd 3.4', { skip, timeout: 120_000 }, async () => {
  const { pub, priv } = makeJwtKeys();
  const [etcd, etcetera] = await Promise.all([scenario('etcd', pub, priv), scenario('etcetera', pub, priv)]);
  const old = '3 etcdserver: revision of auth store is old';
  assert.equal(etcd.staleRange, old, `etcd 3.4 answers: ${JSON.stringify(etcd)}`);
  assert.equal(etcd.stalePut, old);
  assert.deepEqual(etcetera, etcd);
});
