/**
 * Watch differential tests against the reference etcd 3.4:
 * - `etcdctl watch --prefix --rev --prev-kv` prints the same lines for the same sequence;
 * - a seeded sequence of puts / deletes / txns / compactions runs in lock-step on both; watches opened before it
 *   (synced path) and after it from several start revisions (history catch-up, compacted, future) with filters
 *   and prev_kv must produce identical created responses, event streams and compaction cancels (headers' member /
 *   cluster ids, raft terms and event grouping are not compared).
 *
 *   WATCH_DIFF_OPS=n (default 150), WATCH_DIFF_SEED=n
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { startEtcd, startEtcetera, hasEtcd, hasEtcdctl, NO_ETCD, NO_ETCDCTL, type ServerHandle } from '../helpers/servers';
import { RawClient } from '../helpers/grpc';
import { killAllChildren } from '../helpers/procs';
import { etcdctl } from '../helpers/etcdctl';
import { WatchClient, type WatchResp } from './watch-client';
import { Rng } from '../helpers/rng';

after(killAllChildren);

const B = (s: string): Buffer => Buffer.from(s, 'latin1');
const KEYS = ['a', 'a/1', 'a/2', 'a/3', 'b/1', 'b/2', 'c', 'd'];
const skip = !hasEtcd() ? NO_ETCD : undefined;

/** Runs `etcdctl watch` for `ms` and returns its stdout. */
function etcdctlWatch(endpoint: string, args: string[], ms: number): Promise<string> {
  return new Promise((resolve) => {
    const p = spawn(process.env.ETCDCTL_BIN ?? 'etcdctl', ['--endpoints', endpoint.replace('http://', ''), 'watch', ...args], { env: { ...process.env, ETCDCTL_API: '3' } });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    setTimeout(() => p.kill('SIGTERM'), ms);
    p.on('exit', () => resolve(out));
  });
}

