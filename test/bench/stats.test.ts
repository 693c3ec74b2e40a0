/** Unit tests of the bench statistics (src/bench/stats.ts) and report formatting (src/bench/report.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PERCENTILES, barLengths, histogram, isSorted, meanStddev, percentile, percentiles, sortedCopy, summarize, timeSeries } from '../../src/bench/stats';
import { formatText, goDuration, goG, toJson } from '../../src/bench/report';

/** Deterministic pseudo-random numbers (LCG), so failures reproduce. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

test('percentile uses the rank ceil(p(n+1)/100)-1, clamped', () => {
  const xs = Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(percentile(xs, 50), 6); // ceil(5.5)-1 = 5
  assert.equal(percentile(xs, 10), 2); // ceil(1.1)-1 = 1
  assert.equal(percentile(xs, 99.9), 10); // clamped to n-1
  assert.equal(percentile(xs, 0.01), 1); // idx 0
  assert.equal(percentile([], 50), 0);
  assert.equal(percentile([7], 99), 7);
  assert.deepEqual(percentiles(xs), [2, 3, 6, 9, 10, 10, 10, 10]);
});

test('mean and population stddev', () => {
  const { mean, stddev } = meanStddev([2, 4, 4, 4, 5, 5, 7, 9]);
  assert.equal(mean, 5);
  assert.equal(stddev, 2);
  assert.deepEqual(meanStddev([]), { mean: 0, stddev: 0 });
  assert.deepEqual(meanStddev([3]), { mean: 3, stddev: 0 });
});

test('histogram: 11 bound rows, counts add up, each sample within its row bounds', () => {
  const r = rng(42);
  for (const n of [1, 2, 3, 10, 999, 5000]) {
    const raw = Array.from({ length: n }, () => (r() < 0.9 ? r() * 0.01 : r()));
    const xs = sortedCopy(raw);
    assert.ok(isSorted(xs));
    const h = histogram(xs);
    assert.equal(h.length, 11);
    assert.equal(h.reduce((a, b) => a + b.count, 0), n, `counts must add up to ${n}`);
    assert.equal(h[0].bound, xs[0]);
    assert.equal(h[10].bound, xs[n - 1]);
    // Recount each row by brute force from the raw samples.
    for (let i = 0; i < h.length; i++) {
      const lo = i === 0 ? -Infinity : h[i - 1].bound;
      const expect = i === 0 ? raw.filter((v) => v <= h[0].bound).length : raw.filter((v) => v > lo && v <= h[i].bound).length;
      assert.equal(h[i].count, expect, `row ${i} of n=${n}`);
    }
  }
});

test('histogram of 1..11 puts one sample in each row', () => {
  const h = histogram(Float64Array.from({ length: 11 }, (_, i) => i + 1));
  assert.deepEqual(h.map((x) => x.count), [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
  assert.deepEqual(h.map((x) => x.bound), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  const same = histogram([3, 3, 3]);
  assert.equal(same.reduce((a, b) => a + b.count, 0), 3);
  assert.deepEqual(histogram([]), []);
});

test('bar lengths scale to 40 for the fullest row', () => {
  assert.deepEqual(barLengths([{ bound: 1, count: 10 }, { bound: 2, count: 5 }, { bound: 3, count: 0 }]), [40, 20, 0]);
  assert.deepEqual(barLengths([{ bound: 1, count: 0 }]), [0]);
});

test('summarize is consistent with the raw samples', () => {
  const r = rng(7);
  const raw = Array.from({ length: 2345 }, () => 0.0005 + r() * r() * 0.05);
  const s = summarize(sortedCopy(raw), 2, { 'boom': 3, 'bang': 2 });
  assert.equal(s.count, raw.length);
  assert.equal(s.errors, 5);
  assert.equal(s.fastestSec, Math.min(...raw));
  assert.equal(s.slowestSec, Math.max(...raw));
  assert.ok(Math.abs(s.averageSec - raw.reduce((a, b) => a + b, 0) / raw.length) < 1e-12);
  assert.equal(s.rps, raw.length / 2);
  assert.deepEqual(s.percentiles.map((p) => p[0]), [...PERCENTILES]);
  for (let i = 0; i < s.percentiles.length; i++) {
    const v = s.percentiles[i][1];
    assert.ok(v >= s.fastestSec && v <= s.slowestSec);
    if (i > 0) assert.ok(v >= s.percentiles[i - 1][1], 'percentiles ascend');
    // At least p% of the samples are ≤ the p-th percentile.
    const below = raw.filter((x) => x <= v).length;
    assert.ok(below / raw.length >= s.percentiles[i][0] / 100 - 1 / raw.length, `p${s.percentiles[i][0]}`);
  }
  assert.equal(s.histogram.reduce((a, b) => a + b.count, 0), raw.length);
});

test('timeSeries groups by start second and fills gaps', () => {
  const ts = timeSeries([1000_100, 1000_900, 1003_000], [1e6, 3e6, 2e6]);
  assert.deepEqual(ts.map((p) => p.unixSecond), [1000, 1001, 1002, 1003]);
  assert.deepEqual(ts.map((p) => p.count), [2, 0, 0, 1]);
  assert.equal(ts[0].minNs, 1e6);
  assert.equal(ts[0].maxNs, 3e6);
  assert.equal(ts[0].avgNs, 2e6);
});

test('text report has etcd\'s shape', () => {
  const s = summarize(Float64Array.from([0.001, 0.002, 0.003, 0.004]), 0.5, { 'rpc error: code = Unavailable desc = x': 2 });
  const t = formatText(s);
  const lines = t.split('\n');
  assert.ok(lines.includes('Summary:'));
  assert.ok(lines.includes('  Total:\t0.5000 secs.'));
  assert.ok(lines.includes('  Slowest:\t0.0040 secs.'));
  assert.ok(lines.includes('  Fastest:\t0.0010 secs.'));
  assert.ok(lines.includes('  Average:\t0.0025 secs.'));
  assert.ok(lines.includes('  Requests/sec:\t8.0000'));
  const hi = lines.indexOf('Response time histogram:');
  assert.ok(hi > 0);
  for (let i = 1; i <= 11; i++) assert.match(lines[hi + i], /^ {2}\d+\.\d{4} \[\d+\]\t\|∎*$/);
  const li = lines.indexOf('Latency distribution:');
  assert.deepEqual(lines.slice(li + 1, li + 9).map((l) => l.split('%')[0].trim()), ['10', '25', '50', '75', '90', '95', '99', '99.9']);
  assert.equal(lines[li + 3], '  50% in 0.0030 secs.');
  assert.ok(lines.includes('Error distribution:'));
  assert.ok(lines.includes('  [2]\trpc error: code = Unavailable desc = x'));
  const j = toJson(s);
  assert.equal(j.count, 4);
  assert.equal(j.errors, 2);
  assert.equal(j.percentilesMs['50'], 3);
  assert.equal(j.samples, undefined);
});

test('Go number and duration formats', () => {
  assert.equal(goG(0.0015), '0.0015');
  assert.equal(goG(0.0000123), '1.23e-05');
  assert.equal(goG(1234.5), '1234.5');
  assert.equal(goDuration(1_234_567), '1.234567ms');
  assert.equal(goDuration(512_000), '512µs');
  assert.equal(goDuration(2_500_000_000), '2.5s');
  assert.equal(goDuration(0), '0s');
  assert.equal(goDuration(90_000_000_000), '1m30s');
});
