import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Errors } from '../../src/errors';
import { CompareResult as R, CompareTarget as T } from '../../src/mvcc/compare';
import { cmp, countDb, errId, freshStore, keys, op, put, rng, s } from './util';

function base() {
  const { store } = freshStore();
  store.put(put('a', 'va')); // 2
  store.put(put('b', 'vb')); // 3
  store.put(put('a', 'va2')); // 4  a: create 2 mod 4 version 2
  return store;
}

test('compare targets and results', async () => {
  const store = base();
  const ok = (c: ReturnType<typeof cmp>) => store.txn({ compare: [c], success: [], failure: [] }).succeeded;
  assert.equal(ok(cmp('a', T.VALUE, R.EQUAL, 'va2')), true);
  assert.equal(ok(cmp('a', T.VALUE, R.GREATER, 'va1')), true);
  assert.equal(ok(cmp('a', T.VALUE, R.LESS, 'va1')), false);
  assert.equal(ok(cmp('a', T.VALUE, R.NOT_EQUAL, 'va2')), false);
  assert.equal(ok(cmp('a', T.VERSION, R.EQUAL, 2)), true);
  assert.equal(ok(cmp('a', T.VERSION, R.GREATER, 1)), true);
  assert.equal(ok(cmp('a', T.CREATE, R.EQUAL, 2)), true);
  assert.equal(ok(cmp('a', T.MOD, R.EQUAL, 4)), true);
  assert.equal(ok(cmp('a', T.MOD, R.LESS, 4)), false);
  assert.equal(ok(cmp('a', T.LEASE, R.EQUAL, 0)), true);
  // missing key: version/create/mod/lease compare as 0, value always fails
  assert.equal(ok(cmp('zz', T.VERSION, R.EQUAL, 0)), true);
  assert.equal(ok(cmp('zz', T.CREATE, R.EQUAL, 0)), true);
  assert.equal(ok(cmp('zz', T.MOD, R.LESS, 1)), true);
  assert.equal(ok(cmp('zz', T.VALUE, R.EQUAL, '')), false);
  assert.equal(ok(cmp('zz', T.VALUE, R.NOT_EQUAL, 'x')), false);
  // range compares: every key must satisfy
  assert.equal(ok(cmp('a', T.VERSION, R.GREATER, 0, 'c')), true);
  assert.equal(ok(cmp('a', T.VERSION, R.EQUAL, 2, 'c')), false);
  assert.equal(ok(cmp('a', T.CREATE, R.LESS, 4, '\0')), true);
  // read-only txn does not bump the revision
  assert.equal(store.currentRevision(), 4);
  await store.close();
});

test('success/failure branches: one revision, sub revisions, header revisions', async () => {
  const store = base();
  const r = store.txn({
    compare: [cmp('a', T.VALUE, R.EQUAL, 'va2')],
    success: [op.put('x', '1'), op.put('y', '2'), op.del('b', '', true), op.range('a', '\0')],
    failure: [op.put('never', '1')],
  });
  assert.equal(r.succeeded, true);
  assert.equal(r.header.revision, 5);
  assert.equal(store.currentRevision(), 5);
  assert.equal(r.responses[0]!.responsePut!.header.revision, 5);
  assert.equal(r.responses[2]!.responseDeleteRange!.deleted, 1);
  assert.equal(s(r.responses[2]!.responseDeleteRange!.prevKvs[0]!.value), 'vb');
  // a txn range sees the txn's earlier writes
  assert.deepEqual(keys(r.responses[3]!.responseRange!), ['a', 'x', 'y']);
  assert.equal(r.responses[3]!.responseRange!.header.revision, 5);
  const x = store.range(rng('x')).kvs[0]!;
  const y = store.range(rng('y')).kvs[0]!;
  assert.deepEqual([x.modRevision, y.modRevision, x.createRevision], [5, 5, 5]);
  // sub revisions 0,1,2 under main 5 in the rev db
  store.dbs.root.resetReadTxn();
  const subs = [...store.dbs.rev.getKeys({})].filter((k) => k.readUInt32BE(4) === 5).map((k) => k.readUInt32BE(8));
  assert.deepEqual(subs, [0, 1, 2]);

  const f = store.txn({ compare: [cmp('a', T.VALUE, R.EQUAL, 'nope')], success: [op.put('never', '1')], failure: [op.put('fail', 'f')] });
  assert.equal(f.succeeded, false);
  assert.equal(f.header.revision, 6);
  assert.equal(store.range(rng('never')).count, 0);
  assert.equal(store.range(rng('fail')).count, 1);
  await store.close();
});

test('a txn whose writes change nothing keeps the revision', async () => {
  const store = base();
  const r = store.txn({ compare: [], success: [op.del('nothing')], failure: [] });
  assert.equal(r.header.revision, 4);
  assert.equal(r.responses[0]!.responseDeleteRange!.header.revision, 4);
  assert.equal(store.currentRevision(), 4);
  await store.close();
});

test('nested txn: compares evaluated before any write, one revision for all', async () => {
  const store = base();
  const r = store.txn({
    compare: [],
    success: [
      op.put('a', 'changed'),
      op.txn({
        // sees the state before the outer txn: a is still va2
        compare: [cmp('a', T.VALUE, R.EQUAL, 'va2')],
        success: [op.put('inner', 'yes'), op.range('a')],
        failure: [op.put('inner', 'no')],
      }),
    ],
    failure: [],
  });
  const inner = r.responses[1]!.responseTxn!;
  assert.equal(inner.succeeded, true);
  assert.equal(s(inner.responses[1]!.responseRange!.kvs[0]!.value), 'changed');
  assert.equal(s(store.range(rng('inner')).kvs[0]!.value), 'yes');
  assert.equal(r.header.revision, 5);
  assert.equal(store.range(rng('inner')).kvs[0]!.modRevision, 5);
  await store.close();
});

test('txn validation errors abort the whole txn before any write', async () => {
  const store = base();
  const before = countDb(store, 'rev');
  assert.equal(errId(() => store.txn({ compare: [], success: [op.put('ok', '1'), op.put('l', '1', { lease: 42 })], failure: [] })), Errors.LeaseNotFound.id);
  assert.equal(errId(() => store.txn({ compare: [], success: [op.put('ok', '1'), op.put('absent', '', { ignoreValue: true })], failure: [] })), Errors.KeyNotFound.id);
  assert.equal(errId(() => store.txn({ compare: [], success: [op.put('ok', '1'), op.range('a', '', { revision: 99 })], failure: [] })), Errors.FutureRev.id);
  // an error in the branch not taken does not matter
  assert.equal(errId(() => store.txn({ compare: [cmp('zz', T.VALUE, R.EQUAL, 'x')], success: [op.put('l', '1', { lease: 42 })], failure: [] })), 0);
  assert.equal(countDb(store, 'rev'), before);
  assert.equal(store.currentRevision(), 4);
  await store.close();
});
