/**
 * End to end: the bench CLI against a real etcd 3.4 started here on free loopback ports.
 * Nothing is timing-asserted; the checks are counts, the JSON shape and the ordering of the statistics.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { bench } from './cli-run';
import { etcdBinary, startEtcd, type EtcdHandle } from './etcd';
import { newClient, callUnary, encodeRange } from '../../src/bench/wire';
import { pb } from '../../src/wire/codec';

const BIN = etcdBinary();
const SKIP = BIN ? false : 'etcd is not installed (apt-get install etcd-server etcd-client): end-to-end bench tests skipped';


async function revision(endpoint: string): Promise<number> {
  const c = newClient(endpoint);
  try {
    const r = pb.RangeResponse.decode(await callUnary(c, 'Range', encodeRange('nothing-here', '', false), 10000)) as unknown as { header: { revision: number } };
    return r.header.revision;
  } finally {
    c.close();
  }
}

interface J {
  count: number; errors: number; rps: number; total: number; workers: number;
  latencyMs: { slowest: number; fastest: number; average: number; stddev: number };
  percentilesMs: Record<string, number>; histogram: Array<{ boundMs: number; count: number }>;
  samples?: unknown[]; events?: J;
}

function checkStats(j: J, count: number): void {
  assert.equal(j.count, count, 'successes');
  assert.equal(j.errors, 0, 'errors');
  assert.ok(j.total > 0 && j.rps > 0);
  const { fastest, slowest, average } = j.latencyMs;
  assert.ok(fastest > 0 && fastest <= average && average <= slowest, `fastest ${fastest} ≤ average ${average} ≤ slowest ${slowest}`);
  const ps = ['10', '25', '50', '75', '90', '95', '99', '99.9'].map((k) => j.percentilesMs[k]);
  for (let i = 0; i < ps.length; i++) {
    assert.ok(ps[i] >= fastest && ps[i] <= slowest, `p${i} within [fastest, slowest]`);
    if (i > 0) assert.ok(ps[i] >= ps[i - 1], 'percentiles ascend');
  }
  assert.equal(j.histogram.length, 11);
  assert.equal(j.histogram.reduce((a, b) => a + b.count, 0), count, 'histogram total');
}

describe('bench against etcd 3.4', { skip: SKIP, timeout: 180000 }, () => {
  let etcd: EtcdHandle;
  before(async () => { etcd = await startEtcd(BIN!); });
  after(async () => { await etcd?.stop(); });

  test('put --total 200 --clients 4 --conns 2 --json', async () => {
    const rev0 = await revision(etcd.endpoint);
    const r = await bench(['--endpoints', etcd.endpoint, '--clients', '4', '--conns', '2', 'put', '--total', '200', '--val-size', '64', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1, 'one JSON object');
    const j = JSON.parse(lines[0]) as J;
    checkStats(j, 200);
    assert.equal(j.workers, 2);
    assert.equal(j.samples, undefined);
    // Every put made one revision on the server.
    assert.equal(await revision(etcd.endpoint), rev0 + 200);
  });

  test('range foo --total 200 (text report) and --json with --sample', async () => {
    const t = await bench(['--endpoints', etcd.endpoint, 'range', 'foo', '--total', '200']);
    assert.equal(t.status, 0, t.stderr);
    const lines = t.stdout.split('\n');
    assert.equal(lines[0], 'bench with linearizable range');
    for (const h of ['Summary:', 'Response time histogram:', 'Latency distribution:']) assert.ok(lines.includes(h), h);
    assert.ok(lines.some((l) => /^ {2}Requests\/sec:\t\d+\.\d{4}$/.test(l)));
    assert.ok(lines.some((l) => /^ {2}99\.9% in \d+\.\d{4} secs\.$/.test(l)));
    assert.ok(!lines.includes('Error distribution:'));
    const h = lines.indexOf('Response time histogram:');
    const rows = lines.slice(h + 1, h + 12).map((l) => Number(/\[(\d+)\]/.exec(l)![1]));
    assert.equal(rows.reduce((a, b) => a + b, 0), 200);

    const r = await bench(['--endpoints', etcd.endpoint, '--sample', 'range', 'foo', '--consistency', 's', '--total', '200', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as J;
    checkStats(j, 200);
    assert.ok(Array.isArray(j.samples) && j.samples.length >= 1);
  });

  test('--target-leader, txn-put and lease-keepalive', async () => {
    const rev0 = await revision(etcd.endpoint);
    const a = await bench(['--endpoints', `127.0.0.1:1,${etcd.endpoint}`, '--target-leader', '--clients', '2', 'txn-put', '--total', '50', '--txn-ops', '2', '--key-space-size', '4', '--json']);
    assert.equal(a.status, 0, a.stderr);
    checkStats(JSON.parse(a.stdout) as J, 50);
    assert.equal(await revision(etcd.endpoint), rev0 + 50, 'one revision per txn');
    const b = await bench(['--endpoints', etcd.endpoint, '--clients', '3', 'lease-keepalive', '--total', '100', '--json']);
    assert.equal(b.status, 0, b.stderr);
    checkStats(JSON.parse(b.stdout) as J, 100);
  });

  test('gateway-put and gateway-range (HTTP through the JSON gateway, autocannon)', async () => {
    const rev0 = await revision(etcd.endpoint);
    const r = await bench(['--endpoints', `127.0.0.1:1,${etcd.endpoint}`, '--target-leader', '--conns', '4', '--clients', '4', 'gateway-put', '--total', '200', '--val-size', '64', '--sequential-keys', '--key-space-size', '50', '--json']);
    assert.equal(r.status, 0, r.stderr);
    checkStats(JSON.parse(r.stdout) as J, 200);
    assert.equal(await revision(etcd.endpoint), rev0 + 200, 'one revision per HTTP put');
    const t = await bench(['--endpoints', etcd.endpoint, '--conns', '2', 'gateway-range', 'foo', '--consistency', 's', '--total', '100']);
    assert.equal(t.status, 0, t.stderr);
    const lines = t.stdout.split('\n');
    assert.equal(lines[0], 'bench with serializable range');
    for (const h of ['Summary:', 'Response time histogram:', 'Latency distribution:']) assert.ok(lines.includes(h), h);
    const h = lines.indexOf('Response time histogram:');
    assert.equal(lines.slice(h + 1, h + 12).map((l) => Number(/\[(\d+)\]/.exec(l)![1])).reduce((a, b) => a + b, 0), 100);
    // A path the gateway does not serve: every request fails and is counted by status.
    const bad = await bench(['--endpoints', '127.0.0.1:1', '--conns', '1', 'gateway-range', 'foo', '--total', '5', '--json']);
    assert.notEqual(bad.status, 0);
  });

  test('watch: creation and events', async () => {
    const r = await bench(['--endpoints', etcd.endpoint, '--conns', '2', '--clients', '2', 'watch', '--streams', '4', '--watch-per-stream', '5', '--put-total', '30', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as J;
    checkStats(j, 20);
    // One watched key: every put reaches all 20 watchers.
    checkStats(j.events!, 600);
  });

  test('failed requests are counted as errors, not dropped (lazy dial to a closed port)', async () => {
    const r = await bench(['--endpoints', '127.0.0.1:1', '--dial-timeout', '0', '--request-timeout', '2s', 'range', 'foo', '--total', '20', '--json']);
    assert.equal(r.status, 1);
    const j = JSON.parse(r.stdout) as J;
    assert.equal(j.count, 0);
    assert.equal(j.errors, 20);
  });
});
