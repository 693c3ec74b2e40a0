/**
 * `snapshot restore` for etcetera (etcdctl 3.4 snapshot restore / etcdutl): turns a snapshot file saved from etcd
 * 3.4 or from etcetera into a fresh etcetera data dir with a new membership.
 *
 * 1. The data dir must not exist (etcd: `data-dir "<dir>" exists`).
 * 2. Integrity: a file whose size mod 512 is 32 ends with the SHA-256 of the rest (etcdctl snapshot save appends
 *    it); it must match (`expected sha256 [..], got [..]`, the bytes as Go prints them), and a file without one
 *    is refused unless --skip-hash-check (`snapshot missing hash but --skip-hash-check=false`).
 * 3. The bbolt file must pass bbolt's structure check; its `key`, `meta` and `lease` buckets become the MVCC store
 *    (./import.ts) with the applied index at Raft's bootstrap point (index 1, term 1), like a new member's.
 * 4. The membership of the flags (one member per --initial-cluster entry, IDs from the peer URLs and the token, a
 *    new cluster ID) is written to `member/cluster.json`; the first start bootstraps Raft from it as a new cluster.
 *
 * Every member of the new cluster is restored from the same file with its own --name and
 * --initial-advertise-peer-urls, and the same --initial-cluster and --initial-cluster-token.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BoltReader } from '../bbolt';
import { openMvccEnv } from '../mvcc/env';
import { importBackend, type ImportResult } from './import';
import { SHA256_BYTES } from './save';

/** What `snapshot restore` needs (the CLI turns etcdctl's flags into these). */
export interface RestoreOptions {
  file: string;
  /** --data-dir; must not exist. */
  dataDir: string;
  /**
   * Writes the new membership into `memberDir` (the CLI builds it from --name, --initial-cluster,
   * --initial-cluster-token and --initial-advertise-peer-urls and saves `member/cluster.json`).
   */
  writeMembership(memberDir: string): void;
  skipHashCheck?: boolean;
  /** etcetera extension: give lease IDs above 2^53 − 1 new IDs instead of refusing (./import.ts LeaseIds). */
  remapLeaseIds?: boolean;
}

/** A refusal with etcdctl's message (printed as "Error: <message>"). */
export class RestoreError extends Error {}

/** Go's %v of a []byte: "[1 2 3]". */
function goBytes(b: Uint8Array): string {
  return `[${Array.from(b).join(' ')}]`;
}

/** Checks the trailing SHA-256 as etcd does; returns the database length (without the trailer). */
export function verifySnapshotHash(file: string, skipHashCheck: boolean): number {
  const size = fs.statSync(file).size;
  const hasHash = size % 512 === SHA256_BYTES;
  if (!hasHash && !skipHashCheck) throw new RestoreError('snapshot missing hash but --skip-hash-check=false');
  if (!hasHash) return size;
  const dbBytes = size - SHA256_BYTES;
  if (skipHashCheck) return dbBytes;
  const fd = fs.openSync(file, 'r');
  try {
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let off = 0; off < dbBytes;) {
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, dbBytes - off), off);
      if (n <= 0) throw new RestoreError(`unexpected end of ${file}`);
      h.update(buf.subarray(0, n));
      off += n;
    }
    const want = Buffer.allocUnsafe(SHA256_BYTES);
    fs.readSync(fd, want, 0, SHA256_BYTES, dbBytes);
    const got = h.digest();
    if (!got.equals(want)) throw new RestoreError(`expected sha256 ${goBytes(want)}, got ${goBytes(got)}`);
    return dbBytes;
  } finally {
    fs.closeSync(fd);
  }
}

/** What a restore built. */
export interface RestoreResult extends ImportResult {
  dataDir: string;
}

/**
 * Restores `o.file` into a new data dir. On failure after the data dir was created, it is removed again.
 * @throws RestoreError (etcd's refusals), BoltFormatError / SnapshotImportError (a damaged or unrepresentable file), I/O errors.
 */
export async function restoreSnapshot(o: RestoreOptions): Promise<RestoreResult> {
  const dataDir = o.dataDir;
  if (fs.existsSync(dataDir)) throw new RestoreError(`data-dir "${dataDir}" exists`);
  if (!fs.existsSync(o.file)) throw new RestoreError(`stat ${o.file}: no such file or directory`);
  verifySnapshotHash(o.file, o.skipHashCheck === true);
  const reader = BoltReader.open(o.file);
  try {
    const errors = reader.check();
    if (errors.length > 0) throw new RestoreError(`snapshot file integrity check failed. ${errors.length} errors found.\n${errors.join('\n')}`);
    const memberDir = path.join(dataDir, 'member');
    fs.mkdirSync(memberDir, { recursive: true });
    try {
      const dbs = openMvccEnv(memberDir);
      let imported: ImportResult;
      try {
        imported = importBackend(reader, dbs, { consistentIndex: 1, term: 1, remapLeaseIds: o.remapLeaseIds });
        await syncEnv(dbs.root);
      } finally {
        await dbs.root.close();
      }
      o.writeMembership(memberDir);
      return { ...imported, dataDir };
    } catch (e) {
      fs.rmSync(dataDir, { recursive: true, force: true });
      throw e;
    }
  } finally {
    reader.close();
  }
}

/** Makes the LMDB file durable (the env is opened noSync; MvccStore.sync does the same). */
function syncEnv(root: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    (root as { sync(cb: (err?: Error) => void): void }).sync((err?: Error) => (err ? reject(err) : resolve()));
  });
}
