/**
 * Auth across a 3-member etcetera cluster: users, roles and the enabled flag go through Raft, so every member
 * enforces them; a simple token issued by one member is accepted by the others (its entry carries the token);
 * auth state survives a member restart (it lives in LMDB with the data), and reaches a member that missed it through
 * a Raft snapshot: down while users, roles, permissions and the enabled flag were set, its missing log compacted
 * away meanwhile (--snapshot-count 50, 10 catch-up entries), it catches up through a streamed database snapshot and
 * then enforces the same store. (etcd keeps auth in the backend its snapshots carry; etcetera in the LMDB store it
 * streams.)
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { startEtcetera, type ServerHandle } from '../helpers/servers';
import { RawClient } from '../helpers/grpc';
import { killAllChildren } from '../helpers/procs';

const clusters: ServerHandle[] = [];
const clients: RawClient[] = [];
after(async () => {
  for (const c of clients) c.close();
  await Promise.all(clusters.map((c) => c.stop()));
  await killAllChildren();
});
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const b = (s: string): Buffer => Buffer.from(s);

/**
 * Retries a call refused as Unavailable (an election under load: "leader changed", "no leader") or timed out (a
 * member still catching up), as clients do.
 */
async function retry<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      const code = (e as { code?: number }).code;
      if ((code !== 14 && code !== 4) || Date.now() > deadline) throw e;
      await sleep(200);
    }
  }
}

async function errOf(fn: () => Promise<unknown>): Promise<string> {
  try {
    await retry(fn);
    return 'ok';
  } catch (e) {
    const se = e as { code: number; details: string };
    return `${se.code} ${se.details}`;
  }
}

test('auth state reaches every member, tokens work cluster-wide, and a restart keeps it', { timeout: 180_000 }, async () => {
  const cluster = await startEtcetera({ members: 3 });
  clusters.push(cluster);
  const members = cluster.members!;
  const c = members.map((m) => new RawClient(m.clientUrl));
  clients.push(...c);
  const [c1, c2, c3] = c as [RawClient, RawClient, RawClient];
  await retry(() => c1.call('Auth', 'UserAdd', { name: 'root', password: 'rootpw' }));
  await retry(() => c1.call('Auth', 'RoleAdd', { name: 'root' }));
  await retry(() => c1.call('Auth', 'UserGrantRole', { user: 'root', role: 'root' }));
  await retry(() => c2.call('Auth', 'UserAdd', { name: 'alice', password: 'apw' }));
  await retry(() => c2.call('Auth', 'RoleAdd', { name: 'a-rw' }));
  await retry(() => c3.call('Auth', 'RoleGrantPermission', { name: 'a-rw', perm: { permType: 2, key: b('/a/'), rangeEnd: b('/a0') } }));
  await retry(() => c3.call('Auth', 'UserGrantRole', { user: 'alice', role: 'a-rw' }));
  await retry(() => c1.call('Auth', 'AuthEnable', {}));

  // A token from member 1 is accepted by members 2 and 3.
  const { token } = await retry(() => c1.call('Auth', 'Authenticate', { name: 'alice', password: 'apw' }));
  assert.match(token, /^[a-zA-Z]{16}\.\d+$/);
  for (const x of c) x.token = token;
  assert.equal(await errOf(() => c2.put({ key: b('/a/k'), value: b('v') })), 'ok');
  assert.equal(await errOf(() => c3.range({ key: b('/a/k') })), 'ok');
  for (const x of c) {
    assert.equal(await errOf(() => x.range({ key: b('/b') })), '7 etcdserver: permission denied');
    assert.equal(await errOf(() => x.put({ key: b('/b'), value: b('v') })), '7 etcdserver: permission denied');
  }
  // Admin-only on every member.
  assert.equal(await errOf(() => c3.call('Auth', 'UserList', {})), '7 etcdserver: permission denied');
  for (const x of c) x.token = 'nosuchtokenabcde.1';
  assert.equal(await errOf(() => c2.range({ key: b('/a/k') })), '16 etcdserver: invalid auth token');
  for (const x of c) x.token = undefined;
  assert.equal(await errOf(() => c3.put({ key: b('/a/k'), value: b('v') })), '3 etcdserver: user name is empty');

  // Restart member 2: it still enforces the same store.
  const m2 = members[1]!;
  await m2.kill('SIGTERM');
  await m2.restart({ noWait: true }); // the helper's readiness probe reads without credentials
  const r2 = new RawClient(m2.clientUrl);
  clients.push(r2);
  const deadline = Date.now() + 60_000;
  let seen = '';
  while (Date.now() < deadline && (seen = await errOf(() => r2.range({ key: b('/a/k') }))) !== '3 etcdserver: user name is empty') await new Promise((r) => setTimeout(r, 200));
  assert.equal(seen, '3 etcdserver: user name is empty');
  assert.equal(await errOf(() => r2.put({ key: b('/a/k'), value: b('v') })), '3 etcdserver: user name is empty');
  const root = await retry(() => r2.call('Auth', 'Authenticate', { name: 'root', password: 'rootpw' }));
  r2.token = root.token;
  const users = await retry(() => r2.call('Auth', 'UserList', {}));
  assert.deepEqual(users.users, ['alice', 'root']);
  const role = await retry(() => r2.call('Auth', 'RoleGet', { role: 'a-rw' }));
  assert.deepEqual(role.perm.map((p: { key: Buffer; rangeEnd: Buffer; permType: number }) => [p.key.toString(), p.rangeEnd.toString(), p.permType]), [['/a/', '/a0', 2]]);
  const alice = await retry(() => r2.call('Auth', 'Authenticate', { name: 'alice', password: 'apw' }));
  r2.token = alice.token;
  assert.equal(await errOf(() => r2.range({ key: b('/b') })), '7 etcdserver: permission denied');
  assert.equal(await errOf(() => r2.put({ key: b('/a/x'), value: b('v') })), 'ok');
  // A wrong password is refused on the restarted member too.
  assert.equal(await errOf(() => r2.call('Auth', 'Authenticate', { name: 'alice', password: 'nope' })), '3 etcdserver: authentication failed, invalid user ID or password');
});

