/**
 * Lease API, differential: the same etcdctl and raw-gRPC sequence against etcetera and the reference etcd 3.4
 * (both with etcd's default 100 ms heartbeat / 1000 ms election timeout, so the minimum lease TTL is 2 s on both).
 * Outputs must match once lease IDs (random in etcd, deterministic in etcetera), cluster/member IDs and the
 * remaining seconds (±1 s of timing) are normalised. Revisions must match exactly (a revoke deletes every
 * attached key in one revision).
 */
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { startEtcd, startEtcetera, hasEtcd, hasEtcdctl, NO_ETCD, NO_ETCDCTL, type ServerHandle } from '../helpers/servers';
import { etcdctl } from '../helpers/etcdctl';
import { killAllChildren } from '../helpers/procs';
import { LeaseClient } from './lease-client';

const skip = !hasEtcd() ? NO_ETCD : !hasEtcdctl() ? NO_ETCDCTL : undefined;
let ours: ServerHandle | undefined;
let ref: ServerHandle | undefined;
// The reference runs with etcd's defaults for the lease TTL floor (the helper's fast timings would make it 1 s).
const DEFAULT_TIMINGS = ['--heartbeat-interval=100', '--election-timeout=1000'];

before(async () => {
  if (skip) return;
  [ours, ref] = await Promise.all([startEtcetera(), startEtcd({ extraArgs: DEFAULT_TIMINGS })]);
});
after(async () => {
  await Promise.all([ours?.stop(), ref?.stop()]);
  await killAllChildren();
});

/** Replaces each distinct 16-hex-digit lease ID (and its decimal form in JSON) by L1, L2, ... in order of appearance. */
function normalise(text: string, ids: Map<string, string>): string {
  const name = (hex: string): string => {
    const k = hex.toLowerCase().replace(/^0+/, '');
    if (!ids.has(k)) ids.set(k, `L${ids.size + 1}`);
    return ids.get(k)!;
  };
  // `lease list` prints etcd's leases in Go map order (random per run): sort the IDs before naming them.
  const listed = /^(found \d+ leases\n)([\s\S]*)$/.exec(text);
  if (listed) text = listed[1] + listed[2]!.split('\n').sort().join('\n');
  return text
    .replace(/"(cluster_id|member_id)":\d+/g, '"$1":X')
    .replace(/"ID":(\d+)/g, (_m, d: string) => `"ID":${name(BigInt(d).toString(16))}`)
    .replace(/"id":(\d+)/g, (_m, d: string) => `"id":${name(BigInt(d).toString(16))}`)
    .replace(/\b[0-9a-f]{16}\b/g, (h) => name(h))
    .replace(/remaining\((\d+)s\)/g, 'remaining(N)')
    // etcd lists a lease's keys from a Go map, so their order changes from run to run: compare them sorted.
    .replace(/attached keys\(\[([^\]]*)\]\)/g, (_m, keys: string) => `attached keys([${keys.split(' ').sort().join(' ')}])`)
    .replace(/"ttl":(\d+)/g, '"ttl":N')
    .replace(/"ts":"[^"]*"/g, '"ts":T')
    .replace(/"target":"[^"]*"/g, '"target":T');
}

