/**
 * Log compaction in-process: one member started with EtcdServer.start (no network), --snapshot-count 50,
 * 4 KiB WAL segments and 20 catch-up entries. After a few hundred writes the in-memory log's first index moved,
 * the WAL released segments, and a restart on the same data dir (WAL after the marker + LMDB) serves every key.
 * Also unit-checks the WAL control record (marker + release with --max-wals retention) on a bare WalClient.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseServerConfig } from '../../src/cli/flags';
import { createLogger } from '../../src/log';
import { EtcdServer } from '../../src/server/etcd-server';
import { EntryKind } from '../../src/wire/entry';
import { pb } from '../../src/wire/codec';
import { WalClient } from '../../src/wal/client';
import { effectiveReleaseIndex } from '../../src/wal/worker';
import { segmentFileName } from '../../src/wal/segment';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'etcetera-snap-'));
}

async function startServer(dataDir: string, extra: string[] = []): Promise<EtcdServer> {
  const config = parseServerConfig(
    [
      '--name=s1',
      `--data-dir=${dataDir}`,
      '--snapshot-count=50',
      '--max-wals=1',
      '--listen-client-urls=http://127.0.0.1:0',
      '--advertise-client-urls=http://127.0.0.1:0',
      '--listen-peer-urls=http://127.0.0.1:0',
      '--initial-advertise-peer-urls=http://127.0.0.1:12380',
      '--initial-cluster=s1=http://127.0.0.1:12380',
      ...extra,
    ],
    {},
  );
  const server = await EtcdServer.start(config, createLogger('warn'));
  const deadline = Date.now() + 10_000;
  while (!server.leader().isLeader) {
    if (Date.now() > deadline) throw new Error('no leader');
    await sleep(20);
  }
  return server;
}

function put(server: EtcdServer, key: string, value: string): Promise<Uint8Array> {
  return server.propose(EntryKind.Put, pb.PutRequest.encode({ key: Buffer.from(key), value: Buffer.from(value) }).finish());
}

function storageOf(server: EtcdServer): { firstIndex(): number; lastIndex(): number; snapshot(): { metadata: { index: number } } } {
  return (server as unknown as { storage: never }).storage;
}

function walFiles(dataDir: string): string[] {
  return fs.readdirSync(path.join(dataDir, 'member', 'wal')).filter((f) => f.endsWith('.wal')).sort();
}

test('effectiveReleaseIndex keeps --max-wals files and only whole segments below the index', () => {
  const files = [segmentFileName(0, 0), segmentFileName(1, 101), segmentFileName(2, 201), segmentFileName(3, 301)];
  assert.equal(effectiveReleaseIndex(files, 250, 1), 200); // segments 0 and 1 are wholly <= 250; 2 holds 250
  assert.equal(effectiveReleaseIndex(files, 250, 3), 100); // keep 3 files: drop only segment 0
  assert.equal(effectiveReleaseIndex(files, 250, 4), -1);
  assert.equal(effectiveReleaseIndex(files, 250, 0), -1); // 0 = unlimited retention
  assert.equal(effectiveReleaseIndex(files, 50, 1), -1); // nothing wholly below 50
  assert.equal(effectiveReleaseIndex(files, 100, 1), 100);
});

test('WAL control record: marker survives replay, released segments are deleted', async () => {
  const dir = path.join(tmpDir(), 'wal');
  try {
    const { client } = await WalClient.open({ dir, metadata: { clusterId: 1, memberId: 2 }, segmentSizeBytes: 4096 });
    const data = new Uint8Array(200);
    let seq = 0;
    for (let i = 1; i <= 300; i++) {
      seq = client.append({ term: 1, vote: 0, commit: i }, [{ index: i, term: 1, type: 0, data }]);
      if (i % 10 === 0) await client.waitDurable(seq); // a batch is never split across segments
    }
    await client.waitDurable(seq);
    const before = fs.readdirSync(dir).filter((f) => f.endsWith('.wal')).length;
    assert.ok(before > 5, `expected several segments, got ${before}`);
    seq = client.control({ snapIndex: 250, snapTerm: 1, releaseIndex: 250, maxWals: 1 });
    seq = client.append(null, [{ index: 301, term: 1, type: 0, data }]);
    await client.waitDurable(seq);
    await client.close();
    const after = fs.readdirSync(dir).filter((f) => f.endsWith('.wal')).length;
    assert.ok(after < before, `segments ${before} -> ${after}`);
    const r = await WalClient.open({ dir });
    assert.deepEqual(r.replay.snapshot, { index: 250, term: 1 });
    assert.equal(r.replay.entries[0]!.index, 251);
    assert.equal(r.replay.entries[r.replay.entries.length - 1]!.index, 301);
    await r.client.close();
  } finally {
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
  }
});

test('compaction every --snapshot-count entries: first index moves, WAL shrinks, restart serves all data', async () => {
  const dataDir = tmpDir();
  const prevSeg = process.env.ETCETERA_WAL_SEGMENT_BYTES;
  const prevCatch = process.env.ETCETERA_SNAPSHOT_CATCHUP_ENTRIES;
  process.env.ETCETERA_WAL_SEGMENT_BYTES = '4096';
  process.env.ETCETERA_SNAPSHOT_CATCHUP_ENTRIES = '20';
  let server: EtcdServer | null = null;
  try {
    server = await startServer(dataDir);
    const value = 'v'.repeat(300);
    let maxFiles = 0;
    for (let i = 0; i < 400; i++) {
      await put(server, `key-${String(i).padStart(4, '0')}`, `${value}-${i}`);
      if (i % 20 === 0) maxFiles = Math.max(maxFiles, walFiles(dataDir).length);
    }
    // A due snapshot waits for the LMDB fsync (~100 ms); give it time.
    const deadline = Date.now() + 5000;
    while (storageOf(server).snapshot().metadata.index < 350 && Date.now() < deadline) await sleep(50);
    const st = storageOf(server);
    assert.ok(st.snapshot().metadata.index >= 350, `snapshot index ${st.snapshot().metadata.index}`);
    assert.ok(st.firstIndex() > 300, `first index ${st.firstIndex()} did not move`);
    assert.ok(st.firstIndex() >= st.snapshot().metadata.index - 20 + 1 - 1, 'catch-up entries kept');
    assert.ok(server.snapshots.stats.snapshots >= 3, `snapshots taken: ${server.snapshots.stats.snapshots}`);
    assert.ok(server.snapshots.stats.releasedFiles > 0, 'no WAL segment released');
    const files = walFiles(dataDir);
    const created = parseInt(files[files.length - 1]!.split('-')[0]!, 16) + 1;
    assert.ok(files.length < created / 2, `WAL holds ${files.length} of ${created} segments ever created (max seen ${maxFiles})`);
    assert.ok(!files.includes('0000000000000000-0000000000000000.wal'), 'first segment still there');
    const rev = server.maintenance.status().header.revision;
    await server.stop();
    server = null;

    server = await startServer(dataDir);
    assert.ok(storageOf(server).firstIndex() > 300, 'restart: log starts after the WAL snapshot marker');
    const r = server.reader.range({ key: Buffer.from([0]), rangeEnd: Buffer.from([0]) } as never);
    assert.equal(r.kvs.length, 400);
    assert.equal(Buffer.from(r.kvs[399]!.value).toString(), `${value}-399`);
    assert.equal(server.maintenance.status().header.revision, rev);
    await put(server, 'after-restart', 'x');
    assert.equal(server.reader.range({ key: Buffer.from('after-restart') } as never).kvs.length, 1);
  } finally {
    await server?.stop();
    if (prevSeg === undefined) delete process.env.ETCETERA_WAL_SEGMENT_BYTES;
    else process.env.ETCETERA_WAL_SEGMENT_BYTES = prevSeg;
    if (prevCatch === undefined) delete process.env.ETCETERA_SNAPSHOT_CATCHUP_ENTRIES;
    else process.env.ETCETERA_SNAPSHOT_CATCHUP_ENTRIES = prevCatch;
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('restart finishes an install interrupted after the WAL marker and before the store swap', async () => {
  const root = tmpDir();
  const dirA = path.join(root, 'a');
  const dirB = path.join(root, 'b');
  let server: EtcdServer | null = null;
  try {
    server = await startServer(dirA);
    for (let i = 0; i < 10; i++) await put(server, `k${i}`, `old-${i}`);
    await server.stop();
    server = null;
    fs.cpSync(dirA, dirB, { recursive: true }); // B: the follower's state before the snapshot
    server = await startServer(dirA);
    for (let i = 0; i < 10; i++) await put(server, `k${i}`, `new-${i}`);
    for (let i = 10; i < 60; i++) await put(server, `k${i}`, `new-${i}`);
    const sm = (server as unknown as { sm: { copyTo(f: string): Promise<{ index: number; term: number }> } }).sm;
    const copyDir = path.join(root, 'copy');
    fs.mkdirSync(copyDir);
    const copy = await sm.copyTo(path.join(copyDir, 'db'));
    const want = server.reader.range({ key: Buffer.from([0]), rangeEnd: Buffer.from([0]) } as never);
    await server.stop();
    server = null;

    // B crashed right after the marker became durable: marker in its WAL, the received file kept, store old.
    fs.mkdirSync(path.join(dirB, 'member', 'snap.tmp'), { recursive: true });
    fs.renameSync(path.join(copyDir, 'db'), path.join(dirB, 'member', 'snap.tmp', `recv-${copy.index}.db`));
    const { client } = await WalClient.open({ dir: path.join(dirB, 'member', 'wal') });
    await client.waitDurable(client.control({ snapIndex: copy.index, snapTerm: copy.term, releaseIndex: 0, maxWals: 0 }));
    await client.close();

    server = await startServer(dirB);
    const deadline = Date.now() + 10_000;
    while (server.maintenance.status().raftAppliedIndex < copy.index && Date.now() < deadline) await sleep(50);
    await put(server, 'after', 'x');
    const got = server.reader.range({ key: Buffer.from([0]), rangeEnd: Buffer.from([0]) } as never);
    assert.equal(got.kvs.length, want.kvs.length + 1);
    assert.deepEqual(got.kvs.filter((kv) => Buffer.from(kv.key).toString() !== 'after'), want.kvs);
    assert.equal(fs.readdirSync(path.join(dirB, 'member', 'snap.tmp')).length, 0);
  } finally {
    await server?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
});