test('etcdctl watch --prefix --rev --prev-kv matches etcd', { skip: skip ?? (!hasEtcdctl() ? NO_ETCDCTL : undefined), timeout: 120_000 }, async () => {
  const servers = [await startEtcd(), await startEtcetera()];
  try {
    const outs: string[] = [];
    for (const s of servers) {
      const seq: string[][] = [['put', 'k/a', '1'], ['put', 'k/b', '2'], ['put', 'k/a', '3'], ['del', 'k/b'], ['put', 'x', 'y'], ['del', '--prefix', 'k/'], ['put', 'k/a', 'again']];
      for (const c of seq) assert.equal((await etcdctl(s.clientUrl, c)).code, 0);
      const live = etcdctlWatch(s.clientUrl, ['--prefix', 'k/', '--rev', '2', '--prev-kv'], 2500);
      await new Promise((r) => setTimeout(r, 1000));
      await etcdctl(s.clientUrl, ['put', 'k/c', 'live']);
      await etcdctl(s.clientUrl, ['del', 'k/a']);
      outs.push(await live);
    }
    assert.ok(outs[0]!.length > 0, 'etcd printed nothing');
    assert.equal(outs[1], outs[0]);
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
});

interface Spec { key: string; rangeEnd?: string; startRevision?: number; prevKv?: boolean; filters?: number[]; progressNotify?: boolean; fragment?: boolean }

function specReq(s: Spec): object {
  return {
    key: B(s.key), rangeEnd: s.rangeEnd !== undefined ? B(s.rangeEnd) : Buffer.alloc(0), startRevision: s.startRevision ?? 0,
    prevKv: !!s.prevKv, filters: s.filters ?? [], fragment: !!s.fragment,
  };
}

/** Watch responses of one stream, normalised: per watch id, its control responses and flattened events. */
function summarize(rs: WatchResp[]): unknown {
  const by = new Map<number, { control: unknown[]; events: unknown[] }>();
  const get = (id: number) => { let e = by.get(id); if (!e) by.set(id, (e = { control: [], events: [] })); return e; };
  for (const r of rs) {
    const e = get(r.watchId);
    if (r.created || r.canceled || r.compactRevision) {
      e.control.push({ created: r.created, canceled: r.canceled, compactRevision: r.compactRevision, cancelReason: r.cancelReason, rev: r.created ? r.header.revision : undefined });
    }
    for (const ev of r.events) e.events.push(JSON.stringify(ev, (_k, v) => (v && v.type === 'Buffer' ? Buffer.from(v.data).toString('latin1') : v)));
  }
  return [...by.entries()].sort((a, b) => a[0] - b[0]);
}

function inSpec(s: Spec, key: string): boolean {
  if (s.rangeEnd === undefined) return key === s.key;
  if (s.rangeEnd === '\0') return key >= s.key;
  return key >= s.key && key < s.rangeEnd;
}

test('differential: seeded puts/deletes/txns/compactions, watches from many start revisions', { skip, timeout: 300_000 }, async () => {
  const seed = Number(process.env.WATCH_DIFF_SEED ?? Date.now() % 1_000_000);
  const nOps = Number(process.env.WATCH_DIFF_OPS ?? 150);
  console.log(`watch differential seed=${seed} ops=${nOps}`);
  const servers: ServerHandle[] = [await startEtcd(), await startEtcetera()];
  const clients = servers.map((s) => new RawClient(s.clientUrl));
  const early: Spec[] = [
    { key: 'a', rangeEnd: 'b', prevKv: true },
    { key: '\0', rangeEnd: '\0' },
    { key: 'c' },
    { key: 'b/', rangeEnd: 'b0', filters: [0] },
    { key: 'a', rangeEnd: 'b', filters: [1], prevKv: true },
  ];
  const streams = servers.map((s) => new WatchClient(s.clientUrl));
  try {
    for (const [i, st] of streams.entries()) {
      for (const sp of early) st.create(specReq(sp));
      await st.until((rs) => rs.filter((r) => r.created).length === early.length, 10_000, `early created on ${servers[i]!.kind}`);
    }
    const rng = new Rng(seed);
    let compactRev = 0;
    let rev = 1;
    for (let i = 0; i < nOps; i++) {
      const roll = rng.next();
      let req: [string, object];
      if (roll < 0.5) req = ['Put', { key: B(rng.pick(KEYS)), value: B(`v${i}`) }];
      else if (roll < 0.65) req = ['DeleteRange', { key: B(rng.pick(KEYS)) }];
      else if (roll < 0.72) req = ['DeleteRange', { key: B('a/'), rangeEnd: B('a0') }];
      else if (roll < 0.92) {
        req = ['Txn', {
          compare: [{ key: B(rng.pick(KEYS)), target: 0, result: 0, version: 0 }],
          success: [{ requestPut: { key: B(rng.pick(KEYS)), value: B(`t${i}`) } }, { requestDeleteRange: { key: B(rng.pick(KEYS)) } }],
          failure: [{ requestPut: { key: B(rng.pick(KEYS)), value: B(`f${i}`) } }, { requestPut: { key: B(rng.pick(KEYS)), value: B(`g${i}`) } }],
        }];
      } else {
        const target = Math.max(compactRev + 1, rev - rng.int(10));
        if (target > rev || target <= compactRev) continue;
        req = ['Compact', { revision: target }];
      }
      const res = await Promise.all(clients.map((c) => c.settle('KV', req[0], req[1])));
      assert.deepEqual(res[1]!.err, res[0]!.err, `op ${i} ${req[0]} error differs`);
      if (res[0]!.ok) rev = res[0]!.ok.header.revision;
      if (req[0] === 'Compact' && res[0]!.ok) compactRev = (req[1] as { revision: number }).revision;
    }
    console.log(`final revision ${rev}, compact revision ${compactRev}`);
    const mid = Math.max(compactRev, Math.floor((compactRev + rev) / 2));
    const late: Spec[] = [
      { key: '\0', rangeEnd: '\0', startRevision: 1 },
      { key: 'a', rangeEnd: 'b', startRevision: Math.max(1, compactRev - 1), prevKv: true },
      { key: '\0', rangeEnd: '\0', startRevision: compactRev + 1, prevKv: true },
      { key: 'a', rangeEnd: 'b', startRevision: compactRev + 1, filters: [0] },
      { key: 'b/', rangeEnd: 'b0', startRevision: mid },
      { key: 'c', startRevision: mid, prevKv: true },
      { key: 'a/1', startRevision: rev },
      { key: '\0', rangeEnd: '\0', startRevision: rev + 2 },
      { key: 'b', rangeEnd: 'a' }, // empty range → created+canceled
      { key: 'a', rangeEnd: 'b', startRevision: compactRev + 1, fragment: true },
    ];
    const lateStreams = servers.map((s) => new WatchClient(s.clientUrl));
    streams.push(...lateStreams);
    for (const st of lateStreams) for (const sp of late) st.create(specReq(sp));
    for (const st of lateStreams) await st.until((rs) => rs.filter((r) => r.created).length === late.length, 10_000, 'late created');
    // Fence: every spec sees its last event among these.
    const fence: Array<[string, string]> = [['Put', 'a/~f'], ['Put', 'b/~f'], ['Put', 'c'], ['DeleteRange', 'a/~f'], ['DeleteRange', 'b/~f'], ['DeleteRange', 'c']];
    const fenceRevs: Array<{ key: string; type: number; rev: number }> = [];
    for (const [m, k] of fence) {
      const res = await Promise.all(clients.map((c) => c.call('KV', m, m === 'Put' ? { key: B(k), value: B('fence') } : { key: B(k) })));
      assert.equal(res[1].header.revision, res[0].header.revision);
      fenceRevs.push({ key: k, type: m === 'Put' ? 0 : 1, rev: res[0].header.revision });
    }
    const lastRevFor = (s: Spec): number => {
      let r = 0;
      for (const f of fenceRevs) if (inSpec(s, f.key) && !(s.filters ?? []).includes(f.type) && f.rev >= (s.startRevision ?? 0)) r = f.rev;
      return r;
    };
    const settle = async (st: WatchClient, specs: Spec[], firstId: number, name: string): Promise<void> => {
      let next = firstId;
      for (const sp of specs) {
        const empty = sp.rangeEnd !== undefined && sp.rangeEnd !== '\0' && sp.rangeEnd <= sp.key;
        const id = empty ? -1 : next++;
        const want = lastRevFor(sp);
        await st.until((rs) => rs.some((r) => r.watchId === id && (r.canceled || (want === 0 && r.created) || r.events.some((e) => e.kv.modRevision >= want))), 30_000, `${name} watch ${id} up to ${want}`);
      }
    };
    for (const [i, st] of streams.entries()) {
      const early = i < 2;
      await settle(st, early ? earlySpecs() : late, 0, `${servers[i % 2]!.kind} ${early ? 'early' : 'late'}`);
    }
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < streams.length; i += 2) {
      const a = summarize(streams[i]!.responses);
      const b = summarize(streams[i + 1]!.responses);
      assert.deepEqual(b, a, `stream group ${i / 2} differs (seed ${seed})`);
    }
    function earlySpecs(): Spec[] { return early; }
  } finally {
    for (const st of streams) st.close();
    for (const c of clients) c.close();
    await Promise.all(servers.map((s) => s.stop()));
  }
});
