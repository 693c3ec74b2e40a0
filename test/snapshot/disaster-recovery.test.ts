/**
 * Disaster recovery as etcd's recovery guide does it, on etcetera (issue 10): a 3-member cluster under a writer that
 * logs every acknowledged put with its revision; `etcdctl snapshot save` from one member while the writer runs;
 * every member stopped; three new members restored from the same file with `etcetera-util snapshot restore` (new
 * names, peer URLs and token); the new cluster started. Every put acknowledged before the snapshot started is
 * served with its revision; writes continue above the snapshot's revision.
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startEtcetera, hasEtcdctl, NO_ETCDCTL, type ServerHandle } from '../helpers/servers';
import { RawClient, waitUntilServing } from '../helpers/grpc';
import { etcdctl } from '../helpers/etcdctl';
import { freePort } from '../helpers/ports';
import { killAllChildren, trackTempDir } from '../helpers/procs';
import { etceteraUtil } from './helpers';

after(killAllChildren);

const B = (s: string): Buffer => Buffer.from(s, 'latin1');

test('disaster recovery: snapshot of a 3-member cluster under writes, restore 3 members, every acknowledged put served', { skip: hasEtcdctl() ? undefined : NO_ETCDCTL, timeout: 300_000 }, async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'etcetera-dr-'));
  trackTempDir(tmp);
  const servers: ServerHandle[] = [];
  const clients: RawClient[] = [];
  try {
    const cluster = await startEtcetera({ members: 3 });
    servers.push(cluster);
    const members = cluster.members!;
    const writer = new RawClient(members[0]!.clientUrl);
    clients.push(writer);
    const acked: Array<{ key: string; revision: number; at: number }> = [];
    let stop = false;
    let failures = 0;
    const writing = (async () => {
      for (let i = 0; !stop; i++) {
        const key = `dr/${String(i).padStart(6, '0')}`;
        try {
          const res = await writer.put({ key: B(key), value: B(`v${i}`) });
          acked.push({ key, revision: Number(res.header.revision), at: Date.now() });
        } catch {
          failures++;
        }
      }
    })();
    while (acked.length < 40) await new Promise((r) => setTimeout(r, 20));
    const file = path.join(tmp, 'backup.db');
    const snapshotStarted = Date.now();
    const save = await etcdctl(members[1]!.clientUrl, ['snapshot', 'save', file]);
    const snapshotEnded = Date.now();
    assert.equal(save.code, 0, save.stderr);
    while (acked.length < acked.filter((a) => a.at <= snapshotEnded).length + 20) await new Promise((r) => setTimeout(r, 20));
    stop = true;
    await writing;
    const before = acked.filter((a) => a.at < snapshotStarted);
    const during = acked.filter((a) => a.at >= snapshotStarted && a.at <= snapshotEnded).length;
    t.diagnostic(`${acked.length} puts acknowledged (${failures} failed), ${before.length} before the snapshot started, ${during} while it was saved (${snapshotEnded - snapshotStarted} ms)`);
    await cluster.stop();

    // Restore three new members from the same file.
    const names = ['r1', 'r2', 'r3'];
    const peerPorts = [await freePort(), await freePort(), await freePort()];
    const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${peerPorts[i]}`).join(',');
    const dirs = names.map((n) => path.join(tmp, n));
    for (let i = 0; i < 3; i++) {
      const r = await etceteraUtil(['snapshot', 'restore', file, '--name', names[i]!, '--data-dir', dirs[i]!,
        '--initial-cluster', initialCluster, '--initial-cluster-token', 'etcetera-dr', '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPorts[i]}`]);
      assert.equal(r.code, 0, r.stderr);
    }
    const restored = await Promise.all(names.map((n, i) => startEtcetera({ name: n, dataDir: dirs[i], peerPort: peerPorts[i], noWait: true })));
    servers.push(...restored);
    await Promise.all(restored.map((h) => waitUntilServing(h.clientUrl, 60_000, () => (h.isRunning() ? undefined : `exited: ${h.output().slice(-2000)}`))));

    const c = new RawClient(restored[2]!.clientUrl);
    clients.push(c);
    const ml = await c.memberList();
    assert.deepEqual(ml.members.map((m: any) => m.name).sort(), names, 'the new membership');
    let missing = 0;
    for (const a of before) {
      const r = await c.range({ key: B(a.key) });
      const kv = r.kvs[0];
      if (kv === undefined || Number(kv.modRevision) !== a.revision) missing++;
    }
    assert.equal(missing, 0, `${missing} of ${before.length} puts acknowledged before the snapshot are missing or at another revision`);
    const snapRev = Number((await c.status()).header.revision);
    const c0 = new RawClient(restored[0]!.clientUrl);
    clients.push(c0);
    const put = await c0.put({ key: B('after-recovery'), value: B('1') });
    assert.equal(Number(put.header.revision), snapRev + 1, 'writes continue on the restored cluster');
    t.diagnostic(`restored cluster at revision ${snapRev}; every one of ${before.length} earlier puts served with its revision`);
  } finally {
    for (const c of clients) c.close();
    await Promise.all(servers.map((s) => s.stop()));
  }
});
