import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Errors } from '../../src/errors';
import { countDb, del, errId, freshStore, keys, put, rng, s } from './util';

test('compaction physically removes superseded revisions and tombstoned keys', async () => {
  const { store } = freshStore();
  for (let i = 0; i < 5; i++) store.put(put('k', `v${i}`)); // 2..6
  store.put(put('gone', 'x')); // 7
  store.deleteRange(del('gone')); // 8
  store.put(put('other', 'o')); // 9
  store.put(put('k', 'late')); // 10
  assert.equal(countDb(store, 'rev'), 9);
  assert.equal(countDb(store, 'hist'), 9);

  const r = store.compact({ revision: 9, physical: true });
  assert.equal(r.header.revision, 10);
  assert.equal(store.compactRevision(), 9);
  assert.equal(store.currentRevision(), 10);
  // kept: k@6 (latest ≤ 9), other@9, k@10; dropped: k@2..5, gone@7, gone tombstone@8
  assert.equal(countDb(store, 'rev'), 3);
  assert.equal(countDb(store, 'hist'), 3);

  // reads at ≥ compact revision still exact
  assert.deepEqual(store.range(rng('', '\0', { revision: 9 })).kvs.map((kv) => `${s(kv.key)}=${s(kv.value)}`), ['k=v4', 'other=o']);
  assert.equal(store.range(rng('k')).kvs[0]!.version, 6);
  assert.equal(errId(() => store.range(rng('k', '', { revision: 8 }))), Errors.Compacted.id);

  assert.equal(errId(() => store.compact({ revision: 9, physical: false })), Errors.Compacted.id);
  assert.equal(errId(() => store.compact({ revision: 3, physical: false })), Errors.Compacted.id);
  assert.equal(errId(() => store.compact({ revision: 11, physical: false })), Errors.FutureRev.id);

  // a second compaction only touches what changed since
  store.deleteRange(del('other')); // 11
  store.compact({ revision: 11, physical: true });
  assert.equal(countDb(store, 'rev'), 1);
  assert.deepEqual(keys(store.range(rng('', '\0'))), ['k']);
  // re-creating a key after compaction starts a new generation
  store.put(put('gone', 'back'));
  const kv = store.range(rng('gone')).kvs[0]!;
  assert.deepEqual([kv.version, kv.createRevision], [1, 12]);
  await store.close();
});
