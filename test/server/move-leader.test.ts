/**
 * src/server/move-leader.ts against a scripted host: etcd 3.4's checks in etcd's order (not leader, then bad
 * transferee), the immediate success for the current leader, success once the target is seen leading, and the
 * timeout error when it never is. The real cluster is exercised in test/cluster/move-leader.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { moveLeader, type MoveLeaderHost } from '../../src/server/move-leader';
import { EtcdError } from '../../src/errors';

const A = 11;
const B = 22;
const LEARNER = 33;

function fakeHost(localId: number, lead: number): MoveLeaderHost & { events: EventEmitter; transfers: number[]; setLead(l: number): void } {
  let current = lead;
  const events = new EventEmitter();
  return {
    localId,
    lead: () => current,
    members: () => [{ id: A, isLearner: false }, { id: B, isLearner: false }, { id: LEARNER, isLearner: true }],
    transfers: [],
    transferLeader(to: number) { this.transfers.push(to); },
    events,
    setLead(l: number) { current = l; events.emit('leader', l, l === localId, 2); },
  };
}

async function rejection(p: Promise<unknown>): Promise<[number, string]> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof EtcdError, String(e));
    return [e.code, e.details];
  }
  assert.fail('expected a rejection');
}

test('a follower, or a member without a leader, answers "not leader" before looking at the target', async () => {
  assert.deepEqual(await rejection(moveLeader(fakeHost(A, B), 999, 1000)), [9, 'etcdserver: not leader']);
  assert.deepEqual(await rejection(moveLeader(fakeHost(A, 0), B, 1000)), [9, 'etcdserver: not leader']);
});

test('an unknown member or a learner is a bad transferee; nothing is asked of Raft', async () => {
  const h = fakeHost(A, A);
  for (const target of [999, 0, LEARNER]) {
    assert.deepEqual(await rejection(moveLeader(h, target, 1000)), [9, 'etcdserver: bad leader transferee']);
  }
  assert.deepEqual(h.transfers, []);
});

test('moving to the current leader succeeds at once', async () => {
  const h = fakeHost(A, A);
  await moveLeader(h, A, 1000);
  assert.deepEqual(h.transfers, []);
});

test('resolves once this member sees the target lead, not on intermediate leader changes', async () => {
  const h = fakeHost(A, A);
  let settled = false;
  const p = moveLeader(h, B, 60_000).then(() => { settled = true; });
  assert.deepEqual(h.transfers, [B]);
  h.setLead(0);
  await new Promise((r) => setImmediate(r));
  assert.equal(settled, false);
  h.setLead(B);
  await p;
  assert.equal(h.events.listenerCount('leader'), 0);
});

test('a target that never leads ends with etcd\'s leader-transfer timeout (gRPC Unknown)', async () => {
  const h = fakeHost(A, A);
  const keepAlive = setTimeout(() => {}, 10_000); // the module's timer is unref'd
  try {
    assert.deepEqual(await rejection(moveLeader(h, B, 20)), [2, 'etcdserver: request timed out, leader transfer took too long']);
  } finally {
    clearTimeout(keepAlive);
  }
  assert.equal(h.events.listenerCount('leader'), 0);
});
