/**
 * v3lockpb.Lock against the system under test (SUT=etcetera|etcd): contenders are served in order, a cancelled
 * waiter leaves no key, and a holder whose lease expires (the client died) hands the lock to the next waiter —
 * never to two holders at once (checked with a shared counter and with holding intervals in revision space).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { sutUnavailable, type ServerHandle } from '../helpers/servers';
import { ConcurrencyClient, serveForFile } from './concurrency-client';
import { WatchClient } from '../watch/watch-client';

const skip = sutUnavailable();
let sut: ServerHandle | undefined;
let c: ConcurrencyClient;
let nextLease = 0x100;

serveForFile(skip, (s, client) => { sut = s; c = client; });

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('second contender gets the lock only after the first unlocks', { skip, timeout: 30_000 }, async () => {
  const la = await c.grant(30, nextLease++);
  const lb = await c.grant(30, nextLease++);
  const a = await c.lock('two', la);
  let bDone = false;
  const b = c.lock('two', lb).then((r) => { bDone = true; return r; });
  await sleep(500);
  assert.equal(bDone, false, 'B must wait while A holds the lock');
  const u = await c.unlock(a.key);
  const br = await b;
  assert.ok(br.header.revision >= u.header.revision, 'B acquired at or after A released');
  assert.equal(br.key.toString(), `two/${lb.toString(16)}`);
  await c.unlock(br.key);
});

test('a cancelled Lock leaves no key behind', { skip, timeout: 30_000 }, async () => {
  const la = await c.grant(30, nextLease++);
  const lb = await c.grant(30, nextLease++);
  const a = await c.lock('cx', la);
  const ac = new AbortController();
  const pending = c.lock('cx', lb, { signal: ac.signal }).then(() => 'locked', (e) => e.code);
  await sleep(300);
  assert.equal((await c.range('cx/', true)).kvs.length, 2);
  ac.abort();
  assert.equal(await pending, 1 /* CANCELLED */);
  const deadline = Date.now() + 5000;
  while ((await c.range('cx/', true)).kvs.length !== 1 && Date.now() < deadline) await sleep(50);
  assert.deepEqual((await c.range('cx/', true)).kvs.map((kv: { key: Buffer }) => kv.key.toString()), [a.key.toString()]);
  await c.unlock(a.key);
});

test('an unknown lease is refused with etcd\'s error', { skip, timeout: 10_000 }, async () => {
  const r = await c.settle('v3lockpb.Lock/Lock', { name: Buffer.from('nl'), lease: 0xdead });
  assert.deepEqual(r.err, { code: 2, details: 'etcdserver: requested lease not found' });
});

test('an expired holder passes the lock on; never two holders at once', { skip, timeout: 90_000 }, async () => {
  const name = 'exp';
  const w = new WatchClient(sut!.clientUrl);
  const start = (await c.range('zz')).header.revision + 1;
  w.create({ key: Buffer.from(`${name}/`), rangeEnd: Buffer.from(`${name}0`), startRevision: start });
  // 6 contenders: odd ones "die" holding the lock (short lease, never unlock); even ones hold briefly and unlock.
  let holders = 0;
  let maxHolders = 0;
  const acquired: { key: string; rev: number; dies: boolean; at: number; grantedAt: number }[] = [];
  const clients: Promise<void>[] = [];
  for (let i = 0; i < 6; i++) {
    const dies = i % 2 === 1;
    const grantedAt = Date.now();
    const lease = await c.grant(dies ? 2 : 60, nextLease++);
    clients.push((async () => {
      const r = await c.lock(name, lease, { timeoutMs: 80_000 });
      acquired.push({ key: r.key.toString(), rev: r.header.revision, dies, at: Date.now(), grantedAt });
      if (dies) {
        return; // the client is gone: only the lease expiry releases the lock
      }
      holders++;
      maxHolders = Math.max(maxHolders, holders);
      await sleep(100);
      holders--;
      await c.unlock(r.key);
    })());
    await sleep(20);
  }
  await Promise.all(clients);
  assert.equal(acquired.length, 6);
  assert.equal(maxHolders, 1);
  // Revision space: the holder created k-th may acquire only after every earlier-created key was deleted.
  await sleep(3500); // the last holder's lease (if it dies) expires too
  const events = w.events();
  w.close();
  const created = new Map<string, number>();
  const deleted = new Map<string, number>();
  for (const ev of events) {
    const k = ev.kv.key.toString();
    if (ev.type === 0 && !created.has(k)) created.set(k, ev.kv.modRevision);
    if (ev.type === 1) deleted.set(k, ev.kv.modRevision);
  }
  const order = [...acquired].sort((x, y) => created.get(x.key)! - created.get(y.key)!);
  for (let i = 1; i < order.length; i++) {
    const prev = order[i - 1]!;
    const cur = order[i]!;
    assert.ok(deleted.has(prev.key), `${prev.key} was released`);
    assert.ok(cur.rev >= deleted.get(prev.key)!, `${cur.key} acquired at ${cur.rev}, before ${prev.key} was released at ${deleted.get(prev.key)}`);
    // A dead holder's lock passes on only once its 2 s lease expires (counted from its grant).
    if (prev.dies) assert.ok(cur.at - prev.grantedAt >= 1900, `passed on ${cur.at - prev.grantedAt} ms after the dead holder's lease grant`);
  }
});
