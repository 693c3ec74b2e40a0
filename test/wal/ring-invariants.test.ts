/**
 * The assertions at both ends of the walIn ring (src/wal/protocol.ts, client.ts, worker.ts; the shared
 * src/invariant.ts): consecutive indexes inside a record on the producer and the consumer side, no gap across
 * records in the worker (an empty WAL's first entry, a rewritten tail and a snapshot marker are fine), and the worker's failure code for a
 * broken one (BadRecord, a fault, never a user error).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WalClient, WalFatalError } from '../../src/wal/client';
import { walDirOf } from '../../src/wal/segment';
import { WalErrorCode, assertWalInEntries, decodeWalInRecord, walInRecordBytes, writeWalInRecord } from '../../src/wal/protocol';
import { InvariantError } from '../../src/invariant';
import { entries, entry, tmpDir } from './helpers';

const MD = { clusterId: 7, memberId: 1 };

test('producer end: an append whose entries skip an index is refused before it reaches the ring', () => {
  assert.doesNotThrow(() => assertWalInEntries(entries(4, 9)));
  assert.doesNotThrow(() => assertWalInEntries([]));
  assert.throws(() => assertWalInEntries([entry(4), entry(6)]), (e: unknown) => e instanceof InvariantError && /index 6 follows 4/.test((e as Error).message));
  assert.throws(() => assertWalInEntries([entry(4), entry(4)]), InvariantError);
});

test('consumer end: a record whose entries are not consecutive is a broken invariant, and nothing is staged', () => {
  const es = [entry(10), entry(12)];
  const bytes = walInRecordBytes(es, 0, 2);
  const buf = new Uint8Array(bytes);
  const view = new DataView(buf.buffer);
  assert.equal(writeWalInRecord(view, buf, 0, null, es, 0, 2), bytes);
  const staged: number[] = [];
  const sink = { entry: (i: number) => void staged.push(i), hardState: () => {} };
  assert.throws(() => decodeWalInRecord(view, buf, 0, bytes, sink), InvariantError);
  assert.deepEqual(staged, []);
  const ok = entries(10, 12);
  const okBuf = new Uint8Array(walInRecordBytes(ok, 0, 3));
  writeWalInRecord(new DataView(okBuf.buffer), okBuf, 0, null, ok, 0, 3);
  assert.equal(decodeWalInRecord(new DataView(okBuf.buffer), okBuf, 0, okBuf.length, sink), 3);
  assert.deepEqual(staged, [10, 11, 12]);
});

test('worker: a rewritten tail and a snapshot marker are accepted; a gap after the last entry stops the WAL with BadRecord', async () => {
  const dir = walDirOf(tmpDir('ring-invariants'));
  const { client } = await WalClient.open({ dir, metadata: MD, segmentSizeBytes: 256 * 1024, ringCapacityBytes: 1 << 20 });
  try {
    // An empty WAL starts after Raft's bootstrap entries (never written to the WAL): no gap.
    await client.waitDurable(client.append({ term: 1, vote: 1, commit: 0 }, entries(3, 5)));
    // A new leader's entries replace the tail from index 4 (Raft log conflict repair).
    await client.waitDurable(client.append({ term: 2, vote: 1, commit: 3 }, entries(4, 6, 2)));
    // A snapshot installed from the leader moves the log's start past its end; entries continue after it.
    await client.waitDurable(client.control({ snapIndex: 20, snapTerm: 2, releaseIndex: 0, maxWals: 0 }));
    await client.waitDurable(client.append(null, entries(21, 22, 2)));
    assert.equal(client.durableIndex, 22);
    const fatal = new Promise<WalFatalError>((resolve) => client.onFatal(resolve));
    client.append(null, entries(30, 31, 2)); // 23..29 missing
    const e = await fatal;
    assert.equal(e.code, WalErrorCode.BadRecord);
    assert.match(e.message, /gap/);
  } finally {
    await client.close().catch(() => {});
  }
});
