import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Errors } from '../../src/errors';
import { countDb, errId, freshStore, keys, put, rng } from './util';

test('lease grant: explicit id, LeaseExist, generated id < 2^53, TTL limits', async () => {
  const { store } = freshStore();
  const g = store.leaseGrant({ ID: 100, TTL: 10 });
  assert.deepEqual([g.ID, g.TTL], [100, 10]);
  assert.equal(errId(() => store.leaseGrant({ ID: 100, TTL: 10 })), Errors.LeaseExist.id);
  assert.equal(errId(() => store.leaseGrant({ ID: 5, TTL: 9_000_000_001 })), Errors.LeaseTTLTooLarge.id);
  const a = store.leaseGrant({ ID: 0, TTL: 5 }, 7);
  const b = store.leaseGrant({ ID: 0, TTL: 5 }, 8);
  assert.ok(a.ID > 0 && a.ID <= Number.MAX_SAFE_INTEGER && Number.isSafeInteger(a.ID));
  assert.notEqual(a.ID, b.ID);
  assert.equal(store.currentRevision(), 1, 'grant does not bump the revision');
  await store.close();
});

test('put attaches, re-put without lease detaches, revoke deletes attached keys in one revision', async () => {
  const { store } = freshStore();
  store.leaseGrant({ ID: 1, TTL: 60 });
  store.leaseGrant({ ID: 2, TTL: 60 });
  assert.equal(errId(() => store.put(put('x', 'v', { lease: 3 }))), Errors.LeaseNotFound.id);
  store.put(put('k1', 'v', { lease: 1 })); // 2
  store.put(put('k2', 'v', { lease: 1 })); // 3
  store.put(put('k3', 'v', { lease: 1 })); // 4
  store.put(put('k3', 'v')); // 5 detaches k3
  store.put(put('k2', 'v', { lease: 2 })); // 6 moves k2 to lease 2
  store.put(put('k1', 'w', { ignoreLease: true })); // 7 keeps lease 1
  assert.equal(store.range(rng('k1')).kvs[0]!.lease, 1);
  assert.deepEqual(store.leaseKeys(1).map(String), ['k1']);
  assert.deepEqual(store.leaseKeys(2).map(String), ['k2']);

  store.put(put('k4', 'v', { lease: 2 })); // 8
  const r = store.leaseRevoke({ ID: 2 });
  assert.equal(r.header.revision, 9);
  assert.deepEqual(keys(store.range(rng('k', 'l'))), ['k1', 'k3']);
  assert.equal(store.lease(2), undefined);
  assert.equal(errId(() => store.leaseRevoke({ ID: 2 })), Errors.LeaseNotFound.id);
  // both deletions share main revision 9
  store.dbs.root.resetReadTxn();
  const subs = [...store.dbs.rev.getKeys({})].filter((k) => k.readUInt32BE(4) === 9).map((k) => k.readUInt32BE(8));
  assert.deepEqual(subs, [0, 1]);
  // revoke of a lease without keys does not bump the revision
  store.leaseGrant({ ID: 3, TTL: 1 });
  assert.equal(store.leaseRevoke({ ID: 3 }).header.revision, 9);
  // deleting a key detaches it
  store.deleteRange({ key: Buffer.from('k1'), rangeEnd: Buffer.alloc(0), prevKv: false });
  assert.equal(countDb(store, 'leaseKeys'), 0);
  await store.close();
});

test('put validation: ignore_value / ignore_lease', async () => {
  const { store } = freshStore();
  assert.equal(errId(() => store.put(put('a', '', { ignoreValue: true }))), Errors.KeyNotFound.id);
  store.put(put('a', 'keep'));
  assert.equal(errId(() => store.put(put('a', 'x', { ignoreValue: true }))), Errors.ValueProvided.id);
  assert.equal(errId(() => store.put(put('a', '', { ignoreLease: true, lease: 1 }))), Errors.LeaseProvided.id);
  const r = store.put(put('a', '', { ignoreValue: true, prevKv: true }));
  assert.equal(String(r.prevKv!.value), 'keep');
  assert.equal(String(store.range(rng('a')).kvs[0]!.value), 'keep');
  assert.equal(store.range(rng('a')).kvs[0]!.version, 2);
  await store.close();
});
