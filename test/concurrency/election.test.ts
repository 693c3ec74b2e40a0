/**
 * v3electionpb.Election against the system under test (SUT=etcetera|etcd): Observe sees every leader change in
 * order (waiting for the first candidate, proclamations, resignation, lease expiry), Campaign waits its turn,
 * Proclaim/Leader/Resign answer as etcd's.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { sutUnavailable } from '../helpers/servers';
import { ConcurrencyClient, serveForFile } from './concurrency-client';

const skip = sutUnavailable();
let c: ConcurrencyClient;

serveForFile(skip, (_sut, client) => { c = client; });

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('Observe sees leader changes in order', { skip, timeout: 60_000 }, async () => {
  const seen: string[] = [];
  const revs: number[] = [];
  const obs = c.observe('el', (r) => {
    seen.push(`${r.kv.key.toString()}=${r.kv.value.toString()}`);
    revs.push(r.header.revision);
  });
  await sleep(300);
  const la = await c.grant(60, 0x501);
  const lb = await c.grant(60, 0x502);
  const lc = await c.grant(2, 0x503);
  const a = await c.campaign('el', la, 'a1');
  assert.equal(a.leader.key.toString(), 'el/501');
  let bDone = false;
  const b = c.campaign('el', lb, 'b1').then((r) => { bDone = true; return r; });
  await sleep(300);
  assert.equal(bDone, false);
  await c.proclaim(a.leader, 'a2');
  assert.equal((await c.leader('el')).kv.value.toString(), 'a2');
  await c.resign(a.leader);
  const br = await b;
  assert.equal(br.leader.key.toString(), 'el/502');
  const stale = await c.settle('v3electionpb.Election/Proclaim', { leader: a.leader, value: Buffer.from('zz') });
  assert.deepEqual(stale.err, { code: 2, details: 'election: not leader' });
  // C queues behind B; B resigns; C leads until its 2 s lease expires; then no leader.
  const cr = c.campaign('el', lc, 'c1');
  await sleep(300);
  await c.proclaim(br.leader, 'b2');
  await c.resign(br.leader);
  await cr;
  const deadline = Date.now() + 10_000;
  let none: { err?: { details: string } } = {};
  while (Date.now() < deadline) {
    none = await c.settle('v3electionpb.Election/Leader', { name: Buffer.from('el') });
    if (none.err) break;
    await sleep(200);
  }
  assert.deepEqual(none.err, { code: 2, details: 'election: no leader' });
  const ld = await c.grant(60, 0x504);
  await c.campaign('el', ld, 'd1');
  const until = Date.now() + 5000;
  while (seen.length < 6 && Date.now() < until) await sleep(50);
  obs.cancel();
  assert.deepEqual(seen, ['el/501=a1', 'el/501=a2', 'el/502=b1', 'el/502=b2', 'el/503=c1', 'el/504=d1']);
  for (let i = 1; i < revs.length; i++) assert.ok(revs[i]! > revs[i - 1]!, `revisions increase: ${revs.join(',')}`);
});

test('a cancelled Campaign resigns', { skip, timeout: 30_000 }, async () => {
  const la = await c.grant(60, 0x601);
  const lb = await c.grant(60, 0x602);
  await c.campaign('cc', la, 'x');
  const ac = new AbortController();
  const p = c.campaign('cc', lb, 'y', { signal: ac.signal }).then(() => 'elected', (e) => e.code);
  await sleep(300);
  ac.abort();
  assert.equal(await p, 1);
  const deadline = Date.now() + 5000;
  while ((await c.range('cc/', true)).kvs.length !== 1 && Date.now() < deadline) await sleep(50);
  assert.deepEqual((await c.range('cc/', true)).kvs.map((kv: { key: Buffer }) => kv.key.toString()), ['cc/601']);
});
