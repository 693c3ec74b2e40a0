/**
 * MvccStore: the writing side of etcd's MVCC model on LMDB (etcd mvcc: kvstore.go, kvstore_txn.go, kvstore_compaction.go;
 * etcdserver/apply.go for the request semantics; lease/lessor.go for lease storage). Layout: src/mvcc/LAYOUT.md.
 * Compaction, the lease store and the alarm store live in compaction.ts, lease-store.ts and alarm-store.ts.
 *
 * Single writer (the apply worker). Every mutation runs inside an LMDB write transaction: `batch(fn)` groups many
 * requests into one commit and writes the meta record (revision, compact revision, consistent index, term) in the
 * same transaction. A request method called outside batch() commits by itself.
 *
 * Error contract: a request method throws an EtcdError only before it wrote anything (validation first, as etcd's
 * checkRequests), so a caught EtcdError leaves the batch consistent. Any other exception is a store failure: the
 * enclosing batch aborts.
 */
import type {
  CompactionRequest, DeleteRangeRequest, KeyValue, PutRequest, RangeRequest, RequestOp, ResponseHeader,
  ResponseOp, TxnRequest,
} from '../wire/codec';
import { etcdError } from '../errors';
import { compareRange } from './compare';
import {
  asBuffer,
  decodeRecord,
  EMPTY,
  encodeRecord,
  escapedLength,
  FLAG_TOMBSTONE,
  histKey,
  leaseKeyEntry,
  MAX_ESCAPED_KEY_BYTES,
  recordKey,
  recordLease,
  revKey,
} from './encoding';
import {
  dbFileSizeBytes, dbInUseBytes, META_KEY, openMvccEnv, readMeta, type LeaseRecord, type MvccDbs, type MvccEnvOptions,
  type MvccMeta,
} from './env';
import { MAX_LEASE_TTL_SECONDS } from '../wire/lease';
import { activateAlarm, deactivateAlarm, readAlarms, type AlarmMember } from './alarm-store';
import { compactPhysically, type CompactionTimings } from './compaction';
import { attachedEntries, freshLeaseId } from './lease-store';
import { rangeEndOf, rangeKvs, type RangeResult } from './range';

/** Nesting limit for txn evaluation (etcd bounds it by max-txn-ops at the API; this guards recursion). */
export const MAX_TXN_DEPTH = 64;

const LIVE_FLAGS = Buffer.from([0]);
const TOMBSTONE_FLAGS = Buffer.from([FLAG_TOMBSTONE]);
const EMPTY_HEADER_FIELDS = { clusterId: 0, memberId: 0, raftTerm: 0 };

/** Options of MvccStore.open. */
export interface MvccStoreOptions extends MvccEnvOptions {
  /** etcd's minimum lease TTL in seconds (grants below it are raised to it); default 0. */
  minLeaseTtlSeconds?: number;
}

/** A response header carrying only the revision (the apply layer fills cluster/member/term at top level). */
function hdr(revision: number): ResponseHeader {
  return { ...EMPTY_HEADER_FIELDS, revision };
}

/** Result shapes (protobufjs field names) returned by the store. */
export interface PutResult { header: ResponseHeader; prevKv?: KeyValue }
export interface DeleteRangeResult { header: ResponseHeader; deleted: number; prevKvs: KeyValue[] }
export interface RangeResponseResult { header: ResponseHeader; kvs: KeyValue[]; more: boolean; count: number }
export interface TxnResult { header: ResponseHeader; succeeded: boolean; responses: ResponseOp[] }
export interface CompactResult { header: ResponseHeader }
export interface LeaseGrantResult { header: ResponseHeader; ID: number; TTL: number; error: string }
export interface LeaseRevokeResult { header: ResponseHeader }

/**
 * Cumulative MVCC counters of one MvccStore (etcd mvcc/metrics_txn.go metricsTxnWrite semantics): every
 * request is one or two MVCC transactions; each counts its ranges (txn compares, range ops, the prev-kv / ignore_*
 * reads), puts and delete-range calls, and a transaction with more than one of them counts as a txn.
 */
export interface MvccCounters {
  puts: number;
  deletes: number;
  txns: number;
  ranges: number;
  /** Sum of len(key) + len(value) of every put. */
  putBytes: number;
  /** Live keys (a gauge). */
  keys: number;
  /** Revision records removed by compactions. */
  compactionKeys: number;
}

/** Key of the auth store's record in the `meta` db. */
export const AUTH_KEY = 'auth';

