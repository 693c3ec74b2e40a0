import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countDb, del, freshStore, keys, put, rng, s } from './util';

test('fresh store is at revision 1 with nothing compacted', async () => {
  const { store } = freshStore();
  assert.equal(store.currentRevision(), 1);
  assert.equal(store.compactRevision(), 0);
  assert.equal(store.consistentIndex(), 0);
  assert.equal(store.range(rng('a')).header.revision, 1);
  await store.close();
});

test('put/delete/re-create: create_revision, mod_revision, version, tombstones', async () => {
  const { store } = freshStore();
  assert.equal(store.put(put('foo', 'v1')).header.revision, 2);
  assert.equal(store.put(put('foo', 'v2')).header.revision, 3);
  let kv = store.range(rng('foo')).kvs[0]!;
  assert.deepEqual([kv.createRevision, kv.modRevision, kv.version, s(kv.value)], [2, 3, 2, 'v2']);

  const d = store.deleteRange(del('foo', '', true));
  assert.equal(d.deleted, 1);
  assert.equal(d.header.revision, 4);
  assert.equal(s(d.prevKvs[0]!.value), 'v2');
  assert.equal(store.range(rng('foo')).count, 0);

  // delete of nothing does not bump the revision
  const d2 = store.deleteRange(del('foo'));
  assert.equal(d2.deleted, 0);
  assert.equal(d2.header.revision, 4);
  assert.equal(store.currentRevision(), 4);

  store.put(put('foo', 'v3'));
  kv = store.range(rng('foo')).kvs[0]!;
  assert.deepEqual([kv.createRevision, kv.modRevision, kv.version, s(kv.value)], [5, 5, 1, 'v3']);

  // every revision is a record, the tombstone included
  assert.equal(countDb(store, 'rev'), 4);
  assert.equal(countDb(store, 'hist'), 4);
  assert.equal(countDb(store, 'kv'), 1);
  await store.close();
});

test('range at past revisions sees the state of that revision', async () => {
  const { store } = freshStore();
  store.put(put('a', '1')); // 2
  store.put(put('b', '1')); // 3
  store.put(put('a', '2')); // 4
  store.deleteRange(del('b')); // 5
  store.put(put('c', '1')); // 6
  store.put(put('b', 'again')); // 7
  const at = (rev: number): string[] => store.range(rng('a', '\0', { revision: rev })).kvs.map((kv) => `${s(kv.key)}=${s(kv.value)}@${kv.modRevision}/v${kv.version}`);
  assert.deepEqual(at(1), []);
  assert.deepEqual(at(2), ['a=1@2/v1']);
  assert.deepEqual(at(3), ['a=1@2/v1', 'b=1@3/v1']);
  assert.deepEqual(at(4), ['a=2@4/v2', 'b=1@3/v1']);
  assert.deepEqual(at(5), ['a=2@4/v2']);
  assert.deepEqual(at(6), ['a=2@4/v2', 'c=1@6/v1']);
  assert.deepEqual(at(7), ['a=2@4/v2', 'b=again@7/v1', 'c=1@6/v1']);
  assert.deepEqual(at(0), at(7));
  // header revision is always the current revision
  assert.equal(store.range(rng('a', '', { revision: 2 })).header.revision, 7);
  // single key at a revision
  assert.equal(s(store.range(rng('b', '', { revision: 4 })).kvs[0]!.value), '1');
  assert.equal(store.range(rng('b', '', { revision: 5 })).count, 0);
  await store.close();
});

test('keys containing 0x00 and prefixes of each other order like etcd', async () => {
  const { store } = freshStore();
  for (const k of ['a', 'a\0', 'a\0b', 'ab', 'a\x01', 'b']) store.put(put(k, k));
  const cur = keys(store.range(rng('a', '\0')));
  assert.deepEqual(cur, ['a', 'a\0', 'a\0b', 'a\x01', 'ab', 'b']);
  assert.deepEqual(keys(store.range(rng('a', '\0', { revision: store.currentRevision() - 1 }))), ['a', 'a\0', 'a\0b', 'a\x01', 'ab']);
  assert.deepEqual(keys(store.range(rng('a\0', 'a\x01', { revision: 4 }))), ['a\0', 'a\0b']);
  await store.close();
});
