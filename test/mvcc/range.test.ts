import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Errors } from '../../src/errors';
import { SortOrder, SortTarget } from '../../src/mvcc/range';
import { errId, freshStore, keys, put, rng, s } from './util';

/** keys a..e; versions: c=3, a=2, others 1; values reversed order. */
function fill() {
  const { store } = freshStore();
  store.put(put('a', 'z')); // 2
  store.put(put('b', 'y')); // 3
  store.put(put('c', 'x')); // 4
  store.put(put('d', 'w')); // 5
  store.put(put('e', 'v')); // 6
  store.put(put('c', 'x2')); // 7
  store.put(put('a', 'z2')); // 8
  store.put(put('c', 'x3')); // 9
  store.put(put('zz', 'q')); // 10
  return store;
}

for (const historical of [false, true]) {
  const rev = historical ? 9 : 0; // at 9 'zz' does not exist yet; the historical path is exercised
  const tag = historical ? ' (at a past revision)' : '';

  test(`range end forms: single key, [key,end), prefix end, "\\0"${tag}`, async () => {
    const store = fill();
    assert.deepEqual(keys(store.range(rng('b', '', { revision: rev }))), ['b']);
    assert.deepEqual(keys(store.range(rng('b', 'd', { revision: rev }))), ['b', 'c']);
    assert.deepEqual(keys(store.range(rng('d', '\0', { revision: rev }))), historical ? ['d', 'e'] : ['d', 'e', 'zz']);
    assert.deepEqual(keys(store.range(rng('', '\0', { revision: rev }))).length, historical ? 5 : 6);
    assert.deepEqual(keys(store.range(rng('z', '{', { revision: rev }))), historical ? [] : ['zz']);
    assert.deepEqual(keys(store.range(rng('d', 'b', { revision: rev }))), []);
    assert.deepEqual(keys(store.range(rng('nope', '', { revision: rev }))), []);
    await store.close();
  });

  test(`limit, more and count${tag}`, async () => {
    const store = fill();
    let r = store.range(rng('a', 'f', { limit: 2, revision: rev }));
    assert.deepEqual(keys(r), ['a', 'b']);
    assert.equal(r.more, true);
    assert.equal(r.count, 5);
    r = store.range(rng('a', 'f', { limit: 5, revision: rev }));
    assert.equal(r.more, false);
    assert.equal(r.count, 5);
    r = store.range(rng('a', 'f', { limit: 6, revision: rev }));
    assert.equal(r.more, false);
    await store.close();
  });

  test(`sort orders and targets${tag}`, async () => {
    const store = fill();
    const q = (order: number, target: number, limit = 0) =>
      keys(store.range(rng('a', 'f', { sortOrder: order, sortTarget: target, limit, revision: rev })));
    assert.deepEqual(q(SortOrder.NONE, SortTarget.KEY), ['a', 'b', 'c', 'd', 'e']);
    assert.deepEqual(q(SortOrder.ASCEND, SortTarget.KEY), ['a', 'b', 'c', 'd', 'e']);
    assert.deepEqual(q(SortOrder.DESCEND, SortTarget.KEY), ['e', 'd', 'c', 'b', 'a']);
    assert.deepEqual(q(SortOrder.DESCEND, SortTarget.KEY, 2), ['e', 'd']);
    // NONE with a non-key target sorts ascending
    assert.deepEqual(q(SortOrder.NONE, SortTarget.VERSION), ['b', 'd', 'e', 'a', 'c']);
    assert.deepEqual(q(SortOrder.DESCEND, SortTarget.VERSION), ['c', 'a', 'b', 'd', 'e']);
    assert.deepEqual(q(SortOrder.ASCEND, SortTarget.CREATE), ['a', 'b', 'c', 'd', 'e']);
    assert.deepEqual(q(SortOrder.DESCEND, SortTarget.MOD), ['c', 'a', 'e', 'd', 'b']);
    assert.deepEqual(q(SortOrder.ASCEND, SortTarget.VALUE), ['e', 'd', 'c', 'b', 'a']);
    assert.deepEqual(q(SortOrder.DESCEND, SortTarget.MOD, 2), ['c', 'a']);
    // etcd quirk: NONE + non-key target with a limit sorts only the first limit+1 keys (in key order)
    assert.deepEqual(q(SortOrder.NONE, SortTarget.VERSION, 2), ['b', 'a']);
    const r = store.range(rng('a', 'f', { sortOrder: SortOrder.DESCEND, sortTarget: SortTarget.KEY, limit: 2, revision: rev }));
    assert.equal(r.more, true);
    assert.equal(r.count, 5);
    await store.close();
  });

  test(`keys_only and count_only${tag}`, async () => {
    const store = fill();
    const r = store.range(rng('a', 'f', { keysOnly: true, revision: rev }));
    assert.equal(r.kvs.length, 5);
    assert.equal(r.kvs[2]!.value.length, 0);
    assert.equal(r.kvs[2]!.version, 3);
    const c = store.range(rng('a', 'f', { countOnly: true, limit: 1, revision: rev }));
    assert.equal(c.kvs.length, 0);
    assert.equal(c.count, 5);
    assert.equal(c.more, false);
    await store.close();
  });

  test(`min/max mod/create revision filters; count stays the unfiltered total${tag}`, async () => {
    const store = fill();
    let r = store.range(rng('a', 'f', { minModRevision: 7, revision: rev }));
    assert.deepEqual(keys(r), ['a', 'c']);
    assert.equal(r.count, 5);
    r = store.range(rng('a', 'f', { maxModRevision: 5, revision: rev }));
    assert.deepEqual(keys(r), ['b', 'd']);
    r = store.range(rng('a', 'f', { minCreateRevision: 3, maxCreateRevision: 5, revision: rev }));
    assert.deepEqual(keys(r), ['b', 'c', 'd']);
    r = store.range(rng('a', 'f', { minCreateRevision: 3, limit: 2, revision: rev }));
    assert.deepEqual(keys(r), ['b', 'c']);
    assert.equal(r.more, true);
    assert.equal(r.count, 5);
    assert.equal(s(store.range(rng('c', '', { revision: rev })).kvs[0]!.value), 'x3');
    await store.close();
  });
}

test('revision errors: FutureRev above current, Compacted below compact revision', async () => {
  const store = fill();
  assert.equal(errId(() => store.range(rng('a', '', { revision: 11 }))), Errors.FutureRev.id);
  assert.equal(errId(() => store.range(rng('a', '', { revision: 10 }))), 0);
  store.compact({ revision: 5, physical: true });
  assert.equal(errId(() => store.range(rng('a', '', { revision: 4 }))), Errors.Compacted.id);
  assert.equal(errId(() => store.range(rng('a', '', { revision: 5 }))), 0);
  await store.close();
});