/** The etcd MVCC key-value store, writer side. */
export class MvccStore {
  /** Cumulative counters since open (see MvccCounters); read them after each request. */
  readonly counters: MvccCounters = { puts: 0, deletes: 0, txns: 0, ranges: 0, putBytes: 0, keys: 0, compactionKeys: 0 };
  /** Called after each compaction with its durations. */
  onCompaction: ((t: CompactionTimings) => void) | null = null;
  /** The MVCC transaction being counted (etcd's metricsTxnWrite fields). */
  private readonly cur = { ranges: 0, puts: 0, deletes: 0, putBytes: 0 };
  private meta: MvccMeta;
  private inTxn = false;
  private inOp = false;
  private beginRev = 0;
  private changes = 0;
  private lastSyncedIndex: number;
  private readonly minLeaseTtl: number;
  /**
   * When set, every revision written (the `rev` record: a put's record or a tombstone) is appended here in
   * revision order — the MVCC events the watch hub delivers (etcd mvcc: watchableStoreTxnWrite.End → notify).
   * The owner clears it per batch; a failed request (EtcdError) writes nothing, so it appends nothing.
   */
  eventSink: Buffer[] | null = null;

  private constructor(readonly dbs: MvccDbs, opts: MvccStoreOptions) {
    this.meta = readMeta(dbs);
    this.lastSyncedIndex = this.meta.consistentIndex;
    this.minLeaseTtl = opts.minLeaseTtlSeconds ?? 0;
    this.counters.keys = (dbs.kv.getStats() as { entryCount?: number }).entryCount ?? 0;
  }

  /** etcd metricsTxnWrite.End: folds the current MVCC transaction's counts into the cumulative counters. */
  private endMetricsTxn(): void {
    const c = this.cur;
    if (c.ranges + c.puts + c.deletes > 1) this.counters.txns++;
    this.counters.ranges += c.ranges;
    this.counters.puts += c.puts;
    this.counters.deletes += c.deletes;
    this.counters.putBytes += c.putBytes;
    c.ranges = c.puts = c.deletes = c.putBytes = 0;
  }

  /** Opens (or creates) the store under `<dataDir>/mvcc`. */
  static open(dataDir: string, opts: MvccStoreOptions = {}): MvccStore {
    return new MvccStore(openMvccEnv(dataDir, opts), opts);
  }

  /** Current store revision (main); 1 on an empty store. */
  currentRevision(): number { return this.meta.revision; }
  /** Compact revision (0 = never compacted). */
  compactRevision(): number { return this.meta.compactRevision; }
  /** Raft index of the last applied entry (persisted with the data it covers). */
  consistentIndex(): number { return this.meta.consistentIndex; }
  /** Raft term of the last applied entry. */
  consistentTerm(): number { return this.meta.term; }
  /** Consistent index made durable by the last completed sync() (the WAL may be truncated up to it). */
  syncedIndex(): number { return this.lastSyncedIndex; }
  /** LMDB data file size in bytes (etcd's db size). */
  dbSizeBytes(): number { return dbFileSizeBytes(this.dbs); }
  /** LMDB bytes in use (etcd's db size in use, approximately). */
  dbSizeInUseBytes(): number { return dbInUseBytes(this.dbs); }

  /**
   * Runs `fn` in one LMDB write transaction (one commit) and persists the meta record in it. Re-entrant: a nested
   * call joins the outer transaction. If `fn` throws, the transaction aborts, in-memory counters are restored and
   * the error propagates.
   */
  batch<T>(fn: () => T): T {
    if (this.inTxn) return fn();
    const saved = { ...this.meta };
    this.inTxn = true;
    try {
      return this.dbs.root.transactionSync(() => {
        const r = fn();
        this.dbs.meta.putSync(META_KEY, this.meta);
        return r;
      });
    } catch (e) {
      this.meta = saved;
      throw e;
    } finally {
      this.inTxn = false;
    }
  }

  /** Records the Raft index/term the current batch covers (call inside batch(); persisted at its commit). */
  setConsistentIndex(index: number, term: number): void {
    this.meta.consistentIndex = index;
    this.meta.term = term;
  }

  /**
   * Flushes LMDB to disk (mdb_env_sync). Resolves once durable; syncedIndex() then covers every batch committed
   * before the call.
   */
  sync(): Promise<void> {
    const index = this.meta.consistentIndex;
    return new Promise((resolve, reject) => {
      (this.dbs.root as unknown as { sync(cb: (err?: Error) => void): void }).sync((err?: Error) => {
        if (err) reject(err);
        else {
          if (index > this.lastSyncedIndex) this.lastSyncedIndex = index;
          resolve();
        }
      });
    });
  }

