/**
 * Lease checkpoints (etcd 3.4 --experimental-enable-lease-checkpoint) on 3 members: the leader persists remaining
 * TTLs through Raft, so after a leader change (`etcdctl move-leader`) a lease keeps counting down from its
 * checkpointed remaining TTL instead of restarting from its granted TTL.
 *
 *  - etcd 3.4 and etcetera in the same run, both with etcd 3.4's fixed 5-minute interval: a 600 s lease, the leader
 *    moved 5 min later, `lease timetolive` answers ~300 s on both (without checkpoints it would be ~600 s).
 *  - etcetera with a 2 s interval (--experimental-lease-checkpoint-interval, etcd 3.5's flag) and, as a control,
 *    without checkpoints (the TTL resets, as etcd 3.4 does by default).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { agreedLeader, endpointStatus, etcdctl } from '../helpers/etcdctl';
import { hasEtcd, hasEtcdctl, NO_ETCD, NO_ETCDCTL, startServer, type ServerKind } from '../helpers/servers';
import { killAllChildren } from '../helpers/procs';

after(killAllChildren);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `lease timetolive` remaining seconds, retried while a new leader is being promoted. */
async function remaining(endpoints: string[], id: string): Promise<number> {
  let last = '';
  for (let i = 0; i < 100; i++) {
    const r = await etcdctl(endpoints, ['lease', 'timetolive', id]);
    const m = /remaining\((-?\d+)s\)/.exec(r.stdout);
    if (r.code === 0 && m) return Number(m[1]);
    last = r.stdout + r.stderr;
    await sleep(300);
  }
  throw new Error(`lease timetolive ${id}: ${last}`);
}

/** Moves leadership to a follower with etcdctl and waits until every member agrees. */
async function moveLeader(endpoints: string[]): Promise<void> {
  await agreedLeader(endpoints, 60_000);
  const target = (await endpointStatus(endpoints)).find((s) => !s.isLeader)!;
  const r = await etcdctl(endpoints, ['move-leader', target.id]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await agreedLeader(endpoints, 60_000), target.id);
}

/** Grants a `ttlS` lease, waits `waitMs`, moves the leader: remaining TTL before and after. */
async function scenario(kind: ServerKind, extraArgs: string[], ttlS: number, waitMs: number): Promise<{ before: number; after: number }> {
  const srv = await startServer(kind, { members: 3, extraArgs });
  try {
    const eps = srv.endpoints;
    await agreedLeader(eps, 60_000);
    const g = await etcdctl(eps, ['lease', 'grant', String(ttlS)]);
    const id = /lease ([0-9a-f]+) granted/.exec(g.stdout)?.[1];
    assert.ok(id, `${kind}: ${g.stdout}${g.stderr}`);
    await sleep(waitMs);
    const before = await remaining(eps, id);
    await moveLeader(eps);
    return { before, after: await remaining(eps, id) };
  } finally {
    await srv.stop();
  }
}

test('lease checkpoints: remaining TTL survives a leader change, etcd 3.4 and etcetera (5 min interval)', {
  // etcd 3.4's interval is fixed at 5 min, so this comparison takes ~5.5 min: too long for the 10-minute `npm test`
  // budget; the 2 s-interval test below runs every time, this one with LEASE_CHECKPOINT_ETCD=1.
  skip: process.env.LEASE_CHECKPOINT_ETCD !== '1' ? 'takes 5.5 min (etcd 3.4 checkpoints every 5 min); set LEASE_CHECKPOINT_ETCD=1'
    : !hasEtcd() ? NO_ETCD : !hasEtcdctl() ? NO_ETCDCTL : undefined, timeout: 900_000,
}, async (t) => {
  const TTL = 600;
  const WAIT_MS = 310_000; // the first checkpoint is due 5 min after the grant
  const [etcd, mine] = await Promise.all([
    scenario('etcd', ['--experimental-enable-lease-checkpoint'], TTL, WAIT_MS),
    scenario('etcetera', ['--experimental-enable-lease-checkpoint'], TTL, WAIT_MS),
  ]);
  t.diagnostic(`remaining TTL (s) before/after the leader change: etcd ${JSON.stringify(etcd)}, etcetera ${JSON.stringify(mine)}`);
  // Checkpointed at ~300 s remaining; the new leader adds one election timeout. Without checkpoints: ~600 s.
  for (const [kind, r] of [['etcd', etcd], ['etcetera', mine]] as const) {
    assert.ok(r.before <= TTL - 300, `${kind}: ${JSON.stringify(r)}`);
    assert.ok(r.after >= 280 && r.after <= 302, `${kind}: remaining after the leader change ${JSON.stringify(r)}`);
  }
  assert.ok(Math.abs(mine.after - etcd.after) <= 3, `etcetera ${JSON.stringify(mine)} vs etcd ${JSON.stringify(etcd)}`);
});

test('etcetera: 2 s checkpoint interval keeps the countdown across a leader change; without checkpoints it resets', {
  skip: !hasEtcdctl() ? NO_ETCDCTL : undefined, timeout: 300_000,
}, async (t) => {
  const TTL = 60;
  const on = await scenario('etcetera', ['--experimental-enable-lease-checkpoint', '--experimental-lease-checkpoint-interval=2s'], TTL, 9_000);
  assert.ok(on.before <= TTL - 8, JSON.stringify(on));
  // Last checkpoint at most one interval (+ a tick) before the change, plus one election timeout of extension.
  assert.ok(on.after <= on.before + 4 && on.after < TTL - 4, `with checkpoints ${JSON.stringify(on)}`);
  const off = await scenario('etcetera', [], TTL, 9_000);
  t.diagnostic(`remaining TTL (s) before/after: checkpoints every 2 s ${JSON.stringify(on)}, none ${JSON.stringify(off)}`);
  assert.ok(off.after >= TTL - 1, `without checkpoints the new leader restarts the TTL ${JSON.stringify(off)}`);
});
