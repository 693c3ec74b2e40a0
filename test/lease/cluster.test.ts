/**
 * Lease API on a 3-member etcetera cluster: keep-alive and TimeToLive through a follower are served by the
 * leader (forwarded over gRPC); a lease kept alive through a follower survives well past its TTL; after the
 * leader is SIGKILLed, a lease kept alive across the leader change does not expire and its keys remain, while an
 * unrenewed lease is still expired by the new leader (its keys deleted on every member at the same revision).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { Cluster, localSnapshot, sleep } from '../cluster/harness';
import { killAllChildren } from '../helpers';
import { LeaseClient } from './lease-client';

let cluster: Cluster | null = null;
const clients: { close(): void }[] = [];
after(async () => {
  for (const c of clients) c.close();
  await cluster?.destroy();
  await killAllChildren();
});

test('3 members: leases through a follower, and across a leader SIGKILL', { timeout: 240_000 }, async () => {
  cluster = await Cluster.start(3);
  const c = cluster;
  const leader = await c.leader();
  const follower = c.members.find((m) => m !== leader)!;
  const other = c.members.find((m) => m !== leader && m !== follower)!;

  // Everything goes through one follower only.
  const etcd = new Etcd3({ hosts: follower.clientUrl });
  clients.push(etcd);
  const lc = new LeaseClient(follower.clientUrl);
  clients.push(lc);

  const kept = etcd.lease(4); // auto keep-alive through the follower
  const keptId = Number(await kept.grant());
  await kept.put('/cl/kept').value('k');

  const g = await lc.grant(5);
  const loose = g.ID as number;
  await c.members[0]!.client.put({ key: Buffer.from('/cl/loose'), value: Buffer.from('l'), lease: loose });

  // TimeToLive and a keep-alive answered through the follower.
  const t = await lc.timeToLive(keptId, true);
  assert.equal(t.grantedTTL, 4);
  assert.ok(t.TTL >= 2 && t.TTL <= 4, `remaining ${t.TTL}`);
  assert.deepEqual(t.keys.map((k: Buffer) => k.toString()), ['/cl/kept']);
  const ka = await lc.keepAlive([keptId, 0x777]);
  assert.deepEqual(ka.map((r) => [r.ID, r.TTL]), [[keptId, 4], [0x777, 0]]);
  assert.equal((await lc.timeToLive(0x777)).TTL, -1);

  await sleep(9000); // > 2 TTLs of `kept`, renewed only through the follower
  assert.equal(await etcd.get('/cl/kept').string(), 'k');

  // SIGKILL the leader; the follower's keep-alives move to the new leader.
  await leader.kill('SIGKILL');
  const newLeader = await c.leader(60_000, [leader]);
  assert.notEqual(newLeader, leader);
  await sleep(10_000); // > 2 TTLs of `kept` after the change
  assert.equal(await etcd.get('/cl/kept').string(), 'k', 'a lease kept alive across the leader change must not expire');
  const t2 = await lc.timeToLive(keptId);
  assert.ok(t2.TTL > 0, `remaining after failover ${t2.TTL}`);

  // The unrenewed lease is expired by the new leader, on both live members, at the same revision.
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && (await etcd.get('/cl/loose').string()) !== null) await sleep(250);
  assert.equal(await etcd.get('/cl/loose').string(), null);
  const [s1, s2] = await Promise.all([localSnapshot(follower), localSnapshot(other)]);
  assert.deepEqual(s1.kvs.map((k) => k.key), s2.kvs.map((k) => k.key));
  assert.ok(s1.kvs.some((k) => k.key === '/cl/kept'));

  await kept.revoke();
  assert.equal(await etcd.get('/cl/kept').string(), null);
});
