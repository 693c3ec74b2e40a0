/** Flow-control bounds at admission (src/server/flow-limits.ts) and the ReadIndex rounds-in-flight bound. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { flowRefusal, flowCheck, MAX_GAP_APPLY_COMMIT_ENTRIES, MAX_PENDING_PROPOSALS, MAX_PENDING_PROPOSAL_BYTES } from '../../src/server/flow-limits';
import { Admission, Proposal } from '../../src/server/admission';
import { EntryKind } from '../../src/wire/entry';
import { ReadIndex, MAX_READ_ROUNDS_IN_FLIGHT, MAX_READS_PER_ROUND } from '../../src/server/read-index';
import { AppliedIndexWaiters } from '../../src/server/read-waiters';
import { EtcdError, Errors } from '../../src/errors';

const src = (o: { committed?: number; applied?: number; count?: number; bytes?: number }) => ({
  committedIndex: () => o.committed ?? 0,
  appliedIndex: () => o.applied ?? 0,
  pendingCount: () => o.count ?? 0,
  pendingBytes: () => o.bytes ?? 0,
});

test('commit-apply gap: refused only when committed - applied exceeds 5000 (etcd maxGapBetweenApplyAndCommitIndex)', () => {
  assert.equal(flowRefusal(src({ committed: 100 + MAX_GAP_APPLY_COMMIT_ENTRIES, applied: 100 }), 10), null);
  assert.equal(flowRefusal(src({ committed: 101 + MAX_GAP_APPLY_COMMIT_ENTRIES, applied: 100 }), 10), 'RequestTooManyRequests');
});

test('pending proposals: refused at the count bound and past the byte bound; one large request alone passes', () => {
  assert.equal(flowRefusal(src({ count: MAX_PENDING_PROPOSALS - 1 }), 10), null);
  assert.equal(flowRefusal(src({ count: MAX_PENDING_PROPOSALS }), 10), 'RequestTooManyRequests');
  assert.equal(flowRefusal(src({ count: 1, bytes: MAX_PENDING_PROPOSAL_BYTES - 10 }), 10), null);
  assert.equal(flowRefusal(src({ count: 1, bytes: MAX_PENDING_PROPOSAL_BYTES - 10 }), 11), 'RequestTooManyRequests');
  assert.equal(flowRefusal(src({}), MAX_PENDING_PROPOSAL_BYTES * 2), null);
});

test('as the admission step "flow": clients get etcd\'s "too many requests" (ResourceExhausted)', () => {
  const a = new Admission().add('flow', flowCheck(src({ count: 5 }), { maxPendingCount: 5 }));
  const err = a.admit(new Proposal(EntryKind.Put, new Uint8Array(8)));
  assert.ok(err instanceof EtcdError);
  assert.equal(err.details, 'etcdserver: too many requests');
  assert.equal(err.code, 8);
  assert.equal(new Admission().add('flow', flowCheck(src({ count: 4 }), { maxPendingCount: 5 })).admit(new Proposal(EntryKind.Put, new Uint8Array(8))), null);
});

test('ReadIndex: past MAX_READ_ROUNDS_IN_FLIGHT unanswered rounds a read needing a new round gets "too many requests"', async () => {
  const reads = new ReadIndex({ send: () => {}, applied: new AppliedIndexWaiters(0), timeoutMs: 60_000, noLeader: () => false });
  const waits: Promise<void>[] = [];
  // Fill rounds: each round takes MAX_READS_PER_ROUND reads; start a new one per turn instead (cheaper).
  for (let i = 0; i < MAX_READ_ROUNDS_IN_FLIGHT; i++) {
    waits.push(reads.wait().catch(() => {}));
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(reads.roundsInFlight, MAX_READ_ROUNDS_IN_FLIGHT);
  assert.ok(MAX_READS_PER_ROUND > 1);
  await assert.rejects(reads.wait(), (e: unknown) => e instanceof EtcdError && e.details === Errors.RequestTooManyRequests.message);
  reads.failAll('Stopped');
  await Promise.all(waits);
});
