/**
 * Maintenance.Snapshot while a defragment swaps the store, differential against etcd 3.4: round after round an
 * `etcdctl defrag` runs while two loops of `etcdctl snapshot save` run back to back, under a writer. etcd serialises them on its backend
 * lock; etcetera's export must never read across the swap (StateMachine.withStoreEnv: the export waits for a running
 * swap, the swap waits for a running export). Every save succeeds, every file passes `etcdctl snapshot status` with
 * a revision no older than the one acknowledged before the save started, and a write made afterwards is still there
 * after a restart (a swap that reopened the replaced file would have written it to an unlinked one).
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startServer, hasEtcd, hasEtcdctl, NO_ETCD, type ServerKind } from '../helpers/servers';
import { etcdctl } from '../helpers/etcdctl';
import { RawClient } from '../helpers/grpc';
import { killAllChildren, trackTempDir } from '../helpers/procs';
import { etcdctlOffline } from './helpers';

after(killAllChildren);
const ROUNDS = 6;

async function scenario(kind: ServerKind): Promise<Record<string, unknown>> {
  const h = await startServer(kind);
  const c = new RawClient(h.clientUrl);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `etcetera-snapdefrag-${kind}-`));
  trackTempDir(dir);
  let stop = false;
  let lastAck = 0;
  let writer: Promise<void> = Promise.resolve();
  try {
    // A store worth defragmenting: ~8 MiB of history, most of it compacted away.
    // Written 16 at a time (each writer its own keys, so every key still ends with its last value): one put at a
    // time spent ~20 s per system on round trips alone.
    await Promise.all(Array.from({ length: 16 }, async (_, w) => {
      for (let i = w; i < 4000; i += 16) await c.put({ key: Buffer.from(`churn/${i % 400}`), value: Buffer.alloc(2048, i & 0xff) });
    }));
    const { header } = await c.range({ key: Buffer.from('churn/0') });
    await c.compact({ revision: header.revision, physical: true });
    let writerError = 'none';
    writer = (async () => {
      for (let i = 0; !stop; i++) lastAck = (await c.put({ key: Buffer.from(`w/${i % 50}`), value: Buffer.from(`v${i}`) })).header.revision;
    })().catch((e: unknown) => { writerError = (e as Error).message; stop = true; });
    const out: Record<string, unknown> = {};
    const saves: string[] = [];
    const defrags: string[] = [];
    let n = 0;
    for (let r = 0; r < ROUNDS; r++) {
      let defragging = true;
      const d = etcdctl(h.clientUrl, ['defrag', '--command-timeout=60s'], { timeoutMs: 90_000 })
        .catch((e: unknown) => ({ code: -1, stdout: '', stderr: (e as Error).message }))
        .finally(() => { defragging = false; });
      // Two savers back to back for as long as the defragment runs: some export overlaps its swap.
      await Promise.all([0, 1].map(async () => {
        do {
          const file = path.join(dir, `save-${n++}.db`);
          const before = lastAck;
          const sv = await etcdctl(h.clientUrl, ['snapshot', 'save', file]);
          if (sv.code !== 0) {
            saves.push(`save failed: ${sv.stderr.trim().split('\n').pop()!}`);
            continue;
          }
          const st = await etcdctlOffline(['snapshot', 'status', file, '-w', 'json']);
          const rev = st.code === 0 ? Number(JSON.parse(st.stdout).revision) : -1;
          if (rev < before) saves.push(`status ${st.code} revision ${rev} < ${before}: ${st.stderr.trim()}`);
          fs.rmSync(file, { force: true });
        } while (defragging);
      }));
      const dr = await d;
      defrags.push(dr.code === 0 ? 'defragmented' : dr.stderr.trim().split('\n').pop()!);
    }
    out.writerError = writerError;
    out.saves = saves;
    out.defrags = defrags;
    stop = true;
    await writer;
    const put = await c.put({ key: Buffer.from('after'), value: Buffer.from('x') });
    c.close();
    // Restarted, the member reads the file in place: a swap that reopened the replaced file would have lost these.
    await h.stop({ keepData: true });
    const h2 = await h.restart();
    const c2 = new RawClient(h2.clientUrl);
    try {
      const got = await c2.range({ key: Buffer.from('after') });
      out.after = got.kvs.length === 1 && Number(got.kvs[0].modRevision) === Number(put.header.revision) ? 'kept across a restart' : JSON.stringify(got.kvs);
    } finally {
      c2.close();
      await h2.stop();
    }
    out.log = kind === 'etcetera' ? h.output().split('\n').filter((l) => /closed|error/i.test(l)).slice(-5) : [];
    return out;
  } finally {
    stop = true;
    await writer.catch(() => undefined);
    c.close();
    await h.stop();
  }
}

test('snapshot save during defrag: every save succeeds, every file is consistent, the member keeps serving', { skip: !hasEtcd() || !hasEtcdctl() ? NO_ETCD : undefined, timeout: 300_000 }, async () => {
  const expected = { writerError: 'none', saves: [], defrags: Array(ROUNDS).fill('defragmented'), after: 'kept across a restart' };
  // One after the other: two defragmenting servers at once would make the machine, not the servers, the subject.
  for (const kind of ['etcd', 'etcetera'] as const) {
    const { log, ...o } = await scenario(kind);
    assert.deepEqual(o, expected, `${kind}: ${JSON.stringify(log)}`);
  }
});
