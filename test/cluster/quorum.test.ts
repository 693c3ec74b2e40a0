/**
 * A 5-member cluster keeps serving writes with 2 members down, refuses writes with etcd's Unavailable errors
 * (never hanging past etcd's request timeout) with 3 down, and resumes when one comes back.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type * as grpc from '@grpc/grpc-js';
import { Cluster, Ack, putWithRetry, checkAllMembersAgree, UNAVAILABLE, UNAVAILABLE_MESSAGES, errText } from './harness';
import { killAllChildren } from '../helpers';

let cluster: Cluster | null = null;
after(async () => { await cluster?.destroy(); await killAllChildren(); });

/** etcd's request timeout with the default --election-timeout=1000: 5 s + 2 × 1 s. */
const ETCD_REQUEST_TIMEOUT_MS = 7000;
/** The client's own deadline: well above the server's request timeout, so a server that hangs is caught. */
const CLIENT_DEADLINE_MS = 25_000;

test('5 members: 2 down keeps serving, 3 down fails writes with Unavailable, 1 back resumes', { timeout: 400_000 }, async () => {
  cluster = await Cluster.start(5);
  const c = cluster;
  const acks: Ack[] = [];
  for (const m of c.members) acks.push(await putWithRetry(() => [m], `all-up/${m.name}`, 'v'));

  // Lose two members, the leader among them.
  const leader = await c.leader();
  const others = c.members.filter((m) => m !== leader);
  const down1 = [leader, others[0]];
  await Promise.all(down1.map((m) => m.kill('SIGKILL')));
  await c.leader(60_000, down1);
  for (const m of c.running()) {
    for (let i = 0; i < 10; i++) acks.push(await putWithRetry(() => [m], `two-down/${m.name}/${i}`, `v${i}`));
  }
  // Linearizable read on every survivor sees them.
  for (const m of c.running()) {
    const r = await m.client.call('KV', 'Range', { key: Buffer.from('two-down/'), rangeEnd: Buffer.from('two-down0'), countOnly: true });
    assert.equal(r.count, 30, `${m.name} sees the writes made with two members down`);
  }

  // Lose a third: no quorum. Every put must fail with an Unavailable-class etcd error within the request timeout.
  const third = c.running()[0];
  await third.kill('SIGKILL');
  const survivors = c.running();
  assert.equal(survivors.length, 2);
  const failures: string[] = [];
  for (let round = 0; round < 2; round++) {
    for (const m of survivors) {
      const t0 = Date.now();
      const res: { ok?: any; err?: { code: number; details: string } } = await m.client
        .settle('KV', 'Put', { key: Buffer.from(`no-quorum/${m.name}/${round}`), value: Buffer.from('must-not-ack') })
        .catch((e: unknown) => ({ err: { code: (e as grpc.ServiceError).code, details: errText(e) } }));
      const took = Date.now() - t0;
      failures.push(`${m.name}: ${res.err ? `${res.err.code} ${res.err.details}` : 'OK?!'} after ${took} ms`);
      assert.ok(res.err, `put on ${m.name} without quorum was acknowledged: ${JSON.stringify(res.ok?.header)}`);
      assert.equal(res.err!.code, UNAVAILABLE, `put on ${m.name} without quorum: ${res.err!.code} ${res.err!.details} after ${took} ms (code 4 = client deadline: the server hung)`);
      assert.ok(UNAVAILABLE_MESSAGES.includes(res.err!.details), `unexpected message: ${res.err!.details}`);
    }
  }
  // The raw client's default deadline is 30 s; make the bound explicit with a 25 s one too.
  {
    const m = survivors[0];
    const t0 = Date.now();
    try {
      await m.client.call('KV', 'Put', { key: Buffer.from('no-quorum/deadline'), value: Buffer.from('x') }, CLIENT_DEADLINE_MS);
      assert.fail('put without quorum was acknowledged');
    } catch (e) {
      const se = e as grpc.ServiceError;
      assert.equal(se.code, UNAVAILABLE, `${errText(e)} after ${Date.now() - t0} ms`);
      failures.push(`${m.name} (25 s deadline): ${errText(e)} after ${Date.now() - t0} ms`);
    }
  }
  // A linearizable read cannot be served either (serializable still can).
  {
    const m = survivors[1];
    const r = await m.client.settle('KV', 'Range', { key: Buffer.from('all-up/n1') });
    assert.ok(r.err, 'linearizable read without quorum succeeded');
    assert.equal(r.err!.code, UNAVAILABLE, `linearizable read without quorum: ${r.err!.code} ${r.err!.details}`);
    const s = await m.client.call('KV', 'Range', { key: Buffer.from('all-up/'), rangeEnd: Buffer.from('all-up0'), serializable: true });
    assert.equal(s.kvs.length, 5, 'serializable read still answers from local state');
  }
  console.log(`# without quorum: ${failures.join('; ')}; etcd's request timeout is ${ETCD_REQUEST_TIMEOUT_MS} ms`);

  // One member comes back (on its data dir): quorum 3 of 5 again, writes resume through every survivor.
  await third.start();
  await c.leader(60_000);
  for (const m of c.running()) acks.push(await putWithRetry(() => [m], `resumed/${m.name}`, 'v', { giveUpMs: 60_000 }));

  // Bring everyone back: all five converge and agree. The refused puts may or may not have been committed
  // (etcd does not promise either for a timed-out request), but all members must agree about them.
  await Promise.all(down1.map((m) => m.start()));
  await c.waitConverged(120_000, c.members);
  const problems = await checkAllMembersAgree(c, acks, c.members);
  assert.equal(problems, '', `${problems}\n${c.describe()}`);
});
