/**
 * Differential Maintenance.HashKV test: the same seeded history (puts with and without leases, deletes, txns, a
 * lease revoke, compactions, an emptied keyspace) is applied to a reference etcd 3.4 and to the system under test
 * (env SUT, default etcetera), and HashKV is compared at many revisions: hash, compact_revision and header revision,
 * or the error (gRPC code + message) for compacted and future revisions. Then `etcdctl endpoint hashkv -w json`
 * runs against both and must print the same hashes. Expected values only ever come from etcd in the same run.
 *
 *   HASHKV_SEED=n   replay a run (the seed is printed at start); HASHKV_SEED=random explores
 *   SUT=etcd        run etcd against etcd (proves the harness)
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { startEtcd, startSut, sutKind, sutUnavailable, hasEtcd, hasEtcdctl, NO_ETCD, NO_ETCDCTL, type ServerHandle } from '../helpers/servers';
import { RawClient, type RpcError } from '../helpers/grpc';
import { etcdctl } from '../helpers/etcdctl';
import { killAllChildren } from '../helpers/procs';
import { Rng } from '../helpers/rng';
import { LEASES, randDelete, randPut, randTxn } from '../helpers/history';

after(killAllChildren);

const B = (s: string): Buffer => Buffer.from(s, 'latin1');

type Settled = { ok?: any; err?: RpcError };

/** What must be equal between etcd and the SUT for one HashKV call. */
function hashView(s: Settled): object {
  if (s.err) return { err: s.err };
  return { hash: s.ok.hash, compactRevision: s.ok.compactRevision, revision: s.ok.header.revision };
}

