/**
 * Worker-thread entry of an online defragment's copy (./copy.ts copyMvccEnvInWorker; workerData =
 * {srcDataDir, destDataDir}): opens the member's MVCC environment (lmdb-js shares the process's environment for the
 * path between threads), copies one read transaction's state into the destination, releases this thread's
 * reference to both and posts {result} or {error}.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openMvccEnv } from './env';
import { copyMvccSnapshotSync, type SnapshotCopy } from './copy';

async function main(port: NonNullable<typeof parentPort>, d: { srcDataDir: string; destDataDir: string }): Promise<void> {
  let dbs: ReturnType<typeof openMvccEnv> | null = null;
  let msg: { result?: SnapshotCopy; error?: string };
  try {
    dbs = openMvccEnv(d.srcDataDir);
    dbs.root.resetReadTxn();
    msg = { result: copyMvccSnapshotSync(dbs, d.destDataDir) };
  } catch (e) {
    msg = { error: (e as Error)?.stack ?? String(e) };
  }
  // Drop this thread's reference to the shared environment at once, so the swap that follows reopens the new file
  // rather than a handle cached for this path.
  await dbs?.root.close();
  port.postMessage(msg);
}

if (parentPort !== null && workerData !== null) void main(parentPort, workerData as { srcDataDir: string; destDataDir: string });
