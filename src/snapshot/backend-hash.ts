/**
 * Maintenance.Hash's value (etcd 3.4 api: Maintenance.Hash; mvcc store.Hash → backend.Hash with mvcc's
 * DefaultIgnores): a CRC-32C (Castagnoli) over every top-level bucket of etcd's backend in name order — the bucket
 * name, then each key and value in key order — leaving out `meta`/`consistent_index`, the applied Raft index, which
 * members need not share.
 *
 * etcetera keeps no bbolt backend, so the bytes hashed are those Maintenance.Snapshot would write (./export.ts
 * walkBackend: same buckets, keys and values), walked straight from the LMDB store without writing a file. Members
 * with the same applied history and membership therefore agree, and the algorithm is etcd's: hashing etcd's own db
 * file this way (./status.ts backendHash) gives the Hash etcd answers. The value is not etcd's for the "same"
 * cluster, because member IDs differ (`members` bucket) — test/ops/corruption-check.test.ts compares bucket by bucket.
 */
import { crc32c } from '@node-rs/crc32';
import type { MvccDbs } from '../mvcc/env';
import { walkBackend, type ExportContext } from './export';

/** etcd mvcc DefaultIgnores: the one backend entry Maintenance.Hash leaves out. */
export const HASH_IGNORED = { bucket: 'meta', key: 'consistent_index' } as const;

/**
 * Hash of the store behind `dbs` as etcd's backend, in the calling thread's current LMDB read transaction.
 * @returns the unsigned 32-bit hash and the store revision hashed.
 * @throws RangeError on a damaged store record.
 */
export function hashStore(dbs: MvccDbs, ctx: ExportContext): { hash: number; revision: number } {
  let crc = 0;
  const ignoredBucket = Buffer.from(HASH_IGNORED.bucket, 'latin1');
  const ignoredKey = Buffer.from(HASH_IGNORED.key, 'latin1');
  const walked = walkBackend(dbs, ctx, (name, fill) => {
    crc = crc32c(name, crc);
    const skip = name.equals(ignoredBucket);
    fill((k, v) => {
      if (skip && k.equals(ignoredKey)) return;
      crc = crc32c(v, crc32c(k, crc));
    });
  });
  return { hash: crc >>> 0, revision: walked.revision };
}
