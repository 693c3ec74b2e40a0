/**
 * Lessor unit checks against a fake server: the minimum TTL formula, promotion extends expiries by one
 * election timeout, expired leases are revoked through proposals, renewals move the expiry, followers answer
 * NotPrimary.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Lessor, NotPrimaryError, minLeaseTtlSeconds, type LessorHost, type StoredLease } from '../../src/lease/lessor';
import { EntryKind } from '../../src/wire/entry';
import { pb } from '../../src/wire/codec';

test('minLeaseTtlSeconds matches etcd (⌈1.5·electionTicks·heartbeat⌉ s)', () => {
  assert.equal(minLeaseTtlSeconds(1000, 100), 2);
  assert.equal(minLeaseTtlSeconds(200, 20), 1);
  assert.equal(minLeaseTtlSeconds(5000, 500), 8);
});

function fakeHost(leases: StoredLease[], isLeader: boolean) {
  const events = new EventEmitter();
  const proposals: number[] = [];
  const store = new Map(leases.map((l) => [l.id, l]));
  const host: LessorHost = {
    events,
    leader: () => ({ lead: isLeader ? 1 : 2, isLeader, term: 2 }),
    propose: async (kind, req) => {
      assert.equal(kind, EntryKind.LeaseRevoke);
      const id = (pb.LeaseRevokeRequest.decode(req) as unknown as { ID: number }).ID;
      proposals.push(id);
      store.delete(id);
      return new Uint8Array(0);
    },
    reader: { lease: (id) => store.get(id), leases: () => [...store.values()], leaseKeys: () => [] },
    barrier: async () => {},
    whenReadable: () => null,
    appliedCommitted: () => true,
    waitAppliedCommitted: async () => {},
  };
  return { host, events, proposals };
}

test('promotion extends by the election timeout; expiry proposes a revoke; renew pushes expiry', async () => {
  let now = 1_000_000;
  const { host, proposals } = fakeHost([{ id: 7, ttl: 5, remainingTtl: 0 }, { id: 8, ttl: 5, remainingTtl: 0 }], true);
  const l = new Lessor({ host, electionTimeoutMs: 1000, now: () => now });
  l.start();
  await new Promise((r) => setImmediate(r));
  assert.ok(l.isPrimary());
  const t = await l.timeToLive(7, false);
  assert.equal(t.ttl, 6); // 5 s + 1 s extension
  now += 4000;
  assert.equal(await l.renew(8), 5);
  now += 2500; // lease 7 expired (6 s), lease 8 has 2.5 s left
  (l as unknown as { tick(): void }).tick();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(proposals, [7]);
  await assert.rejects(l.timeToLive(7, false), /requested lease not found/);
  assert.equal((await l.timeToLive(8, false)).ttl, 2);
  l.stop();
});

test('a follower is not primary', async () => {
  const { host } = fakeHost([{ id: 7, ttl: 5, remainingTtl: 0 }], false);
  const l = new Lessor({ host, electionTimeoutMs: 1000 });
  l.start();
  await assert.rejects(l.renew(7), NotPrimaryError);
  assert.deepEqual(l.leaseIds(), [7]);
  l.stop();
});

test('a lease revoked through another member is not found at once; renew waits for the applied index to reach the commit index', async () => {
  const { host } = fakeHost([{ id: 7, ttl: 100, remainingTtl: 0 }, { id: 8, ttl: 100, remainingTtl: 0 }], true);
  let caughtUp = true;
  let release: () => void = () => {};
  let barriers = 0;
  host.appliedCommitted = () => caughtUp;
  host.waitAppliedCommitted = () => new Promise<void>((r) => (release = r));
  host.barrier = async () => { barriers++; };
  const store = host.reader as { lease(id: number): StoredLease | undefined };
  const l = new Lessor({ host, electionTimeoutMs: 1000 });
  l.start();
  await new Promise((r) => setImmediate(r));
  assert.ok(l.isPrimary());
  assert.equal(l.tryRenewSync(7), 100);
  // The revoke of 7 (proposed elsewhere) is applied to the store; the lessor's map has not been rescanned.
  const lease = store.lease.bind(store);
  store.lease = (id) => (id === 7 ? undefined : lease(id));
  assert.equal(l.tryRenewSync(7), undefined);
  await assert.rejects(l.renew(7), /requested lease not found/);
  // TimeToLive takes a barrier first, then finds 7 gone too.
  store.lease = (id) => (id === 8 ? undefined : lease(id));
  await assert.rejects(l.timeToLive(8, false), /requested lease not found/);
  assert.ok(barriers >= 2); // promotion + TimeToLive
  // Behind the commit index: no fast path, renew answers only after the wait resolves.
  store.lease = lease;
  l.granted(9, 50);
  store.lease = (id) => (id === 9 ? { id: 9, ttl: 50, remainingTtl: 50 } : lease(id));
  caughtUp = false;
  assert.equal(l.tryRenewSync(9), undefined);
  let answered: number | undefined;
  const p = l.renew(9).then((ttl) => (answered = ttl));
  await new Promise((r) => setImmediate(r));
  assert.equal(answered, undefined);
  caughtUp = true;
  release();
  await p;
  assert.equal(answered, 50);
  // Leases: barrier, then the store's set (9 was never stored: forgotten).
  const before = barriers;
  assert.deepEqual(await l.linearizableLeaseIds(), [7, 8]);
  assert.equal(barriers, before + 1);
  l.stop();
});
