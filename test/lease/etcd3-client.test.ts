/**
 * Lease API with the `etcd3` npm client against the system under test (env SUT=etcetera|etcd): grant, put with a
 * lease, automatic keep-alive keeps it past its TTL, expiry deletes the attached keys (through a Raft revoke), an
 * explicit revoke deletes every attached key in one revision.
 */
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { startSut, sutKind, sutUnavailable, type ServerHandle } from '../helpers/servers';
import { RawClient } from '../helpers/grpc';
import { killAllChildren } from '../helpers/procs';
import { LeaseClient } from './lease-client';

const skip = sutUnavailable();
let sut: ServerHandle | undefined;
let client: Etcd3;
let raw: RawClient;
let lc: LeaseClient;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

before(async () => {
  if (skip) return;
  // The reference etcd's defaults, so both have the same 2 s lease TTL floor.
  sut = await startSut(sutKind() === 'etcd' ? { extraArgs: ['--heartbeat-interval=100', '--election-timeout=1000'] } : {});
  client = new Etcd3({ hosts: sut.clientUrl });
  raw = new RawClient(sut.clientUrl);
  lc = new LeaseClient(sut.clientUrl);
});
after(async () => {
  client?.close();
  raw?.close();
  lc?.close();
  await sut?.stop();
  await killAllChildren();
});

const opts = { skip, timeout: 90_000 };
const revision = async (): Promise<number> => (await raw.range({ key: Buffer.from('x') })).header.revision;

test(`etcd3 lease (${sutKind()}): grant, put with lease, keep-alive keeps it past its TTL`, opts, async () => {
  const lease = client.lease(3);
  const id = await lease.grant(); // decimal string
  assert.match(id, /^[0-9]+$/);
  await lease.put('/lease/kept').value('v');
  const kv = (await client.get('/lease/kept').exec()).kvs[0];
  assert.equal(String(kv.lease), id);
  await sleep(7000); // > 2 TTLs; the client renews every TTL/3
  assert.equal(await client.get('/lease/kept').string(), 'v');
  // The etcd3 client's own RPC layer keeps 64-bit IDs as strings (etcd's IDs exceed 2^53).
  const t = await client.leaseClient.leaseTimeToLive({ ID: id, keys: true });
  assert.equal(String(t.grantedTTL), '3');
  assert.ok(Number(t.TTL) >= 1 && Number(t.TTL) <= 3, `remaining ${t.TTL}`);
  assert.deepEqual(t.keys.map((k) => k.toString()), ['/lease/kept']);
  const before = await revision();
  await lease.revoke();
  assert.equal(await client.get('/lease/kept').string(), null);
  assert.equal(await revision(), before + 1);
});

test(`etcd3 lease (${sutKind()}): expiry deletes attached keys in one revision`, opts, async () => {
  const lease = client.lease(2, { autoKeepAlive: false });
  await lease.grant();
  await lease.put('/lease/exp/a').value('1');
  await lease.put('/lease/exp/b').value('2');
  await client.put('/lease/exp/plain').value('3');
  const before = await revision();
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && (await client.getAll().prefix('/lease/exp/').count()) > 1) await sleep(200);
  assert.deepEqual(await client.getAll().prefix('/lease/exp/').keys(), ['/lease/exp/plain']);
  assert.equal(await revision(), before + 1, 'both keys deleted by one revoke revision');
  const id = Number(await lease.grant());
  assert.equal((await lc.timeToLive(id)).TTL, -1);
  const ka = await lc.keepAlive([id]);
  assert.equal(ka[0].TTL, 0);
  lease.release();
});

test(`etcd3 lease (${sutKind()}): revoke deletes many keys in one revision; put on a revoked lease fails`, opts, async () => {
  const lease = client.lease(60, { autoKeepAlive: false });
  await lease.grant();
  for (let i = 0; i < 20; i++) await lease.put(`/lease/many/${String(i).padStart(2, '0')}`).value(String(i));
  const before = await revision();
  await lease.revoke();
  assert.equal(await client.getAll().prefix('/lease/many/').count(), 0);
  assert.equal(await revision(), before + 1);
  const id = Number(await lease.grant());
  await assert.rejects(raw.put({ key: Buffer.from('/lease/many/y'), value: Buffer.from('y'), lease: id }), /requested lease not found/);
});
