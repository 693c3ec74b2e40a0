/**
 * Worker-thread entry of an off-thread HashKV (./hash-kv.ts hashKVInWorker): opens the member's MVCC environment
 * (lmdb-js shares the process's environment for the path), hashes one fresh read transaction and posts {result},
 * {errorId} (an EtcdError: Compacted, FutureRev) or {error}.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openMvccEnv } from './env';
import { hashKV } from './hash-kv';
import { EtcdError } from '../errors';

if (parentPort !== null && workerData !== null) {
  const d = workerData as { dataDir: string; revision: number };
  const port = parentPort;
  let dbs: ReturnType<typeof openMvccEnv> | null = null;
  try {
    dbs = openMvccEnv(d.dataDir);
    dbs.root.resetReadTxn();
    port.postMessage({ result: hashKV(dbs, d.revision) });
  } catch (e) {
    if (e instanceof EtcdError) port.postMessage({ errorId: e.id });
    else port.postMessage({ error: (e as Error)?.stack ?? String(e) });
  } finally {
    // Release this thread's reference to the shared environment at once (a store swap reopens the path).
    void dbs?.root.close();
  }
}
