/**
 * The v2 store as a replicated state machine, with 3 real members (`--enable-v2=true`, test/cluster/harness.ts):
 * - TTL expiry decided through Raft (the leader's SYNC entries): the node disappears on every member, and every
 *   member's history holds the same `expire` event at the same index;
 * - a follower that missed writes past the leader's compacted log catches up through the database snapshot and then
 *   serves the same v2 store (same nodes, same X-Etcd-Index, same history);
 * - a `wait=true` long poll on a follower survives the leader's death and gets the change made through the new leader;
 * - every member SIGKILLed and restarted serves the same v2 store and history as before.
 * The members use --snapshot-count 50 and 10 catch-up entries (ETCETERA_SNAPSHOT_CATCHUP_ENTRIES).
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { Cluster, type Member, sleep } from '../cluster/harness';
import { longPoll, v2, type HttpAnswer } from './v2-http';

process.env.ETCETERA_SNAPSHOT_CATCHUP_ENTRIES = '10';

let cluster: Cluster | null = null;
after(async () => {
  await cluster?.destroy();
});

const K = '/v2/keys';

/** A v2 write through `m`, retried while the cluster elects or the member restarts (etcd clients retry too). */
async function write(m: Member, method: string, path: string, form?: string): Promise<HttpAnswer> {
  const deadline = Date.now() + 30_000;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const a = await v2(m.clientUrl, method, path, form);
      if (a.status < 500) return a;
      last = `${a.status} ${a.body}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(200);
  }
  throw new Error(`${method} ${path} via ${m.name}: ${last}`);
}

/** Polls `cond` on a member's answers until it holds. */
async function until(what: string, f: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await f().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${cluster?.describe(3000)}`);
    await sleep(200);
  }
}

/** A member's local view of the whole store: the sorted recursive listing and its store index. */
async function view(m: Member): Promise<{ index: string | undefined; body: unknown }> {
  const a = await v2(m.clientUrl, 'GET', `${K}/?recursive=true&sorted=true`);
  assert.equal(a.status, 200, `${m.name}: ${a.body}`);
  const strip = (n: any): any => {
    const { ttl: _ttl, ...rest } = n;
    return rest.nodes ? { ...rest, nodes: rest.nodes.map(strip) } : rest;
  };
  return { index: a.headers['x-etcd-index'] as string | undefined, body: strip(JSON.parse(a.body).node) };
}

async function sameStore(members: Member[]): Promise<{ index: string | undefined; body: unknown }> {
  const views = await Promise.all(members.map(view));
  for (const [i, v] of views.entries()) assert.deepEqual(v, views[0], `${members[i]!.name} vs ${members[0]!.name}`);
  return views[0]!;
}

