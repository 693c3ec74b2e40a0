import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pb, type DeleteRangeResponse, type PutResponse, type TxnResponse } from '../../src/wire/codec';
import { Errors } from '../../src/errors';
import { ApplyClient } from '../../src/apply/client';
import type { ApplyEntry, ApplyResult } from '../../src/apply/batch-format';
import { encodeEntryData, EntryKind } from '../../src/wire/entry';
import { MvccReader } from '../../src/mvcc/reader';
import { SharedHistogram, ETCD_DISK_DURATION_BUCKETS_SECONDS } from '../../src/metrics/shared-histogram';

const b = (s: string): Buffer => Buffer.from(s);
const str = (u: Uint8Array): string => Buffer.from(u).toString();
const dirs: string[] = [];
process.on('exit', () => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
const tmp = (): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'etcetera-apply-'));
  dirs.push(d);
  return d;
};

function putEntry(index: number, requestId: number, key: string, value: string, extra: object = {}, term = 2): ApplyEntry {
  const payload = pb.PutRequest.encode({ key: b(key), value: b(value), ...extra }).finish();
  return { index, term, type: 0, data: encodeEntryData(EntryKind.Put, requestId, payload) };
}
function entry(index: number, requestId: number, kind: EntryKind, payload: Uint8Array, term = 2): ApplyEntry {
  return { index, term, type: 0, data: encodeEntryData(kind, requestId, payload) };
}

const open: ApplyClient[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
});

/** Collects results until appliedIndex reaches `index`. */
function collector(client: ApplyClient) {
  open.push(client);
  const results = new Map<number, ApplyResult>();
  let applied = 0;
  const waiters: Array<{ index: number; resolve: () => void }> = [];
  client.onApplied((idx, rs) => {
    applied = idx;
    for (const r of rs) results.set(r.requestId, r);
    for (const w of waiters.splice(0)) if (applied >= w.index) w.resolve(); else waiters.push(w);
  });
  return {
    results,
    until: (index: number): Promise<void> =>
      applied >= index ? Promise.resolve() : new Promise((resolve) => waiters.push({ index, resolve })),
  };
}

test('applies a batch of Put/Txn/DeleteRange through the worker; responses carry the right headers', async () => {
  const dir = tmp();
  const hist = SharedHistogram.create(ETCD_DISK_DURATION_BUCKETS_SECONDS);
  const client = await ApplyClient.start({ dataDir: dir, memberId: 11, clusterId: 22, commitHistogram: hist });
  const c = collector(client);
  const txn = pb.TxnRequest.encode({
    compare: [{ key: b('a'), target: 3, result: 0, value: b('1') }],
    success: [{ requestPut: { key: b('t'), value: b('x') } }, { requestRange: { key: b('a'), rangeEnd: b('\0') } }],
    failure: [],
  }).finish();
  const del = pb.DeleteRangeRequest.encode({ key: b('a'), prevKv: true }).finish();
  client.apply([
    { index: 1, term: 2, type: 0, data: new Uint8Array(0) }, // leader no-op
    putEntry(2, 101, 'a', '1'),
    putEntry(3, 102, 'b', '2', { prevKv: true }),
    putEntry(4, 0, 'c', '3'), // nobody waits: no result record
    entry(5, 103, EntryKind.Txn, txn),
    entry(6, 104, EntryKind.DeleteRange, del, 3),
  ]);
  await c.until(6);
  assert.equal(client.appliedIndex(), 6);
  assert.equal(client.revision(), 6);
  assert.equal(c.results.size, 4);

  const p1 = pb.PutResponse.decode(c.results.get(101)!.response) as unknown as PutResponse;
  assert.deepEqual([p1.header.clusterId, p1.header.memberId, p1.header.revision, p1.header.raftTerm], [22, 11, 2, 2]);
  const t = pb.TxnResponse.decode(c.results.get(103)!.response) as unknown as TxnResponse;
  assert.equal(t.succeeded, true);
  assert.equal(t.header.revision, 5);
  assert.deepEqual(t.responses[1]!.responseRange!.kvs.map((kv) => str(kv.key)), ['a', 'b', 'c', 't']);
  const d = pb.DeleteRangeResponse.decode(c.results.get(104)!.response) as unknown as DeleteRangeResponse;
  assert.equal(d.deleted, 1);
  assert.equal(d.header.revision, 6);
  assert.equal(d.header.raftTerm, 3);
  assert.equal(str(d.prevKvs[0]!.value), '1');

  // the main thread reads what the worker committed
  const reader = MvccReader.open(dir);
  const r = reader.range({ key: b('a'), rangeEnd: b('\0') } as never);
  assert.deepEqual(r.kvs.map((kv) => str(kv.key)), ['b', 'c', 't']);
  assert.equal(reader.consistentIndex(), 6);
  await client.close();
  assert.ok(hist.snapshot().count >= 1, 'commit durations observed');
});

