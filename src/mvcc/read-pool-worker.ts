/**
 * piscina task file of the MVCC read pool (./read-pool.ts): long reads of the store that must not run on the
 * reactor. Each task opens the member's MVCC environment (lmdb-js shares the process's environment for the path),
 * reads in one fresh read transaction, and releases the handle at once so a defragment or snapshot install that
 * swaps data.mdb afterwards is seen by the next task.
 *
 * Errors: an EtcdError is answered as `{ errorId }` (ids cross threads, classes do not); anything else rejects.
 */
import { EtcdError } from '../errors';
import { openMvccEnv } from './env';
import { hashKV, type HashKVResult } from './hash-kv';

/** A task: etcd's HashByRev(`revision`) of the store under `storeDir` (the member dir holding `mvcc`). */
export interface HashKVTask {
  storeDir: string;
  revision: number;
}

/** A task's answer: the result, or the id of the EtcdError it raised (src/errors.ts). */
export type HashKVTaskResult = { result: HashKVResult } | { errorId: number };

/** piscina entry point. */
export default function run(task: HashKVTask): HashKVTaskResult {
  const dbs = openMvccEnv(task.storeDir);
  try {
    dbs.root.resetReadTxn();
    return { result: hashKV(dbs, task.revision) };
  } catch (e) {
    if (e instanceof EtcdError) return { errorId: e.id };
    throw e;
  } finally {
    void dbs.root.close();
  }
}
