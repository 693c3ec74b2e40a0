/**
 * Runtime reconfiguration on real members, driven the way operators do it with Debian's etcdctl 3.4:
 * `member add` (voter and learner), starting the new member with `--initial-cluster-state existing` and the printed
 * ETCD_INITIAL_CLUSTER, `member list`, `member promote`, `member remove`, restarts after SIGKILL, and etcd's errors
 * (compared with a 3-member etcd 3.4 when `etcd` is installed).
 *
 * Only outcomes are asserted, never durations; waits are generous polls.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Cluster, Member, sleep, startEtcdCluster } from './harness';
import { etcdctl as runEtcdctl, freePort, hasEtcd, hasEtcdctl, killAllChildren, NO_ETCD, NO_ETCDCTL } from '../helpers';

/**
 * etcdctl, retried for up to 20 s while the member answers "unhealthy cluster": etcd's strict reconfiguration
 * check refuses member changes until every voter has been connected for 5 s, which a cluster just started or just
 * joined is not; operators retry the same way.
 */
async function etcdctl(...args: Parameters<typeof runEtcdctl>): ReturnType<typeof runEtcdctl> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = await runEtcdctl(...args);
    if (r.code === 0 || !r.stderr.includes('unhealthy cluster') || Date.now() > deadline) return r;
    await sleep(500);
  }
}

let c: Cluster;
/** n4 after its removal (its data dir is kept). */
let removedN4: Member | null = null;
const cleanups: (() => Promise<void>)[] = [];

before(async () => {
  if (!hasEtcdctl()) return;
  c = await Cluster.start(3);
});

after(async () => {
  for (const f of cleanups) await f().catch(() => {});
  await c?.destroy();
  await killAllChildren();
});

/** One `etcdctl member list` line. */
interface ListedMember { id: string; status: string; name: string; peerUrls: string; clientUrls: string; isLearner: boolean }

async function memberList(endpoint: string): Promise<ListedMember[]> {
  const r = await etcdctl(endpoint, ['member', 'list']);
  assert.equal(r.code, 0, `member list on ${endpoint}: ${r.stderr}`);
  return r.stdout.trim().split('\n').map((line) => {
    const f = line.split(', ');
    return { id: f[0], status: f[1], name: f[2], peerUrls: f[3], clientUrls: f[4], isLearner: f[5] === 'true' };
  });
}

/** Polls until `ok(list)` holds for the member list of every endpoint. */
async function waitLists(endpoints: string[], ok: (l: ListedMember[]) => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const lists = await Promise.all(endpoints.map((ep) => memberList(ep).catch((e: Error) => e)));
    if (lists.every((l) => !(l instanceof Error) && ok(l))) return;
    last = JSON.stringify(lists.map((l) => (l instanceof Error ? l.message : l)));
    await sleep(300);
  }
  throw new Error(`${what}: not reached within ${timeoutMs} ms; last lists ${last}\n${c.describe(1500)}`);
}

/** What etcdctl shows the operator: its "Error: ..." line (clientv3 also logs JSON retry warnings on stderr). */
const errLine = (stderr: string): string => stderr.trim().split('\n').filter((l) => l.startsWith('Error:')).join('\n');

/** Resolves true when `p` settles within `ms`, false otherwise; leaves no timer behind. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => { t = setTimeout(() => r(false), ms); });
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(t);
  }
}

/** Retries a command until it exits 0 (e.g. right after a restart or a leader change). */
async function ctlOk(endpoint: string | string[], args: string[], timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const r = await etcdctl(endpoint, args);
    if (r.code === 0) return r.stdout;
    last = r.stderr;
    await sleep(300);
  }
  throw new Error(`etcdctl ${args.join(' ')} on ${endpoint} kept failing: ${last}`);
}

/** Plans a new member (not started) on free ports, registered with the cluster so destroy() kills it. */
async function planMember(name: string): Promise<Member> {
  const m = new Member(c, name, await freePort(), await freePort(), path.join(c.root, name));
  c.members.push(m);
  return m;
}