  /** Syncs and closes the environment. */
  async close(): Promise<void> {
    await this.sync();
    await this.dbs.root.close();
  }

  // ---------------------------------------------------------------- requests

  /**
   * Range at a revision (etcd api: KV.Range), seeing this store's committed state (and, inside a batch, its
   * uncommitted writes). @throws EtcdError FutureRev, Compacted.
   */
  range(req: RangeRequest): RangeResponseResult {
    const r = rangeKvs(this.dbs, this.view(), req);
    return { header: hdr(r.revision), kvs: r.kvs, more: r.more, count: r.count };
  }

  /**
   * Put (etcd api: KV.Put). One new main revision.
   * @throws EtcdError EmptyKey, ValueProvided, LeaseProvided, RequestTooLarge (key above the LMDB key limit),
   *   LeaseNotFound, KeyNotFound (ignore_value/ignore_lease on an absent key).
   */
  put(req: PutRequest): PutResult {
    this.checkPut(req, true);
    return this.write(() => {
      this.beginOp();
      const r = this.doPut(req);
      this.endOp();
      this.endMetricsTxn();
      return r;
    });
  }

  /** DeleteRange (etcd api: KV.DeleteRange). New revision only when a key was deleted. @throws EtcdError EmptyKey. */
  deleteRange(req: DeleteRangeRequest): DeleteRangeResult {
    if (!req.key || req.key.length === 0) throw etcdError('EmptyKey');
    return this.write(() => {
      this.beginOp();
      const r = this.doDeleteRange(req);
      this.endOp();
      this.endMetricsTxn();
      return r;
    });
  }

  /**
   * Txn (etcd api: KV.Txn; etcdserver/apply.go Txn): every compare (nested ones included) is evaluated against the
   * state before the txn; the chosen branches run in order with one main revision and increasing sub revisions;
   * later ops see earlier ops' writes. @throws EtcdError (before any write) LeaseNotFound, KeyNotFound,
   * RequestTooLarge, FutureRev, Compacted.
   */
  txn(req: TxnRequest): TxnResult {
    const path: boolean[] = [];
    const isWrite = !isTxnReadonly(req, 0);
    try {
      this.txnChecks(req, path, isWrite);
    } catch (e) {
      this.endMetricsTxn(); // etcd ends the read txn (its compares and checks are counted) before failing
      throw e;
    }
    // A write txn ends the read txn of the compares and opens a write txn (etcd applierV3backend.Txn).
    if (isWrite) this.endMetricsTxn();
    return this.write(() => {
      this.beginOp();
      let cursor = 0;
      const apply = (t: TxnRequest): TxnResult => {
        const ok = path[cursor++]!;
        const ops = (ok ? t.success : t.failure) ?? [];
        const responses: ResponseOp[] = new Array(ops.length);
        for (let i = 0; i < ops.length; i++) responses[i] = this.applyOp(ops[i]!, apply);
        return { header: hdr(0), succeeded: ok, responses };
      };
      const res = apply(req);
      this.endOp();
      this.endMetricsTxn();
      res.header = hdr(this.meta.revision);
      return res;
    });
  }

  /** compareToPath + etcd's checkRequests (puts of the chosen path for write txns, then ranges). */
  private txnChecks(req: TxnRequest, path: boolean[], isWrite: boolean): void {
    this.compareToPath(req, path, 0);
    let cursor = 0;
    // etcd's checkRequests: every put of the chosen path first (write txns only), then every range.
    const check = (t: TxnRequest, puts: boolean): void => {
      const ops = path[cursor++] ? t.success : t.failure;
      for (const op of ops ?? []) {
        if (op.requestTxn) check(op.requestTxn, puts);
        else if (puts && op.requestPut) this.checkPut(op.requestPut, false);
        else if (!puts && op.requestRange) this.checkRange(op.requestRange);
      }
    };
    if (isWrite) check(req, true);
    cursor = 0;
    check(req, false);
  }

