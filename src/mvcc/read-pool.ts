/**
 * The MVCC read pool: a piscina pool of worker threads that read LMDB directly, for store-wide reads that take far
 * more than a millisecond (issue 11 item 5: the reactor never blocks). Today: Maintenance.HashKV (etcd's
 * HashByRev, ./hash-kv.ts), about 1 s per 130k revisions.
 *
 * Sized for a 2-core member: one thread, started on first use and stopped after READ_POOL_IDLE_MS idle (no idle
 * memory; piscina unrefs idle threads, so the pool never keeps a process alive); its heap bounded by READ_POOL_MAX_OLD_MB. Tasks beyond the one running wait in piscina's queue, at most
 * READ_POOL_MAX_QUEUE; past it a call rejects with EtcdError TooManyRequests.
 */
import * as path from 'node:path';
import { Piscina } from 'piscina';
import { etcdError, etcdErrorById } from '../errors';
import type { HashKVResult } from './hash-kv';
import type { HashKVTask, HashKVTaskResult } from './read-pool-worker';

/** Worker threads of the pool. */
export const READ_POOL_THREADS = 1;
/** Tasks waiting for a thread at most. */
export const READ_POOL_MAX_QUEUE = 64;
/** An idle thread exits after this many ms. */
export const READ_POOL_IDLE_MS = 30_000;
/** V8 old-generation limit of a pool thread, MB (a hash keeps one 64 KiB chunk; a range reply is bounded by --max-request-bytes-sized pages). */
export const READ_POOL_MAX_OLD_MB = 256;
/** V8 young-generation limit of a pool thread, MB. */
export const READ_POOL_MAX_YOUNG_MB = 16;

let pool: Piscina | null = null;

function thePool(): Piscina {
  if (pool === null) {
    pool = new Piscina({
      filename: path.join(__dirname, 'read-pool-worker.js'),
      minThreads: 0,
      maxThreads: READ_POOL_THREADS,
      maxQueue: READ_POOL_MAX_QUEUE,
      idleTimeout: READ_POOL_IDLE_MS,
      resourceLimits: { maxOldGenerationSizeMb: READ_POOL_MAX_OLD_MB, maxYoungGenerationSizeMb: READ_POOL_MAX_YOUNG_MB },
    });
  }
  return pool;
}

/**
 * etcd api: Maintenance.HashKV's computation (etcd mvcc HashByRev) of the store under `storeDir` (the member dir),
 * on the read pool in one read transaction. Resolves with the hash and the revisions it was taken against.
 * @throws EtcdError Compacted, FutureRev (as ./hash-kv.ts), TooManyRequests when the pool's queue is full; the
 *   worker's error for a damaged store.
 */
export async function hashKVOffThread(storeDir: string, revision: number): Promise<HashKVResult> {
  const p = thePool();
  if (p.queueSize >= READ_POOL_MAX_QUEUE) throw etcdError('RequestTooManyRequests');
  const r = (await p.run({ storeDir, revision } satisfies HashKVTask)) as HashKVTaskResult;
  if ('errorId' in r) throw etcdErrorById(r.errorId);
  return r.result;
}
