import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Registry } from 'prom-client';
import { WalClient, WalFatalError } from '../../src/wal/client';
import { Wal } from '../../src/wal/wal';
import { walDirOf } from '../../src/wal/segment';
import { WalErrorCode } from '../../src/wal/protocol';
import { ETCD_DISK_DURATION_BUCKETS_SECONDS, SharedHistogram, registerSharedHistogram } from '../../src/metrics/shared-histogram';
import { entries, plain, tmpDir } from './helpers';

const MD = { clusterId: 99, memberId: 3 };

test('worker end-to-end through the ring: 10k entries in batches, durable index reaches the last, reopen finds all', async () => {
  const dir = walDirOf(tmpDir('worker'));
  const hist = SharedHistogram.create(ETCD_DISK_DURATION_BUCKETS_SECONDS);
  const { client, replay, created } = await WalClient.open({
    dir,
    metadata: MD,
    segmentSizeBytes: 256 * 1024,
    ringCapacityBytes: 64 * 1024, // small ring: exercises back-pressure and the queue
    fsyncHistogram: hist,
  });
  assert.equal(created, true);
  assert.equal(replay.entries.length, 0);
  const durable: { index: number; seq: number }[] = [];
  client.onDurable((index, _term, seq) => durable.push({ index, seq }));
  const total = 10_000;
  const batch = 50;
  let lastSeq = 0;
  for (let i = 1; i <= total; i += batch) {
    lastSeq = client.append({ term: 1, vote: 3, commit: i - 1 }, entries(i, i + batch - 1));
  }
  assert.equal(lastSeq, total / batch);
  await client.waitDurable(lastSeq);
  assert.equal(client.durableIndex, total);
  assert.ok(durable.length >= 1 && durable.length <= lastSeq, `batches: ${durable.length}`);
  for (let k = 1; k < durable.length; k++) assert.ok(durable[k]!.seq > durable[k - 1]!.seq);
  assert.equal(durable[durable.length - 1]!.index, total);
  await client.close();
  const snap = hist.snapshot();
  // one fdatasync per worker batch; the main thread may coalesce several batches into one onDurable callback
  assert.ok(snap.count >= durable.length && snap.count <= lastSeq, `fsyncs ${snap.count}, callbacks ${durable.length}`);
  assert.ok(snap.count < lastSeq / 2, `batching: ${snap.count} fsyncs for ${lastSeq} appends`);

  const r = Wal.open(dir, { segmentSizeBytes: 256 * 1024 });
  assert.equal(r.entries.length, total);
  assert.deepEqual(plain(r.entries), plain(entries(1, total)));
  assert.deepEqual(r.hardState, { term: 1, vote: 3, commit: total - batch });
  assert.ok(r.wal.segmentFiles().length > 1, 'rolled over');
  r.wal.close();

  // reopening through the worker replays the same log
  const again = await WalClient.open({ dir, segmentSizeBytes: 256 * 1024 });
  assert.equal(again.replay.entries.length, total);
  assert.equal(again.client.durableIndex, total);
  const seq = again.client.append(null, entries(total + 1, total + 1, 2));
  await again.client.waitDurable(seq);
  assert.equal(again.client.durableIndex, total + 1);
  await again.client.close();
});

test('commit-only HardState records are written without an fdatasync of their own, and replay finds the latest', async () => {
  const dir = walDirOf(tmpDir('commitonly'));
  const hist = SharedHistogram.create(ETCD_DISK_DURATION_BUCKETS_SECONDS);
  const { client } = await WalClient.open({ dir, metadata: MD, segmentSizeBytes: 256 * 1024, fsyncHistogram: hist });
  await client.waitDurable(client.append({ term: 2, vote: 3, commit: 0 }, entries(1, 5, 2)));
  const synced = hist.snapshot().count;
  assert.ok(synced >= 1, 'the entry batch was fdatasynced');
  let seq = 0;
  for (let commit = 1; commit <= 5; commit++) seq = client.appendCommitOnly({ term: 2, vote: 3, commit });
  await client.waitDurable(seq); // the worker consumed them (DurableSeq counts every record)
  assert.equal(hist.snapshot().count, synced, 'commit-only records alone cost no fdatasync');
  assert.throws(() => client.appendCommitOnly({ term: 2, vote: 3, commit: 1.5 }), RangeError);
  await client.close();
  const r = Wal.open(dir, { segmentSizeBytes: 256 * 1024 });
  assert.deepEqual(r.hardState, { term: 2, vote: 3, commit: 5 });
  assert.equal(r.entries.length, 5);
  r.wal.close();
});