  /**
   * Compact (etcd api: KV.Compact; mvcc kvstore.go compact + kvstore_compaction.go): sets the compact revision and
   * physically removes, for every key changed since the previous compaction, its revisions ≤ `revision` except the
   * latest one (which is removed too when it is a tombstone). Done synchronously in the caller's transaction, so
   * `physical` is always honoured. Does not change the store revision.
   * @throws EtcdError Compacted (revision ≤ compact revision), FutureRev (revision > current revision).
   */
  compact(req: CompactionRequest): CompactResult {
    const rev = req.revision ?? 0;
    const compactedBefore = this.meta.compacted === true || this.meta.compactRevision > 0;
    if (rev < this.meta.compactRevision || (compactedBefore && rev === this.meta.compactRevision)) throw etcdError('Compacted');
    if (rev > this.meta.revision) throw etcdError('FutureRev');
    return this.write(() => {
      const prev = this.meta.compactRevision;
      this.meta.scheduledCompactRevision = rev;
      const { timings: t, removed } = compactPhysically(this.dbs, prev, rev);
      this.counters.compactionKeys += removed;
      this.meta.compactRevision = rev;
      this.meta.compacted = true;
      this.onCompaction?.(t);
      return { header: hdr(this.meta.revision) };
    });
  }

  /**
   * LeaseGrant (etcd api: Lease.LeaseGrant; lease/lessor.go Grant). id 0 → a fresh id derived deterministically
   * from `autoIdSeed` (e.g. the entry index), in [1, 2^53). TTL below the minimum is raised to it.
   * @throws EtcdError LeaseTTLTooLarge, LeaseExist; RangeError-free for negative ids (treated as given).
   */
  leaseGrant(req: { ID?: number; TTL?: number }, autoIdSeed = 0): LeaseGrantResult {
    const ttlIn = req.TTL ?? 0;
    if (ttlIn > MAX_LEASE_TTL_SECONDS) throw etcdError('LeaseTTLTooLarge');
    let id = req.ID ?? 0;
    if (id === 0) id = freshLeaseId(this.dbs.lease, autoIdSeed);
    else if (this.dbs.lease.get(id) !== undefined) throw etcdError('LeaseExist');
    const ttl = Math.max(ttlIn, this.minLeaseTtl);
    return this.write(() => {
      this.dbs.lease.putSync(id, { id, ttl, remainingTtl: 0 });
      return { header: hdr(this.meta.revision), ID: id, TTL: ttl, error: '' };
    });
  }

  /**
   * LeaseRevoke (etcd api: Lease.LeaseRevoke; lessor.go Revoke): deletes every attached key in one revision, then
   * the lease. @throws EtcdError LeaseNotFound.
   */
  leaseRevoke(req: { ID?: number }): LeaseRevokeResult {
    const id = req.ID ?? 0;
    if (this.dbs.lease.get(id) === undefined) throw etcdError('LeaseNotFound');
    return this.write(() => {
      const keys = attachedEntries(this.dbs, id);
      this.beginOp();
      for (const k of keys) {
        const key = k.subarray(8);
        this.cur.deletes++; // etcd lessor.Revoke: one txn.DeleteRange per attached key
        if (this.dbs.kv.get(key) !== undefined) this.deleteKey(key);
        this.dbs.leaseKeys.removeSync(k);
      }
      this.endOp();
      this.endMetricsTxn();
      this.dbs.lease.removeSync(id);
      return { header: hdr(this.meta.revision) };
    });
  }

  /**
   * LeaseCheckpoint (etcd lessor.go Checkpoint): records a lease's remaining TTL (seconds; 0 clears it). A lease
   * revoked since the checkpoint was proposed is skipped, as etcd does.
   */
  leaseCheckpoint(id: number, remainingTtl: number): void {
    const l = this.dbs.lease.get(id);
    if (l === undefined) return;
    this.write(() => this.dbs.lease.putSync(id, { ...l, remainingTtl }));
  }

  /** The raised alarms, in the order they were raised (src/mvcc/alarm-store.ts). */
  alarms(): AlarmMember[] {
    return readAlarms(this.dbs);
  }

  /** Raises `alarm` for `memberID` (etcd AlarmStore.Activate). @returns the stored member and whether it is new. */
  activateAlarm(memberID: number, alarm: number): { member: AlarmMember; added: boolean } {
    return activateAlarm(this.dbs, (fn) => this.write(fn), memberID, alarm);
  }

  /** Clears `alarm` of `memberID` (etcd AlarmStore.Deactivate). @returns the removed member, or null. */
  deactivateAlarm(memberID: number, alarm: number): AlarmMember | null {
    return deactivateAlarm(this.dbs, (fn) => this.write(fn), memberID, alarm);
  }

  /**
   * The auth store's record (src/auth/store.ts AuthRecord, opaque here), persisted in the `meta` db under AUTH_KEY
   * in the same transaction as the entry that changed it (etcd: the `auth`, `authUsers`, `authRoles` buckets).
   */
  authRecord(): unknown {
    return (this.dbs.meta as unknown as { get(k: string): unknown }).get(AUTH_KEY);
  }