async function metric(h: ServerHandle, name: string): Promise<number> {
  const text = await (await fetch(`${h.clientUrl}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`)).reduce((s, l) => s + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

test('auth state reaches a member that missed it through a Raft snapshot', { timeout: 240_000 }, async () => {
  const cluster = await startEtcetera({ members: 3, extraArgs: ['--snapshot-count=50'], env: { ETCETERA_SNAPSHOT_CATCHUP_ENTRIES: '10' } });
  clusters.push(cluster);
  const [m1, , m3] = cluster.members! as [ServerHandle, ServerHandle, ServerHandle];
  await m3.kill('SIGKILL');
  const c1 = new RawClient(m1.clientUrl);
  clients.push(c1);
  await retry(() => c1.call('Auth', 'UserAdd', { name: 'root', password: 'rootpw' }));
  await retry(() => c1.call('Auth', 'RoleAdd', { name: 'root' }));
  await retry(() => c1.call('Auth', 'UserGrantRole', { user: 'root', role: 'root' }));
  await retry(() => c1.call('Auth', 'UserAdd', { name: 'alice', password: 'apw' }));
  await retry(() => c1.call('Auth', 'RoleAdd', { name: 'a-rw' }));
  await retry(() => c1.call('Auth', 'RoleGrantPermission', { name: 'a-rw', perm: { permType: 2, key: b('/a/'), rangeEnd: b('/a0') } }));
  await retry(() => c1.call('Auth', 'UserGrantRole', { user: 'alice', role: 'a-rw' }));
  await retry(() => c1.call('Auth', 'AuthEnable', {}));
  c1.token = (await retry(() => c1.call('Auth', 'Authenticate', { name: 'root', password: 'rootpw' }))).token;
  // Enough entries that the log member 3 misses is compacted past it (snapshot every 50, 10 kept).
  for (let i = 0; i < 200; i++) await retry(() => c1.put({ key: b(`/fill/${i}`), value: b('x'.repeat(100)) }));

  await m3.restart({ noWait: true }); // the helper's readiness probe reads without credentials
  const r3 = new RawClient(m3.clientUrl);
  clients.push(r3);
  const deadline = Date.now() + 90_000;
  let seen = '';
  while (Date.now() < deadline && (seen = await errOf(() => r3.call('KV', 'Range', { key: b('/a/k'), serializable: true }))) !== '3 etcdserver: user name is empty') await sleep(300);
  assert.equal(seen, '3 etcdserver: user name is empty', 'member 3 enforces auth');
  assert.ok((await metric(m3, 'etcd_network_snapshot_receive_success')) >= 1, `member 3 caught up through a snapshot:\n${m3.output().slice(-3000)}`);

  r3.token = (await retry(() => r3.call('Auth', 'Authenticate', { name: 'root', password: 'rootpw' }))).token;
  assert.deepEqual((await retry(() => r3.call('Auth', 'UserList', {}))).users, ['alice', 'root']);
  const role = await retry(() => r3.call('Auth', 'RoleGet', { role: 'a-rw' }));
  assert.deepEqual(role.perm.map((p: { key: Buffer; rangeEnd: Buffer; permType: number }) => [p.key.toString(), p.rangeEnd.toString(), p.permType]), [['/a/', '/a0', 2]]);
  assert.equal((await retry(() => r3.call('KV', 'Range', { key: b('/fill/'), rangeEnd: b('/fill0'), countOnly: true, serializable: true }))).count, 200);
  r3.token = (await retry(() => r3.call('Auth', 'Authenticate', { name: 'alice', password: 'apw' }))).token;
  assert.equal(await errOf(() => r3.put({ key: b('/a/k'), value: b('v') })), 'ok');
  assert.equal(await errOf(() => r3.range({ key: b('/fill/1') })), '7 etcdserver: permission denied');
  assert.equal(await errOf(() => r3.call('Auth', 'Authenticate', { name: 'alice', password: 'nope' })), '3 etcdserver: authentication failed, invalid user ID or password');
});
