/**
 * Leases after the MVCC store is swapped (Defragment rewrites the LMDB file and reopens it; a follower installing
 * the leader's snapshot does the same): lease timetolive --keys, lease list, grant, revoke must keep answering as
 * etcd 3.4 does. Found by the nemesis run: the lessor kept the reader of the closed store, so timetolive answered
 * `Unknown: Can not renew a transaction from a closed database`, and a member that had installed a snapshot crashed
 * when it became leader (Lessor.promote read the closed store).
 */
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { startEtcd, startEtcetera, hasEtcd, hasEtcdctl, NO_ETCD, NO_ETCDCTL, type ServerHandle } from '../helpers/servers';
import { etcdctl } from '../helpers/etcdctl';
import { killAllChildren } from '../helpers/procs';

const skip = !hasEtcd() ? NO_ETCD : !hasEtcdctl() ? NO_ETCDCTL : undefined;
let ours: ServerHandle | undefined;
let ref: ServerHandle | undefined;

before(async () => {
  if (skip) return;
  [ours, ref] = await Promise.all([startEtcetera(), startEtcd({ extraArgs: ['--heartbeat-interval=100', '--election-timeout=1000'] })]);
});
after(async () => {
  await Promise.all([ours?.stop(), ref?.stop()]);
  await killAllChildren();
});

/** The etcdctl transcript of the scenario, lease IDs named L1, L2... in order of appearance, remaining TTLs dropped. */
async function scenario(h: ServerHandle): Promise<string[]> {
  const ids = new Map<string, string>();
  const name = (text: string): string => text
    .replace(/\b[0-9a-f]{16}\b/g, (hex) => {
      if (!ids.has(hex)) ids.set(hex, `L${ids.size + 1}`);
      return ids.get(hex)!;
    })
    .replace(/remaining\(\d+s\)/g, 'remaining(N)')
    .replace(/member\[http:\/\/127\.0\.0\.1:\d+\]/g, 'member[ENDPOINT]');
  const out: string[] = [];
  const run = async (...args: string[]): Promise<string> => {
    const r = await etcdctl(h.clientUrl, args);
    const line = `$ ${name(args.join(' '))} → ${r.code}\n${name(r.stdout.trim())}${r.stderr.trim() ? `\nstderr: ${name(r.stderr.trim().split('\n').pop()!)}` : ''}`;
    out.push(line.replace(/\{"level".*?"error":"rpc error: /, ''));
    return r.stdout;
  };
  const l1 = /lease ([0-9a-f]{16}) granted/.exec(await run('lease', 'grant', '100'))![1];
  await run('put', 'k1', 'v1', `--lease=${l1}`);
  await run('defrag');
  await run('lease', 'timetolive', l1, '--keys');
  const l2 = /lease ([0-9a-f]{16}) granted/.exec(await run('lease', 'grant', '100'))![1];
  await run('put', 'k2', 'v2', `--lease=${l2}`);
  await run('lease', 'timetolive', l2, '--keys');
  // `lease list` order is Go map order in etcd: compare the sorted IDs.
  const list = (await etcdctl(h.clientUrl, ['lease', 'list'])).stdout.trim().split('\n');
  out.push(`$ lease list\n${list[0]}\n${list.slice(1).map(name).sort().join('\n')}`);
  await run('lease', 'revoke', l1);
  await run('lease', 'timetolive', l1);
  await run('get', '--prefix', 'k');
  await run('defrag');
  await run('lease', 'keep-alive', '--once', l2);
  await run('lease', 'timetolive', l2, '--keys');
  return out;
}

test('leases keep answering like etcd after Defragment swaps the store', { skip }, async () => {
  const [a, b] = await Promise.all([scenario(ours!), scenario(ref!)]);
  assert.deepEqual(a, b);
  assert.ok(a.some((l) => l.includes('attached keys([k1])')), a.join('\n'));
});
