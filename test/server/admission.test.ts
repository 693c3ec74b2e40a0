/** Write admission (src/server/admission.ts): ordered checks, one decode, one size formula, the quota cost. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Admission, Proposal, quotaExceeded, requestSizeCheck, QUOTA_LEASE_OVERHEAD } from '../../src/server/admission';
import { EntryKind } from '../../src/wire/entry';
import { pb } from '../../src/wire/codec';
import { raftRequestSize } from '../../src/wire/validate';
import { EtcdError, Errors } from '../../src/errors';

const put = (key: string, valueBytes: number): Uint8Array => pb.PutRequest.encode({ key: Buffer.from(key), value: Buffer.alloc(valueBytes, 0x61) }).finish();

test('checks run in the order added; the first refusal wins and later checks do not run', () => {
  const ran: string[] = [];
  const a = new Admission()
    .add('a', () => { ran.push('a'); return null; })
    .add('b', () => { ran.push('b'); return 'NoSpace'; })
    .add('c', () => { ran.push('c'); return 'Stopped'; });
  const err = a.admit(new Proposal(EntryKind.Put, put('k', 1)));
  assert.ok(err instanceof EtcdError);
  assert.equal(err.message, Errors.NoSpace.message);
  assert.deepEqual(ran, ['a', 'b']);
});

test('a check added before another runs first; names are unique and `before` must exist', () => {
  const a = new Admission().add('size', () => null).add('quota', () => null);
  a.add('auth', () => 'PermissionDenied', 'size');
  assert.deepEqual(a.names(), ['auth', 'size', 'quota']);
  assert.throws(() => a.add('size', () => null), /added twice/);
  assert.throws(() => a.add('x', () => null, 'nope'), /no admission check named nope/);
});

test('an admitted proposal gets null', () => {
  assert.equal(new Admission().add('ok', () => null).admit(new Proposal(EntryKind.DeleteRange, new Uint8Array(0))), null);
});

test('the request is decoded at most once, and not at all when the caller passed its decoded form', () => {
  const bytes = put('key', 10);
  const p = new Proposal(EntryKind.Put, bytes);
  const first = p.decoded<{ key: Uint8Array }>();
  assert.equal(Buffer.from(first.key).toString(), 'key');
  assert.equal(p.decoded(), first, 'second call returns the cached object');
  const given = { key: Buffer.from('given'), value: Buffer.alloc(0) };
  assert.equal(new Proposal(EntryKind.Put, bytes, given).decoded(), given);
  assert.throws(() => new Proposal(EntryKind.MemberAttributes, Buffer.from('{}')).decoded(), RangeError);
});

test('the size check uses etcd\'s InternalRaftRequest size: the request bytes plus its wrapping', () => {
  const max = 1000;
  const check = requestSizeCheck(max);
  let n = 0;
  while (raftRequestSize(n + 1) <= max) n++;
  assert.ok(n < max && n > max - 20, `largest admitted request ${n} bytes`);
  assert.equal(check(new Proposal(EntryKind.Put, new Uint8Array(n))), null);
  assert.equal(check(new Proposal(EntryKind.Put, new Uint8Array(n + 1))), 'RequestTooLarge');
});

test('quota: a put is refused when size + 256 + key + value reaches the quota; far below, nothing is decoded', () => {
  const bytes = put('k', 100); // cost 256 + 1 + 100 = 357
  const o = (size: number) => ({ quotaBytes: 1000, maxTxnOps: 128, backendSize: () => size });
  assert.equal(quotaExceeded(new Proposal(EntryKind.Put, bytes), o(642)), false);
  assert.equal(quotaExceeded(new Proposal(EntryKind.Put, bytes), o(643)), true);
  // Far below the quota the proposal is judged by its byte length alone: undecodable bytes pass.
  assert.equal(quotaExceeded(new Proposal(EntryKind.Put, new Uint8Array([0xff, 0xff])), o(0)), false);
  assert.equal(quotaExceeded(new Proposal(EntryKind.Put, bytes), { ...o(10 ** 9), quotaBytes: -1 }), false, 'negative quota: disabled');
});

test('quota: a txn costs its larger branch of puts; a txn without puts always passes; grants cost 64; deletes pass', () => {
  const txn = pb.TxnRequest.encode({
    success: [{ requestPut: { key: Buffer.from('a'), value: Buffer.alloc(50) } }, { requestPut: { key: Buffer.from('b'), value: Buffer.alloc(50) } }],
    failure: [{ requestPut: { key: Buffer.from('c'), value: Buffer.alloc(10) } }],
  }).finish(); // success branch: 2 × (256 + 1 + 50) = 614
  const o = (size: number) => ({ quotaBytes: 10_000, maxTxnOps: 128, backendSize: () => size });
  assert.equal(quotaExceeded(new Proposal(EntryKind.Txn, txn), o(10_000 - 615)), false);
  assert.equal(quotaExceeded(new Proposal(EntryKind.Txn, txn), o(10_000 - 614)), true);
  const readOnly = pb.TxnRequest.encode({ success: [{ requestRange: { key: Buffer.from('a') } }] }).finish();
  assert.equal(quotaExceeded(new Proposal(EntryKind.Txn, readOnly), o(10_000)), false);
  assert.equal(quotaExceeded(new Proposal(EntryKind.LeaseGrant, new Uint8Array(0)), o(10_000 - QUOTA_LEASE_OVERHEAD - 1)), false);
  assert.equal(quotaExceeded(new Proposal(EntryKind.LeaseGrant, new Uint8Array(0)), o(10_000 - QUOTA_LEASE_OVERHEAD)), true);
  assert.equal(quotaExceeded(new Proposal(EntryKind.DeleteRange, new Uint8Array(0)), o(20_000)), false);
});
