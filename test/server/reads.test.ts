/**
 * The read path (src/server/reads.ts) against a small fake of its host: a scripted state machine (applied index,
 * range answers, store swaps) and a recorded ReadIndex channel standing in for Raft. Serializable and linearizable
 * Range, the refusals (stopped, learner), the wait for a store swap, waitApplied, and /health's read through Raft.
 * The ReadIndex rounds themselves: test/server/read-index.test.ts; end to end: the KV, lease and cluster tests.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Reads, HEALTH_READ_TIMEOUT_MS } from '../../src/server/reads';
import type { RangeRequest } from '../../src/wire/codec';
import { EtcdError, Errors, etcdError } from '../../src/errors';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

function setup(opts: { applied?: number; timeoutMs?: number; learner?: boolean; healthy?: boolean } = {}) {
  const sent: Buffer[] = [];
  const served: { req: RangeRequest; at: number }[] = [];
  const state = { applied: opts.applied ?? 0, stopped: false, swap: null as Promise<void> | null, rangeError: null as EtcdError | null };
  const reads = new Reads({
    sm: {
      appliedIndex: () => state.applied,
      whenReadable: () => state.swap,
      range: (req) => {
        if (state.rangeError) throw state.rangeError;
        served.push({ req, at: state.applied });
        return Uint8Array.of(state.applied);
      },
    },
    sendReadIndex: (ctx) => void sent.push(Buffer.from(ctx)),
    timeoutMs: opts.timeoutMs ?? 60_000,
    noLeader: () => false,
    stopped: () => state.stopped,
    isLearner: () => opts.learner ?? false,
    header: () => ({ clusterId: 1, memberId: 2, raftTerm: 3 }),
    health: () => (opts.healthy === false ? { health: false, reason: 'NO LEADER' } : { health: true, reason: '' }),
  });
  /** Raft confirms every round sent so far at `index`. */
  const confirm = (index: number): void => reads.onReadStates(sent.splice(0).map((requestCtx) => ({ index, requestCtx })));
  /** The apply worker reached `index`. */
  const apply = (index: number): void => {
    state.applied = index;
    reads.applied(index);
  };
  return { reads, sent, served, state, confirm, apply };
}

const isErr = (spec: { message: string }) => (e: unknown): boolean => e instanceof EtcdError && e.message === spec.message;
const req = (serializable: boolean): RangeRequest => ({ key: Buffer.from('k'), serializable }) as unknown as RangeRequest;

test('a serializable range is served at once, without a ReadIndex round', async () => {
  const s = setup({ applied: 4 });
  assert.deepEqual(await s.reads.range(req(true)), Uint8Array.of(4));
  await turn();
  assert.equal(s.sent.length, 0);
});

test('a linearizable range waits for the round and then for the applied index to reach the confirmed one', async () => {
  const s = setup({ applied: 2 });
  let answer: Uint8Array | null = null;
  const p = s.reads.range(req(false)).then((r) => (answer = r));
  await turn();
  assert.equal(s.sent.length, 1, 'one round sent');
  assert.equal(s.served.length, 0, 'nothing read before the round is confirmed');
  s.confirm(5);
  await turn();
  assert.equal(answer, null, 'applied 2 < confirmed 5: still waiting');
  s.apply(4);
  await turn();
  assert.equal(answer, null);
  s.apply(5);
  await p;
  assert.deepEqual(answer, Uint8Array.of(5), 'read at the confirmed index');
  assert.equal(s.reads.roundsInFlight, 0);
});

test('a stopped member refuses every read; a learner refuses linearizable ones and serves serializable ones', async () => {
  const s = setup();
  s.state.stopped = true;
  await assert.rejects(s.reads.range(req(true)), isErr(Errors.Stopped));
  await assert.rejects(s.reads.range(req(false)), isErr(Errors.Stopped));
  await assert.rejects(s.reads.linearizableWait(), isErr(Errors.Stopped));
  const l = setup({ applied: 1, learner: true });
  await assert.rejects(l.reads.range(req(false)), isErr(Errors.NotSupportedForLearner));
  await assert.rejects(l.reads.linearizableWait(), isErr(Errors.NotSupportedForLearner));
  assert.deepEqual(await l.reads.range(req(true)), Uint8Array.of(1));
});

test('a read during a store swap waits for its end; a swap longer than the request timeout fails the read with Timeout', async () => {
  const s = setup({ applied: 3 });
  let endSwap!: () => void;
  s.state.swap = new Promise<void>((r) => (endSwap = r));
  let done = false;
  const p = s.reads.range(req(true)).then(() => (done = true));
  await turn();
  assert.equal(done, false);
  s.state.swap = null;
  endSwap();
  await p;
  assert.equal(s.served.length, 1);
  const t = setup({ timeoutMs: 20 });
  t.state.swap = new Promise<void>(() => {});
  const keepAlive = setTimeout(() => {}, 10_000); // the swap timer is unref'd, as a member's is
  await assert.rejects(t.reads.range(req(true)), isErr(Errors.Timeout));
  clearTimeout(keepAlive);
});

test('range errors of the store (compacted, future revision) reach the caller', async () => {
  const s = setup();
  s.state.rangeError = etcdError('Compacted');
  await assert.rejects(s.reads.range(req(true)), isErr(Errors.Compacted));
});

test('waitApplied resolves at the applied index and fails with Timeout when it is not reached in time', async () => {
  const s = setup({ applied: 1, timeoutMs: 30 });
  await s.reads.waitApplied(1);
  const p = s.reads.waitApplied(3);
  s.apply(3);
  await p;
  const keepAlive = setTimeout(() => {}, 10_000);
  await assert.rejects(s.reads.waitApplied(10), isErr(Errors.Timeout));
  clearTimeout(keepAlive);
});

test('a leader change fails outstanding linearizable reads with "leader changed"', async () => {
  const s = setup();
  const p = s.reads.linearizableWait();
  await turn();
  s.reads.failAll('LeaderChanged');
  await assert.rejects(p, isErr(Errors.LeaderChanged));
  assert.equal(s.reads.roundsInFlight, 0);
});

test('healthCheck: the local checks first, then a read through Raft that must answer within the health timeout', async () => {
  const sick = setup({ healthy: false });
  assert.deepEqual(await sick.reads.healthCheck(), { health: false, reason: 'NO LEADER' });
  await turn();
  assert.equal(sick.sent.length, 0, 'no round when the local checks fail');

  const s = setup({ applied: 7 });
  const ok = s.reads.healthCheck();
  await turn();
  s.confirm(7);
  assert.deepEqual(await ok, { health: true, reason: '' });

  const q = setup();
  const t0 = Date.now();
  const lost = await q.reads.healthCheck(); // a round Raft never answers (no quorum)
  assert.deepEqual(lost, { health: false, reason: 'RAFT READ FAILED' });
  assert.ok(Date.now() - t0 >= HEALTH_READ_TIMEOUT_MS - 50, 'waited for the health timeout');
  q.reads.failAll('Stopped');
});

test('rounds not answered are asked again on a later tick with the same context', async () => {
  const s = setup();
  const p = s.reads.linearizableWait().catch(() => {});
  await turn();
  const first = s.sent[0] as Buffer;
  s.reads.tick(Date.now() + 60_000);
  assert.equal(s.sent.length, 2);
  assert.deepEqual(s.sent[1], first);
  s.reads.failAll('Stopped');
  await p;
});
