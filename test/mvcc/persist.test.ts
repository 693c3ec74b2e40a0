import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MvccStore } from '../../src/mvcc/store';
import { MvccReader } from '../../src/mvcc/reader';
import { pb, type RangeResponse } from '../../src/wire/codec';
import { Errors } from '../../src/errors';
import { errId, put, rng, s, tempDir } from './util';

test('consistent index is committed atomically with the batch it covers', async () => {
  const dir = tempDir();
  const store = MvccStore.open(dir);
  store.batch(() => {
    store.put(put('a', '1'));
    store.put(put('b', '2'));
    store.setConsistentIndex(10, 3);
  });
  assert.equal(store.consistentIndex(), 10);
  // a batch that fails midway leaves neither data nor index behind
  assert.throws(() =>
    store.batch(() => {
      store.put(put('c', '3'));
      store.setConsistentIndex(11, 3);
      throw new Error('disk on fire');
    }),
  );
  assert.equal(store.consistentIndex(), 10);
  assert.equal(store.currentRevision(), 3);
  assert.equal(store.range(rng('c')).count, 0);
  await store.close();

  const again = MvccStore.open(dir);
  assert.equal(again.consistentIndex(), 10);
  assert.equal(again.consistentTerm(), 3);
  assert.equal(again.currentRevision(), 3);
  assert.equal(again.range(rng('c')).count, 0);
  await again.close();
});

test('reopen after close keeps data, history, compaction and leases', async () => {
  const dir = tempDir();
  let store = MvccStore.open(dir);
  store.leaseGrant({ ID: 9, TTL: 30 });
  store.put(put('k', 'v1')); // 2
  store.put(put('k', 'v2', { lease: 9 })); // 3
  store.put(put('j', 'x')); // 4
  store.compact({ revision: 3, physical: true });
  await store.close();
  store = MvccStore.open(dir);
  assert.equal(store.currentRevision(), 4);
  assert.equal(store.compactRevision(), 3);
  assert.equal(s(store.range(rng('k', '', { revision: 3 })).kvs[0]!.value), 'v2');
  assert.equal(errId(() => store.range(rng('k', '', { revision: 2 }))), Errors.Compacted.id);
  assert.equal(store.lease(9)!.ttl, 30);
  assert.deepEqual(store.leaseKeys(9).map(String), ['k']);
  store.put(put('k', 'v3'));
  assert.equal(store.range(rng('k')).kvs[0]!.version, 3);
  await store.close();
});

test('MvccReader reads a consistent snapshot and sees new commits', async () => {
  const dir = tempDir();
  const store = MvccStore.open(dir);
  const reader = MvccReader.open(dir);
  assert.equal(reader.currentRevision(), 1);
  store.put(put('a', '1'));
  store.put(put('b', '2'));
  const r = reader.range(rng('a', '\0'));
  assert.equal(r.header.revision, 3);
  assert.equal(r.count, 2);
  store.batch(() => store.setConsistentIndex(5, 1));
  assert.equal(reader.consistentIndex(), 5);
  const bytes = reader.rangeEncoded(rng('a', '', { revision: 2 }), { clusterId: 7, memberId: 8, raftTerm: 2 });
  const dec = pb.RangeResponse.decode(bytes) as unknown as RangeResponse;
  assert.deepEqual([dec.header.clusterId, dec.header.memberId, dec.header.revision, dec.header.raftTerm], [7, 8, 3, 2]);
  assert.equal(s(dec.kvs[0]!.value), '1');
  assert.ok(reader.dbSizeBytes() > 0);
  assert.equal(errId(() => reader.range(rng('a', '', { revision: 4 }))), Errors.FutureRev.id);
  await store.close();
});
