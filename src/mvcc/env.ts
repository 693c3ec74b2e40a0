/**
 * Opens the MVCC store's LMDB environment and its named databases (layout: src/mvcc/LAYOUT.md).
 * Shared by the writer (MvccStore, apply worker) and the reader (MvccReader, main thread): lmdb-js shares one
 * environment per path inside a process, so both threads map the same file.
 *
 * Durability choice: the env is opened with `noSync` — an LMDB commit is visible at once to every reader but is not
 * fsynced. The WAL is the durability source: the consistent index is committed in the same LMDB transaction as the
 * data it covers, so after a crash the store is some earlier committed state and the server replays WAL entries
 * above the stored consistent index. `MvccStore.sync()` (periodically and on close) makes it durable; the WAL may
 * only be truncated up to the index returned by the last completed sync (`MvccStore.syncedIndex()`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';

/** Default LMDB map size (virtual address space reserved; the file grows as used): 8 GiB, etcd's max quota. */
export const DEFAULT_MAP_SIZE_BYTES = 8 * 1024 * 1024 * 1024;
/** Named databases in the environment (openMvccEnv opens each; copyMvccEnv copies each). */
export const DB_NAMES = ['rev', 'hist', 'kv', 'meta', 'lease', 'leaseKeys', 'v2'] as const;
/** Number of named databases in the environment. */
export const DB_COUNT = DB_NAMES.length;
/** Sub-directory of the data dir holding the LMDB files. */
export const MVCC_SUBDIR = 'mvcc';

/** The persisted store counters (one msgpack record under META_KEY in `meta`). */
export interface MvccMeta {
  /** Current store revision (main); 1 on a fresh store, like etcd. */
  revision: number;
  /** Compact revision: ranges below it fail with Compacted; 0 = never compacted (or compacted at 0, see `compacted`). */
  compactRevision: number;
  /** True once any compaction ran, even at revision 0 (etcd starts compactMainRev at -1, so a first Compact(0) succeeds). */
  compacted?: boolean;
  /** Last compaction requested (etcd's scheduledCompactRev); equals compactRevision once done. */
  scheduledCompactRevision: number;
  /** Raft index of the last entry applied (the consistent index). */
  consistentIndex: number;
  /** Raft term of that entry. */
  term: number;
}

/** Key of the single meta record. */
export const META_KEY = 'state';

/** The initial meta of an empty store. */
export function initialMeta(): MvccMeta {
  return { revision: 1, compactRevision: 0, scheduledCompactRevision: 0, consistentIndex: 0, term: 0 };
}

/** Handles to every database of an opened MVCC environment. */
export interface MvccDbs {
  root: RootDatabase;
  /** (main,sub) → record: every revision (etcd's "key" bucket). */
  rev: Database<Buffer, Buffer>;
  /** escape(key)+rev → [flags]: the per-key revision index (etcd's keyIndex). */
  hist: Database<Buffer, Buffer>;
  /** key → record of its latest live revision (no tombstones): the current view. */
  kv: Database<Buffer, Buffer>;
  /** META_KEY → MvccMeta. */
  meta: Database<MvccMeta, string>;
  /** lease id (number) → LeaseRecord. */
  lease: Database<LeaseRecord, number>;
  /** lease id (u64 BE) + key → empty: keys attached to a lease. */
  leaseKeys: Database<Buffer, Buffer>;
  /** The v2 store (etcd's v2 keys API state; layout in src/v2store/nodes.ts). */
  v2: Database<unknown, string>;
  /** Absolute directory of the LMDB files. */
  dir: string;
}

/** A stored lease (etcd lease: leasepb.Lease). TTL in seconds. */
export interface LeaseRecord {
  id: number;
  /** Granted TTL in seconds (after the minimum TTL was applied). */
  ttl: number;
  /** Remaining TTL from the last checkpoint, seconds; 0 = none. */
  remainingTtl: number;
}

/** Options for openMvccEnv. */
export interface MvccEnvOptions {
  /** LMDB map size in bytes (DEFAULT_MAP_SIZE_BYTES). */
  mapSizeBytes?: number;
}

/**
 * Opens (creating if needed) the LMDB environment under `<dataDir>/mvcc`.
 * @throws whatever lmdb-js throws on an unusable directory.
 */
export function openMvccEnv(dataDir: string, opts: MvccEnvOptions = {}): MvccDbs {
  const dir = path.resolve(dataDir, MVCC_SUBDIR);
  fs.mkdirSync(dir, { recursive: true });
  const root = open(dir, {
    maxDbs: DB_COUNT + 2,
    mapSize: opts.mapSizeBytes ?? DEFAULT_MAP_SIZE_BYTES,
    noSync: true,
    cache: false,
  });
  const bin = { keyEncoding: 'binary', encoding: 'binary', cache: false } as const;
  return {
    root,
    rev: root.openDB<Buffer, Buffer>('rev', bin),
    hist: root.openDB<Buffer, Buffer>('hist', bin),
    kv: root.openDB<Buffer, Buffer>('kv', bin),
    meta: root.openDB<MvccMeta, string>('meta', { encoding: 'msgpack', cache: false }),
    lease: root.openDB<LeaseRecord, number>('lease', { keyEncoding: 'ordered-binary', encoding: 'msgpack', cache: false }),
    leaseKeys: root.openDB<Buffer, Buffer>('leaseKeys', bin),
    v2: root.openDB<unknown, string>('v2', { encoding: 'msgpack', cache: false }),
    dir,
  };
}

/** Reads the meta record in the current (read or write) transaction, or the initial meta of an empty store. */
export function readMeta(dbs: MvccDbs): MvccMeta {
  const m = dbs.meta.get(META_KEY);
  return m ? { ...initialMeta(), ...m } : initialMeta();
}

/** Size of the LMDB data file in bytes (etcd's db size), 0 if absent. */
export function dbFileSizeBytes(dbs: MvccDbs): number {
  try {
    return fs.statSync(path.join(dbs.dir, 'data.mdb')).size;
  } catch {
    return 0;
  }
}

/** Bytes of the LMDB file actually in use (last page number × page size; etcd's db size in use, approximately). */
export function dbInUseBytes(dbs: MvccDbs): number {
  const s = dbs.root.getStats() as { lastPageNumber?: number; pageSize?: number };
  return ((s.lastPageNumber ?? 0) + 1) * (s.pageSize ?? 4096);
}
