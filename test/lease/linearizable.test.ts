/**
 * Lease answers are linearizable with Grant / Revoke (issue 8 item 2), compared with etcd 3.4.
 *
 * Each round: LeaseGrant on member A, LeaseRevoke on member B (a follower), then LeaseTimeToLive, one keep-alive
 * and LeaseLeases on member C. The revoke was acknowledged before C was asked, so C must answer as if the lease
 * never existed: TimeToLive TTL -1, keep-alive TTL 0, not listed. C alternates between the leader (answers from its
 * lessor) and the other follower (forwards to the leader), and every LEADER_MOVE_EVERY rounds the leadership is
 * moved to another member (MoveLeader), so rounds also run right after a leader change.
 *
 * Measured before the fix (etcetera main, 100 rounds): 52–55 TimeToLive and 51–55 keep-alive answers showed the
 * revoked lease alive, once LeaseLeases listed it (the leader's lessor forgot a lease revoked through another member
 * only on its periodic rescan). etcd 3.4: none.
 * LEASE_ROUNDS (default 100) scales the run.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, hasEtcd, NO_ETCD, type ServerHandle, type ServerKind } from '../helpers/servers';
import { killAllChildren } from '../helpers/procs';
import { Etcd3 } from 'etcd3';

const ROUNDS = Number(process.env.LEASE_ROUNDS ?? 100);
const LEADER_MOVE_EVERY = 25;
const skip = hasEtcd() ? undefined : NO_ETCD;

const handles: ServerHandle[] = [];
const closers: { close(): void }[] = [];
after(async () => {
  for (const c of closers) c.close();
  await Promise.all(handles.map((h) => h.stop()));
  await killAllChildren();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** etcd's retryable answers (gRPC Unavailable / deadline), as the etcd3 client reports them. */
const RETRYABLE = /unavailable|deadline|no leader|leader changed|timed out|not capable/i;

/** A call that may meet a leader election is retried, as clients do. */
async function retry<T>(f: () => Promise<T>, what: string): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      return await f();
    } catch (e) {
      const code = (e as { code?: number }).code;
      const msg = `${(e as Error).name} ${(e as Error).message}`;
      if ((code !== 14 && code !== 4 && !RETRYABLE.test(msg)) || Date.now() > deadline) throw new Error(`${what}: ${msg}`);
      await sleep(100);
    }
  }
}

/** One keep-alive on a fresh stream of `etcd`; resolves the answered TTL (etcd3 keeps int64 as strings). */
async function keepAliveOnce(etcd: Etcd3, id: string): Promise<number> {
  const stream = await etcd.leaseClient.leaseKeepAlive();
  try {
    const res = await new Promise<{ TTL: string }>((resolve, reject) => {
      stream.on('data', resolve);
      stream.on('error', reject);
      stream.write({ ID: id });
    });
    return Number(res.TTL);
  } finally {
    stream.end();
  }
}

interface Outcome {
  rounds: number;
  /** Rounds where C answered the revoked lease as alive, by answer. */
  staleTtl: number;
  staleKeepAlive: number;
  staleLeases: number;
  leaderMoves: number;
  examples: string[];
}