test('v2 TTL expiry on every member, snapshot catch-up of a lagging follower, long poll across a leader change, restart of every member', { timeout: 300_000 }, async () => {
  cluster = await Cluster.start(3, { extraArgs: ['--enable-v2=true', '--snapshot-count=50'] });
  const c = cluster;
  const leader = await c.leader();

  // TTL expiry: every member loses the node and records the same expire event.
  const perm = await write(leader, 'PUT', `${K}/app/config`, 'value=v1');
  assert.equal(perm.status, 201, perm.body);
  await write(leader, 'PUT', `${K}/app/dir?dir=true`);
  await write(leader, 'PUT', `${K}/app/dir/inside`, 'value=d');
  const t = await write(leader, 'PUT', `${K}/app/session?ttl=2`, 'value=s');
  assert.equal(t.status, 201, t.body);
  const setIndex = Number(t.headers['x-etcd-index']);
  for (const m of c.members) {
    await until(`${m.name} sees the TTL key`, async () => (await v2(m.clientUrl, 'GET', `${K}/app/session`)).status === 200);
  }
  for (const m of c.members) {
    await until(`${m.name} expires the TTL key`, async () => (await v2(m.clientUrl, 'GET', `${K}/app/session`)).status === 404);
  }
  const expires = await Promise.all(c.members.map((m) => v2(m.clientUrl, 'GET', `${K}/app/session?wait=true&waitIndex=${setIndex + 1}`)));
  for (const [i, a] of expires.entries()) {
    assert.equal(a.status, 200, `${c.members[i]!.name}: ${a.body}`);
    const e = JSON.parse(a.body);
    assert.equal(e.action, 'expire', a.body);
    assert.equal(e.prevNode.value, 's', a.body);
    assert.equal(e.node.createdIndex, setIndex, a.body);
    assert.equal(e.node.modifiedIndex, JSON.parse(expires[0]!.body).node.modifiedIndex, 'the same expire index on every member');
  }
  for (const m of c.members) assert.equal((await v2(m.clientUrl, 'GET', `${K}/app/config`)).status, 200, 'permanent nodes stay');
  await c.waitConverged();
  await sameStore(c.members);

  // A follower misses more writes than the leader keeps in its log: it catches up by the database snapshot.
  const follower = c.members.find((m) => m !== leader)!;
  await follower.kill('SIGKILL');
  for (let i = 0; i < 150; i++) {
    const a = await write(leader, i % 3 === 0 ? 'POST' : 'PUT', i % 3 === 0 ? `${K}/lag/queue` : `${K}/lag/k${i % 20}`, `value=${i}`);
    assert.ok(a.status === 200 || a.status === 201, a.body);
  }
  await until('leader compaction', async () => /saved snapshot and compacted raft log/.test(leader.currentLog));
  await follower.start();
  await c.waitConverged(60_000);
  await until('follower installs the snapshot', async () => /installed database snapshot from leader/.test(follower.currentLog));
  const before = await sameStore(c.members);
  const lagIndex = Number(before.index);
  // The follower's history came with the snapshot: a waitIndex into it is answered from there.
  const fromHistory = await v2(follower.clientUrl, 'GET', `${K}/lag?wait=true&recursive=true&waitIndex=${lagIndex - 5}`);
  const fromLeader = await v2(leader.clientUrl, 'GET', `${K}/lag?wait=true&recursive=true&waitIndex=${lagIndex - 5}`);
  assert.equal(fromHistory.status, 200, fromHistory.body);
  assert.deepEqual(JSON.parse(fromHistory.body), JSON.parse(fromLeader.body));
  // New writes replicate to the restored follower, and through it.
  const via = await write(follower, 'PUT', `${K}/lag/via-follower`, 'value=f');
  assert.equal(via.status, 201, via.body);
  await c.waitConverged();
  await sameStore(c.members);

  // A long poll on a follower survives a leader change: the event written through the new leader reaches it.
  const oldLeader = await c.leader();
  const watcherHost = c.members.find((m) => m !== oldLeader)!;
  const poll = longPoll(watcherHost.clientUrl, `${K}/failover/key?wait=true`);
  await poll.headers;
  await oldLeader.kill('SIGKILL');
  const newLeader = await c.leader(60_000, [oldLeader]);
  const w = await write(newLeader, 'PUT', `${K}/failover/key`, 'value=after-failover');
  assert.equal(w.status, 201, w.body);
  const got = await poll.done;
  assert.equal(got.status, 200, got.body);
  assert.equal(JSON.parse(got.body).node.value, 'after-failover', got.body);
  await oldLeader.start();
  await c.waitConverged(60_000);
  const afterFailover = await sameStore(c.members);

  // Every member SIGKILLed and restarted: the same store, index and history.
  for (const m of c.members) await m.kill('SIGKILL');
  await Promise.all(c.members.map((m) => m.start()));
  await c.leader();
  await c.waitConverged(60_000);
  const restarted = await sameStore(c.members);
  assert.deepEqual(restarted, afterFailover, 'the v2 store survives a restart of every member');
  const hist = await v2(c.members[2]!.clientUrl, 'GET', `${K}/lag/via-follower?wait=true&waitIndex=${lagIndex}`);
  assert.equal(hist.status, 200, hist.body);
  assert.equal(JSON.parse(hist.body).action, 'set');
});
