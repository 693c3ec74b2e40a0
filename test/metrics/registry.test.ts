import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  BACKEND_COMMIT_DURATION, ETCD_METRIC_SPECS, WAL_FSYNC_DURATION, bucketsOf, createEtcdRegistry, exponentialBuckets,
  metrics as singletonMetrics, registry as singletonRegistry,
} from '../../src/metrics/registry';

const repo = path.join(__dirname, '..', '..', '..');
const fixture = fs.readFileSync(path.join(repo, 'test', 'metrics', 'fixtures', 'etcd-3.4.23-scrape.txt'), 'utf8');
const namesFile = fs.readFileSync(path.join(repo, 'src', 'metrics', 'etcd-3.4-metric-names.txt'), 'utf8');

interface Family { help?: string; type?: string; les: string[] }

/** Parse exposition text into name → help/type/bucket bounds (first series of each histogram). */
function families(text: string): Map<string, Family> {
  const out = new Map<string, Family>();
  const get = (n: string) => { let f = out.get(n); if (!f) out.set(n, (f = { les: [] })); return f; };
  const seenSeries = new Map<string, string>();
  for (const line of text.split('\n')) {
    let m = /^# HELP (\S+) (.*)$/.exec(line);
    if (m) { get(m[1]).help = m[2]; continue; }
    m = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (m) { get(m[1]).type = m[2]; continue; }
    m = /^(\S+)_bucket\{(.*)\}/.exec(line);
    if (m) {
      const labels = m[2].replace(/,?le="[^"]*"/, '');
      const first = seenSeries.get(m[1]);
      if (first !== undefined && first !== labels) continue;
      seenSeries.set(m[1], labels);
      const le = /le="([^"]*)"/.exec(m[2]);
      if (le && le[1] !== '+Inf') get(m[1]).les.push(le[1]);
    }
  }
  return out;
}

const fresh = createEtcdRegistry();

test('the registry renders; every etcd 3.4 name from the names file is exported', async () => {
  const text = await fresh.registry.metrics();
  assert.ok(text.length > 1000);
  const ours = families(text);
  const names = namesFile.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  assert.ok(names.length >= 110, `names file lists ${names.length}`);
  const missing = names.filter((n) => !ours.has(n) && n !== WAL_FSYNC_DURATION.name && n !== BACKEND_COMMIT_DURATION.name);
  assert.deepEqual(missing, []);
  // Node-specific extras
  for (const n of ['nodejs_eventloop_lag_seconds', 'process_cpu_seconds_total', 'process_resident_memory_bytes', 'etcetera_ring_occupancy_bytes']) {
    assert.ok(ours.has(n), n);
  }
  // names file and spec table agree
  for (const n of Object.keys(ETCD_METRIC_SPECS)) assert.ok(names.includes(n), `${n} in names file`);
  assert.equal(singletonRegistry.contentType, 'text/plain; version=0.0.4; charset=utf-8');
});

test('help, type and buckets match a real etcd 3.4.23 scrape', async () => {
  const theirs = families(fixture);
  const ours = families(await fresh.registry.metrics());
  let compared = 0;
  for (const [name, f] of theirs) {
    if (/^(go_|promhttp_|process_)/.test(name)) continue;
    if (name === WAL_FSYNC_DURATION.name || name === BACKEND_COMMIT_DURATION.name) {
      const spec = name === WAL_FSYNC_DURATION.name ? WAL_FSYNC_DURATION : BACKEND_COMMIT_DURATION;
      assert.equal(spec.help, f.help, name);
      assert.deepEqual(spec.buckets.map(String), f.les.map((x) => String(Number(x))), name);
      continue;
    }
    const o = ours.get(name);
    assert.ok(o, `missing ${name}`);
    assert.equal(o.help, f.help, `help of ${name}`);
    assert.equal(o.type, f.type, `type of ${name}`);
    if (f.type === 'histogram' && f.les.length > 0) {
      assert.deepEqual(o.les.map(Number), f.les.map(Number), `buckets of ${name}`);
    }
    compared++;
  }
  assert.ok(compared >= 80, `compared ${compared} families`);
});

