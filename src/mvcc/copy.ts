/**
 * Defragmenting copy of the MVCC environment, record by record into a fresh LMDB file (what etcd's defrag does with
 * bbolt: every bucket copied key by key into a new database, which is then swapped in).
 *
 * Why not LMDB's own compacting copy (mdb_env_copy2 with MDB_CP_COMPACT, lmdb-js `backup(dir, true)`): with lmdb-js
 * 3.5's LMDB fork, a store written after such a copy was swapped in aborted intermittently in its free-page
 * allocator (`Assertion 'key.mv_size > 0' failed in mdb_page_alloc()`, or `Invalid zero size key` /
 * MDB_BAD_VALSIZE) under the overload test (3 of 5 runs); with a plain copy or this one, 0 of 5 and more. A fresh
 * environment filled by ordinary puts has a free list LMDB itself wrote, and no free pages at all.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { DB_NAMES, META_KEY, openMvccEnv, type MvccDbs } from './env';

/** Records written per destination transaction at most; the copy yields to the event loop between transactions. */
export const COPY_MAX_RECORDS_PER_TXN = 1024;
/** Bytes (keys + values) written per destination transaction at most. */
export const COPY_MAX_BYTES_PER_TXN = 4 * 1024 * 1024;
/**
 * Bytes written to the destination between two fdatasyncs of it during an online copy: without them a gigabyte of
 * dirty pages is flushed at once at the end, and the member's WAL fsyncs queue behind it for hundreds of ms.
 */
export const COPY_SYNC_EVERY_BYTES = 32 * 1024 * 1024;

const RAW = { keyEncoding: 'binary', encoding: 'binary', cache: false } as const;

/**
 * Copies every named database of `src` into a new environment under `<destDataDir>/mvcc` and closes it; returns
 * the new data file's path and the records copied. The source must not be written meanwhile (the caller holds
 * the writer closed); it is read in bounded chunks, each its own read transaction, with an event-loop turn
 * between chunks so the main thread keeps serving. The new file is not fsynced here (the env is noSync).
 * @throws lmdb-js errors (full disk, map full); the partial destination is the caller's to remove.
 */
