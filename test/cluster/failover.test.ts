/**
 * Three real members: writes through every endpoint, SIGKILL the leader, a new leader takes over and writes
 * continue, the old leader restarts on its data dir and catches up, and every acknowledged write is on every
 * member with identical full ranges and revisions.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, Ack, Member, putWithRetry, checkAllMembersAgree, localSnapshot, sleep } from './harness';
import { killAllChildren } from '../helpers';

let cluster: Cluster | null = null;
after(async () => { await cluster?.destroy(); await killAllChildren(); });

/** Runs one writer per member endpoint until `stop()` returns true; every acknowledged put is pushed to `acks`. */
function writers(c: Cluster, prefix: string, acks: Ack[], stop: () => boolean, errors: Map<string, number>): Promise<void>[] {
  return c.members.map(async (_m, w) => {
    for (let seq = 0; !stop(); seq++) {
      const key = `${prefix}/w${w}/${String(seq).padStart(6, '0')}`;
      // Start at this writer's own member; retry through the others while it is down.
      acks.push(await putWithRetry(() => c.members, key, `v-${w}-${seq}`, { start: w, errors }));
    }
  });
}

test('3 members: writes via every endpoint survive SIGKILL of the leader and its restart', { timeout: 300_000 }, async () => {
  cluster = await Cluster.start(3);
  const c = cluster;
  const acks: Ack[] = [];
  const errors = new Map<string, number>();

  // Phase 1: a direct put through each endpoint (followers forward to the leader).
  for (const m of c.members) acks.push(await putWithRetry(() => [m], `direct/${m.name}`, `via-${m.name}`));

  // Phase 2: concurrent writers on every endpoint; kill the leader in the middle.
  let stop = false;
  const run = writers(c, 'load', acks, () => stop, errors);
  await sleep(2000);
  const before = acks.length;
  const oldLeader = await c.leader();
  const oldStatus = (await c.statuses()).find((s) => s.member === oldLeader)!.status;
  await oldLeader.kill('SIGKILL');

  const newLeader = await c.leader(60_000, [oldLeader]);
  assert.notEqual(newLeader, oldLeader);
  const newStatus = (await c.statuses()).find((s) => s.member === newLeader)!.status;
  assert.ok(newStatus.raftTerm > oldStatus.raftTerm, `term did not advance: ${oldStatus.raftTerm} → ${newStatus.raftTerm}`);

  // Writes continue while the old leader is down.
  const atKill = acks.length;
  while (acks.length < atKill + 60) await sleep(100);

  // Phase 3: restart the old leader on its data dir; writes keep going while it catches up.
  await oldLeader.start();
  const atRestart = acks.length;
  while (acks.length < atRestart + 60) await sleep(100);
  stop = true;
  await Promise.all(run);

  // Writes through the restarted member work as well.
  for (let i = 0; i < 10; i++) acks.push(await putWithRetry(() => [oldLeader], `after/${oldLeader.name}/${i}`, `x${i}`));

  const applied = await c.waitConverged(120_000, c.members);
  const problems = await checkAllMembersAgree(c, acks, c.members);
  assert.equal(problems, '', `${problems}\n${c.describe()}`);

  // Each writer's own keys were acknowledged in order, so their revisions must strictly increase.
  for (let w = 0; w < 3; w++) {
    const mine = acks.filter((a) => a.key.startsWith(`load/w${w}/`));
    for (let i = 1; i < mine.length; i++) assert.ok(mine[i].revision > mine[i - 1].revision, `writer ${w}: ${JSON.stringify(mine[i - 1])} then ${JSON.stringify(mine[i])}`);
  }

  // Linearizable reads on every member see the final state too.
  const snap = await localSnapshot(c.members[0]);
  for (const m of c.members) {
    const r = await m.client.call('KV', 'Range', { key: Buffer.from([0]), rangeEnd: Buffer.from([0]), countOnly: true }, 30_000);
    assert.equal(r.count, snap.kvs.length, `${m.name} linearizable count`);
    assert.equal(r.header.revision, snap.revision, `${m.name} linearizable revision`);
  }
  console.log(`# acked ${acks.length} writes (${before} before the kill), applied index ${applied}, revision ${snap.revision}, ` +
    `old leader ${oldLeader.name} term ${oldStatus.raftTerm} → new leader ${newLeader.name} term ${newStatus.raftTerm}; ` +
    `retried errors: ${JSON.stringify([...errors])}`);
});

test('old leader catches up after missing many writes (restart on its data dir)', { timeout: 300_000 }, async () => {
  const c = cluster!;
  assert.ok(c, 'cluster from the previous test');
  const victim: Member = await c.leader();
  await victim.kill('SIGKILL');
  await c.leader(60_000, [victim]);
  const acks: Ack[] = [];
  // Many writes (with larger values) while it is down, so it has a real log to catch up on.
  const big = 'x'.repeat(2048);
  await Promise.all([0, 1, 2, 3].map(async (w) => {
    for (let i = 0; i < 150; i++) acks.push(await putWithRetry(() => c.members, `catchup/${w}/${i}`, `${big}${i}`, { start: w }));
  }));
  await victim.start();
  await c.waitConverged(120_000, c.members);
  const problems = await checkAllMembersAgree(c, acks, c.members);
  assert.equal(problems, '', `${problems}\n${c.describe()}`);
});

test('repeated leader kills under load, then SIGKILL of every member at once and a full restart', { timeout: 400_000 }, async () => {
  const c = cluster!;
  assert.ok(c, 'cluster from the previous tests');
  const acks: Ack[] = [];
  const errors = new Map<string, number>();
  let stop = false;
  const run = writers(c, 'rounds', acks, () => stop, errors);
  const terms: string[] = [];
  for (let round = 0; round < 3; round++) {
    const lead = await c.leader();
    const n = acks.length;
    while (acks.length < n + 30) await sleep(50);
    await lead.kill('SIGKILL');
    const next = await c.leader(60_000, [lead]);
    terms.push(`${lead.name}→${next.name}`);
    const m = acks.length;
    while (acks.length < m + 30) await sleep(50);
    await lead.start();
  }
  stop = true;
  await Promise.all(run);
  await c.waitConverged(120_000, c.members);
  let problems = await checkAllMembersAgree(c, acks, c.members);
  assert.equal(problems, '', `${problems}\n${c.describe()}`);
  const revBefore = (await localSnapshot(c.members[0])).revision;

  // Power loss of the whole cluster: every acknowledged write was fdatasynced on a quorum, so it survives.
  await Promise.all(c.members.map((m) => m.kill('SIGKILL')));
  await Promise.all(c.members.map((m) => m.start()));
  await c.leader(60_000);
  for (const m of c.members) acks.push(await putWithRetry(() => [m], `after-power-loss/${m.name}`, 'v'));
  await c.waitConverged(120_000, c.members);
  problems = await checkAllMembersAgree(c, acks, c.members);
  assert.equal(problems, '', `${problems}\n${c.describe()}`);
  const revAfter = (await localSnapshot(c.members[0])).revision;
  assert.equal(revAfter, revBefore + 3, 'revision continues from where it was (3 new puts)');
  console.log(`# leader changes ${terms.join(', ')}; ${acks.length} acked; retried errors: ${JSON.stringify([...errors])}`);
});
