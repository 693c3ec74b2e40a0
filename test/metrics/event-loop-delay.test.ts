/** src/metrics/event-loop-delay.ts: folding perf_hooks' event-loop delay table into Prometheus buckets. */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { EVENT_LOOP_DELAY_BUCKETS_SECONDS, foldInto } from '../../src/metrics/event-loop-delay';
import { SharedHistogram } from '../../src/ring/shared-histogram';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function block(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) { /* hold the event loop */ }
}

it('a blocked loop lands in the buckets at or above the block, and every sample is counted once', async () => {
  const hist = SharedHistogram.create(EVENT_LOOP_DELAY_BUCKETS_SECONDS);
  const monitor = monitorEventLoopDelay({ resolution: 10 });
  monitor.enable();
  await sleep(200);
  for (let i = 0; i < 3; i++) {
    block(150);
    await sleep(50);
  }
  monitor.disable();
  const samples = monitor.count;
  const maxSeconds = (monitor.max - 10e6) / 1e9;
  foldInto(hist, monitor, 10);
  const { cumulative, count, sum } = hist.snapshot();
  assert.equal(count, samples);
  assert.equal(cumulative[cumulative.length - 1], samples);
  assert.equal(monitor.count, 0, 'the monitor is reset after a fold');
  // At least the three blocks (≥ 140 ms late each) are above the 64 ms bound; the fold never invents delays above the max.
  const at64 = EVENT_LOOP_DELAY_BUCKETS_SECONDS.indexOf(0.064);
  assert.ok(samples - cumulative[at64]! >= 1, `samples above 64 ms: ${samples - cumulative[at64]!}`);
  const firstAtMax = EVENT_LOOP_DELAY_BUCKETS_SECONDS.findIndex((b) => b >= maxSeconds);
  if (firstAtMax >= 0) assert.equal(cumulative[firstAtMax], samples);
  assert.ok(sum >= 0.14, `sum ${sum} s`);
  for (let i = 1; i < cumulative.length; i++) assert.ok(cumulative[i]! >= cumulative[i - 1]!, 'cumulative');
});

it('folding an empty monitor changes nothing', () => {
  const hist = SharedHistogram.create(EVENT_LOOP_DELAY_BUCKETS_SECONDS);
  const monitor = monitorEventLoopDelay({ resolution: 10 });
  foldInto(hist, monitor, 10);
  assert.equal(hist.snapshot().count, 0);
});
