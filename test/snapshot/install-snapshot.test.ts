/**
 * InstallSnapshot and restart after compaction, with real member processes (test/cluster/harness.ts):
 * 3 members with --snapshot-count 50 and 10 catch-up entries (ETCETERA_SNAPSHOT_CATCHUP_ENTRIES) and 64 KiB WAL
 * segments (ETCETERA_WAL_SEGMENT_BYTES). A SIGKILLed follower misses a few hundred writes, so the leader's log is
 * compacted past it; restarted, it must catch up through a streamed database snapshot, hold exactly the leader's
 * data, and keep replicating. Then every member is SIGKILLed and restarted on its data dir (WAL after the snapshot
 * marker + LMDB) and must serve the same data.
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { Cluster, localSnapshot, putWithRetry, type Member, sleep } from '../cluster/harness';

process.env.ETCETERA_SNAPSHOT_CATCHUP_ENTRIES = '10';
process.env.ETCETERA_WAL_SEGMENT_BYTES = String(64 * 1024);

let cluster: Cluster | null = null;
after(async () => {
  await cluster?.destroy();
});

async function metric(m: Member, name: string): Promise<number> {
  const res = await fetch(`${m.clientUrl}/metrics`);
  const text = await res.text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(name + ' ') || line.startsWith(name + '{')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

async function sameData(a: Member, b: Member): Promise<void> {
  const [sa, sb] = await Promise.all([localSnapshot(a), localSnapshot(b)]);
  assert.equal(sb.revision, sa.revision, `${b.name} revision vs ${a.name}`);
  assert.equal(sb.kvs.length, sa.kvs.length, `${b.name} key count vs ${a.name}`);
  assert.deepEqual(sb.kvs, sa.kvs);
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${cluster?.describe(3000)}`);
    await sleep(100);
  }
}

test('a follower behind the compacted log catches up through InstallSnapshot; restart after compaction', { timeout: 240_000 }, async () => {
  cluster = await Cluster.start(3, { extraArgs: ['--snapshot-count=50', '--log-level=info'] });
  const c = cluster;
  const leader = await c.leader();
  const follower = c.members.find((m) => m !== leader)!;
  for (let i = 0; i < 20; i++) await putWithRetry(() => [leader], `pre-${i}`, `v${i}`);
  await c.waitConverged();
  await follower.kill('SIGKILL');

  const value = 'x'.repeat(200);
  for (let i = 0; i < 300; i++) await putWithRetry(() => [leader], `key-${String(i).padStart(4, '0')}`, `${value}-${i}`);
  await waitFor('leader compaction', () => /saved snapshot and compacted raft log/.test(leader.currentLog));

  await follower.start();
  try {
    await c.waitConverged(60_000);
  } catch (e) {
    const pick = (m: Member): string => m.currentLog.split('\n').filter((l) => /snapshot|Snap|error|warn/i.test(l)).slice(-40).join('\n');
    throw new Error(`${(e as Error).message}\n--- leader ${leader.name}\n${pick(leader)}\n--- follower ${follower.name}\n${pick(follower)}`);
  }
  await waitFor('follower install log line', () => /installed database snapshot from leader/.test(follower.currentLog));
  assert.match(leader.currentLog, /sending database snapshot/);
  assert.ok((await metric(follower, 'etcd_network_snapshot_receive_success')) >= 1, 'receive success metric');
  assert.ok((await metric(leader, 'etcd_network_snapshot_send_success')) >= 1, 'send success metric');
  await sameData(leader, follower);

  // New writes keep replicating to the restored follower (also through it).
  for (let i = 0; i < 30; i++) await putWithRetry(() => [leader], `post-${i}`, `p${i}`);
  await putWithRetry(() => [follower], 'via-follower', 'f');
  await c.waitConverged();
  await sameData(leader, follower);
  const final = await localSnapshot(leader);
  assert.equal(final.kvs.length, 20 + 300 + 30 + 1);

  // Restart every member from its data dir after several snapshots (WAL after the marker + LMDB alone).
  await Promise.all(c.members.map((m) => m.kill('SIGKILL')));
  for (const m of c.members) m.spawn();
  await Promise.all(c.members.map((m) => m.waitServing()));
  const leader2 = await c.leader();
  await c.waitConverged();
  for (const m of c.members) {
    const s = await localSnapshot(m);
    assert.deepEqual(s.kvs, final.kvs, `${m.name} after restart`);
  }
  await putWithRetry(() => [leader2], 'after-restart', 'ok');
  await c.waitConverged();
  for (const m of c.members) await sameData(leader2, m);
});