/** `etcdctl member add`: returns the new ID (hex) and the ETCD_INITIAL_CLUSTER it printed. */
async function memberAdd(m: Member, learner: boolean, endpoints: string[]): Promise<{ id: string; initialCluster: string; stdout: string }> {
  await c.leader();
  const r = await etcdctl(endpoints, ['member', 'add', m.name, `--peer-urls=${m.peerUrl}`, ...(learner ? ['--learner'] : [])]);
  assert.equal(r.code, 0, `member add: ${r.stderr}`);
  const id = /Member\s+([0-9a-f]+) added to cluster/.exec(r.stdout)?.[1];
  const initialCluster = /ETCD_INITIAL_CLUSTER="([^"]*)"/.exec(r.stdout)?.[1];
  assert.ok(id && initialCluster, r.stdout);
  assert.match(r.stdout, /ETCD_INITIAL_CLUSTER_STATE="existing"/);
  return { id, initialCluster, stdout: r.stdout };
}

const skip = !hasEtcdctl() ? NO_ETCDCTL : false;

/** The error cases as etcdctl shows them: [step, exit code, stderr]. */
async function errorTranscript(endpoints: string[], existingPeerUrl: string, voterId: string): Promise<[string, number, string][]> {
  const out: [string, number, string][] = [];
  const run = async (step: string, args: string[]): Promise<void> => {
    const r = await etcdctl(endpoints, args);
    out.push([step, r.code, errLine(r.stderr)]);
  };
  await run('add existing peer URL', ['member', 'add', 'dup', `--peer-urls=${existingPeerUrl}`]);
  await run('remove unknown ID', ['member', 'remove', '1234abcd']);
  await run('promote a voter', ['member', 'promote', voterId]);
  return out;
}
let etceteraErrors: [string, number, string][] | null = null;

test('membership changes refuse with etcd\'s codes and messages', { timeout: 60_000, skip }, async () => {
  const list = await memberList(c.members[0].clientUrl);
  const lines = await errorTranscript(c.endpoints, c.members[1].peerUrl, list[0].id);
  assert.deepEqual(lines, [
    ['add existing peer URL', 1, 'Error: etcdserver: Peer URLs already exists'],
    ['remove unknown ID', 1, 'Error: etcdserver: member not found'],
    ['promote a voter', 1, 'Error: etcdserver: can only promote a learner member'],
  ]);
  etceteraErrors = lines;
  // Nothing changed.
  await waitLists(c.endpoints, (l) => l.length === 3 && l.every((m) => m.status === 'started'), '3 started members');
});

test('etcd 3.4 answers the same errors', { timeout: 90_000, skip: skip || (!hasEtcd() ? NO_ETCD : false) }, async () => {
  assert.ok(etceteraErrors, 'the etcetera error test ran first');
  const { handle: h, members, stopAll } = await startEtcdCluster();
  cleanups.push(stopAll);
  // etcd refuses reconfiguration ("unhealthy cluster") until every peer has been connected for 5 s (HealthInterval).
  await sleep(6000);
  const list = await memberList(h.endpoints[0]);
  const lines = await errorTranscript(h.endpoints, members[1].peerUrl, list[0].id);
  await stopAll();
  assert.deepEqual(lines, etceteraErrors);
});

