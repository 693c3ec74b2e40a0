/**
 * Lock / Election, differential: the same etcdctl (lock, elect, elect -l) and raw-gRPC (v3lockpb, v3electionpb)
 * sequences against etcetera and the reference etcd 3.4. Transcripts must match once lease IDs (etcd's are random)
 * and cluster/member IDs are normalised; revisions must match exactly.
 */
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { startEtcd, startEtcetera, hasEtcd, hasEtcdctl, NO_ETCD, NO_ETCDCTL, type ServerHandle } from '../helpers/servers';
import { killAllChildren } from '../helpers/procs';
import { ConcurrencyClient } from './concurrency-client';
import { EtcdctlSession } from './etcdctl-session';

const skip = !hasEtcd() ? NO_ETCD : !hasEtcdctl() ? NO_ETCDCTL : undefined;
let ours: ServerHandle | undefined;
let ref: ServerHandle | undefined;

before(async () => {
  if (skip) return;
  [ours, ref] = await Promise.all([startEtcetera(), startEtcd()]);
});
after(async () => {
  await Promise.all([ours?.stop(), ref?.stop()]);
  await killAllChildren();
});

/** Lease IDs (hex, 13–16 digits, in keys) → L1, L2, ... in order of appearance. */
function normaliser(): (s: string) => string {
  const ids = new Map<string, string>();
  return (s) => s.replace(/\b[0-9a-f]{12,16}\b/g, (h) => {
    if (!ids.has(h)) ids.set(h, `L${ids.size + 1}`);
    return ids.get(h)!;
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** etcdctl lock / elect / elect -l; returns the normalised transcript. */
async function etcdctlScenario(h: ServerHandle): Promise<string[]> {
  const norm = normaliser();
  const t: string[] = [];
  const ep = h.clientUrl;
  // lock: second contender gets the lock only after the first is interrupted (unlocks).
  const a = new EtcdctlSession(ep, ['lock', 'lk']);
  t.push(`A: ${norm((await a.lines(2)).join('|'))}`);
  const b = new EtcdctlSession(ep, ['lock', 'lk']);
  await sleep(700);
  t.push(`B before: ${JSON.stringify(b.stdout)}`);
  t.push(`A exit ${await a.interrupt()}`);
  t.push(`B: ${norm((await b.lines(2)).join('|'))}`);
  t.push(`B exit ${await b.interrupt()}`);
  // lock with a command: the command sees the key and the revision of the lock.
  const c = new EtcdctlSession(ep, ['lock', 'lk', 'sh', '-c', 'echo key=$ETCD_LOCK_KEY rev=$ETCD_LOCK_REV']);
  t.push(`C exit ${await c.exited}: ${norm(c.stdout.trim())}`);

  // elect: a listener, a leader, a pending candidate that takes over when the leader resigns.
  const l = new EtcdctlSession(ep, ['elect', '-l', 'el']);
  await sleep(500);
  const e1 = new EtcdctlSession(ep, ['elect', 'el', 'v1']);
  t.push(`E1: ${norm((await e1.lines(2)).join('|'))}`);
  const e2 = new EtcdctlSession(ep, ['elect', 'el', 'v2']);
  await sleep(700);
  t.push(`E2 before: ${JSON.stringify(e2.stdout)}`);
  t.push(`E1 exit ${await e1.interrupt()}`);
  t.push(`E2: ${norm((await e2.lines(2)).join('|'))}`);
  t.push(`listener: ${norm((await l.lines(4)).join('|'))}`);
  t.push(`E2 exit ${await e2.interrupt()}`);
  l.kill();
  return t;
}

/** Raw v3lockpb / v3electionpb calls, including the error shapes. */
async function grpcScenario(h: ServerHandle): Promise<string[]> {
  const norm = normaliser();
  const t: string[] = [];
  const c = new ConcurrencyClient(h.clientUrl);
  const show = (label: string, v: unknown): void => {
    t.push(`${label}: ${norm(JSON.stringify(v, (k, x) => {
      if (k === 'clusterId' || k === 'memberId' || k === 'raftTerm') return 'X';
      if (x && x.type === 'Buffer') return Buffer.from(x.data).toString();
      return x;
    }))}`);
  };
  try {
    show('lock no lease', await c.settle('v3lockpb.Lock/Lock', { name: Buffer.from('g'), lease: 0x777 }));
    show('unlock empty', await c.settle('v3lockpb.Lock/Unlock', { key: Buffer.alloc(0) }));
    show('unlock absent', await c.settle('v3lockpb.Lock/Unlock', { key: Buffer.from('nokey') }));
    show('leader none', await c.settle('v3electionpb.Election/Leader', { name: Buffer.from('ge') }));
    show('proclaim no leader', await c.settle('v3electionpb.Election/Proclaim', { value: Buffer.from('x') }));
    show('resign no leader', await c.settle('v3electionpb.Election/Resign', {}));
    show('proclaim stale', await c.settle('v3electionpb.Election/Proclaim', { leader: { name: Buffer.from('ge'), key: Buffer.from('ge/1'), rev: 5, lease: 0x777 }, value: Buffer.from('x') }));
    show('campaign no lease', await c.settle('v3electionpb.Election/Campaign', { name: Buffer.from('ge'), lease: 0x777, value: Buffer.from('x') }));
    const la = await c.grant(30, 0x1234);
    const lb = await c.grant(30, 0x2345);
    show('lock A', await c.settle('v3lockpb.Lock/Lock', { name: Buffer.from('g'), lease: la }));
    show('lock A again', await c.settle('v3lockpb.Lock/Lock', { name: Buffer.from('g'), lease: la }));
    const pendingB = c.settle('v3lockpb.Lock/Lock', { name: Buffer.from('g'), lease: lb });
    await sleep(300);
    const campA = await c.settle('v3electionpb.Election/Campaign', { name: Buffer.from('ge'), lease: la, value: Buffer.from('v1') });
    show('campaign A', campA);
    const revA: number = campA.ok.leader.rev;
    show('campaign A new value', await c.settle('v3electionpb.Election/Campaign', { name: Buffer.from('ge'), lease: la, value: Buffer.from('v2') }));
    const pendingEB = c.settle('v3electionpb.Election/Campaign', { name: Buffer.from('ge'), lease: lb, value: Buffer.from('w') });
    await sleep(300);
    show('lock keys', (await c.range('g/', true)).kvs);
    show('unlock A', await c.settle('v3lockpb.Lock/Unlock', { key: Buffer.from('g/1234') }));
    show('lock B', await pendingB);
    show('leader A', await c.settle('v3electionpb.Election/Leader', { name: Buffer.from('ge') }));
    show('proclaim A', await c.settle('v3electionpb.Election/Proclaim', { leader: { name: Buffer.from('ge'), key: Buffer.from('ge/1234'), rev: revA, lease: la }, value: Buffer.from('v3') }));
    show('resign stale', await c.settle('v3electionpb.Election/Resign', { leader: { name: Buffer.from('ge'), key: Buffer.from('ge/1234'), rev: 99, lease: la } }));
    show('resign A', await c.settle('v3electionpb.Election/Resign', { leader: { name: Buffer.from('ge'), key: Buffer.from('ge/1234'), rev: revA, lease: la } }));
    show('campaign B', await pendingEB);
    show('leader B', await c.settle('v3electionpb.Election/Leader', { name: Buffer.from('ge') }));
    // A cancelled Lock leaves no key behind.
    const ac = new AbortController();
    const cancelled = c.lock('g', la, { signal: ac.signal }).catch((e) => e.code);
    await sleep(300);
    ac.abort();
    show('cancelled lock', await cancelled);
    await sleep(300);
    show('keys after cancel', (await c.range('g/', true)).kvs.map((kv: { key: Buffer }) => kv.key.toString()));
    show('lock lease 0', await c.settle('v3lockpb.Lock/Lock', { name: Buffer.from('z'), lease: 0 }));
  } finally {
    c.close();
  }
  return t;
}

function compare(mine: string[], theirs: string[]): void {
  for (let i = 0; i < Math.max(mine.length, theirs.length); i++) assert.equal(mine[i], theirs[i], `step ${i} differs`);
}

test('etcdctl lock / elect / elect -l behave as against etcd 3.4', { skip, timeout: 120_000 }, async () => {
  const [mine, theirs] = await Promise.all([etcdctlScenario(ours!), etcdctlScenario(ref!)]);
  compare(mine, theirs);
});

test('raw Lock / Election gRPC answers match etcd 3.4', { skip, timeout: 60_000 }, async () => {
  const [mine, theirs] = await Promise.all([grpcScenario(ours!), grpcScenario(ref!)]);
  compare(mine, theirs);
});
