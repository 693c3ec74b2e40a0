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
import * as path from 'node:path';
import { DB_NAMES, openMvccEnv, type MvccDbs } from './env';

/** Records written per destination transaction at most; the copy yields to the event loop between transactions. */
export const COPY_MAX_RECORDS_PER_TXN = 1024;
/** Bytes (keys + values) written per destination transaction at most. */
export const COPY_MAX_BYTES_PER_TXN = 4 * 1024 * 1024;

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
