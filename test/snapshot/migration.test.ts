/**
 * Backups that move between etcd 3.4 and etcetera (issue 10), differential against the reference etcd in the same
 * run. One seeded history (puts, deletes, txns, leases, a revoke, two compactions, a 100 KiB value) is written to
 * an etcd and an etcetera in lock-step; then
 *   - `etcdctl snapshot save` from both; `snapshot status` of each file: etcetera-util prints what etcdctl prints,
 *     and etcetera's file has etcd's revision and key count;
 *   - etcetera → etcd: `etcdctl snapshot restore` of etcetera's file, etcd started on it, serves every revision
 *     as the etcetera source does (keyspace at each revision, HashKV, leases); writes continue;
 *   - etcd → etcetera: `etcetera-util snapshot restore` of etcd's file, etcetera started on it: equal again,
 *     and still after `etcetera-util defrag --data-dir` of the stopped member;
 *   - damaged files: a flipped byte, a cut trailer, a truncated file, both meta pages damaged, an existing
 *     data dir: etcetera-util answers with etcdctl's error line and exit code.
 *
 *   SNAPSHOT_SEED=n replays a run (the seed is printed); SNAPSHOT_OPS=n scales the history (default 60).
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startEtcd, startEtcetera, hasEtcd, hasEtcdctl, NO_ETCD, NO_ETCDCTL, type ServerHandle } from '../helpers/servers';
import { RawClient } from '../helpers/grpc';
import { etcdctl } from '../helpers/etcdctl';
import { freePort } from '../helpers/ports';
import { killAllChildren, trackTempDir } from '../helpers/procs';
import { Rng } from '../helpers/rng';
import { LEASES, randomOps } from '../helpers/history';
import { createHash } from 'node:crypto';
import { assertSameStore, etcdctlOffline, etceteraUtil, lastLine, snapshotMessages } from './helpers';

after(killAllChildren);

const B = (s: string): Buffer => Buffer.from(s, 'latin1');

test('snapshot migration between etcd 3.4 and etcetera', { skip: !hasEtcd() ? NO_ETCD : !hasEtcdctl() ? NO_ETCDCTL : undefined, timeout: 300_000 }, async (t) => {
  const seed = process.env.SNAPSHOT_SEED === 'random' ? Date.now() % 1_000_000 : Number(process.env.SNAPSHOT_SEED ?? 11);
  const ops = Number(process.env.SNAPSHOT_OPS ?? 60);
  t.diagnostic(`seed ${seed} (SNAPSHOT_SEED=${seed} replays), ${ops} ops per phase`);
  const r = new Rng(seed);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'etcetera-snapshot-'));
  trackTempDir(tmp);
  const servers: ServerHandle[] = [];
  const clients: RawClient[] = [];
  const client = (h: ServerHandle): RawClient => {
    const c = new RawClient(h.clientUrl);
    clients.push(c);
    return c;
  };
  try {
    const [etcd, etc] = await Promise.all([startEtcd({ name: 'src-etcd' }), startEtcetera({ name: 'src-etcetera' })]);
    servers.push(etcd, etc);
    const ce = client(etcd);
    const ct = client(etc);
    let opNo = 0;
    const both = async (service: string, method: string, req: object): Promise<any> => {
      opNo++;
      const [x, y] = await Promise.all([ce.settle(service, method, req), ct.settle(service, method, req)]);
      assert.deepEqual(y.err ?? null, x.err ?? null, `op #${opNo} ${method}: error differs`);
      assert.equal(String(y.ok?.header?.revision), String(x.ok?.header?.revision), `op #${opNo} ${method}: histories diverged`);
      return x.ok;
    };
    const current = async (): Promise<number> => Number((await ce.status()).header.revision);

    for (const id of LEASES) await both('Lease', 'LeaseGrant', { ID: id, TTL: 3600 });
    await both('KV', 'Put', { key: B('big'), value: Buffer.alloc(100 * 1024, 0x62), lease: LEASES[1] }); // overflow pages
    await randomOps(r, ops, LEASES, both);
    const c1 = Math.floor((await current()) / 2);
    await both('KV', 'Compact', { revision: c1, physical: true });
    await randomOps(r, ops / 2, LEASES, both);
    await both('Lease', 'LeaseRevoke', { ID: LEASES[0] });
    await randomOps(r, ops / 4, [LEASES[1]!], both);
    const c2 = (await current()) - 3;
    await both('KV', 'Compact', { revision: c2, physical: true });
    await randomOps(r, ops / 4, [LEASES[1]!], both);
    const rev = await current();
    t.diagnostic(`${opNo} requests, revision ${rev}, compactions at ${c1} and ${c2}`);

    const fileE = path.join(tmp, 'etcd.db');
    const fileT = path.join(tmp, 'etcetera.db');
    for (const [h, f] of [[etcd, fileE], [etc, fileT]] as const) {
      const s = await etcdctl(h.clientUrl, ['snapshot', 'save', f]);
      assert.equal(s.code, 0, `etcdctl snapshot save from ${h.kind}: ${s.stderr}`);
      assert.match(s.stdout, /Snapshot saved at/);
      assert.equal(fs.statSync(f).size % 512, 32, `${h.kind}: a snapshot ends with a 32-byte sha256 after whole pages`);
    }

    await t.test('Maintenance.Snapshot stream: 32 KiB chunks, remaining_bytes, then the sha256, as etcd sends them', async () => {
      for (const h of [etcd, etc]) {
        const msgs = await snapshotMessages(h.clientUrl);
        const data = msgs.slice(0, -1);
        const total = data.reduce((n, m) => n + m.blob.length, 0);
        assert.ok(total > 0 && total % 4096 === 0, `${h.kind}: whole pages (${total} bytes)`);
        let sent = 0;
        data.forEach((m, i) => {
          sent += m.blob.length;
          assert.equal(m.blob.length, i < data.length - 1 ? 32 * 1024 : total - 32 * 1024 * (data.length - 1), `${h.kind}: chunk ${i} size`);
          assert.equal(m.remainingBytes, total - sent, `${h.kind}: remaining_bytes after chunk ${i}`);
        });
        const last = msgs[msgs.length - 1]!;
        assert.equal(last.remainingBytes, 0);
        assert.deepEqual(last.blob, createHash('sha256').update(Buffer.concat(data.map((m) => m.blob))).digest(), `${h.kind}: sha256 of the database`);
        assert.equal(last.hasHeader, false, `${h.kind}: etcd 3.4 sends no header`);
      }
    });

    await t.test('snapshot status: etcetera-util prints what etcdctl prints; etcetera file has etcd\'s revision and key count', async () => {
      const statuses: any[] = [];
      for (const f of [fileE, fileT]) {
        for (const w of f === fileT ? ['json', 'table', 'simple', 'fields'] : ['json']) {
          const [x, y] = await Promise.all([etcdctlOffline(['snapshot', 'status', f, '-w', w]), etceteraUtil(['snapshot', 'status', f, '-w', w])]);
          assert.equal(x.code, 0, x.stderr);
          assert.equal(y.code, 0, y.stderr);
          assert.equal(y.stdout, x.stdout, `status -w ${w} of ${path.basename(f)}`);
          if (w === 'json') statuses.push(JSON.parse(x.stdout));
        }
      }
      const [e, s] = statuses;
      t.diagnostic(`etcd file ${JSON.stringify(e)}; etcetera file ${JSON.stringify(s)}`);
      assert.equal(s.revision, e.revision);
      assert.equal(s.revision, rev);
      assert.equal(s.totalKey, e.totalKey, 'same entries in every bucket (one member, no alarm, auth unused)');
    });

    await t.test('etcetera → etcd: etcdctl snapshot restore of etcetera\'s file, etcd serves the same store', async () => {
      const peerPort = await freePort();
      const dir = path.join(tmp, 'restored-etcd');
      const res = await etcdctlOffline(['snapshot', 'restore', fileT, '--name', 'm1', '--data-dir', dir,
        '--initial-cluster', `m1=http://127.0.0.1:${peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`]);
      assert.equal(res.code, 0, res.stderr);
      const restored = await startEtcd({ name: 'm1', dataDir: dir, peerPort });
      servers.push(restored);
      const cr = client(restored);
      const n = await assertSameStore(ct, cr, 1, rev, 'etcd restored from etcetera');
      const put = await cr.put({ key: B('after-restore'), value: B('1') });
      assert.equal(Number(put.header.revision), rev + 1, 'writes continue after the restored revision');
      t.diagnostic(`${n} revisions compared`);
    });

    await t.test('etcd → etcetera: etcetera-util snapshot restore of etcd\'s file, etcetera serves the same store', async () => {
      const peerPort = await freePort();
      const dir = path.join(tmp, 'restored-etcetera');
      const res = await etceteraUtil(['snapshot', 'restore', fileE, '--name', 'm1', '--data-dir', dir,
        '--initial-cluster', `m1=http://127.0.0.1:${peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`]);
      assert.equal(res.code, 0, res.stderr);
      const restored = await startEtcetera({ name: 'm1', dataDir: dir, peerPort });
      servers.push(restored);
      const cr = client(restored);
      const n = await assertSameStore(ce, cr, 1, rev, 'etcetera restored from etcd');
      t.diagnostic(`${n} revisions compared`);

      // Offline defrag of the stopped member keeps the store (etcetera-util defrag --data-dir).
      await restored.stop({ keepData: true });
      const d = await etceteraUtil(['defrag', '--data-dir', dir]);
      assert.equal(d.code, 0, d.stderr);
      const again = await restored.restart();
      servers.push(again);
      const ca = client(again);
      await assertSameStore(ce, ca, rev - 5, rev, 'etcetera restored from etcd, after an offline defrag');
      const put = await ca.put({ key: B('after-restore'), value: B('1') });
      assert.equal(Number(put.header.revision), rev + 1, 'writes continue after the restored revision');
    });

    await t.test('damaged snapshots are refused with etcdctl\'s errors', async () => {
      const variants: Array<[string, (b: Buffer) => Buffer]> = [
        ['a flipped byte in a data page', (b) => { const c = Buffer.from(b); c[2 * 4096 + 100] ^= 0xff; return c; }],
        ['the sha256 trailer cut off', (b) => b.subarray(0, b.length - 32)],
        ['truncated to 10000 bytes', (b) => b.subarray(0, 10_000)],
        ['a flipped trailer byte', (b) => { const c = Buffer.from(b); c[c.length - 1] ^= 0x01; return c; }],
      ];
      let k = 0;
      for (const src of [fileE, fileT]) {
        for (const [what, damage] of src === fileE ? variants : variants.slice(0, 2)) {
          const f = path.join(tmp, `damaged-${k++}.db`);
          fs.writeFileSync(f, damage(fs.readFileSync(src)));
          const [x, y] = await Promise.all([
            etcdctlOffline(['snapshot', 'restore', f, '--data-dir', path.join(tmp, `x-etcd-${k}`)]),
            etceteraUtil(['snapshot', 'restore', f, '--data-dir', path.join(tmp, `x-util-${k}`)]),
          ]);
          assert.notEqual(x.code, 0, `etcdctl accepted ${what}`);
          assert.equal(y.code, x.code, `${what} (${path.basename(src)}): exit code; stderr ${y.stderr}`);
          assert.equal(lastLine(y.stderr), lastLine(x.stderr), `${what} (${path.basename(src)})`);
          assert.ok(!fs.existsSync(path.join(tmp, `x-util-${k}`, 'member', 'cluster.json')), 'nothing restored');
        }
      }
      // Both meta pages damaged: status fails as bbolt does.
      const f = path.join(tmp, 'bad-meta.db');
      const c = fs.readFileSync(fileT);
      c[40] ^= 0xff;
      c[4096 + 40] ^= 0xff;
      fs.writeFileSync(f, c);
      const [x, y] = await Promise.all([etcdctlOffline(['snapshot', 'status', f]), etceteraUtil(['snapshot', 'status', f])]);
      assert.equal(lastLine(x.stderr), 'Error: checksum error');
      assert.equal(lastLine(y.stderr), lastLine(x.stderr));
      assert.equal(y.code, x.code);
      // --skip-hash-check restores a file without its trailer (a db copied out of a data dir).
      const bare = path.join(tmp, 'bare.db');
      fs.writeFileSync(bare, fs.readFileSync(fileT).subarray(0, fs.statSync(fileT).size - 32));
      const ok = await etceteraUtil(['snapshot', 'restore', bare, '--skip-hash-check', '--data-dir', path.join(tmp, 'bare-restored')]);
      assert.equal(ok.code, 0, ok.stderr);
      // An existing data dir is refused, even an empty one (etcd 3.4).
      const exists = path.join(tmp, 'exists');
      fs.mkdirSync(exists);
      const [ex, ey] = await Promise.all([
        etcdctlOffline(['snapshot', 'restore', fileE, '--data-dir', exists]),
        etceteraUtil(['snapshot', 'restore', fileE, '--data-dir', exists]),
      ]);
      assert.equal(lastLine(ey.stderr), lastLine(ex.stderr));
      assert.equal(ey.code, ex.code);
    });
  } finally {
    for (const c of clients) c.close();
    await Promise.all(servers.map((s) => s.stop()));
  }
});
