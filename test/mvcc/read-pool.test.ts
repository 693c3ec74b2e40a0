/**
 * src/mvcc/read-pool.ts: Maintenance.HashKV computed on the piscina read pool gives exactly the in-thread
 * hashKV's answers (current and past revisions, after a compaction, the Compacted / FutureRev errors as EtcdErrors),
 * and the calling thread's event loop keeps turning while it runs (the hash is not computed on it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EtcdError, Errors } from '../../src/errors';
import { hashKV } from '../../src/mvcc/hash-kv';
import { hashKVOffThread } from '../../src/mvcc/read-pool';
import { del, freshStore, put } from './util';
import type { CompactionRequest } from '../../src/wire/codec';

async function rejectsWith(p: Promise<unknown>, id: number): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof EtcdError && e.id === id);
}

test('HashKV on the read pool equals the in-thread hash, errors included', async () => {
  const { store, dir } = freshStore();
  try {
    for (let i = 0; i < 5000; i++) store.put(put(`k${i % 300}`, `value-${i}`));
    store.deleteRange(del('k7'));
    const cur = store.currentRevision();
    for (const rev of [0, 1, 2500, cur]) {
      assert.deepEqual(await hashKVOffThread(dir, rev), hashKV(store.dbs, rev), `revision ${rev}`);
    }
    await rejectsWith(hashKVOffThread(dir, cur + 1), Errors.FutureRev.id);
    store.compact({ revision: 3000, physical: true } as CompactionRequest);
    for (const rev of [0, 3001, cur]) {
      assert.deepEqual(await hashKVOffThread(dir, rev), hashKV(store.dbs, rev), `after compaction, revision ${rev}`);
    }
    await rejectsWith(hashKVOffThread(dir, 2000), Errors.Compacted.id);
    // Writes after a pool hash are seen by the next one (each task reads a fresh snapshot).
    store.put(put('late', 'x'));
    assert.deepEqual(await hashKVOffThread(dir, 0), hashKV(store.dbs, 0));
  } finally {
    await store.close();
  }
});

test('the caller’s event loop turns while the pool hashes', async () => {
  const { store, dir } = freshStore();
  try {
    for (let i = 0; i < 20000; i++) store.put(put(`key-${i}`, 'v'.repeat(64)));
    let turns = 0;
    let done = false;
    const spin = (): void => {
      turns++;
      if (!done) setImmediate(spin);
    };
    setImmediate(spin);
    const r = await hashKVOffThread(dir, 0);
    done = true;
    assert.equal(r.currentRevision, store.currentRevision());
    // A synchronous hash on this thread would finish before any immediate ran.
    assert.ok(turns > 0, `event-loop turns during the hash: ${turns}`);
  } finally {
    await store.close();
  }
});
