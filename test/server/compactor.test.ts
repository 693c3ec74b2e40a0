/**
 * Auto-compaction on an injected clock (etcd 3.4 v3compactor semantics): which revision is compacted when, pause
 * while not leader, retries, "already compacted" counted as done, and etcd's zap log messages.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { startCompactor, REVISION_COMPACT_INTERVAL_MS, type CompactorClock } from '../../src/server/compactor';
import { createLogger } from '../../src/log';
import { etcdError } from '../../src/errors';

/** A clock whose timers fire only when the test advances it. */
class ManualClock implements CompactorClock {
  t = 0;
  private timers: { at: number; fn: () => void; seq: number }[] = [];
  private seq = 0;
  now(): number { return this.t; }
  after(ms: number, fn: () => void): () => void {
    const timer = { at: this.t + ms, fn, seq: this.seq++ };
    this.timers.push(timer);
    return () => { this.timers = this.timers.filter((x) => x !== timer); };
  }
  /** Moves time forward `ms`, firing due timers in order and letting their async work settle. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await new Promise((r) => setImmediate(r));
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.t = next.at;
      next.fn();
    }
    this.t = end;
    await new Promise((r) => setImmediate(r));
  }
}

function logCapture() {
  const lines: Record<string, unknown>[] = [];
  const dest = new Writable({ write(chunk, _e, cb) { for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l)); cb(); } });
  return { lines, logger: createLogger('info', { destination: dest }) };
}

test('periodic: first compaction one retention after start, to the revision seen one retention ago; then every retention', async () => {
  const clock = new ManualClock();
  const { lines, logger } = logCapture();
  let rev = 1;
  const compacted: { at: number; rev: number }[] = [];
  const c = startCompactor({
    mode: 'periodic', retentionMs: 10_000, retentionRevisions: 0, logger, clock,
    host: { revision: () => rev, compact: async (r) => { compacted.push({ at: clock.now(), rev: r }); } },
  })!;
  c.resume();
  // one write per second, after that second's sample: the sample at t s reads t (1 at 0)
  for (let s = 0; s < 35; s++) {
    await clock.advance(1000);
    rev++;
  }
  c.stop();
  assert.deepEqual(compacted.map((x) => x.at), [10_000, 20_000, 30_000]);
  // at 10 s the oldest sample is the one taken at start; later the oldest of the 11 kept (one retention plus one
  // sample interval back, as etcd's ring of period/interval+1 samples taken before each wait)
  assert.equal(compacted[0]!.rev, 1);
  assert.equal(compacted[1]!.rev, 9);
  assert.equal(compacted[2]!.rev, 19);
  const starts = lines.filter((l) => l.msg === 'starting auto periodic compaction');
  const dones = lines.filter((l) => l.msg === 'completed auto periodic compaction');
  assert.equal(starts.length, 3);
  assert.equal(dones.length, 3);
  assert.deepEqual({ revision: starts[1]!.revision, period: starts[1]!['compact-period'] }, { revision: 9, period: '10s' });
});

test('periodic: paused (not leader) never compacts; resumed compacts at the next sample; failures retry, Compacted counts as done', async () => {
  const clock = new ManualClock();
  const { lines, logger } = logCapture();
  let rev = 100;
  let fail: 'no' | 'timeout' | 'compacted' = 'no';
  const compacted: number[] = [];
  const c = startCompactor({
    mode: 'periodic', retentionMs: 10_000, retentionRevisions: 0, logger, clock,
    host: {
      revision: () => rev,
      compact: async (r) => {
        if (fail === 'timeout') throw etcdError('Timeout');
        if (fail === 'compacted') throw etcdError('Compacted');
        compacted.push(r);
      },
    },
  })!;
  for (let s = 0; s < 25; s++) { await clock.advance(1000); rev++; }
  assert.deepEqual(compacted, [], 'a paused compactor compacts nothing');
  c.resume();
  fail = 'timeout';
  await clock.advance(1000);
  assert.equal(lines.filter((l) => l.msg === 'failed auto periodic compaction').length, 1);
  assert.equal(lines.find((l) => l.msg === 'failed auto periodic compaction')!['retry-interval'], '1s');
  fail = 'compacted';
  await clock.advance(1000);
  assert.equal(lines.filter((l) => l.msg === 'completed auto periodic compaction').length, 1, 'Compacted is success');
  fail = 'no';
  await clock.advance(9000);
  assert.deepEqual(compacted, [], 'the next try waits a retention after the last success');
  await clock.advance(1000);
  assert.equal(compacted.length, 1);
  c.pause();
  await clock.advance(60_000);
  assert.equal(compacted.length, 1);
  c.stop();
});

test('periodic: a retention over an hour compacts first after the retention, then hourly, to the revision one retention ago', async () => {
  const clock = new ManualClock();
  const { logger } = logCapture();
  const H = 3600_000;
  const compacted: { at: number; rev: number }[] = [];
  const c = startCompactor({
    mode: 'periodic', retentionMs: 2 * H, retentionRevisions: 0, logger, clock,
    host: { revision: () => Math.floor(clock.now() / 60_000), compact: async (r) => { compacted.push({ at: clock.now(), rev: r }); } },
  })!;
  c.resume();
  await clock.advance(4 * H + 1000);
  c.stop();
  assert.deepEqual(compacted.map((x) => x.at), [2 * H, 3 * H, 4 * H]);
  // samples every 6 min, 21 kept, the last taken 6 min before: the oldest is 2 h 6 min old
  assert.deepEqual(compacted.map((x) => x.rev), [0, 54, 114]);
});

test('revision: every 5 minutes compacts to current − retention, skipping ≤ 0 and an unchanged target', async () => {
  const clock = new ManualClock();
  const { lines, logger } = logCapture();
  let rev = 5;
  const compacted: number[] = [];
  const c = startCompactor({
    mode: 'revision', retentionMs: 0, retentionRevisions: 10, logger, clock,
    host: { revision: () => rev, compact: async (r) => { compacted.push(r); } },
  })!;
  c.resume();
  await clock.advance(REVISION_COMPACT_INTERVAL_MS);
  assert.deepEqual(compacted, [], 'current − retention ≤ 0');
  rev = 40;
  await clock.advance(REVISION_COMPACT_INTERVAL_MS - 1);
  assert.deepEqual(compacted, []);
  await clock.advance(1);
  assert.deepEqual(compacted, [30]);
  await clock.advance(REVISION_COMPACT_INTERVAL_MS);
  assert.deepEqual(compacted, [30], 'same target is not compacted again');
  rev = 100;
  c.pause();
  await clock.advance(REVISION_COMPACT_INTERVAL_MS);
  assert.deepEqual(compacted, [30]);
  c.resume();
  await clock.advance(REVISION_COMPACT_INTERVAL_MS);
  assert.deepEqual(compacted, [30, 90]);
  c.stop();
  const start = lines.find((l) => l.msg === 'starting auto revision compaction')!;
  assert.deepEqual({ r: start.revision, k: start['revision-compaction-retention'] }, { r: 30, k: 10 });
  assert.equal(lines.filter((l) => l.msg === 'completed auto revision compaction').length, 2);
});

test('retention 0 disables auto-compaction', () => {
  const { logger } = logCapture();
  const host = { revision: () => 1, compact: async () => {} };
  assert.equal(startCompactor({ mode: 'periodic', retentionMs: 0, retentionRevisions: 0, host, logger }), null);
  assert.equal(startCompactor({ mode: 'revision', retentionMs: 0, retentionRevisions: 0, host, logger }), null);
});
