/**
 * The apply-result handling (src/server/apply-results.ts) against a fake of its host: real pending proposals, a
 * scripted state machine delivering applied batches and a fault, recorded reads, stages, events, snapshots and
 * NOSPACE raises. Answers by request ID (an error ID becomes etcd's error), the applied index reaching the reads
 * and the snapshotter, the events' order, NOSPACE raised once per crossing of the quota, and the worker's fault code
 * handed to the write path. End to end: test/server/overload.test.ts, full-disk.test.ts, test/quota/.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { ApplyResults } from '../../src/server/apply-results';
import { PendingProposals } from '../../src/server/pending-proposals';
import { ServerEvents } from '../../src/server/events';
import { ApplyFaultCode } from '../../src/apply/apply-status';
import type { AppliedCallback } from '../../src/apply/client';
import { EtcdError, Errors } from '../../src/errors';

function setup(opts: { quotaBytes?: number; applied?: number } = {}) {
  const log: string[] = [];
  const pending = new PendingProposals(60_000);
  const events = new ServerEvents();
  const state = { size: 0, noSpace: 0, faults: [] as [string, ApplyFaultCode][], samples: 0 };
  events.on('applied', (i) => void log.push(`applied ${i}`));
  events.on('mvccEvents', (e) => void log.push(`events ${e.length}`));
  events.on('restored', () => void log.push('restored'));
  const stages: string[] = [];
  const r = new ApplyResults(
    {
      pending,
      reads: { applied: (i) => void log.push(`reads ${i}`) },
      stages: {
        reached: (stage, first, last) => void stages.push(`${stage} ${first}..${last}`),
        answeredSoon: (first, last) => void stages.push(`answered ${first}..${last}`),
      },
      applyTotals: { sample: () => void state.samples++ },
      applyStatus: () => undefined,
      quotaBytes: opts.quotaBytes ?? -1,
      backendSize: () => state.size,
      raiseNoSpace: () => void state.noSpace++,
      events,
      snapshotApplied: (i) => void log.push(`snapshot ${i}`),
      applyFailed: (message, code) => void state.faults.push([message, code]),
    },
    opts.applied ?? 0,
  );
  return { r, log, pending, state, stages };
}

/** A proposal registered with `pending`, its outcome recorded. */
function waiter(pending: PendingProposals, requestId: number): { outcome: () => Uint8Array | EtcdError | null } {
  let out: Uint8Array | EtcdError | null = null;
  pending.add(requestId, Date.now(), (err, v) => (out = err ?? v ?? null), 10);
  return { outcome: () => out };
}

test('an applied batch answers its proposals by request ID, then reads, the applied event, the snapshotter, the watch events', () => {
  const s = setup({ applied: 4 });
  const a = waiter(s.pending, 11);
  const b = waiter(s.pending, 12);
  const c = waiter(s.pending, 13);
  s.r.onApplied(
    7,
    [
      { requestId: 11, errorId: 0, response: Uint8Array.of(1) },
      { requestId: 12, errorId: Errors.Compacted.id, response: new Uint8Array(0) },
      { requestId: 99, errorId: 0, response: Uint8Array.of(9) }, // another member's request: ignored
    ],
    [Buffer.from('e1'), Buffer.from('e2')],
  );
  assert.deepEqual(a.outcome(), Uint8Array.of(1));
  const err = b.outcome();
  assert.ok(err instanceof EtcdError);
  assert.equal(err.message, Errors.Compacted.message);
  assert.equal(c.outcome(), null, 'not in this batch: still waiting');
  assert.equal(s.pending.size, 1);
  assert.deepEqual(s.log, ['reads 7', 'applied 7', 'snapshot 7', 'events 2']);
  assert.deepEqual(s.stages, ['applied 5..7', 'answered 5..7']);
  assert.equal(s.state.samples, 1, 'apply-worker counters sampled per batch');
});

test('a batch without results (a restore, or only others\' entries) moves the applied index but stamps no answer', () => {
  const s = setup({ applied: 10 });
  s.r.onApplied(12, [], []);
  s.r.onApplied(15, [], []);
  assert.deepEqual(s.stages, ['applied 11..12', 'applied 13..15']);
  assert.deepEqual(s.log, ['reads 12', 'applied 12', 'snapshot 12', 'events 0', 'reads 15', 'applied 15', 'snapshot 15', 'events 0']);
});

test('NOSPACE is raised once when applied writes take the backend over the quota, again only after it shrank', () => {
  const s = setup({ quotaBytes: 1000 });
  s.state.size = 500;
  s.r.onApplied(1, [], []);
  assert.equal(s.state.noSpace, 0);
  s.state.size = 1000;
  s.r.onApplied(2, [], []);
  assert.equal(s.state.noSpace, 1, 'crossed the quota');
  s.state.size = 1200;
  s.r.onApplied(3, [], []);
  assert.equal(s.state.noSpace, 1, 'still over: not raised on every batch');
  s.r.backendResized(400); // a defragment shrank the file
  s.r.onApplied(4, [], []);
  assert.equal(s.state.noSpace, 2, 'crossed again after the defragment');
  const none = setup({ quotaBytes: -1 });
  none.state.size = 1e12;
  none.r.onApplied(1, [], []);
  assert.equal(none.state.noSpace, 0, 'no quota, no alarm');
});

test('attach: applied batches, the worker fault (its code, not its message) and restores reach the member', () => {
  const s = setup();
  let applied: AppliedCallback | null = null;
  let fatal: ((m: string, c: ApplyFaultCode) => void) | null = null;
  let restored: (() => void) | null = null;
  s.r.attach({
    onApplied: (cb) => void (applied = cb),
    onFatal: (cb) => void (fatal = cb),
    onRestored: (cb) => void (restored = cb),
  });
  assert.ok(applied && fatal && restored);
  (applied as AppliedCallback)(3, [], []);
  (fatal as (m: string, c: ApplyFaultCode) => void)('MDB_MAP_FULL', ApplyFaultCode.NoSpace);
  (restored as () => void)();
  assert.deepEqual(s.state.faults, [['MDB_MAP_FULL', ApplyFaultCode.NoSpace]]);
  assert.deepEqual(s.log, ['reads 3', 'applied 3', 'snapshot 3', 'events 0', 'restored']);
});
