/** ReadIndex rounds and their waiters (src/server/read-index.ts), driven the way RaftHost drives them. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { ReadIndex, MAX_READS_PER_ROUND, READ_INDEX_RETRY_MS } from '../../src/server/read-index';
import { AppliedIndexWaiters } from '../../src/server/read-waiters';
import { EtcdError, Errors } from '../../src/errors';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

function setup(opts: { applied?: number; timeoutMs?: number; noLeader?: boolean } = {}) {
  const sent: Buffer[] = [];
  const applied = new AppliedIndexWaiters(opts.applied ?? 0);
  const reads = new ReadIndex({ send: (ctx) => sent.push(Buffer.from(ctx)), applied, timeoutMs: opts.timeoutMs ?? 60_000, noLeader: () => opts.noLeader ?? false });
  return { sent, applied, reads };
}

test('reads of one turn share one round; they resolve once the applied index reaches the confirmed index', async () => {
  const { sent, applied, reads } = setup({ applied: 3 });
  let done = 0;
  const ps = [reads.wait(), reads.wait(), reads.wait()].map((p) => p.then(() => done++));
  await turn();
  assert.equal(sent.length, 1, 'one round for three reads');
  assert.equal(reads.roundsInFlight, 1);
  reads.onReadStates([{ index: 5, requestCtx: sent[0] as Buffer }]);
  await turn();
  assert.equal(done, 0, 'applied 3 < confirmed 5');
  applied.advance(5);
  await Promise.all(ps);
  assert.equal(done, 3);
  assert.equal(reads.roundsInFlight, 0);
});

test('a read in a later turn starts a new round; an answer for an unknown context is ignored', async () => {
  const { sent, reads } = setup({ applied: 10 });
  const a = reads.wait();
  await turn();
  const b = reads.wait();
  await turn();
  assert.equal(sent.length, 2);
  assert.notDeepEqual(sent[0], sent[1]);
  reads.onReadStates([{ index: 1, requestCtx: Buffer.from('nope') }]);
  assert.equal(reads.roundsInFlight, 2);
  reads.onReadStates([{ index: 10, requestCtx: sent[1] as Buffer }, { index: 9, requestCtx: sent[0] as Buffer }]);
  await Promise.all([a, b]);
});

test('a round is capped at MAX_READS_PER_ROUND reads', async () => {
  const { sent, reads } = setup();
  for (let i = 0; i <= MAX_READS_PER_ROUND; i++) void reads.wait().catch(() => {});
  await turn();
  assert.equal(sent.length, 2);
  reads.failAll('Stopped');
});

test('an unanswered round is sent again after READ_INDEX_RETRY_MS with the same context', async () => {
  const { sent, reads } = setup();
  const p = reads.wait().catch((e: unknown) => e);
  await turn();
  const t0 = Date.now();
  reads.retry(t0 + READ_INDEX_RETRY_MS - 1000);
  assert.equal(sent.length, 1, 'not yet');
  reads.retry(t0 + READ_INDEX_RETRY_MS + 1000);
  assert.equal(sent.length, 2);
  assert.deepEqual(sent[1], sent[0]);
  reads.failAll('LeaderChanged');
  const err = await p;
  assert.ok(err instanceof EtcdError);
  assert.equal(err.message, Errors.LeaderChanged.message);
  assert.equal(reads.roundsInFlight, 0);
});

test('a round not answered within the timeout fails with NoLeader without a leader, Timeout with one', async () => {
  for (const [noLeader, name] of [[true, 'NoLeader'], [false, 'Timeout']] as const) {
    const { reads } = setup({ timeoutMs: 20, noLeader });
    const keepAlive = setTimeout(() => {}, 10_000); // the round's own timer is unref'd, as a member's is
    const err = await reads.wait().then(() => null, (e: unknown) => e);
    clearTimeout(keepAlive);
    assert.ok(err instanceof EtcdError);
    assert.equal(err.message, Errors[name].message);
  }
});

test('reads confirmed while the applied-index waiters are full are refused with "too many requests"', async () => {
  const { sent, applied, reads } = setup({ applied: 0 });
  let filled = 0;
  while (applied.wait(1_000_000, () => {})) filled++;
  const p = reads.wait().then(() => null, (e: unknown) => e);
  await turn();
  reads.onReadStates([{ index: 7, requestCtx: sent[0] as Buffer }]);
  const err = await p;
  assert.ok(filled > 0);
  assert.ok(err instanceof EtcdError);
  assert.equal(err.message, Errors.RequestTooManyRequests.message);
});
