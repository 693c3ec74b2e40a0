/**
 * Worker-thread entry of an online defragment's copy (./copy.ts copyMvccEnvInWorker): opens the member's MVCC
 * environment (lmdb-js shares the process's environment for the path), copies one read transaction's state into
 * the destination and posts {result} or {error}.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openMvccEnv } from './env';
import { copyMvccSnapshotSync } from './copy';

if (parentPort !== null && workerData !== null) {
  const d = workerData as { srcDataDir: string; destDataDir: string };
  const port = parentPort;
  let dbs: ReturnType<typeof openMvccEnv> | null = null;
  try {
    dbs = openMvccEnv(d.srcDataDir);
    dbs.root.resetReadTxn();
    port.postMessage({ result: copyMvccSnapshotSync(dbs, d.destDataDir) });
  } catch (e) {
    port.postMessage({ error: (e as Error)?.stack ?? String(e) });
  } finally {
    // Release this thread's reference to the shared environment at once, so the swap that follows reopens the
    // new file rather than a cached handle.
    void dbs?.root.close();
  }
}
