/**
 * Builds an MVCC store (src/mvcc/LAYOUT.md) from an etcd 3.4 backend file (a snapshot saved from etcd or from
 * etcetera): every revision of the `key` bucket with its create/mod revision, version and lease, the compact
 * revision from `meta`, and the leases of the `lease` bucket with their granted TTL (etcd's restore also starts
 * remaining TTLs afresh), the auth store (users, roles, enabled, auth revision) and the raised alarms, which etcd's
 * restore keeps as they are. Membership buckets are not read: a restore gets the membership of its flags.
 *
 * Bounded memory: the bucket is read a page at a time (src/bbolt/reader.ts) and written to LMDB in write
 * transactions of IMPORT_BATCH entries.
 */
import type { BoltReader } from '../bbolt';
import { AUTH_KEY } from '../mvcc/store';
import { ALARMS_KEY, type AlarmMember } from '../mvcc/alarm-store';
import { authRecordOf } from './auth-buckets';
import { EMPTY, encodeRecord, FLAG_TOMBSTONE, histKey, leaseKeyEntry, MAX_ESCAPED_KEY_BYTES, escapedLength, recordLease, recordKey, revKey } from '../mvcc/encoding';
import { initialMeta, META_KEY, type MvccDbs, type MvccMeta } from '../mvcc/env';
import { decodeAlarmMember, decodeKeyValue, decodeLease, parseBoltRevKey, readU64be, type U64 } from './etcd-schema';

/** Entries per LMDB write transaction: large enough to amortise commits, small enough to bound dirty pages. */
export const IMPORT_BATCH = 10_000;
/** Bytes of records held for one write transaction before it is committed (whichever limit comes first). */
export const IMPORT_BATCH_BYTES = 16 * 1024 * 1024;

/** A snapshot that cannot become an etcetera store; the message names the offending entry. */
export class SnapshotImportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotImportError';
  }
}

/** What was imported. */
export interface ImportResult {
  revision: number;
  compactRevision: number;
  revisions: number;
  keys: number;
  leases: number;
  /** [old hex ID, new hex ID] of every lease given a new ID (--remap-lease-ids). */
  remappedLeaseIds: Array<[string, string]>;
}

const LIVE = Buffer.from([0]);
const TOMB = Buffer.from([FLAG_TOMBSTONE]);

function safe(v: U64, what: string): number {
  if (typeof v === 'bigint') throw new SnapshotImportError(`${what} is beyond 2^53-1: etcetera keeps revisions and versions as exact doubles`);
  return v;
}

const ID_MASK = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Lease IDs of the new store. etcetera keeps lease IDs below 2^53 (exact doubles) while etcd grants IDs up to 2^63
 * (its member-ID prefix usually puts them above 2^53). Without `remap`, such an ID refuses the restore; with it,
 * each large ID gets its low 53 bits (the next free value on a collision), assigned in lease-bucket order then
 * key-bucket order — deterministic, so every member restored from the same file gets the same IDs.
 */
class LeaseIds {
  private readonly map = new Map<bigint, number>();
  private readonly used = new Set<number>();
  constructor(private readonly remap: boolean) {}

  reserve(id: number): void {
    this.used.add(id);
  }

  of(v: U64, what: string): number {
    if (typeof v === 'number') return v;
    const known = this.map.get(v);
    if (known !== undefined) return known;
    if (!this.remap) {
      throw new SnapshotImportError(
        `${what} ${v.toString(16)} is beyond 2^53-1: etcetera keeps lease IDs below 2^53 (restore with --remap-lease-ids to give such leases new IDs)`,
      );
    }
    let id = Number(v & ID_MASK);
    while (id === 0 || this.used.has(id)) id = id >= Number.MAX_SAFE_INTEGER ? 1 : id + 1;
    this.used.add(id);
    this.map.set(v, id);
    return id;
  }

  /** Old (hex) → new (hex) for every remapped ID. */
  remapped(): Array<[string, string]> {
    return [...this.map].map(([a, b]) => [a.toString(16), b.toString(16)]);
  }
}

/**
 * Imports the backend file `reader` into the empty store `dbs`, with `consistentIndex`/`term` as the store's applied
 * position (the Raft log of the restored member starts there).
 * @throws SnapshotImportError on content etcetera cannot represent (a value beyond 2^53, a key too long for LMDB),
 *   BoltFormatError on a damaged file, RangeError on a malformed protobuf value.
 */
