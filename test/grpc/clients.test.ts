/**
 * The gRPC layer driven by real clients — the `etcd3` npm client and Debian's `etcdctl` 3.4 — against the
 * in-memory test gateway; plus Maintenance/Cluster answers, Unimplemented methods and the grpc_server_*
 * counters.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Etcd3 } from 'etcd3';
import { Registry } from 'prom-client';
import { startGrpcServer, type GrpcServerHandle } from '../../src/api/grpc/server';
import { createEtcdMetrics } from '../../src/metrics/registry';
import { pb } from '../../src/wire/codec';
import { FAKE_CLUSTER_ID, FAKE_MEMBER_ID, FakeKv, FakeMaintenance } from './fake-gateway';
import { etcdctl, RawClient } from './helpers';

const haveEtcdctl = spawnSync('etcdctl', ['version'], { env: { ...process.env, ETCDCTL_API: '3' } }).status === 0;

describe('gRPC server with real clients', () => {
  let server: GrpcServerHandle;
  let kv: FakeKv;
  let endpoint: string;
  let client: Etcd3;
  let registry: Registry;

  before(async () => {
    kv = new FakeKv();
    registry = new Registry();
    server = await startGrpcServer({
      urls: ['http://127.0.0.1:0'],
      gateway: kv,
      maintenance: new FakeMaintenance(kv, () => `http://${endpoint}`),
      maxRequestBytes: 1.5 * 1024 * 1024,
      maxTxnOps: 128,
      metrics: createEtcdMetrics(registry),
    });
    endpoint = `127.0.0.1:${server.ports[0]}`;
    client = new Etcd3({ hosts: `http://${endpoint}` });
  });

  after(async () => {
    client?.close();
    await server?.close();
  });

  it('etcd3: put / get / getAll / delete', async () => {
    await client.put('foo').value('bar');
    assert.equal(await client.get('foo').string(), 'bar');
    await client.put('foo2').value('baz');
    assert.deepEqual(await client.getAll().prefix('foo').strings(), { foo: 'bar', foo2: 'baz' });
    const d = await client.delete().key('foo2').exec();
    assert.equal(d.deleted, '1');
    assert.equal(await client.get('foo2').string(), null);
  });

  it('etcd3: txn (if/then/else)', async () => {
    const r = await client.if('foo', 'Value', '==', 'bar').then(client.put('foo').value('bar2')).else(client.get('foo')).commit();
    assert.equal(r.succeeded, true);
    assert.equal(await client.get('foo').string(), 'bar2');
    const r2 = await client.if('foo', 'Value', '==', 'nope').then(client.put('foo').value('x')).else(client.get('foo')).commit();
    assert.equal(r2.succeeded, false);
    assert.equal(r2.responses[0]?.response_range?.kvs[0]?.value.toString(), 'bar2');
  });

  it('etcd3: validation errors carry etcd messages', async () => {
    await assert.rejects(client.put('').value('x').exec(), /etcdserver: key is not provided/);
    await assert.rejects(
      client.if('foo', 'Value', '==', 'bar2').then(client.put('a').value('1'), client.put('a').value('2')).commit(),
      /etcdserver: duplicate key given in txn request/,
    );
  });

  it('raw: Status, MemberList, Alarm, Defragment answer; the rest is Unimplemented', async () => {
    const raw = new RawClient(endpoint);
    try {
      const st = await raw.call('/etcdserverpb.Maintenance/Status', new Uint8Array());
      assert.equal(st.code, 0, st.details);
      const s = pb.StatusResponse.decode(st.bytes!) as unknown as { version: string; leader: number; header: { clusterId: number } };
      assert.equal(s.version, '3.4.23');
      assert.equal(s.leader, FAKE_MEMBER_ID);
      assert.equal(s.header.clusterId, FAKE_CLUSTER_ID);
      const ml = await raw.call('/etcdserverpb.Cluster/MemberList', new Uint8Array());
      const m = pb.MemberListResponse.decode(ml.bytes!) as unknown as { members: { ID: number; name: string }[] };
      assert.deepEqual(m.members.map((x) => [x.ID, x.name]), [[FAKE_MEMBER_ID, 'fake0']]);
      const al = await raw.call('/etcdserverpb.Maintenance/Alarm', new Uint8Array());
      assert.equal(al.code, 0, al.details);
      const df = await raw.call('/etcdserverpb.Maintenance/Defragment', new Uint8Array());
      assert.deepEqual([df.code, df.bytes?.length], [0, 0]);
      const mv = await raw.call('/etcdserverpb.Maintenance/MoveLeader', new Uint8Array());
      assert.deepEqual([mv.code, mv.details], [12, 'method MoveLeader not implemented']);
      const ma = await raw.call('/etcdserverpb.Cluster/MemberAdd', new Uint8Array());
      assert.deepEqual([ma.code, ma.details], [12, 'method MemberAdd not implemented']);
      const w = await raw.call('/etcdserverpb.Lease/LeaseGrant', new Uint8Array());
      assert.equal(w.code, 12);
    } finally {
      raw.close();
    }
  });

  it('grpc_server_* counters follow the calls', async () => {
    const raw = new RawClient(endpoint);
    try {
      const text0 = await registry.metrics();
      const get = (text: string, re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN);
      const okRe = /grpc_server_handled_total\{grpc_type="unary",grpc_service="etcdserverpb.KV",grpc_method="Range",grpc_code="OK"\} (\d+)/;
      const badRe = /grpc_server_handled_total\{grpc_type="unary",grpc_service="etcdserverpb.KV",grpc_method="Range",grpc_code="InvalidArgument"\} (\d+)/;
      const startedRe = /grpc_server_started_total\{grpc_type="unary",grpc_service="etcdserverpb.KV",grpc_method="Range"\} (\d+)/;
      const sentRe = /grpc_server_msg_sent_total\{grpc_type="unary",grpc_service="etcdserverpb.KV",grpc_method="Range"\} (\d+)/;
      assert.match(text0, /grpc_server_handled_total\{grpc_type="unary",grpc_service="etcdserverpb.Cluster",grpc_method="MemberPromote",grpc_code="DataLoss"\} 0/);
      assert.match(text0, /grpc_server_started_total\{grpc_type="server_stream",grpc_service="etcdserverpb.Maintenance",grpc_method="Snapshot"\} 0/);
      for (let i = 0; i < 3; i++) await raw.call('/etcdserverpb.KV/Range', pb.RangeRequest.encode({ key: Buffer.from('a') }).finish());
      await raw.call('/etcdserverpb.KV/Range', new Uint8Array());
      const text1 = await registry.metrics();
      assert.equal(get(text1, okRe) - get(text0, okRe), 3);
      assert.equal(get(text1, badRe) - get(text0, badRe), 1);
      assert.equal(get(text1, startedRe) - get(text0, startedRe), 4);
      assert.equal(get(text1, sentRe) - get(text0, sentRe), 3);
    } finally {
      raw.close();
    }
  });

  describe('etcdctl 3.4', { skip: !haveEtcdctl && 'etcdctl not installed' }, () => {
    it('put / get / del', async () => {
      let r = await etcdctl(endpoint, ['put', 'ctl', 'hello']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), 'OK');
      r = await etcdctl(endpoint, ['get', 'ctl']);
      assert.equal(r.stdout, 'ctl\nhello\n');
      r = await etcdctl(endpoint, ['get', '--prefix', '--keys-only', 'ct']);
      assert.equal(r.stdout.trim(), 'ctl');
      r = await etcdctl(endpoint, ['del', 'ctl']);
      assert.equal(r.stdout.trim(), '1');
    });

    it('txn (stdin)', async () => {
      await etcdctl(endpoint, ['put', 'tx', 'v1']);
      const r = await etcdctl(endpoint, ['txn'], 'value("tx") = "v1"\n\nput tx v2\n\nput tx v3\n\n');
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, 'SUCCESS\n\nOK\n');
      assert.equal((await etcdctl(endpoint, ['get', '--print-value-only', 'tx'])).stdout, 'v2\n');
    });

    it('validation errors print etcd messages', async () => {
      const r = await etcdctl(endpoint, ['put', '', 'x']);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /etcdserver: key is not provided/);
      const t = await etcdctl(endpoint, ['txn'], '\nput d 1\nput d 2\n\n\n');
      assert.notEqual(t.status, 0);
      assert.match(t.stderr, /etcdserver: duplicate key given in txn request/);
    });

    it('compaction', async () => {
      const rev = kv.rev;
      let r = await etcdctl(endpoint, ['compaction', String(rev)]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), `compacted revision ${rev}`);
      r = await etcdctl(endpoint, ['compaction', String(rev + 1000)]);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /etcdserver: mvcc: required revision is a future revision/);
    });

    it('endpoint status / health, member list, alarm list', async () => {
      let r = await etcdctl(endpoint, ['endpoint', 'status', '-w', 'json']);
      assert.equal(r.status, 0, r.stderr);
      const st = JSON.parse(r.stdout) as { Endpoint: string; Status: { version: string; leader: number; header: { member_id: number } } }[];
      assert.equal(st[0]?.Status.version, '3.4.23');
      assert.equal(st[0]?.Status.leader, FAKE_MEMBER_ID);
      r = await etcdctl(endpoint, ['endpoint', 'health']);
      assert.equal(r.status, 0, r.stderr + r.stdout);
      assert.match(r.stdout + r.stderr, /is healthy: successfully committed proposal/);
      r = await etcdctl(endpoint, ['member', 'list']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), `42, started, fake0, http://127.0.0.1:2380, http://${endpoint}, false`);
      r = await etcdctl(endpoint, ['alarm', 'list']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, '');
    });
  });
});