test(`differential HashKV: etcd 3.4 vs ${sutKind()}`, { skip: !hasEtcd() ? NO_ETCD : sutUnavailable(), timeout: 120_000 }, async (t) => {
  const seed = process.env.HASHKV_SEED === 'random' ? (Date.now() % 1_000_000) : Number(process.env.HASHKV_SEED ?? 7);
  t.diagnostic(`seed ${seed} (HASHKV_SEED=${seed} replays)`);
  const r = new Rng(seed);
  let ref: ServerHandle | undefined;
  let sut: ServerHandle | undefined;
  let a: RawClient | undefined;
  let b: RawClient | undefined;
  try {
    [ref, sut] = await Promise.all([startEtcd({ name: 'ref' }), startSut({ name: 'sut' })]);
    const ca = new RawClient(ref.clientUrl);
    const cb = new RawClient(sut.clientUrl);
    a = ca;
    b = cb;

    /** Runs one request on both and checks they land on the same revision, so the histories stay identical. */
    let opNo = 0;
    const both = async (service: string, method: string, req: object): Promise<Settled> => {
      opNo++;
      const [x, y] = await Promise.all([ca.settle(service, method, req), cb.settle(service, method, req)]);
      assert.deepEqual(y.err ?? null, x.err ?? null, `op #${opNo} ${method}: error differs`);
      assert.equal(y.ok?.header?.revision, x.ok?.header?.revision, `op #${opNo} ${method}: histories diverged`);
      return x;
    };
    let checks = 0;
    const compareHash = async (revision: number, why: string): Promise<Settled> => {
      const [x, y] = await Promise.all([
        ca.settle('Maintenance', 'HashKV', { revision }),
        cb.settle('Maintenance', 'HashKV', { revision }),
      ]);
      assert.deepEqual(hashView(y), hashView(x), `HashKV(${revision}) ${why}`);
      checks++;
      return x;
    };
    const current = async (): Promise<number> => (await ca.status()).header.revision as number;
    const randomOps = async (n: number, leases: number[]): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const x = r.int(10);
        if (x < 5) await both('KV', 'Put', randPut(r, leases));
        else if (x < 7) await both('KV', 'DeleteRange', randDelete(r));
        else await both('KV', 'Txn', randTxn(r, leases));
      }
    };
    const pastRevisions = (lo: number, hi: number, n: number): number[] =>
      [lo, hi, ...Array.from({ length: n }, () => lo + r.int(hi - lo + 1))];

    // A fresh store: only the bucket name is hashed, and etcd reports compact_revision -1.
    const fresh = await compareHash(0, 'fresh store');
    assert.equal(fresh.ok?.compactRevision, -1, 'etcd reports -1 before any compaction');

    for (const id of LEASES) await both('Lease', 'LeaseGrant', { ID: id, TTL: 3600 });
    await both('KV', 'Put', { key: B('big'), value: Buffer.alloc(100 * 1024, 0x62), lease: LEASES[1] }); // > one CRC chunk
    await randomOps(60, LEASES);
    let rev = await current();
    await compareHash(0, 'after 60 ops');
    for (const at of pastRevisions(1, rev, 6)) await compareHash(at, `past revision (current ${rev})`);
    await compareHash(-3, 'negative revision');
    await compareHash(rev + 1, 'future revision');
    const future = await compareHash(rev + 100, 'far future revision');
    assert.equal(future.err?.details, 'etcdserver: mvcc: required revision is a future revision');

    // Compaction keeps each key's live revision at C; which of those etcd hashes depends on later writes.
    const c1 = Math.floor(rev / 2);
    await both('KV', 'Compact', { revision: c1, physical: true });
    await compareHash(0, `after compact ${c1}`);
    const compacted = await compareHash(c1, 'at the compact revision');
    assert.equal(compacted.err?.details, 'etcdserver: mvcc: required revision has been compacted');
    await compareHash(1, 'below the compact revision');
    for (const at of pastRevisions(c1 + 1, rev, 5)) await compareHash(at, `past revision after compact ${c1}`);

    await randomOps(30, LEASES);
    await both('Lease', 'LeaseRevoke', { ID: LEASES[0] });
    await randomOps(10, [LEASES[1]!]);
    rev = await current();
    await compareHash(0, 'after revoke');
    for (const at of pastRevisions(c1 + 1, rev, 6)) await compareHash(at, 'past revision after revoke');

    // An empty keyspace empties etcd's keep set, and then every record the compaction kept is hashed.
    const beforeWipe = rev;
    await both('KV', 'DeleteRange', { key: B('\x00'), rangeEnd: B('\x00') });
    rev = await current();
    await compareHash(0, 'empty keyspace');
    await compareHash(beforeWipe, 'just before the wipe');

    // Compacting at the current revision: the requested revision equals the compact revision through rev 0.
    await both('KV', 'Put', { key: B('after-wipe'), value: B('1') });
    rev = await current();
    await both('KV', 'Compact', { revision: rev, physical: true });
    await compareHash(0, 'compacted at the current revision');
    await compareHash(rev, 'at that compact revision');
    const lastCompact = rev;
    await both('KV', 'Put', { key: B('after-wipe'), value: B('2') });
    await compareHash(0, 'one write after compacting at current');
    await both('KV', 'Put', { key: B('c'), value: B('3') });
    rev = await current();

    t.diagnostic(`${opNo} writes, ${checks} HashKV comparisons`);

    await t.test('etcdctl endpoint hashkv -w json', { skip: hasEtcdctl() ? undefined : NO_ETCDCTL }, async () => {
      for (const extra of [[], [`--rev=${rev - 1}`]]) {
        const [x, y] = await Promise.all([
          etcdctl(ref!.clientUrl, ['endpoint', 'hashkv', '-w', 'json', ...extra]),
          etcdctl(sut!.clientUrl, ['endpoint', 'hashkv', '-w', 'json', ...extra]),
        ]);
        assert.equal(x.code, 0, `etcdctl vs etcd: ${x.stderr}`);
        assert.equal(y.code, 0, `etcdctl vs ${sutKind()}: ${y.stderr}`);
        const px = JSON.parse(x.stdout) as Array<{ Endpoint: string; HashKV: { hash: number; compact_revision: number; header: { revision: number } } }>;
        const py = JSON.parse(y.stdout) as typeof px;
        assert.equal(py.length, 1);
        assert.equal(py[0]!.Endpoint, sut!.clientUrl);
        assert.equal(typeof py[0]!.HashKV.hash, 'number');
        assert.equal(py[0]!.HashKV.hash, px[0]!.HashKV.hash, `hash ${extra.join(' ')}`);
        assert.equal(py[0]!.HashKV.compact_revision, px[0]!.HashKV.compact_revision);
        assert.equal(py[0]!.HashKV.header.revision, px[0]!.HashKV.header.revision);
      }
      const [x, y] = await Promise.all([
        etcdctl(ref!.clientUrl, ['endpoint', 'hashkv', '-w', 'json', `--rev=${lastCompact}`]),
        etcdctl(sut!.clientUrl, ['endpoint', 'hashkv', '-w', 'json', `--rev=${lastCompact}`]),
      ]);
      const lastLine = (s: string): string => s.trim().split('\n').pop() ?? '';
      assert.notEqual(x.code, 0, 'etcd refuses a compacted revision');
      assert.equal(y.code, x.code);
      assert.equal(lastLine(y.stderr), lastLine(x.stderr));
      assert.match(lastLine(y.stderr), /required revision has been compacted/);
    });
  } finally {
    a?.close();
    b?.close();
    await Promise.all([ref?.stop(), sut?.stop()]);
  }
});
