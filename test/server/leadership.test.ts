/**
 * Leader tracking (src/server/leadership.ts) against a recorded host: what a role change from the Raft host does —
 * a new leader fails outstanding ReadIndex rounds with "leader changed" and is counted, attributes are published
 * once a leader is known, the term only grows, the `leader` event carries (lead, isLeader, term), and the
 * has_leader / is_leader gauges follow. End to end: test/cluster/failover.test.ts, move-leader.test.ts.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Leadership } from '../../src/server/leadership';
import { ServerEvents } from '../../src/server/events';
import { StateType } from '../../src/raft';
import { metrics } from '../../src/metrics/registry';
import { createLogger } from '../../src/log';

const gauge = async (g: { get(): Promise<{ values: { value: number }[] }> }): Promise<number> => (await g.get()).values[0]?.value ?? NaN;

function setup(term = 0) {
  const failed: string[] = [];
  const leaderEvents: [number, boolean, number][] = [];
  let published = 0;
  const events = new ServerEvents();
  events.on('leader', (lead, isLeader, t) => void leaderEvents.push([lead, isLeader, t]));
  const l = new Leadership(
    { logger: createLogger('error'), reads: { failAll: (code) => void failed.push(code) }, publishAttributes: () => void published++, events },
    term,
  );
  return { l, failed, leaderEvents, published: () => published };
}

test('starts with no leader at the recovered term', () => {
  const s = setup(7);
  assert.equal(s.l.lead, 0);
  assert.equal(s.l.isLeader, false);
  assert.equal(s.l.term, 7);
});

test('a new leader fails outstanding reads with LeaderChanged, is counted, publishes attributes and emits `leader`', async () => {
  const s = setup(1);
  const changes = async (): Promise<number> => gauge(metrics.etcd_server_leader_changes_seen_total as never);
  const before = await changes();
  s.l.changed(5, StateType.Follower, 2);
  assert.deepEqual(s.failed, ['LeaderChanged']);
  assert.equal(s.published(), 1);
  assert.deepEqual(s.leaderEvents, [[5, false, 2]]);
  assert.equal(await changes(), before + 1);
  assert.equal(await gauge(metrics.etcd_server_has_leader as never), 1);
  assert.equal(await gauge(metrics.etcd_server_is_leader as never), 0);

  // The same leader again (e.g. a role change of this member only): not a new leader, reads are not failed.
  s.l.changed(5, StateType.Follower, 2);
  assert.deepEqual(s.failed, ['LeaderChanged']);
  assert.equal(await changes(), before + 1);
});

test('losing the leader: no read failure, no publication, has_leader 0; the term never goes back', async () => {
  const s = setup(4);
  s.l.changed(1, StateType.Leader, 4);
  assert.equal(s.l.isLeader, true);
  assert.equal(await gauge(metrics.etcd_server_is_leader as never), 1);
  s.l.changed(0, StateType.PreCandidate, 3); // a pre-candidate reports its own (unchanged) term: never lower it
  assert.equal(s.l.lead, 0);
  assert.equal(s.l.isLeader, false);
  assert.equal(s.l.term, 4);
  assert.deepEqual(s.failed, ['LeaderChanged'], 'only the first (new leader 1) failed reads');
  assert.equal(s.published(), 1, 'attributes are published only while a leader is known');
  assert.equal(await gauge(metrics.etcd_server_has_leader as never), 0);
  assert.deepEqual(s.leaderEvents.at(-1), [0, false, 4]);
});