  /** Replaces the auth record (see authRecord). */
  putAuthRecord(record: unknown): void {
    this.write(() => (this.dbs.meta as unknown as { putSync(k: string, v: unknown): void }).putSync(AUTH_KEY, record));
  }

  /** A stored lease, or undefined. */
  lease(id: number): LeaseRecord | undefined {
    return this.dbs.lease.get(id);
  }

  /** Keys attached to a lease, in key order. */
  leaseKeys(id: number): Buffer[] {
    return attachedEntries(this.dbs, id).map((k) => k.subarray(8));
  }

  // ---------------------------------------------------------------- internals

  private view(): { revision: number; compactRevision: number } {
    const revision = this.inOp ? this.beginRev + (this.changes > 0 ? 1 : 0) : this.meta.revision;
    return { revision, compactRevision: this.meta.compactRevision };
  }

  private beginOp(): void {
    this.inOp = true;
    this.beginRev = this.meta.revision;
    this.changes = 0;
  }

  private endOp(): void {
    if (this.changes > 0) this.meta.revision = this.beginRev + 1;
    this.inOp = false;
  }

  private write<T>(fn: () => T): T {
    if (this.inTxn) return fn();
    return this.batch(fn);
  }

  private checkRange(r: RangeRequest): void {
    const rev = r.revision ?? 0;
    if (rev === 0) return;
    if (rev > this.meta.revision) throw etcdError('FutureRev');
    if (rev < this.meta.compactRevision) throw etcdError('Compacted');
  }

  /** etcd's checkPutRequest (API) + checkRequestPut / Put's lease check (apply), against the current state. */
  private checkPut(p: PutRequest, standalone: boolean): void {
    const key = asBuffer(p.key);
    if (key.length === 0) throw etcdError('EmptyKey');
    if (p.ignoreValue && p.value && p.value.length !== 0) throw etcdError('ValueProvided');
    if (p.ignoreLease && p.lease) throw etcdError('LeaseProvided');
    if (escapedLength(key) > MAX_ESCAPED_KEY_BYTES) throw etcdError('RequestTooLarge');
    const leaseCheck = (): void => {
      if (p.lease && this.dbs.lease.get(p.lease) === undefined) throw etcdError('LeaseNotFound');
    };
    if (standalone) leaseCheck();
    if (p.ignoreValue || p.ignoreLease) {
      // etcd reads the previous kv: inside a txn in checkRequestPut, standalone in Put itself (counted in doPut,
      // or here when it fails: the Put's txn ends with that one range).
      this.cur.ranges++;
      if (this.dbs.kv.get(asBuffer(key)) === undefined) {
        if (standalone) this.endMetricsTxn();
        throw etcdError('KeyNotFound');
      }
      if (standalone) this.cur.ranges--;
    }
    if (!standalone) leaseCheck();
  }

  /** Writes one put at (beginRev+1, changes); validation already done. */
  private doPut(p: PutRequest): PutResult {
    const key = asBuffer(p.key);
    const prev = this.dbs.kv.get(key);
    const main = this.beginRev + 1;
    const sub = this.changes++;
    let value: Uint8Array = p.value ?? EMPTY;
    let lease = p.lease ?? 0;
    let createRev = main;
    let version = 1;
    let oldLease = 0;
    let prevKv: KeyValue | undefined;
    if (prev !== undefined) {
      prevKv = decodeRecord(prev);
      createRev = prevKv.createRevision;
      version = prevKv.version + 1;
      oldLease = prevKv.lease;
      if (p.ignoreValue) value = prevKv.value;
      if (p.ignoreLease) lease = prevKv.lease;
    }
    if (p.ignoreValue || p.ignoreLease || p.prevKv) this.cur.ranges++;
    this.cur.puts++;
    this.cur.putBytes += key.length + value.length;
    if (prev === undefined) this.counters.keys++;
    const rec = encodeRecord(0, createRev, main, version, lease, key, value);
    this.dbs.rev.putSync(revKey(main, sub), rec);
    this.eventSink?.push(rec);
    this.dbs.hist.putSync(histKey(key, main, sub), LIVE_FLAGS);
    this.dbs.kv.putSync(key, rec);
    if (oldLease !== lease) {
      if (oldLease !== 0) this.dbs.leaseKeys.removeSync(leaseKeyEntry(oldLease, key));
      if (lease !== 0) this.dbs.leaseKeys.putSync(leaseKeyEntry(lease, key), EMPTY);
    }
    return { header: hdr(main), prevKv: p.prevKv ? prevKv : undefined };
  }

