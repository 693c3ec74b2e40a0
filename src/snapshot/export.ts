/**
 * Writes the MVCC store as etcd 3.4's backend: a bbolt database with etcd's ten buckets and encodings
 * (./etcd-schema.ts), the file `etcdctl snapshot save` receives from etcd (etcd api: Maintenance.Snapshot).
 *
 * Everything is read inside one LMDB read transaction (the caller's: a synchronous run with no write in between, as
 * the export worker does), so the file is one point-in-time state while the apply worker keeps committing; pages
 * are written as they fill (src/bbolt/writer.ts), so memory does not grow with the store.
 */
import * as fs from 'node:fs';
import { BoltWriter, type BucketWriter } from '../bbolt';
import { AUTH_KEY } from '../mvcc/store';
import type { AuthRecord } from '../auth/store';
import { authBucketsOf } from './auth-buckets';
import { RECORD_HEADER_BYTES, readMain, readSub, recordIsTombstone } from '../mvcc/encoding';
import { readMeta, type MvccDbs } from '../mvcc/env';
import { encodeRevisionRecord } from '../mvcc/hash-kv';
import {
  boltRevKey, BOLT_REV_BYTES, CLUSTER_VERSION, encodeAlarmMember, encodeLease, encodeMember, memberKey, u64be, type SnapshotMember,
} from './etcd-schema';

/** Membership and auth data the store does not hold (they come from the server). */
export interface ExportContext {
  members: SnapshotMember[];
  /** IDs removed from the cluster (etcd's members_removed bucket). */
  removed: number[];
}

/** What an export wrote. */
export interface ExportResult {
  sizeBytes: number;
  revision: number;
  consistentIndex: number;
  /** Entries in the `key` bucket. */
  revisions: number;
}

const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');

/** Largest bbolt record we encode at once; larger records get their own buffer. */
const SCRATCH_BYTES = 64 * 1024;
const MAX_VARINT_FIELDS_BYTES = 6 * 11;

/**
 * Receives etcd's backend one top-level bucket at a time, in ascending name order; `fill` calls `put` with the
 * bucket's pairs in ascending key order. Keys and values handed to `put` are owned by the receiver.
 */
export type BackendVisitor = (name: Buffer, fill: (put: (key: Buffer, value: Buffer) => void) => void) => void;

/**
 * Walks the store behind `dbs` as etcd 3.4's backend: every bucket and pair `exportStore` writes, in bbolt's order.
 * Reads in the current LMDB read transaction of the calling thread (call `dbs.root.resetReadTxn()` first).
 * @returns the revision, consistent index and `key` entries walked (sizeBytes 0: nothing is written).
 * @throws RangeError on a store that cannot be expressed (never for a sound store).
 */
export function walkBackend(dbs: MvccDbs, ctx: ExportContext, visit: BackendVisitor): ExportResult {
  const meta = readMeta(dbs);
  const fill = (name: string, f: (put: (k: Buffer, v: Buffer) => void) => void): void => visit(utf8(name), f);
  const pairs = (kvs: Array<[Buffer, Buffer]>) => (put: (k: Buffer, v: Buffer) => void): void => {
    for (const [k, v] of kvs) put(k, v);
  };

  const alarms = ((dbs.meta as unknown as { get(k: string): Array<{ memberID: number; alarm: number }> | undefined }).get('alarms') ?? [])
    .map((a) => encodeAlarmMember(a.memberID, a.alarm))
    .sort(Buffer.compare);
  fill('alarm', (put) => { for (const a of alarms) put(a, Buffer.alloc(0)); });
  // The auth store's record in `meta` (absent: auth never used, etcd's fresh store).
  const auth = authBucketsOf((dbs.meta as unknown as { get(k: string): AuthRecord | undefined }).get(AUTH_KEY));
  fill('auth', pairs(auth.auth));
  fill('authRoles', pairs(auth.authRoles));
  fill('authUsers', pairs(auth.authUsers));
  fill('cluster', (put) => put(utf8('clusterVersion'), utf8(CLUSTER_VERSION)));

  let revisions = 0;
  let scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  fill('key', (put) => {
    for (const { key: rk, value: rec } of dbs.rev.getRange({})) {
      const keyLen = rec.readUInt32LE(33);
      const bound = BOLT_REV_BYTES + 1 + MAX_VARINT_FIELDS_BYTES + rec.length;
      if (bound > scratch.length) scratch = Buffer.allocUnsafe(bound);
      const tomb = recordIsTombstone(rec);
      const end = encodeRevisionRecord(scratch, 0, readMain(rk, 0), readSub(rk, 0), rec, tomb, keyLen);
      const kEnd = BOLT_REV_BYTES + (tomb ? 1 : 0);
      // The receiver may keep references (the writer does until its page is written): copies, not scratch views.
      put(Buffer.from(scratch.subarray(0, kEnd)), Buffer.from(scratch.subarray(kEnd, end)));
      revisions++;
      if (rec.length < RECORD_HEADER_BYTES) throw new RangeError('short record in the rev db');
    }
  });

  // The lease db's ordered-binary number keys ascend numerically, as the u64 BE bucket keys do.
  fill('lease', (put) => { for (const { value: l } of dbs.lease.getRange({})) put(u64be(l.id), encodeLease(l.id, l.ttl)); });

  const members = [...ctx.members].map((m) => [memberKey(m.id), encodeMember(m)] as [Buffer, Buffer]).sort((a, b) => Buffer.compare(a[0], b[0]));
  fill('members', pairs(members));
  const removed = ctx.removed.map((id) => [memberKey(id), utf8('removed')] as [Buffer, Buffer]).sort((a, b) => Buffer.compare(a[0], b[0]));
  fill('members_removed', pairs(removed));

  fill('meta', (put) => {
    put(utf8('consistent_index'), u64be(meta.consistentIndex));
    if (meta.compacted === true || meta.compactRevision > 0) {
      put(utf8('finishedCompactRev'), boltRevKey(meta.compactRevision, 0));
      put(utf8('scheduledCompactRev'), boltRevKey(Math.max(meta.scheduledCompactRevision, meta.compactRevision), 0));
    }
  });
  return { sizeBytes: 0, revision: meta.revision, consistentIndex: meta.consistentIndex, revisions };
}

/**
 * Writes the store behind `dbs` to `file` (created or truncated) as an etcd 3.4 bbolt database ({@link walkBackend}).
 * Reads in the current LMDB read transaction of the calling thread (call `dbs.root.resetReadTxn()` first).
 * @throws I/O errors of the file; RangeError on a store that cannot be expressed (never for a sound store).
 */
export function exportStore(dbs: MvccDbs, ctx: ExportContext, file: string): ExportResult {
  const fd = fs.openSync(file, 'w');
  try {
    const w = new BoltWriter({ write: (data, offset) => writeFully(fd, data, offset) });
    const walked = walkBackend(dbs, ctx, (name, fill) => {
      const b: BucketWriter = w.bucket();
      fill((k, v) => b.put(k, v));
      w.root.putBucket(name, b.finish());
    });
    // No fsync: the file is a transient copy, streamed and then deleted.
    const info = w.finish(Math.max(2, walked.consistentIndex + 2));
    return { ...walked, sizeBytes: info.sizeBytes };
  } finally {
    fs.closeSync(fd);
  }
}

function writeFully(fd: number, data: Uint8Array, offset: number): void {
  let done = 0;
  while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, offset + done);
}