test('member add → the new member joins with --initial-cluster-state existing, serves, survives restarts; member remove stops it', { timeout: 120_000, skip }, async () => {
  const eps3 = c.endpoints;
  await ctlOk(eps3, ['put', 'before-join', 'v1']);
  const n4 = await planMember('n4');
  const add = await memberAdd(n4, false, eps3);
  console.log(`# etcdctl member add n4:\n${add.stdout.trim().split('\n').map((l) => `#   ${l}`).join('\n')}`);
  // Until n4 starts, it is listed unstarted (no name, no client URLs).
  const pending = (await memberList(eps3[0])).find((m) => m.id === add.id);
  assert.deepEqual(pending && { status: pending.status, name: pending.name, learner: pending.isLearner }, { status: 'unstarted', name: '', learner: false });

  await n4.start({ initialCluster: add.initialCluster, state: 'existing' });
  const all = [...eps3, n4.clientUrl];
  await waitLists(all, (l) => l.length === 4 && l.every((m) => m.status === 'started') && l.some((m) => m.id === add.id && m.name === 'n4'), '4 started members on every member');
  console.log(`# etcdctl member list (n4):\n${(await etcdctl(n4.clientUrl, ['member', 'list'])).stdout.trim().split('\n').map((l) => `#   ${l}`).join('\n')}`);
  // Linearizable reads on n4 of data written before and after it joined.
  assert.equal(await ctlOk(n4.clientUrl, ['get', 'before-join', '--print-value-only']), 'v1\n');
  await ctlOk(eps3, ['put', 'after-join', 'v2']);
  assert.equal(await ctlOk(n4.clientUrl, ['get', 'after-join', '--print-value-only']), 'v2\n');
  await ctlOk(n4.clientUrl, ['put', 'via-n4', 'v3']);
  assert.equal(await ctlOk(eps3[0], ['get', 'via-n4', '--print-value-only']), 'v3\n');

  // SIGKILL + restart of an original member and of the new one: both still see 4 members.
  const n2 = c.byName('n2');
  await n2.kill('SIGKILL');
  await n2.start();
  await n4.kill('SIGKILL');
  await n4.start({ initialCluster: add.initialCluster, state: 'existing' });
  await waitLists(all, (l) => l.length === 4 && l.every((m) => m.status === 'started'), '4 members after restarts');
  assert.equal(await ctlOk(n4.clientUrl, ['get', 'via-n4', '--print-value-only']), 'v3\n');

  // member remove: 3 members everywhere, n4 stops, writes still work.
  const rm = await etcdctl(eps3, ['member', 'remove', add.id]);
  assert.equal(rm.code, 0, rm.stderr);
  assert.match(rm.stdout, new RegExp(`Member\\s+${add.id} removed from cluster`));
  console.log(`# etcdctl member remove ${add.id}: ${rm.stdout.trim()}`);
  await waitLists(eps3, (l) => l.length === 3 && !l.some((m) => m.id === add.id), '3 members after remove');
  assert.ok(await within(n4.exited(), 30_000), `n4 still running after its removal\n${n4.describe()}`);
  await ctlOk(eps3, ['put', 'after-remove', 'v4']);
  assert.equal(await ctlOk(eps3[2], ['get', 'after-remove', '--print-value-only']), 'v4\n');

  // A restart after the removal keeps 3 members; the removed ID cannot come back.
  await n2.kill('SIGKILL');
  await n2.start();
  await waitLists(eps3, (l) => l.length === 3, '3 members after restarting n2');
  c.members.splice(c.members.indexOf(n4), 1);
  removedN4 = n4;
});

test('learner: member add --learner, refuses client requests, promote once caught up makes it a voter', { timeout: 90_000, skip }, async () => {
  const eps3 = c.endpoints;
  const n5 = await planMember('n5');
  const add = await memberAdd(n5, true, eps3);
  await n5.start({ initialCluster: add.initialCluster, state: 'existing' });
  await waitLists(eps3, (l) => l.length === 4 && l.some((m) => m.id === add.id && m.isLearner && m.status === 'started'), 'learner listed and started');

  // A second learner is refused (etcd 3.4 allows one).
  const n6 = await planMember('n6');
  const second = await etcdctl(eps3, ['member', 'add', 'n6', `--peer-urls=${n6.peerUrl}`, '--learner']);
  assert.deepEqual([second.code, errLine(second.stderr)], [1, 'Error: etcdserver: too many learner members in cluster']);
  c.members.splice(c.members.indexOf(n6), 1);

  // The learner refuses client requests with etcd's error, except serializable reads.
  const put = await etcdctl(n5.clientUrl, ['put', 'k', 'v']);
  assert.deepEqual([put.code, errLine(put.stderr)], [1, 'Error: etcdserver: rpc not supported for learner']);
  const get = await etcdctl(n5.clientUrl, ['get', 'k']);
  assert.deepEqual([get.code, errLine(get.stderr)], [1, 'Error: etcdserver: rpc not supported for learner']);
  await ctlOk(n5.clientUrl, ['get', 'k', '--consistency=s']);

  // Promote through a follower (forwarded to the leader), retrying while the learner is not in sync.
  const leader = await c.leader();
  const follower = c.members.find((m) => m !== leader && m.running && m !== n5)!;
  const deadline = Date.now() + 30_000;
  let out = '';
  for (;;) {
    const r = await etcdctl(follower.clientUrl, ['member', 'promote', add.id]);
    if (r.code === 0) { out = r.stdout; break; }
    assert.match(r.stderr, /can only promote a learner member which is in sync with leader/);
    assert.ok(Date.now() < deadline, `promote kept failing: ${r.stderr}`);
    await sleep(500);
  }
  assert.match(out, new RegExp(`Member\\s+${add.id} promoted in cluster`));
  console.log(`# learner: put on it -> ${errLine(put.stderr)}; etcdctl member promote ${add.id} (via a follower): ${out.trim()}`);
  const all = [...eps3, n5.clientUrl];
  await waitLists(all, (l) => l.length === 4 && l.every((m) => !m.isLearner && m.status === 'started'), '4 voters after promote');
  await ctlOk(n5.clientUrl, ['put', 'via-n5', 'v5']);
  assert.equal(await ctlOk(n5.clientUrl, ['get', 'via-n5', '--print-value-only']), 'v5\n');
  // A voter now: promote again is etcd's "not a learner".
  const again = await etcdctl(eps3, ['member', 'promote', add.id]);
  assert.deepEqual([again.code, errLine(again.stderr)], [1, 'Error: etcdserver: can only promote a learner member']);
});

test('SIGKILL + restart after add, promote and remove keeps the new membership on every member; member update; a removed member cannot restart', { timeout: 60_000, skip }, async () => {
  // State left by the tests above: n1..n3 plus n5 (added as a learner, then promoted); n4 added and removed.
  const n5 = c.byName('n5');
  const before = (await memberList(c.members[0].clientUrl)).map((m) => `${m.id} ${m.name} ${m.isLearner}`).sort();
  assert.equal(before.length, 4);
  for (const m of [c.byName('n1'), n5]) {
    await m.kill('SIGKILL');
    if (m === n5) await m.start({ state: 'existing', initialCluster: `${c.initialCluster},n5=${n5.peerUrl}` });
    else await m.start();
  }
  await waitLists(c.endpoints, (l) => JSON.stringify(l.map((m) => `${m.id} ${m.name} ${m.isLearner}`).sort()) === JSON.stringify(before) && l.every((m) => m.status === 'started'), 'same 4 members after restarts');
  await ctlOk(n5.clientUrl, ['put', 'after-restarts', 'v6']);
  assert.equal(await ctlOk(c.byName('n1').clientUrl, ['get', 'after-restarts', '--print-value-only']), 'v6\n');
  // MemberUpdate (peer URLs): the same URL is accepted; another member's URL or an unknown ID is refused.
  const n5id = (await memberList(c.members[0].clientUrl)).find((m) => m.name === 'n5')!.id;
  const up = await etcdctl(c.endpoints, ['member', 'update', n5id, `--peer-urls=${n5.peerUrl}`]);
  assert.equal(up.code, 0, up.stderr);
  assert.match(up.stdout, new RegExp(`Member\\s+${n5id} updated in cluster`));
  const dup = await etcdctl(c.endpoints, ['member', 'update', n5id, `--peer-urls=${c.byName('n1').peerUrl}`]);
  assert.equal(errLine(dup.stderr), 'Error: etcdserver: Peer URLs already exists');
  const unknown = await etcdctl(c.endpoints, ['member', 'update', '1234abcd', '--peer-urls=http://127.0.0.1:1']);
  assert.equal(errLine(unknown.stderr), 'Error: etcdserver: member not found');

  // The removed n4 refuses to start again from its data dir, as etcd does.
  assert.ok(removedN4, 'n4 was added and removed above');
  removedN4.spawn({ state: 'existing' });
  await within(removedN4.exited(), 30_000);
  assert.equal(removedN4.running, false, 'a removed member must not start again');
  assert.match(removedN4.currentLog, /the member has been permanently removed from the cluster/);
});

test('member remove of the leader: it stops, the others elect a leader and keep serving', { timeout: 60_000, skip }, async () => {
  const leader = await c.leader();
  const id = (await memberList(leader.clientUrl)).find((m) => m.name === leader.name)!.id;
  const others = c.members.filter((m) => m !== leader && m.running);
  const rm = await etcdctl(others.map((m) => m.clientUrl), ['member', 'remove', id]);
  assert.equal(rm.code, 0, rm.stderr);
  assert.ok(await within(leader.exited(), 30_000), `the removed leader still runs\n${leader.describe()}`);
  c.members.splice(c.members.indexOf(leader), 1);
  const eps = others.map((m) => m.clientUrl);
  await waitLists(eps, (l) => l.length === others.length && !l.some((m) => m.id === id), 'leader gone from every list');
  await ctlOk(eps, ['put', 'after-leader-removal', 'v7']);
  for (const m of others) assert.equal(await ctlOk(m.clientUrl, ['get', 'after-leader-removal', '--print-value-only']), 'v7\n');
});