async function run(kind: ServerKind): Promise<Outcome> {
  // Same Raft timing for both (etcd's default heartbeat / election timeout, etcetera's defaults).
  const h = await startServer(kind, { members: 3, extraArgs: kind === 'etcd' ? ['--heartbeat-interval=100', '--election-timeout=1000'] : [] });
  handles.push(h);
  const members = h.members!;
  // etcd3 keeps int64 fields as decimal strings: etcd's member and lease IDs exceed 2^53.
  const lease = members.map((m) => new Etcd3({ hosts: m.clientUrl }));
  closers.push(...lease);
  const ids: string[] = [];
  for (const c of lease) ids.push((await retry(() => c.maintenance.status(), 'status')).header.member_id);

  /** Index of the member every member names as leader. */
  const leaderIndex = async (): Promise<number> => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const st = await Promise.all(lease.map((c) => c.maintenance.status().catch(() => null)));
      const leaders = new Set(st.map((s) => s?.leader));
      const lead = st[0]?.leader;
      if (leaders.size === 1 && lead !== undefined && ids.includes(lead)) return ids.indexOf(lead);
      if (Date.now() > deadline) throw new Error(`${kind}: no agreed leader: ${JSON.stringify(st.map((s) => s?.leader))}`);
      await sleep(100);
    }
  };

  const out: Outcome = { rounds: 0, staleTtl: 0, staleKeepAlive: 0, staleLeases: 0, leaderMoves: 0, examples: [] };
  let leader = await leaderIndex();
  for (let round = 0; round < ROUNDS; round++) {
    if (round > 0 && round % LEADER_MOVE_EVERY === 0) {
      const target = (leader + 1) % 3;
      await retry(() => lease[leader]!.maintenance.moveLeader({ targetID: ids[target]! }), 'move-leader');
      out.leaderMoves++;
      leader = await leaderIndex();
    }
    const followers = [0, 1, 2].filter((i) => i !== leader);
    const b = followers[round % 2]!;
    // C: the leader on even rounds, the other follower on odd ones.
    const c = round % 2 === 0 ? leader : followers[(round + 1) % 2]!;
    const a = [0, 1, 2].find((i) => i !== b && i !== c)!;

    const g = await retry(() => lease[a]!.leaseClient.leaseGrant({ TTL: 100 }), 'grant');
    const id = g.ID;
    await retry(() => lease[b]!.leaseClient.leaseRevoke({ ID: id }), 'revoke');
    const t = await retry(() => lease[c]!.leaseClient.leaseTimeToLive({ ID: id }), 'timetolive');
    const ka = await retry(() => keepAliveOnce(lease[c]!, id), 'keep-alive');
    const ls = await retry(() => lease[c]!.leaseClient.leaseLeases(), 'leases');
    out.rounds++;
    const who = `round ${round} (grant m${a + 1}, revoke m${b + 1}, ask m${c + 1}${c === leader ? ' = leader' : ''})`;
    if (Number(t.TTL) !== -1) {
      out.staleTtl++;
      if (out.examples.length < 5) out.examples.push(`${who}: TimeToLive TTL ${t.TTL} granted ${t.grantedTTL}`);
    }
    if (ka !== 0) {
      out.staleKeepAlive++;
      if (out.examples.length < 5) out.examples.push(`${who}: keep-alive TTL ${ka}`);
    }
    if (ls.leases.some((l) => l.ID === id)) {
      out.staleLeases++;
      if (out.examples.length < 5) out.examples.push(`${who}: listed by LeaseLeases`);
    }
  }
  return out;
}

test('grant on A, revoke on follower B, then TimeToLive / keep-alive / Leases on C: never the revoked lease (as etcd 3.4)', { skip, timeout: 600_000 }, async () => {
  const ref = await run('etcd');
  const ours = await run('etcetera');
  console.log(`lease linearizability over ${ROUNDS} rounds: etcd 3.4 ${JSON.stringify(ref)}; etcetera ${JSON.stringify(ours)}`);
  // etcd is the spec: TimeToLive and keep-alive go to its leader and never show a revoked lease here; etcetera must
  // not either. etcd 3.4's LeaseLeases answers from the asked member's own lessor without a read barrier, so under
  // load it can list a lease its leader already revoked (seen once in 100 rounds at load 13): not asserted for etcd;
  // etcetera is held to the stricter answer (0) below.
  assert.equal(ref.staleTtl + ref.staleKeepAlive, 0, `etcd 3.4 itself answered stale: ${ref.examples.join('; ')}`);
  assert.equal(ours.rounds, ref.rounds);
  assert.ok(ours.leaderMoves >= Math.floor((ROUNDS - 1) / LEADER_MOVE_EVERY));
  assert.deepEqual(
    { ttl: ours.staleTtl, keepAlive: ours.staleKeepAlive, leases: ours.staleLeases },
    { ttl: 0, keepAlive: 0, leases: 0 },
    `etcetera answered a revoked lease as alive: ${ours.examples.join('; ')}`,
  );
});