test('labelled metrics absent from an idle etcd scrape: labels and buckets from etcd sources', async () => {
  const { registry, metrics } = createEtcdRegistry();
  metrics.etcd_network_peer_round_trip_time_seconds.observe({ To: '8e9e05c52164694d' }, 0.0003);
  metrics.etcd_network_peer_sent_bytes_total.inc({ To: '8e9e05c52164694d' }, 10);
  metrics.etcd_network_peer_received_bytes_total.inc({ From: '8e9e05c52164694d' }, 5);
  metrics.etcd_network_peer_sent_failures_total.inc({ To: '8e9e05c52164694d' });
  metrics.grpc_server_handled_total.inc({ grpc_type: 'unary', grpc_service: 'etcdserverpb.KV', grpc_method: 'Range', grpc_code: 'OK' });
  const text = await registry.metrics();
  const f = families(text);
  assert.deepEqual(f.get('etcd_network_peer_round_trip_time_seconds')?.les.map(Number), exponentialBuckets(0.0001, 2, 16));
  assert.equal(f.get('etcd_network_peer_round_trip_time_seconds')?.help, 'Round-Trip-Time histogram between peers');
  assert.match(text, /^etcd_network_peer_round_trip_time_seconds_bucket\{le="0\.0004",To="8e9e05c52164694d"\} 1$/m);
  assert.match(text, /^etcd_network_peer_sent_bytes_total\{To="8e9e05c52164694d"\} 10$/m);
  assert.match(text, /^etcd_network_peer_received_bytes_total\{From="8e9e05c52164694d"\} 5$/m);
  assert.match(text, /^grpc_server_handled_total\{grpc_type="unary",grpc_service="etcdserverpb.KV",grpc_method="Range",grpc_code="OK"\} 1$/m);
  assert.deepEqual(bucketsOf('etcd_disk_wal_fsync_duration_seconds'), [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192]);
  assert.deepEqual(bucketsOf('etcd_debugging_lease_ttl_total').slice(-1), [8388608]);
});

test('constant series, gauge funcs, ring occupancy and gRPC pre-initialisation', async () => {
  const { registry, metrics } = createEtcdRegistry();
  metrics.setServerId(0x2e1259d415f2a040n);
  metrics.setClusterVersion('3.3');
  metrics.setClusterVersion('3.4');
  metrics.setGaugeFunc('etcd_mvcc_db_total_size_in_bytes', () => 20480);
  metrics.setGaugeFunc('etcd_mvcc_db_total_size_in_use_in_bytes', async () => 16384);
  metrics.setRingOccupancySource(() => ({ walIn: 128, applyIn: 0 }));
  metrics.preinitializeGrpcMethods([{ service: 'etcdserverpb.Watch', method: 'Watch', type: 'bidi_stream' }]);
  metrics.etcd_server_has_leader.set(1);
  metrics.etcd_mvcc_put_total.inc();
  const text = await registry.metrics();
  assert.match(text, /^etcd_server_version\{server_version="3\.4\.23"\} 1$/m);
  assert.match(text, /^etcd_server_id\{server_id="2e1259d415f2a040"\} 1$/m);
  assert.match(text, /^etcd_cluster_version\{cluster_version="3\.4"\} 1$/m);
  assert.doesNotMatch(text, /cluster_version="3\.3"/);
  assert.match(text, /^etcd_mvcc_db_total_size_in_bytes 20480$/m);
  assert.match(text, /^etcd_mvcc_db_total_size_in_use_in_bytes 16384$/m);
  assert.match(text, /^etcetera_ring_occupancy_bytes\{ring="walIn"\} 128$/m);
  assert.match(text, /^etcd_server_has_leader 1$/m);
  assert.match(text, /^etcd_mvcc_put_total 1$/m);
  assert.match(text, /^os_fd_used [1-9][0-9]*$/m);
  const handled = text.split('\n').filter((l) => l.startsWith('grpc_server_handled_total{') && l.includes('method="Watch"'));
  assert.equal(handled.length, 17);
  assert.ok(handled.every((l) => l.includes('grpc_type="bidi_stream"') && l.endsWith(' 0')));
  assert.match(text, /^grpc_server_started_total\{grpc_type="bidi_stream",grpc_service="etcdserverpb.Watch",grpc_method="Watch"\} 0$/m);
  // the singleton is separate and usable
  singletonMetrics.etcd_debugging_lease_granted_total.inc();
  assert.match(await singletonRegistry.metrics(), /^etcd_debugging_lease_granted_total 1$/m);
});