test('apply-time error returns its id and the next entry still applies; corrupt entries are skipped', async () => {
  const dir = tmp();
  const client = await ApplyClient.start({ dataDir: dir, memberId: 1, clusterId: 1 });
  const c = collector(client);
  const grant = pb.LeaseGrantRequest.encode({ ID: 0, TTL: 30 }).finish();
  client.apply([
    putEntry(1, 1, 'k', 'v', { lease: 777 }),
    putEntry(2, 2, 'k', 'v'),
    entry(3, 3, EntryKind.Compaction, pb.CompactionRequest.encode({ revision: 50 }).finish()),
    entry(4, 4, EntryKind.Put, new Uint8Array([0xff, 0xff, 0xff])), // bad protobuf
    entry(5, 5, EntryKind.LeaseGrant, grant),
  ]);
  await c.until(5);
  assert.equal(c.results.get(1)!.errorId, Errors.LeaseNotFound.id);
  assert.equal(c.results.get(1)!.response.length, 0);
  assert.equal(c.results.get(2)!.errorId, 0);
  assert.equal((pb.PutResponse.decode(c.results.get(2)!.response) as unknown as PutResponse).header.revision, 2);
  assert.equal(c.results.get(3)!.errorId, Errors.FutureRev.id);
  assert.equal(c.results.get(4)!.errorId, Errors.Corrupt.id);
  const g = pb.LeaseGrantResponse.decode(c.results.get(5)!.response) as unknown as { ID: number };
  assert.ok(g.ID > 0 && Number.isSafeInteger(g.ID));
  assert.equal(client.revision(), 2);
  await client.close();
});

test('replayed indexes are skipped; a restart resumes at the stored consistent index', async () => {
  const dir = tmp();
  let client = await ApplyClient.start({ dataDir: dir, memberId: 1, clusterId: 1 });
  let c = collector(client);
  client.apply([putEntry(1, 1, 'a', '1'), putEntry(2, 2, 'a', '2')]);
  await c.until(2);
  // the same entries again (e.g. re-sent after a leader change): no effect, no results
  client.apply([putEntry(1, 11, 'a', 'replayed'), putEntry(2, 12, 'a', 'replayed'), putEntry(3, 13, 'b', '1')]);
  await c.until(3);
  assert.equal(c.results.has(11), false);
  assert.equal(c.results.has(12), false);
  assert.equal(c.results.get(13)!.errorId, 0);
  assert.equal(client.revision(), 4);
  await client.close();

  client = await ApplyClient.start({ dataDir: dir, memberId: 1, clusterId: 1 });
  c = collector(client);
  assert.equal(client.appliedIndex(), 3);
  assert.equal(client.revision(), 4);
  assert.equal(client.syncedIndex(), 3);
  // the server replays its WAL from an older index: only index 4 applies
  client.apply([putEntry(2, 21, 'a', 'old'), putEntry(3, 22, 'b', 'old'), putEntry(4, 23, 'c', 'new')]);
  await c.until(4);
  assert.deepEqual([...c.results.keys()], [23]);
  const reader = MvccReader.open(dir);
  const kvs = reader.range({ key: b('a'), rangeEnd: b('\0') } as never).kvs.map((kv) => `${str(kv.key)}=${str(kv.value)}`);
  assert.deepEqual(kvs, ['a=2', 'b=1', 'c=new']);
  await client.close();
});

test('back-pressure: a small ring queues batches and everything still applies in order', async () => {
  const dir = tmp();
  const client = await ApplyClient.start({ dataDir: dir, memberId: 1, clusterId: 1, applyInBytes: 4096, applyOutBytes: 4096 });
  const c = collector(client);
  const N = 300;
  for (let i = 1; i <= N; i++) client.apply([putEntry(i, i, `k${i % 7}`, 'x'.repeat(100))]);
  await c.until(N);
  assert.equal(c.results.size, N);
  assert.equal(client.revision(), N + 1);
  for (let i = 1; i <= N; i++) {
    const p = pb.PutResponse.decode(c.results.get(i)!.response) as unknown as PutResponse;
    assert.equal(p.header.revision, i + 1);
  }
  await client.close();
});
