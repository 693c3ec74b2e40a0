/**
 * MvccReader: the main thread's read-only view of the MVCC store (etcd api: KV.Range served locally after a
 * ReadIndex wait, Maintenance.Status's db size, Lease.TimeToLive/Leases storage side).
 *
 * It opens the same LMDB environment the apply worker writes (lmdb-js shares it inside the process). Each call
 * starts from a fresh LMDB read transaction (resetReadTxn) and does all its reads synchronously inside it, so the
 * header revision, compact revision and data always come from one committed snapshot, and every commit the worker
 * made before the call is visible. Never writes.
 */
import type { RangeRequest, ResponseHeader } from '../wire/codec';
import { pb } from '../wire/codec';
import { leaseKeyPrefix } from './encoding';
import {
  dbFileSizeBytes, dbInUseBytes, openMvccEnv, readMeta, type LeaseRecord, type MvccDbs, type MvccEnvOptions, type MvccMeta,
} from './env';
import { hashKV, type HashKVResult } from './hash-kv';
import { rangeKvs } from './range';
import type { RangeResponseResult } from './store';

/** Header fields the reader cannot know (filled by the server). */
export interface HeaderIdentity {
  clusterId: number;
  memberId: number;
  raftTerm: number;
}

/** Read-only access to the MVCC store from any thread. */
export class MvccReader {
  private constructor(readonly dbs: MvccDbs) {}

  /** Opens the store under `<dataDir>/mvcc` (created empty if absent). */
  static open(dataDir: string, opts: MvccEnvOptions = {}): MvccReader {
    return new MvccReader(openMvccEnv(dataDir, opts));
  }

  private fresh(): MvccMeta {
    this.dbs.root.resetReadTxn();
    return readMeta(this.dbs);
  }

  /**
   * Range at a revision (etcd api: KV.Range) on one consistent snapshot. The header carries only the revision
   * (the store revision of the snapshot); cluster/member/term are 0.
   * @throws EtcdError FutureRev (revision > store revision), Compacted (revision < compact revision).
   */
  range(req: RangeRequest): RangeResponseResult {
    const m = this.fresh();
    const r = rangeKvs(this.dbs, { revision: m.revision, compactRevision: m.compactRevision }, req);
    return { header: { clusterId: 0, memberId: 0, revision: r.revision, raftTerm: 0 }, kvs: r.kvs, more: r.more, count: r.count };
  }

  /** range() encoded as an etcdserverpb.RangeResponse with the given header identity. @throws as range(). */
  rangeEncoded(req: RangeRequest, id: HeaderIdentity): Uint8Array {
    const r = this.range(req);
    const header: ResponseHeader = { clusterId: id.clusterId, memberId: id.memberId, revision: r.header.revision, raftTerm: id.raftTerm };
    return pb.RangeResponse.encode({ header, kvs: r.kvs, more: r.more, count: r.count }).finish();
  }

  /**
   * etcd's HashByRev on one fresh snapshot (see hash-kv.ts). Synchronous: it scans the whole history ≤ revision.
   * @throws EtcdError Compacted, FutureRev.
   */
  hashKV(revision: number): HashKVResult {
    this.dbs.root.resetReadTxn();
    return hashKV(this.dbs, revision);
  }

  /** Raised alarms (see MvccStore.alarms), from the latest committed snapshot. */
  alarms(): Array<{ memberID: number; alarm: number }> {
    this.dbs.root.resetReadTxn();
    const v = (this.dbs.meta as unknown as { get(k: string): Array<{ memberID: number; alarm: number }> | undefined }).get('alarms');
    return (v ?? []).map((m) => ({ ...m }));
  }

  /** Store revision of the latest committed snapshot. */
  currentRevision(): number { return this.fresh().revision; }
  /** Compact revision (0 = never compacted). */
  compactRevision(): number { return this.fresh().compactRevision; }
  /** Consistent (applied) index persisted with the data. */
  consistentIndex(): number { return this.fresh().consistentIndex; }
  /** All meta counters from one snapshot. */
  meta(): MvccMeta { return this.fresh(); }
  /** LMDB data file size in bytes (etcd's db size). */
  dbSizeBytes(): number { return dbFileSizeBytes(this.dbs); }
  /** LMDB bytes in use. */
  dbSizeInUseBytes(): number { return dbInUseBytes(this.dbs); }

  /** A lease (TTL seconds), or undefined. */
  lease(id: number): LeaseRecord | undefined {
    this.dbs.root.resetReadTxn();
    return this.dbs.lease.get(id);
  }

  /** Every stored lease, by id. Bounded by the number of leases. */
  leases(): LeaseRecord[] {
    this.dbs.root.resetReadTxn();
    const out: LeaseRecord[] = [];
    for (const e of this.dbs.lease.getRange({})) out.push(e.value);
    return out;
  }

  /** Keys attached to a lease, in key order. */
  leaseKeys(id: number): Buffer[] {
    this.dbs.root.resetReadTxn();
    const out: Buffer[] = [];
    for (const k of this.dbs.leaseKeys.getKeys({ start: leaseKeyPrefix(id), end: leaseKeyPrefix(id + 1) })) out.push(k.subarray(8));
    return out;
  }

  /** Closes this thread's handle. */
  async close(): Promise<void> {
    await this.dbs.root.close();
  }
}