  private doDeleteRange(d: DeleteRangeRequest): DeleteRangeResult {
    const key = asBuffer(d.key);
    const end = rangeEndOf(d.rangeEnd);
    const victims: Buffer[] = [];
    if (end === null) {
      const rec = key.length > 0 ? this.dbs.kv.get(key) : undefined;
      if (rec !== undefined) victims.push(rec);
    } else if (end.length === 0 || Buffer.compare(key, end) < 0) {
      for (const e of this.dbs.kv.getRange({ start: key, end: end.length > 0 ? asBuffer(end) : undefined })) victims.push(e.value);
    }
    if (d.prevKv) this.cur.ranges++;
    this.cur.deletes++;
    const prevKvs: KeyValue[] = d.prevKv ? victims.map((r) => decodeRecord(r)) : [];
    for (const rec of victims) this.deleteKey(recordKey(rec), recordLease(rec));
    const revision = victims.length > 0 || this.changes > 0 ? this.beginRev + 1 : this.beginRev;
    return { header: hdr(revision), deleted: victims.length, prevKvs };
  }

  /** Writes a tombstone for a live key at (beginRev+1, changes) and detaches its lease. */
  private deleteKey(key: Buffer, leaseId?: number): void {
    const lease = leaseId ?? recordLease(this.dbs.kv.get(key)!);
    const main = this.beginRev + 1;
    const sub = this.changes++;
    const tomb = encodeRecord(FLAG_TOMBSTONE, 0, main, 0, 0, key, EMPTY);
    this.dbs.rev.putSync(revKey(main, sub), tomb);
    this.eventSink?.push(tomb);
    this.dbs.hist.putSync(histKey(key, main, sub), TOMBSTONE_FLAGS);
    this.dbs.kv.removeSync(key);
    this.counters.keys--;
    if (lease !== 0) this.dbs.leaseKeys.removeSync(leaseKeyEntry(lease, key));
  }

  private applyOp(op: RequestOp, nested: (t: TxnRequest) => TxnResult): ResponseOp {
    if (op.requestRange) {
      this.cur.ranges++;
      const r: RangeResult = rangeKvs(this.dbs, this.view(), op.requestRange);
      return { responseRange: { header: hdr(r.revision), kvs: r.kvs, more: r.more, count: r.count } };
    }
    if (op.requestPut) {
      const r = this.doPut(op.requestPut);
      return { responsePut: { header: r.header, prevKv: r.prevKv ?? null } };
    }
    if (op.requestDeleteRange) return { responseDeleteRange: this.doDeleteRange(op.requestDeleteRange) };
    if (op.requestTxn) return { responseTxn: nested(op.requestTxn) };
    return {};
  }

  /** etcd's compareToPath: the chosen branch of this txn and of every nested txn on it, depth first. */
  private compareToPath(t: TxnRequest, path: boolean[], depth: number): void {
    if (depth > MAX_TXN_DEPTH) throw etcdError('TooManyOps');
    const view = this.view();
    let ok = true;
    for (const c of t.compare ?? []) {
      this.cur.ranges++; // etcd applyCompare: one rv.Range per compare evaluated
      const r = rangeKvs(this.dbs, view, {
        key: c.key ?? EMPTY, rangeEnd: c.rangeEnd ?? EMPTY, limit: 0, revision: 0, sortOrder: 0, sortTarget: 0,
        serializable: false, keysOnly: false, countOnly: false, minModRevision: 0, maxModRevision: 0,
        minCreateRevision: 0, maxCreateRevision: 0,
      });
      if (!compareRange(c, r.kvs)) { ok = false; break; }
    }
    path.push(ok);
    for (const op of (ok ? t.success : t.failure) ?? []) if (op.requestTxn) this.compareToPath(op.requestTxn, path, depth + 1);
  }


}

/** etcd's isTxnReadonly: no put/delete in any branch, nested ones included. */
export function isTxnReadonly(t: TxnRequest, depth: number): boolean {
  if (depth > MAX_TXN_DEPTH) return false;
  for (const ops of [t.success ?? [], t.failure ?? []]) {
    for (const op of ops) {
      if (op.requestPut || op.requestDeleteRange) return false;
      if (op.requestTxn && !isTxnReadonly(op.requestTxn, depth + 1)) return false;
    }
  }
  return true;
}
