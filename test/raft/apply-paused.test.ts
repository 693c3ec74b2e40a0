/** RawNode.setApplyPaused: committed entries wait in the log while the host's apply sink is full. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStorage, RawNode, StateType } from '../../src/raft';
import { dec, enc, persist, prng } from './helpers';

test('while apply is paused entries still commit but are not handed out; resuming hands them out in order', () => {
  const storage = new MemoryStorage();
  RawNode.bootstrap(storage, [1]);
  const n = new RawNode({ id: 1, electionTick: 10, heartbeatTick: 1, storage, rand: prng(3) });
  n.campaign();
  assert.equal(n.status().state, StateType.Leader);
  const applied0 = n.status().applied;
  n.setApplyPaused(true);
  n.propose(enc('a'));
  n.propose(enc('b'));
  for (let i = 0; i < 5 && n.hasReady(); i++) {
    const rd = n.ready();
    assert.equal(rd.committedEntries.length, 0, 'nothing handed out while paused');
    persist(storage, rd);
    n.advance(rd);
  }
  const commit = n.status().commit;
  assert.equal(commit, n.status().lastIndex, 'the no-op, a and b committed');
  assert.equal(n.status().applied, applied0, 'nothing applied while paused');
  assert.equal(n.hasReady(), false);
  n.setApplyPaused(false);
  assert.equal(n.hasReady(), true);
  const rd = n.ready();
  const idx = rd.committedEntries.map((e) => e.index);
  assert.deepEqual(idx, Array.from({ length: commit - applied0 }, (_, i) => applied0 + 1 + i), 'every held entry, in order');
  assert.deepEqual(rd.committedEntries.slice(-2).map((e) => dec(e.data)), ['a', 'b']);
  persist(storage, rd);
  n.advance(rd);
  assert.equal(n.status().applied, commit);
});
