import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { Registry, Counter } from 'prom-client';
import { HealthStatus, listenAddress, startHttpServer } from '../../src/api/http/server';
import { createEtcdRegistry } from '../../src/metrics/registry';

const VERSION = { etcdserver: '3.4.23', etcdcluster: '3.4.0' };

test('endpoints over real sockets: /health /version /livez /readyz /metrics, 404, 405', async () => {
  const { registry, metrics } = createEtcdRegistry();
  metrics.etcd_server_has_leader.set(1);
  let status: HealthStatus = { health: true, reason: '' };
  const srv = await startHttpServer({ urls: ['http://127.0.0.1:0'], registry, health: async () => status, version: VERSION });
  try {
    assert.equal(srv.ports.length, 1);
    assert.ok(srv.ports[0] > 0, 'port 0 reports the bound port');
    const base = `http://127.0.0.1:${srv.ports[0]}`;

    let r = await fetch(`${base}/health`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(r.headers.get('access-control-allow-origin'), '*');
    assert.equal(await r.text(), '{"health":"true"}');

    r = await fetch(`${base}/version`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/json');
    assert.equal(await r.text(), '{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}');

    for (const p of ['/livez', '/readyz']) {
      r = await fetch(base + p);
      assert.equal(r.status, 200, p);
      assert.equal(await r.text(), 'ok');
    }

    r = await fetch(`${base}/metrics`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    const text = await r.text();
    assert.match(text, /^# TYPE etcd_server_has_leader gauge$/m);
    assert.match(text, /^etcd_server_has_leader 1$/m);
    assert.match(text, /^etcd_server_health_success 2$/m, 'health checks (/health and /readyz) are counted as etcd does');

    for (const p of ['/nope', '/metrics/', '/healthz', '/']) {
      r = await fetch(base + p);
      assert.equal(r.status, 404, p);
      assert.equal(r.headers.get('content-type'), 'text/plain; charset=utf-8');
      assert.equal(await r.text(), '404 page not found\n');
    }

    r = await fetch(`${base}/health`, { method: 'POST' });
    assert.equal(r.status, 405);
    assert.equal(r.headers.get('allow'), 'GET');
    assert.equal(await r.text(), 'Method Not Allowed\n');

    status = { health: false, reason: 'RAFT NO LEADER' };
    r = await fetch(`${base}/health?exclude=NOSPACE`);
    assert.equal(r.status, 503);
    assert.deepEqual(JSON.parse(await r.text()), { health: 'false', reason: 'RAFT NO LEADER' });
    r = await fetch(`${base}/readyz`);
    assert.equal(r.status, 503);
    await r.text();
    r = await fetch(`${base}/livez`);
    assert.equal(r.status, 200, 'liveness does not depend on health');
    await r.text();
    assert.match(await registry.metrics(), /^etcd_server_health_failures 2$/m);
  } finally {
    srv.close();
  }
});

test('health callback that throws → 503; metrics collect errors → 500', async () => {
  const registry = new Registry();
  new Counter({ name: 'broken_total', help: 'x', registers: [registry], collect() { throw new Error('collector exploded'); } });
  const srv = await startHttpServer({ urls: ['http://127.0.0.1:0'], registry, health: () => { throw new Error('boom'); }, version: VERSION });
  try {
    const base = `http://127.0.0.1:${srv.ports[0]}`;
    let r = await fetch(`${base}/health`);
    assert.equal(r.status, 503);
    const body = JSON.parse(await r.text()) as { health: string; reason: string };
    assert.equal(body.health, 'false');
    assert.match(body.reason, /boom/);
    r = await fetch(`${base}/metrics`);
    assert.equal(r.status, 500);
    assert.match(await r.text(), /collector exploded/);
  } finally {
    srv.close();
  }
});

test('several client URLs plus --listen-metrics-urls on one app; close() stops listening', async () => {
  const { registry } = createEtcdRegistry();
  const srv = await startHttpServer({
    urls: ['http://127.0.0.1:0', 'http://localhost:0'],
    metricsUrls: ['http://127.0.0.1:0'],
    registry, health: () => ({ health: true, reason: '' }), version: VERSION,
  });
  const all = [...srv.ports, ...srv.metricsPorts];
  assert.equal(new Set(all).size, 3);
  for (const port of all) {
    const r = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(r.status, 200);
    assert.match(await r.text(), /etcd_server_version/);
  }
  srv.close();
  await assert.rejects(fetch(`http://127.0.0.1:${srv.metricsPorts[0]}/health`, { headers: { connection: 'close' } }).then((r) => r.text()).then(() => {
    // a kept-alive connection may still answer; a fresh connection must be refused
    return new Promise<void>((resolve, reject) => {
      const s = net.connect(srv.metricsPorts[0], '127.0.0.1');
      s.on('connect', () => { s.destroy(); resolve(); });
      s.on('error', reject);
    });
  }));
});

test('a busy port or unsupported URL rejects', async () => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  const port = (blocker.address() as net.AddressInfo).port;
  try {
    const { registry } = createEtcdRegistry();
    await assert.rejects(
      startHttpServer({ urls: [`http://127.0.0.1:${port}`], registry, health: () => ({ health: true, reason: '' }), version: VERSION }),
      /listen tcp 127\.0\.0\.1:\d+/,
    );
    await assert.rejects(
      startHttpServer({ urls: ['https://127.0.0.1:0'], registry, health: () => ({ health: true, reason: '' }), version: VERSION }),
      /unsupported listen URL/,
    );
  } finally {
    blocker.close();
  }
  assert.deepEqual(listenAddress('http://[::1]:2379'), { host: '::1', port: 2379 });
  assert.deepEqual(listenAddress('http://localhost:2379'), { host: '127.0.0.1', port: 2379 });
});
