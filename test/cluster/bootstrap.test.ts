/**
 * Bootstrap checks on a 3-member cluster:
 *  - every member reports the same cluster ID and member IDs (etcdctl member list / endpoint status);
 *  - a member restarted with another --initial-cluster-token on its existing data dir starts and rejoins
 *    (etcd ignores the --initial-* flags once a data dir exists);
 *  - a brand-new member (empty data dir) whose token differs from the others' is refused by the peers:
 *    it never joins, the peers log the refusal, and nothing is corrupted (the original member, restored on its
 *    old data dir, rejoins and every member agrees).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Cluster, Ack, Member, putWithRetry, checkAllMembersAgree, sleep, UNAVAILABLE } from './harness';
import { etcdctl, hasEtcdctl, NO_ETCDCTL, killAllChildren } from '../helpers';

let cluster: Cluster | null = null;
after(async () => { await cluster?.destroy(); await killAllChildren(); });

const skip = hasEtcdctl() ? undefined : NO_ETCDCTL;

/** `etcdctl member list -w json` against one member. */
async function memberList(m: Member): Promise<{ clusterId: number; memberId: number; members: { ID: number; name: string; peerURLs: string[]; clientURLs?: string[] }[] }> {
  const r = await etcdctl(m.clientUrl, ['member', 'list', '-w', 'json']);
  assert.equal(r.code, 0, `etcdctl member list on ${m.name}: ${r.stderr}`);
  const j = JSON.parse(r.stdout);
  return { clusterId: j.header.cluster_id, memberId: j.header.member_id, members: j.members };
}

