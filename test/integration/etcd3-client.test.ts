/**
 * The `etcd3` npm client (what Node users actually run) against the system under test
 * (env SUT=etcetera|etcd): KV, prefix reads, deletes, txn if/then/else, leases (when the SUT
 * implements them) and compaction errors surfaced with etcd's exact messages.
 */
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { Etcd3, GRPCOutOfRangeError } from 'etcd3';
import { startSut, sutKind, sutUnavailable, ServerHandle } from '../helpers/servers';
import { RawClient } from '../helpers/grpc';
import { killAllChildren } from '../helpers/procs';

const skip = sutUnavailable();
let sut: ServerHandle | undefined;
let client: Etcd3;

before(async () => {
  if (skip) return;
  sut = await startSut();
  client = new Etcd3({ hosts: sut.clientUrl });
});
after(async () => {
  client?.close();
  await sut?.stop();
  await killAllChildren();
});

const opts = { skip, timeout: 60_000 };

test(`etcd3 client (${sutKind()}): put / get / getAll prefix / count`, opts, async () => {
  await client.put('/e1/a').value('1');
  await client.put('/e1/b').value('2');
  await client.put('/e1/c').value('3');
  await client.put('/e1x').value('outside');
  assert.equal(await client.get('/e1/a').string(), '1');
  assert.equal(await client.get('/e1/missing').string(), null);
  assert.deepEqual(await client.getAll().prefix('/e1/').strings(), { '/e1/a': '1', '/e1/b': '2', '/e1/c': '3' });
  assert.deepEqual(await client.getAll().prefix('/e1/').keys(), ['/e1/a', '/e1/b', '/e1/c']);
  assert.equal(await client.getAll().prefix('/e1/').count(), 3);
  assert.deepEqual(await client.getAll().prefix('/e1/').sort('Key', 'Descend').limit(2).keys(), ['/e1/c', '/e1/b']);
  const raw = await client.getAll().prefix('/e1/').limit(1).exec();
  assert.equal(raw.more, true);
  assert.equal(String(raw.count), '3');
  const prev = await client.put('/e1/a').value('11').getPrevious();
  assert.equal(prev?.value.toString(), '1');
  const kv = (await client.get('/e1/a').exec()).kvs[0];
  assert.equal(kv.version, '2');
  assert.ok(Number(kv.mod_revision) > Number(kv.create_revision));
});

test(`etcd3 client (${sutKind()}): delete single / prefix / with previous`, opts, async () => {
  for (const k of ['a', 'b', 'c']) await client.put(`/e2/${k}`).value(k);
  const d1 = await client.delete().key('/e2/a').exec();
  assert.equal(String(d1.deleted), '1');
  const prev = await client.delete().prefix('/e2/').getPrevious();
  assert.deepEqual(prev.map((p) => p.key.toString()).sort(), ['/e2/b', '/e2/c']);
  assert.equal(await client.getAll().prefix('/e2/').count(), 0);
  const d3 = await client.delete().key('/e2/nothing').exec();
  assert.equal(String(d3.deleted), '0');
});

test(`etcd3 client (${sutKind()}): txn if / then / else`, opts, async () => {
  await client.put('/e3/lock').value('owner-1');
  const ok = await client.if('/e3/lock', 'Value', '==', 'owner-1')
    .then(client.put('/e3/lock').value('owner-2'), client.get('/e3/lock'))
    .else(client.put('/e3/lost').value('yes'))
    .commit();
  assert.equal(ok.succeeded, true);
  assert.equal(ok.responses.length, 2);
  assert.equal(ok.responses[1].response_range?.kvs[0].value.toString(), 'owner-2');
  const no = await client.if('/e3/lock', 'Create', '==', 0)
    .then(client.put('/e3/lock').value('owner-3'))
    .else(client.get('/e3/lock'))
    .commit();
  assert.equal(no.succeeded, false);
  assert.equal(no.responses[0].response_range?.kvs[0].value.toString(), 'owner-2');
  assert.equal(await client.get('/e3/lost').string(), null);
  const ver = await client.if('/e3/lock', 'Version', '>', 1).then(client.delete().key('/e3/lock')).commit();
  assert.equal(ver.succeeded, true);
  assert.equal(await client.get('/e3/lock').string(), null);
  // duplicate key in one branch: the server's error reaches the client
  await assert.rejects(
    client.if('/e3/x', 'Version', '==', 0).then(client.put('/e3/d').value('1'), client.put('/e3/d').value('2')).commit(),
    (e: Error) => e.message.includes('etcdserver: duplicate key given in txn request'),
  );
});

test(`etcd3 client (${sutKind()}): leases`, opts, async () => {
  // A raw LeaseGrant first: a failure here names the server's answer rather than the etcd3 client's retry error.
  const raw = new RawClient(sut!.clientUrl);
  const probe = await raw.settle('Lease', 'LeaseGrant', { TTL: 30 });
  assert.equal(probe.err, undefined, `LeaseGrant failed: ${JSON.stringify(probe.err)}`);
  await raw.settle('Lease', 'LeaseRevoke', { ID: probe.ok.ID });
  raw.close();

  const lease = client.lease(30, { autoKeepAlive: false });
  const id = await lease.grant();
  assert.ok(id.length > 0);
  await lease.put('/e4/leased').value('v');
  const kv = (await client.get('/e4/leased').exec()).kvs[0];
  assert.equal(BigInt(kv.lease), BigInt(id));
  await lease.revoke();
  assert.equal(await client.get('/e4/leased').string(), null);
  await assert.rejects(client.put('/e4/x').value('v').lease('12345').exec(), (e: Error) => e.message.includes('etcdserver: requested lease not found'));
});

test(`etcd3 client (${sutKind()}): compaction errors carry etcd's messages`, opts, async () => {
  const r1 = Number((await client.put('/e5/k').value('a').exec()).header.revision);
  await client.put('/e5/k').value('b');
  const r3 = Number((await client.put('/e5/k').value('c').exec()).header.revision);
  await client.kv.compact({ revision: String(r3 - 1), physical: true });
  await assert.rejects(client.get('/e5/k').revision(r1).string(), (e: Error) => {
    // etcd3 maps gRPC OUT_OF_RANGE (code 11) to GRPCOutOfRangeError; the message is etcd's.
    assert.ok(e instanceof GRPCOutOfRangeError, `expected GRPCOutOfRangeError, got ${e.constructor.name}: ${e.message}`);
    assert.match(e.message, /etcdserver: mvcc: required revision has been compacted/);
    return true;
  });
  assert.equal(await client.get('/e5/k').revision(r3 - 1).string(), 'b');
  await assert.rejects(client.kv.compact({ revision: String(r1) }), /etcdserver: mvcc: required revision has been compacted/);
  await assert.rejects(client.kv.compact({ revision: String(r3 + 100) }), /etcdserver: mvcc: required revision is a future revision/);
  await assert.rejects(client.get('/e5/k').revision(r3 + 100).string(), /etcdserver: mvcc: required revision is a future revision/);
  await assert.rejects(client.put('').value('v').exec(), /etcdserver: key is not provided/);
});