test('commit-only HardState records do not wake the worker: they ride with the next append, in order', async () => {
  const dir = walDirOf(tmpDir('commitonly-quiet'));
  const { client } = await WalClient.open({ dir, metadata: MD, segmentSizeBytes: 256 * 1024 });
  await client.waitDurable(client.append({ term: 2, vote: 3, commit: 0 }, entries(1, 5, 2)));
  let commitSeq = 0;
  for (let commit = 1; commit <= 5; commit++) commitSeq = client.appendCommitOnly({ term: 2, vote: 3, commit });
  const seq = client.append(null, entries(6, 6, 2));
  assert.equal(seq, commitSeq + 1, 'the append is numbered after the quiet records');
  await client.waitDurable(seq);
  assert.ok(client.durableSeq >= seq, 'the durable sequence counts the quiet records and the append together');
  assert.equal(client.durableIndex, 6);
  await client.close();
  const r = Wal.open(dir, { segmentSizeBytes: 256 * 1024 });
  assert.deepEqual(r.hardState, { term: 2, vote: 3, commit: 5 }, 'the quiet records were written, before the append');
  assert.equal(r.entries.length, 6);
  r.wal.close();
});

test('worker reports a corrupt WAL as a typed fatal error on open', async () => {
  const dir = walDirOf(tmpDir('worker-corrupt'));
  const w = Wal.create(dir, MD, { segmentSizeBytes: 8192 });
  w.append({ term: 1, vote: 1, commit: 1 }, entries(1, 10));
  w.sync();
  w.close();
  const file = `${dir}/${fs.readdirSync(dir)[0]}`;
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.from([0xee]), 0, 1, 100); // inside an early record
  fs.closeSync(fd);
  await assert.rejects(WalClient.open({ dir }), (e: unknown) => e instanceof WalFatalError && e.code === WalErrorCode.Corrupt);
});

test('shared histogram: observe in one view, exposed through prom-client as a real histogram', async () => {
  const h = SharedHistogram.create(ETCD_DISK_DURATION_BUCKETS_SECONDS);
  assert.deepEqual(ETCD_DISK_DURATION_BUCKETS_SECONDS.slice(0, 4), [0.001, 0.002, 0.004, 0.008]);
  assert.equal(ETCD_DISK_DURATION_BUCKETS_SECONDS[13], 8.192);
  const writer = SharedHistogram.attach(h.sab, ETCD_DISK_DURATION_BUCKETS_SECONDS);
  writer.observe(0.0005);
  writer.observe(0.003);
  writer.observe(0.003);
  writer.observe(20);
  const reg = new Registry();
  registerSharedHistogram(reg, 'etcd_disk_wal_fsync_duration_seconds', 'The latency distributions of fsync called by WAL.', h);
  const text = await reg.metrics();
  assert.match(text, /# TYPE etcd_disk_wal_fsync_duration_seconds histogram/);
  assert.match(text, /etcd_disk_wal_fsync_duration_seconds_bucket\{le="0.001"\} 1\n/);
  assert.match(text, /etcd_disk_wal_fsync_duration_seconds_bucket\{le="0.002"\} 1\n/);
  assert.match(text, /etcd_disk_wal_fsync_duration_seconds_bucket\{le="0.004"\} 3\n/);
  assert.match(text, /etcd_disk_wal_fsync_duration_seconds_bucket\{le="8.192"\} 3\n/);
  assert.match(text, /etcd_disk_wal_fsync_duration_seconds_bucket\{le="\+Inf"\} 4\n/);
  assert.match(text, /etcd_disk_wal_fsync_duration_seconds_sum 20.0065\n/);
  assert.match(text, /etcd_disk_wal_fsync_duration_seconds_count 4\n?/);
  const json = await reg.getMetricsAsJSON();
  assert.equal(json[0]!.type as unknown as string, 'histogram');
  assert.throws(() => SharedHistogram.attach(new SharedArrayBuffer(8), ETCD_DISK_DURATION_BUCKETS_SECONDS), RangeError);
  assert.throws(() => SharedHistogram.create([2, 1]), RangeError);
});