/** Runs the scenario against one server and returns the normalised transcript plus raw remaining TTLs. */
async function scenario(h: ServerHandle): Promise<{ transcript: string[]; remaining: number[] }> {
  const ids = new Map<string, string>();
  const transcript: string[] = [];
  const remaining: number[] = [];
  const run = async (...args: string[]): Promise<string> => {
    const r = await etcdctl(h.clientUrl, args);
    for (const m of r.stdout.matchAll(/remaining\((\d+)s\)/g)) remaining.push(Number(m[1]));
    // etcdctl's retry-interceptor warnings carry timestamps/targets: keep only the Error line of stderr.
    const err = r.stderr.split('\n').filter((l) => l.startsWith('Error')).join('\n');
    transcript.push(`$ ${normalise(args.join(' '), ids)}\n[${r.code}] ${normalise(r.stdout.trim(), ids)}${err ? `\n${normalise(err, ids)}` : ''}`);
    return r.stdout;
  };
  const idOf = (out: string): string => /lease ([0-9a-f]{16}) granted/.exec(out)![1];

  const a = idOf(await run('lease', 'grant', '30'));
  const b = idOf(await run('lease', 'grant', '60'));
  await run('put', '--lease', b, 'lk1', 'v1');
  await run('put', '--lease', b, 'lk2', 'v2');
  await run('put', 'lk3', 'v3');
  await run('lease', 'timetolive', b);
  await run('lease', 'timetolive', '--keys', b);
  await run('lease', 'timetolive', '--keys', a);
  await run('lease', 'keep-alive', '--once', b);
  await run('lease', 'timetolive', '1234');
  await run('-w', 'json', 'lease', 'timetolive', '1234');
  await run('lease', 'keep-alive', '--once', '1234');
  await run('lease', 'revoke', '1234');
  await run('put', '--lease', '1234', 'lk4', 'v4');
  await run('lease', 'grant', '9000000001');
  await run('lease', 'revoke', b);
  await run('-w', 'json', 'get', '--prefix', 'lk');
  await run('lease', 'timetolive', b);
  await run('lease', 'revoke', a);
  await run('lease', 'list');

  // Raw gRPC: a requested ID, a duplicate, keep-alive answers, the not-found shapes.
  const c = new LeaseClient(h.clientUrl);
  try {
    const g = await c.grant(40, 0x1234);
    transcript.push(`grant id: ${JSON.stringify({ ID: g.ID, TTL: g.TTL, error: g.error })}`);
    transcript.push(`dup: ${JSON.stringify(await c.settle(c.grant(40, 0x1234)))}`);
    const ka = await c.keepAlive([0x1234, 0x999, 0x1234]);
    transcript.push(`keepalive: ${JSON.stringify(ka.map((r) => ({ ID: r.ID, TTL: r.TTL, rev: r.header.revision })))}`);
    const t = await c.timeToLive(0x999, true);
    transcript.push(`ttl missing: ${JSON.stringify({ ID: t.ID, TTL: t.TTL, grantedTTL: t.grantedTTL, keys: t.keys, rev: t.header.revision })}`);
    const t2 = await c.timeToLive(0x1234, true);
    transcript.push(`ttl: ${JSON.stringify({ ID: t2.ID, grantedTTL: t2.grantedTTL, keys: t2.keys, rev: t2.header.revision })}`);
    remaining.push(t2.TTL);
    const ls = await c.leases();
    transcript.push(`leases: ${JSON.stringify(ls.leases.map((l: { ID: number }) => l.ID).sort())} rev ${ls.header.revision}`);
    transcript.push(`revoke: ${JSON.stringify(await c.settle(c.revoke(0x1234).then((r) => r.header.revision)))}`);
    transcript.push(`revoke again: ${JSON.stringify(await c.settle(c.revoke(0x1234)))}`);
  } finally {
    c.close();
  }
  await run('lease', 'grant', '1'); // raised to the minimum TTL (2 s)
  return { transcript, remaining };
}

test('lease: etcdctl and raw gRPC outputs match etcd 3.4', { skip, timeout: 180_000 }, async () => {
  const [mine, theirs] = await Promise.all([scenario(ours!), scenario(ref!)]);
  for (let i = 0; i < Math.max(mine.transcript.length, theirs.transcript.length); i++) {
    assert.equal(mine.transcript[i], theirs.transcript[i], `step ${i} differs`);
  }
  assert.equal(mine.remaining.length, theirs.remaining.length);
  for (let i = 0; i < mine.remaining.length; i++) {
    assert.ok(Math.abs(mine.remaining[i] - theirs.remaining[i]) <= 1, `remaining TTL ${i}: ${mine.remaining[i]} vs ${theirs.remaining[i]}`);
  }
});