export function importBackend(reader: BoltReader, dbs: MvccDbs, at: { consistentIndex: number; term: number; remapLeaseIds?: boolean }): ImportResult {
  const keyBucket = reader.bucket('key');
  const metaBucket = reader.bucket('meta');
  if (keyBucket === null || metaBucket === null) throw new SnapshotImportError('not an etcd backend: bucket "key" or "meta" missing');
  const leaseBucket = reader.bucket('lease');
  const ids = new LeaseIds(at.remapLeaseIds === true);
  // Small IDs first, so a remapped ID never takes one that exists.
  if (leaseBucket !== null) {
    for (const e of reader.entries(leaseBucket)) {
      const id = decodeLease(e.value).id;
      if (typeof id === 'number') ids.reserve(id);
    }
  }

  let lastMain = 0;
  let revisions = 0;
  let batch: Array<() => void> = [];
  let batchBytes = 0;
  const flush = (): void => {
    if (batch.length === 0) return;
    const ops = batch;
    batch = [];
    batchBytes = 0;
    dbs.root.transactionSync(() => {
      for (const op of ops) op();
    });
  };

  for (const e of reader.entries(keyBucket)) {
    const rev = parseBoltRevKey(e.key);
    if (rev === null) throw new SnapshotImportError(`key bucket: malformed revision key ${e.key.toString('hex')}`);
    if (rev.main < lastMain) throw new SnapshotImportError('key bucket: revisions out of order');
    lastMain = rev.main;
    const kv = decodeKeyValue(e.value);
    const key = Buffer.from(kv.key);
    if (key.length === 0) throw new SnapshotImportError(`key bucket: revision ${rev.main}_${rev.sub} has an empty key`);
    if (escapedLength(key) > MAX_ESCAPED_KEY_BYTES) {
      throw new SnapshotImportError(`key of ${key.length} bytes at revision ${rev.main}: longer than etcetera's key limit`);
    }
    const hk = histKey(key, rev.main, rev.sub);
    const rk = revKey(rev.main, rev.sub);
    if (rev.tombstone) {
      const rec = encodeRecord(FLAG_TOMBSTONE, 0, rev.main, 0, 0, key, EMPTY);
      batch.push(() => {
        dbs.rev.putSync(rk, rec);
        dbs.hist.putSync(hk, TOMB);
        dbs.kv.removeSync(key);
      });
    } else {
      const where = `revision ${rev.main}_${rev.sub}`;
      const rec = encodeRecord(0, safe(kv.createRevision, `create_revision at ${where}`), safe(kv.modRevision, `mod_revision at ${where}`),
        safe(kv.version, `version at ${where}`), ids.of(kv.lease, `lease ID at ${where}`), key, Buffer.from(kv.value));
      batch.push(() => {
        dbs.rev.putSync(rk, rec);
        dbs.hist.putSync(hk, LIVE);
        dbs.kv.putSync(key, rec);
      });
    }
    revisions++;
    batchBytes += e.key.length + e.value.length;
    if (batch.length >= IMPORT_BATCH || batchBytes >= IMPORT_BATCH_BYTES) flush();
  }
  flush();

  let leases = 0;
  const leaseIds = new Set<number>();
  if (leaseBucket !== null) {
    for (const e of reader.entries(leaseBucket)) {
      const l = decodeLease(e.value);
      const id = ids.of(l.id, 'lease ID');
      const ttl = safe(l.ttl, `TTL of lease ${id.toString(16)}`);
      leaseIds.add(id);
      batch.push(() => dbs.lease.putSync(id, { id, ttl, remainingTtl: 0 }));
      leases++;
      if (batch.length >= IMPORT_BATCH) flush();
    }
    flush();
  }

  // Keys attached to a lease: the current view after every revision was applied (a key naming a lease the
  // snapshot does not hold stays unattached, as etcd's restore ignores a failed attach).
  let keys = 0;
  for (const { value: rec } of dbs.kv.getRange({})) {
    keys++;
    const lease = recordLease(rec);
    if (lease !== 0 && leaseIds.has(lease)) {
      const entry = leaseKeyEntry(lease, Buffer.from(recordKey(rec)));
      batch.push(() => dbs.leaseKeys.putSync(entry, EMPTY));
      if (batch.length >= IMPORT_BATCH) flush();
    }
  }
  flush();

  let finished = -1;
  let scheduled = -1;
  for (const e of reader.entries(metaBucket)) {
    const name = e.key.toString('latin1');
    if (name === 'finishedCompactRev' || name === 'scheduledCompactRev') {
      const r = parseBoltRevKey(e.value);
      if (r === null) throw new SnapshotImportError(`meta bucket: malformed ${name}`);
      if (name === 'finishedCompactRev') finished = r.main;
      else scheduled = r.main;
    } else if (name === 'consistent_index' && (e.value.length !== 8 || readU64be(e.value, 0) === null)) {
      throw new SnapshotImportError('meta bucket: malformed consistent_index');
    }
  }
  const compacted = finished >= 0;
  // etcd's restore: the current revision is the last revision stored, or the compact revision when larger.
  const revision = Math.max(lastMain, compacted ? finished : 0, 1);
  const meta: MvccMeta = {
    ...initialMeta(),
    revision,
    compactRevision: compacted ? finished : 0,
    compacted,
    scheduledCompactRevision: Math.max(scheduled, finished, 0),
    consistentIndex: at.consistentIndex,
    term: at.term,
  };
  // etcd's restore keeps the auth and alarm buckets as they are (a NOSPACE alarm stays raised after a restore).
  const entries = (name: string): Array<{ key: Buffer; value: Buffer }> => {
    const b = reader.bucket(name);
    return b === null ? [] : [...reader.entries(b)].map((e) => ({ key: Buffer.from(e.key), value: Buffer.from(e.value) }));
  };
  const auth = authRecordOf(entries('auth'), entries('authUsers'), entries('authRoles'));
  const alarms: AlarmMember[] = entries('alarm').map((e) => decodeAlarmMember(e.key));
  dbs.root.transactionSync(() => {
    dbs.meta.putSync(META_KEY, meta);
    (dbs.meta as unknown as { putSync(k: string, v: unknown): void }).putSync(AUTH_KEY, auth);
    if (alarms.length > 0) (dbs.meta as unknown as { putSync(k: string, v: unknown): void }).putSync(ALARMS_KEY, alarms);
  });
  return { revision, compactRevision: meta.compactRevision, revisions, keys, leases, remappedLeaseIds: ids.remapped() };
}
