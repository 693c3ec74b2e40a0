/**
 * Worker-thread entry of a snapshot export: opens the member's MVCC environment (lmdb-js shares the process's
 * environment for the path), starts a fresh read transaction and writes the bbolt file synchronously inside it, so
 * the event loop of the main thread never waits on it (or, with no file, hashes it the same way). Posts the
 * ExportResult (or the hash), or {error}.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openMvccEnv } from '../mvcc/env';
import { exportStore, type ExportContext } from './export';
import { hashStore } from './backend-hash';

/** What the worker is given. */
export interface ExportWorkerData {
  /** Directory holding the `mvcc` sub-directory (the member dir). */
  storeDir: string;
  /** The bbolt file to write; null = write nothing, answer Maintenance.Hash's value (./backend-hash.ts) instead. */
  file: string | null;
  ctx: ExportContext;
}

if (parentPort !== null && workerData !== null) {
  const d = workerData as ExportWorkerData;
  const port = parentPort;
  let dbs: ReturnType<typeof openMvccEnv> | null = null;
  try {
    dbs = openMvccEnv(d.storeDir);
    dbs.root.resetReadTxn();
    port.postMessage({ result: d.file === null ? hashStore(dbs, d.ctx) : exportStore(dbs, d.ctx, d.file) });
  } catch (e) {
    port.postMessage({ error: (e as Error)?.stack ?? String(e) });
  } finally {
    // Release this thread's reference to the shared environment at once, so a defragment or snapshot install that
    // swaps data.mdb afterwards reopens the new file rather than a cached handle.
    void dbs?.root.close();
  }
}
