/**
 * Corruption checks on a 3-member etcetera cluster (etcd 3.4 corrupt.go semantics): Maintenance.Hash agrees across
 * members; a follower whose LMDB store is edited offline (one stored revision's value changed, as silent disk damage
 * would) refuses to start with --experimental-initial-corrupt-check ("... found data inconsistency with peers"),
 * and, started without it, is found by the leader's periodic check (--experimental-corrupt-check-time), which
 * raises the CORRUPT alarm naming that member, after which writes answer "etcdserver: corrupt cluster" (DataLoss)
 * while reads still work.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Cluster, sleep } from '../cluster/harness';
import { tamperEtcetera } from './tamper';

const DATA_LOSS = 15;
const UNAVAILABLE = 14;

test('Maintenance.Hash agrees; a tampered member is refused at start and alarmed by the periodic check', { timeout: 300_000 }, async () => {
  const cluster = await Cluster.start(3, { extraArgs: ['--experimental-corrupt-check-time=2s'] });
  try {
    const leader = await cluster.leader();
    for (let i = 0; i < 20; i++) await leader.client.put({ key: Buffer.from(`k${i % 7}`), value: Buffer.from(`v${i}`) });
    await cluster.waitConverged();
    const hashes = await Promise.all(cluster.members.map((m) => m.client.call('Maintenance', 'Hash', {})));
    assert.equal(new Set(hashes.map((h) => h.header.revision)).size, 1, 'same revision hashed');
    assert.equal(new Set(hashes.map((h) => h.hash)).size, 1, `Hash differs: ${JSON.stringify(hashes.map((h) => h.hash))}`);
    assert.ok(hashes[0].hash > 0);

    const victim = cluster.members.find((m) => m !== leader)!;
    const victimId = (await victim.client.status()).header.memberId;
    await victim.kill('SIGTERM');
    await tamperEtcetera(victim.dataDir, 'k3');

    // Initial check: the member exits instead of serving.
    victim.spawn({ extra: ['--experimental-initial-corrupt-check'] });
    const exited = await Promise.race([victim.exited().then(() => true), sleep(60_000).then(() => false)]);
    assert.ok(exited, `tampered member kept running\n${victim.describe()}`);
    assert.match(victim.currentLog, /found different hash values from remote peer/);
    assert.match(victim.currentLog, /found data inconsistency with peers/);

    // The healthy members' own initial check passes.
    const healthy = cluster.members.find((m) => m !== leader && m !== victim)!;
    await healthy.kill('SIGTERM');
    await healthy.start({ extra: ['--experimental-initial-corrupt-check'] });
    assert.match(healthy.currentLog, /initial corruption checking passed; no corruption/);

    // Without the initial check it starts; the leader's periodic check raises CORRUPT for it.
    await victim.start();
    const deadline = Date.now() + 60_000;
    let alarms: { memberID: string | number; alarm: number | string }[] = [];
    while (Date.now() < deadline) {
      alarms = (await leader.client.call('Maintenance', 'Alarm', { action: 0, memberID: 0, alarm: 0 })).alarms ?? [];
      if (alarms.length > 0) break;
      await sleep(500);
    }
    assert.equal(alarms.length, 1, `no CORRUPT alarm\n${cluster.describe()}`);
    assert.equal(String(alarms[0]!.memberID), String(victimId));
    assert.ok(alarms[0]!.alarm === 2 || alarms[0]!.alarm === 'CORRUPT');
    assert.match(cluster.members.map((m) => m.currentLog).join('\n'), /same compact revision then hashes must match/);

    // Every member refuses writes with etcd's error; reads still answer.
    for (const m of cluster.members) {
      let r = await m.client.settle('KV', 'Put', { key: Buffer.from('after'), value: Buffer.from('x') });
      // A member just restarted may not know the leader yet: retry Unavailable as clients do.
      for (let i = 0; i < 100 && r.err?.code === UNAVAILABLE; i++) {
        await sleep(300);
        r = await m.client.settle('KV', 'Put', { key: Buffer.from('after'), value: Buffer.from('x') });
      }
      assert.deepEqual(r.err, { code: DATA_LOSS, details: 'etcdserver: corrupt cluster' }, m.name);
      const g = await m.client.range({ key: Buffer.from('k0') });
      assert.equal(g.kvs.length, 1);
    }
  } finally {
    await cluster.destroy();
  }
});