export async function copyMvccEnv(src: MvccDbs, destDataDir: string): Promise<{ file: string; records: number }> {
  const dst = openMvccEnv(destDataDir);
  let records = 0;
  try {
    for (const name of DB_NAMES) {
      const from = src.root.openDB<Buffer, Buffer>(name, RAW);
      const to = dst.root.openDB<Buffer, Buffer>(name, RAW);
      let after: Buffer | undefined;
      for (;;) {
        const chunk: Array<[Buffer, Buffer]> = [];
        let bytes = 0;
        for (const { key, value } of from.getRange(after === undefined ? {} : { start: after })) {
          if (after !== undefined && key.equals(after)) continue;
          // Copies: lmdb-js may hand out buffers that the next read reuses.
          chunk.push([Buffer.from(key), Buffer.from(value)]);
          bytes += key.length + value.length;
          if (chunk.length >= COPY_MAX_RECORDS_PER_TXN || bytes >= COPY_MAX_BYTES_PER_TXN) break;
        }
        if (chunk.length === 0) break;
        dst.root.transactionSync(() => {
          for (const [k, v] of chunk) to.put(k, v);
        });
        records += chunk.length;
        after = chunk[chunk.length - 1][0];
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  } finally {
    await dst.root.close();
  }
  return { file: path.join(dst.dir, 'data.mdb'), records };
}

/** What {@link copyMvccEnvInWorker} answers. */
export interface SnapshotCopy {
  /** The new data file (`<destDataDir>/mvcc/data.mdb`). */
  file: string;
  records: number;
  /** Consistent index of the state copied (Raft index of the last entry it holds). */
  consistentIndex: number;
}

/**
 * Copies the state of one read transaction of `src` into a new environment under `<destDataDir>/mvcc`, synchronously
 * (for a worker thread): writers of `src` go on meanwhile (LMDB readers never block them), and the copy is one
 * consistent state whose consistent index is returned. Destination transactions are bounded by
 * COPY_MAX_RECORDS_PER_TXN / COPY_MAX_BYTES_PER_TXN, and the destination is fdatasynced every COPY_SYNC_EVERY_BYTES.
 * @throws lmdb-js errors (full disk, map full); the partial destination is the caller's to remove.
 */
export function copyMvccSnapshotSync(src: MvccDbs, destDataDir: string): SnapshotCopy {
  const dst = openMvccEnv(destDataDir);
  const txn = src.root.useReadTransaction();
  let records = 0;
  let consistentIndex = 0;
  let unsynced = 0;
  let fd: number | undefined;
  try {
    consistentIndex = src.meta.get(META_KEY, { transaction: txn })?.consistentIndex ?? 0;
    for (const name of DB_NAMES) {
      const from = src.root.openDB<Buffer, Buffer>(name, RAW);
      const to = dst.root.openDB<Buffer, Buffer>(name, RAW);
      let chunk: Array<[Buffer, Buffer]> = [];
      let bytes = 0;
      const flush = (): void => {
        dst.root.transactionSync(() => {
          for (const [k, v] of chunk) to.put(k, v);
        });
        unsynced += bytes;
        if (unsynced >= COPY_SYNC_EVERY_BYTES) {
          fd ??= fs.openSync(path.join(dst.dir, 'data.mdb'), 'r');
          fs.fdatasyncSync(fd);
          unsynced = 0;
        }
        records += chunk.length;
        chunk = [];
        bytes = 0;
      };
      for (const { key, value } of from.getRange({ transaction: txn })) {
        chunk.push([Buffer.from(key), Buffer.from(value)]);
        bytes += key.length + value.length;
        if (chunk.length >= COPY_MAX_RECORDS_PER_TXN || bytes >= COPY_MAX_BYTES_PER_TXN) flush();
      }
      if (chunk.length > 0) flush();
    }
  } finally {
    txn.done();
    if (fd !== undefined) fs.closeSync(fd);
    void dst.root.close();
  }
  return { file: path.join(dst.dir, 'data.mdb'), records, consistentIndex };
}

/** Longest a defragment copy may run before its worker is stopped, ms (a 1 GiB store copies in seconds). */
export const COPY_TIMEOUT_MS = 30 * 60_000;

/**
 * Runs {@link copyMvccSnapshotSync} of the environment under `<srcDataDir>/mvcc` on a worker thread of this
 * process (./copy-worker.ts), so the event loop keeps serving while a large store is copied; resolves once the
 * destination is closed.
 *
 * Why a thread and not a child process: with the copy in a second process opening the same environment, the
 * process writing it (the apply worker) failed about 1 run in 25 under load, with `MDB_BAD_TXN` ("mdb_page_touch no
 * parent": a clean page already carrying the writer's own transaction id) or SIGSEGV — what two writers, or pages
 * reused under a reader, would cause. Where lmdb-js 3.5's LMDB fork goes wrong across processes was not pinned down
 * (it keeps a free-page cache per process, and its lock-file protocol differs from upstream LMDB); inside one process
 * lmdb-js shares one environment between threads, as the main thread's reader and the apply worker already do, so
 * no second process ever opens the store. The cost: the pages the copy reads are mapped in this process, so
 * unmapping the old environment after the swap takes longer.
 * @throws the worker's error (full disk, map full), an early exit, or after COPY_TIMEOUT_MS.
 */
export function copyMvccEnvInWorker(srcDataDir: string, destDataDir: string): Promise<SnapshotCopy> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(path.join(__dirname, 'copy-worker.js'), { workerData: { srcDataDir, destDataDir }, execArgv: [] });
    let settled = false;
    const finish = (err: Error | null, r?: SnapshotCopy): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err !== null) { void worker.terminate(); reject(err); } else resolve(r!);
    };
    const timer = setTimeout(() => finish(new Error(`defragment copy did not finish within ${COPY_TIMEOUT_MS} ms`)), COPY_TIMEOUT_MS);
    let answer: { result?: SnapshotCopy; error?: string } | null = null;
    worker.once('message', (m: { result?: SnapshotCopy; error?: string }) => { answer = m; });
    worker.once('error', (e: unknown) => finish(e instanceof Error ? e : new Error(String(e))));
    // Resolve on exit, so the worker has closed the destination before anyone opens it.
    worker.once('exit', (code) => {
      const a = answer as { result?: SnapshotCopy; error?: string } | null;
      if (a?.result !== undefined) finish(null, a.result);
      else finish(new Error(`defragment copy failed: ${a?.error ?? `copy worker exited with ${code}`}`));
    });
  });
}