/** `etcdctl endpoint status -w json` against every given member, as host:port (or http://host:port). */
async function endpointStatus(ms: Member[], withScheme = false): Promise<{ Endpoint: string; Status: any }[]> {
  const eps = ms.map((m) => (withScheme ? m.clientUrl : m.clientUrl.replace(/^http:\/\//, '')));
  const r = await etcdctl(eps, ['endpoint', 'status', '-w', 'json']);
  assert.equal(r.code, 0, `etcdctl endpoint status: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('bootstrap: same cluster ID and member IDs everywhere; token only matters for a new data dir', { skip, timeout: 300_000 }, async () => {
  cluster = await Cluster.start(3, { token: 'token-A' });
  const c = cluster;
  const acks: Ack[] = [];

  // --- every member agrees on the cluster ID and the member set -------------------------------------------
  // A member publishes its client URLs through Raft once it knows a leader; on a loaded machine another member may
  // not have applied that entry yet when serving starts, so the lists are read again until they carry every URL
  // (bounded; the assertions below then check them).
  let lists = await Promise.all(c.members.map(memberList));
  const allPublished = (): boolean => lists.every((l) => c.members.every((o) => (l.members.find((x) => x.name === o.name)?.clientURLs ?? []).length > 0));
  for (const deadline = Date.now() + 30_000; !allPublished() && Date.now() < deadline;) {
    await sleep(200);
    lists = await Promise.all(c.members.map(memberList));
  }
  const ids = lists.map((l) => l.members.map((m) => `${m.ID}:${m.name}:${m.peerURLs.join(',')}`).sort().join(' '));
  for (let i = 1; i < lists.length; i++) {
    assert.equal(lists[i].clusterId, lists[0].clusterId, `cluster ID of ${c.members[i].name}`);
    assert.equal(ids[i], ids[0], `member list of ${c.members[i].name}`);
  }
  assert.equal(lists[0].members.length, 3);
  assert.ok(lists[0].clusterId > 0);
  for (const [i, m] of c.members.entries()) {
    const me = lists[i].members.find((x) => x.name === m.name);
    assert.ok(me, `${m.name} in its own member list`);
    assert.equal(lists[i].memberId, me!.ID, `${m.name}: header member_id is its own ID`);
    assert.deepEqual(me!.peerURLs, [m.peerUrl]);
    // Every member lists every member's client URL (etcd publishes them through Raft).
    for (const other of c.members) {
      const o = lists[i].members.find((x) => x.name === other.name)!;
      assert.deepEqual(o.clientURLs ?? [], [other.clientUrl], `${m.name} lists ${other.name}'s client URLs`);
    }
  }
  const allIds = new Set(lists[0].members.map((m) => m.ID));
  assert.equal(allIds.size, 3, 'member IDs are distinct');

  // etcdctl endpoint status: the same cluster ID, one leader that every member names.
  const st = await endpointStatus(c.members);
  assert.equal(st.length, 3);
  const leaders = new Set(st.map((s) => s.Status.leader));
  assert.equal(leaders.size, 1, `members disagree on the leader: ${JSON.stringify(st)}`);
  assert.ok(allIds.has([...leaders][0]), 'the leader is a member');
  for (const s of st) assert.equal(s.Status.header.cluster_id, lists[0].clusterId);

  // --- restart with another token on an existing data dir: flags ignored, same identity ------------------
  const n3 = c.byName('n3');
  const n3Id = lists[2].memberId;
  await n3.kill('SIGKILL');
  for (let i = 0; i < 20; i++) acks.push(await putWithRetry(() => c.running(), `while-n3-down/${i}`, `v${i}`, { start: i }));
  await n3.start({ token: 'token-B' });
  const again = await memberList(n3);
  assert.equal(again.clusterId, lists[0].clusterId, 'restarted member keeps the cluster ID from its data dir');
  assert.equal(again.memberId, n3Id, 'restarted member keeps its member ID');
  acks.push(await putWithRetry(() => [n3], 'via-restarted-n3', 'v'));
  await c.waitConverged(60_000, c.members);
  let problems = await checkAllMembersAgree(c, acks, c.members);
  assert.equal(problems, '', problems);

  // --- a brand-new member with another token on n3's address: refused -----------------------------------
  await n3.kill('SIGKILL');
  const saved = `${n3.dataDir}.saved`;
  fs.renameSync(n3.dataDir, saved);
  const refusalsBefore = c.members.filter((m) => m !== n3).map((m) => countMatches(m.log, /refused peer connection: cluster ID mismatch/));
  await n3.start({ token: 'token-C' });
  const impostor = await memberList(n3);
  assert.notEqual(impostor.clusterId, lists[0].clusterId, 'a different token gives a different cluster ID');
  assert.notEqual(impostor.memberId, n3Id, 'a different token gives a different member ID');

  // The peers refuse it, and it reports the refusal too.
  const peers = c.members.filter((m) => m !== n3);
  await waitFor('peers to log the refusal', () => peers.every((m, i) => countMatches(m.log, /refused peer connection: cluster ID mismatch/) > refusalsBefore[i]));
  await waitFor('the new member to log it was rejected', () => /rejected: cluster ID mismatch/.test(n3.currentLog));

  // Writes go on through the two real members; the impostor never has a leader and cannot write.
  for (let i = 0; i < 20; i++) acks.push(await putWithRetry(() => peers, `while-impostor/${i}`, `v${i}`, { start: i }));
  await sleep(3000); // several election timeouts
  const impStatus = await n3.client.call('Maintenance', 'Status', {});
  assert.equal(impStatus.leader, 0, `impostor found a leader: ${JSON.stringify(impStatus)}`);
  const impPut = await n3.client.settle('KV', 'Put', { key: Buffer.from('impostor-write'), value: Buffer.from('x') });
  assert.ok(impPut.err, 'impostor acknowledged a write');
  assert.equal(impPut.err!.code, UNAVAILABLE, `impostor put: ${impPut.err!.code} ${impPut.err!.details}`);
  for (const m of peers) {
    const l = await memberList(m);
    assert.equal(l.clusterId, lists[0].clusterId);
    assert.equal(l.members.map((x) => x.ID).sort().join(), lists[0].members.map((x) => x.ID).sort().join(), `${m.name} member list changed`);
    const s = await m.client.call('Maintenance', 'Status', {});
    assert.ok(allIds.has(s.leader) && s.leader !== n3Id, `${m.name} leader ${s.leader}`);
  }

  // --- restore the real n3 on its old data dir: it rejoins and nothing was corrupted --------------------
  await n3.kill('SIGKILL');
  fs.rmSync(n3.dataDir, { recursive: true, force: true });
  fs.renameSync(saved, n3.dataDir);
  await n3.start();
  assert.equal((await memberList(n3)).memberId, n3Id);
  await c.waitConverged(60_000, c.members);
  problems = await checkAllMembersAgree(c, acks, c.members);
  assert.equal(problems, '', problems);
  const impKey = await c.members[0].client.call('KV', 'Range', { key: Buffer.from('impostor-write') });
  assert.equal(impKey.kvs.length, 0, 'the impostor\'s write reached the cluster');
  console.log(`# cluster ${lists[0].clusterId.toString(16)}, members ${[...allIds].map((x) => x.toString(16)).join(',')}; impostor cluster ${impostor.clusterId.toString(16)} refused`);
});

function countMatches(s: string, re: RegExp): number {
  return s.split('\n').filter((l) => re.test(l)).length;
}

// etcdctl 3.4 sends the whole URL as :authority for per-endpoint commands (endpoint status, endpoint hashkv) when the
// endpoints are written http://host:port; nghttp2 rejects a '/' in :authority, etcd accepts it. src/api/h2-authority.ts
// repairs it; this keeps it working on a cluster.
test('etcdctl endpoint status with http:// endpoints on every member', { skip, timeout: 120_000 }, async () => {
  const c = cluster!;
  assert.ok(c, 'cluster from the previous test');
  const st = await endpointStatus(c.members, true);
  assert.equal(st.length, 3);
  assert.equal(new Set(st.map((s) => s.Status.leader)).size, 1);
});
