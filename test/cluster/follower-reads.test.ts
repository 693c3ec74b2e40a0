/**
 * Read-your-writes across members: a linearizable Range on a follower returns a write the leader (or another
 * follower) acknowledged just before, many times in a row.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from './harness';
import { killAllChildren } from '../helpers';

let cluster: Cluster | null = null;
after(async () => { await cluster?.destroy(); await killAllChildren(); });

const ROUNDS = 300;

test('follower linearizable reads see the write acknowledged just before (read-your-writes across members)', { timeout: 300_000 }, async () => {
  cluster = await Cluster.start(3);
  const c = cluster;
  const leader = await c.leader();
  const followers = c.members.filter((m) => m !== leader);
  for (let i = 0; i < ROUNDS; i++) {
    // Alternate: write on the leader, read on a follower; and write on one follower, read on the other.
    const writer = i % 3 === 2 ? followers[0] : leader;
    const reader = i % 3 === 2 ? followers[1] : followers[i % 2];
    const key = Buffer.from(`ryw/${i % 7}`);
    const value = Buffer.from(`value-${i}`);
    const put = await writer.client.call('KV', 'Put', { key, value });
    const r = await reader.client.call('KV', 'Range', { key });
    assert.equal(r.kvs.length, 1, `round ${i}: ${reader.name} does not see ${key} written via ${writer.name}`);
    assert.equal(Buffer.from(r.kvs[0].value).toString(), value.toString(), `round ${i}: ${reader.name} returned a stale value (write via ${writer.name} at rev ${put.header.revision})`);
    assert.equal(r.kvs[0].modRevision, put.header.revision, `round ${i}: modRevision`);
    assert.ok(r.header.revision >= put.header.revision, `round ${i}: read header revision ${r.header.revision} < write ${put.header.revision}`);
  }

  // Concurrent variant: many writes in flight, each followed by a read on a different member.
  const errs: string[] = [];
  await Promise.all(Array.from({ length: 8 }, async (_x, w) => {
    for (let i = 0; i < 40; i++) {
      const writer = c.members[(w + i) % 3];
      const reader = c.members[(w + i + 1) % 3];
      const key = Buffer.from(`ryw-par/${w}`);
      const put = await writer.client.call('KV', 'Put', { key, value: Buffer.from(`${i}`) });
      const r = await reader.client.call('KV', 'Range', { key });
      if (r.kvs.length !== 1 || r.kvs[0].modRevision < put.header.revision) {
        errs.push(`writer ${w} #${i}: wrote via ${writer.name} at ${put.header.revision}, ${reader.name} read ${JSON.stringify(r.kvs[0]?.modRevision)}`);
      }
    }
  }));
  assert.deepEqual(errs, []);
  // The leader did not change underneath (otherwise the test was not testing follower reads).
  assert.equal(await c.leader(), leader);
});

test('a linearizable read outstanding when a new leader is elected fails with "etcdserver: leader changed" (etcd 3.4 linearizableReadLoop)', { timeout: 180_000 }, async () => {
  assert.ok(cluster, 'runs on the cluster of the previous test');
  const c = cluster;
  const leader = await c.leader();
  const followers = c.members.filter((m) => m !== leader);
  await leader.kill('SIGKILL');
  // Sent right after the kill: each follower's ReadIndex goes to the dead leader and stays unanswered until the
  // election, which must fail it rather than leave it waiting for the request timeout.
  const outcomes = await Promise.all(followers.map(async (f) => {
    try {
      await f.client.call('KV', 'Range', { key: Buffer.from('ryw/0') }, 60_000);
      return { member: f.name, ok: true, code: 0, details: '' };
    } catch (e) {
      const err = e as { code?: number; details?: string };
      return { member: f.name, ok: false, code: err.code ?? -1, details: err.details ?? String(e) };
    }
  }));
  for (const o of outcomes) assert.deepEqual({ ...o, ok: false, code: 14, details: 'etcdserver: leader changed' }, o, `${o.member}: ${JSON.stringify(o)}`);
  // The new leader serves linearizable reads on both survivors afterwards.
  await c.leader(60_000, [leader]);
  for (const f of followers) {
    const r = await f.client.call('KV', 'Range', { key: Buffer.from('ryw/0') });
    assert.equal(r.kvs.length, 1, `${f.name} reads after the election`);
  }
});
