/**
 * Auth, generated differential: a seeded generator (test/helpers/rng.ts) makes users, roles and key-range
 * permissions (single keys, ranges, from-key), then a stream of Range / Put / DeleteRange / Txn (nested too) requests
 * by those users (and by root and by nobody), with permission changes in between. etcetera and etcd 3.4 get the same stream;
 * every answer is compared one by one: the error (code + text) or the result (revision, keys, values, count,
 * succeeded). Replay a failure with AUTH_SEED=<seed>.
 */
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { startEtcd, startEtcetera, hasEtcd, NO_ETCD, type ServerHandle } from '../helpers/servers';
import { RawClient } from '../helpers/grpc';
import { killAllChildren } from '../helpers/procs';
import { Rng } from '../helpers/rng';

const skip = !hasEtcd() ? NO_ETCD : undefined;
const SEED = Number(process.env.AUTH_SEED ?? 90210);
const REQUESTS = 150;
let ours: ServerHandle | undefined;
let ref: ServerHandle | undefined;
const open: RawClient[] = [];

before(async () => {
  if (skip) return;
  [ours, ref] = await Promise.all([startEtcetera(), startEtcd()]);
});
after(async () => {
  for (const c of open) c.close();
  await Promise.all([ours?.stop(), ref?.stop()]);
  await killAllChildren();
});

const KEYS = ['a', 'a/1', 'a/2', 'ab', 'b', 'b/1', 'c', 'c/x', 'd'];
const USERS = ['u0', 'u1', 'u2'];
const ROLES = ['r0', 'r1', 'r2', 'r3'];
const b = (s: string): Buffer => Buffer.from(s);

/** A key range as etcd's API takes it: empty end = the key; "\0" = from the key on; else [key, end). */
function range(rng: Rng): { key: Buffer; rangeEnd: Buffer } {
  const key = rng.pick(KEYS);
  const k = rng.int(4);
  if (k === 0) return { key: b(key), rangeEnd: Buffer.alloc(0) };
  if (k === 1) return { key: b(key), rangeEnd: Buffer.from([0]) };
  const later = KEYS.filter((x) => x > key);
  return { key: b(key), rangeEnd: b(later.length > 0 ? rng.pick(later) : key + '\xff') };
}

function permission(rng: Rng): { permType: number; key: Buffer; rangeEnd: Buffer } {
  return { permType: rng.int(3), ...range(rng) };
}

type Call = [string, string, object];

/** A Txn's body: compares on values, then success and failure ops (nested Txns one level down from `depth` 0). */
function txnBody(rng: Rng, depth: number): object {
  const ops = (n: number): object[] => Array.from({ length: n }, () => requestOp(rng, depth));
  const compare = Array.from({ length: rng.int(3) }, () => ({ ...range(rng), target: 3 /* VALUE */, result: 0, value: b('v1') }));
  return { compare, success: ops(rng.int(3)), failure: ops(rng.int(3)) };
}

function requestOp(rng: Rng, depth: number): object {
  const k = rng.int(depth === 0 ? 4 : 3);
  if (k === 0) return { requestRange: range(rng) };
  if (k === 1) return { requestPut: { key: b(rng.pick(KEYS)), value: b(`v${rng.int(100)}`) } };
  if (k === 2) return { requestDeleteRange: { ...range(rng), prevKv: rng.chance(0.3) } };
  return { requestTxn: txnBody(rng, depth + 1) };
}

/** One generated request. */
function request(rng: Rng): Call {
  switch (rng.int(4)) {
    case 0: return ['KV', 'Range', range(rng)];
    case 1: return ['KV', 'Put', { key: b(rng.pick(KEYS)), value: b(`v${rng.int(100)}`), prevKv: rng.chance(0.3) }];
    case 2: return ['KV', 'DeleteRange', { ...range(rng), prevKv: rng.chance(0.3) }];
    default: return ['KV', 'Txn', txnBody(rng, 0)];
  }
}

/** What is compared of an answer. */
function outcome(r: { ok?: any; err?: { code: number; details: string } }): string {
  if (r.err) return `error ${r.err.code} ${r.err.details}`;
  const o = r.ok;
  const kvs = (o.kvs ?? []).map((kv: { key: Buffer; value: Buffer }) => `${kv.key}=${kv.value}`).join(',');
  return `ok rev=${o.header?.revision} count=${o.count ?? ''} kvs=[${kvs}] deleted=${o.deleted ?? ''} succeeded=${o.succeeded ?? ''}`;
}

/** Creates the generated users, roles and permissions on one server, enables auth, logs everybody in. */
async function setUp(h: ServerHandle, seed: number): Promise<Map<string, RawClient>> {
  const rng = new Rng(seed);
  const admin = new RawClient(h.clientUrl);
  open.push(admin);
  await admin.call('Auth', 'UserAdd', { name: 'root', password: 'rootpw' });
  await admin.call('Auth', 'RoleAdd', { name: 'root' });
  await admin.call('Auth', 'UserGrantRole', { user: 'root', role: 'root' });
  for (const r of ROLES) {
    await admin.call('Auth', 'RoleAdd', { name: r });
    for (let i = rng.int(4); i > 0; i--) await admin.call('Auth', 'RoleGrantPermission', { name: r, perm: permission(rng) });
  }
  for (const u of USERS) {
    await admin.call('Auth', 'UserAdd', { name: u, password: `${u}pw` });
    for (const r of ROLES) if (rng.chance(0.4)) await admin.call('Auth', 'UserGrantRole', { user: u, role: r });
  }
  await admin.call('Auth', 'AuthEnable', {});
  const clients = new Map<string, RawClient>([['nobody', admin]]);
  for (const [u, pw] of [['root', 'rootpw'], ...USERS.map((x) => [x, `${x}pw`])] as Array<[string, string]>) {
    const c = new RawClient(h.clientUrl);
    open.push(c);
    c.token = (await c.call('Auth', 'Authenticate', { name: u, password: pw })).token;
    clients.set(u, c);
  }
  return clients;
}

test(`generated users, roles, permissions and requests answer as etcd 3.4 (seed ${SEED})`, { skip, timeout: 240_000 }, async () => {
  const [a, b2] = await Promise.all([setUp(ours!, SEED), setUp(ref!, SEED)]);
  const rng = new Rng(SEED + 1);
  const who = ['nobody', 'root', ...USERS];
  let denied = 0;
  let allowed = 0;
  for (let i = 0; i < REQUESTS; i++) {
    let user = rng.pick(who);
    let call: Call = request(rng);
    if (i % 25 === 24) {
      // a permission change in the middle of the stream (simple tokens act at the current auth revision)
      user = 'root';
      const role = rng.pick(ROLES);
      call = rng.chance(0.5)
        ? ['Auth', 'RoleGrantPermission', { name: role, perm: permission(rng) }]
        : ['Auth', 'UserRevokeRole', { name: rng.pick(USERS), role }];
    }
    const [x, y] = await Promise.all([a.get(user)!.settle(...call), b2.get(user)!.settle(...call)]);
    const ox = outcome(x);
    assert.equal(ox, outcome(y), `request ${i} by ${user}: ${call[1]} ${JSON.stringify(call[2])}`);
    if (ox.includes('permission denied')) denied++;
    else if (ox.startsWith('ok')) allowed++;
  }
  // The generator must reach both outcomes, or the comparison says little.
  assert.ok(denied > 10 && allowed > 10, `denied ${denied}, allowed ${allowed}`);
});
