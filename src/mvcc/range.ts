/**
 * Range over the MVCC databases at a revision: etcd's KV.Range semantics (etcd api: KV.Range; etcdserver/apply.go
 * applierV3backend.Range + mvcc/kvstore_txn.go rangeKeys), shared by the writer (inside its write transaction,
 * seeing its own writes) and the main-thread reader (inside one read transaction).
 *
 * - revision 0 = the view's revision; > view revision → FutureRev; < compact revision → Compacted.
 * - range_end: empty = the single key; "\0" = every key ≥ key; otherwise [key, range_end).
 * - count = number of keys in the range at the revision, before min/max filters and limit (etcd's rr.Count).
 * - limit: with sort_order NONE and no filters, etcd fetches limit+1 keys in key order, then sorts that slice when
 *   sort_target ≠ KEY (default ASCEND); otherwise everything is fetched, filtered, sorted, then truncated.
 *   `more` = more keys than limit were left after filtering.
 * - header revision = the view's current revision (not the requested one), like etcd.
 */
import type { KeyValue, RangeRequest } from '../wire/codec';
import { etcdError } from '../errors';
import {
  asBuffer, compareBytes, decodeRecord, LMDB_MAX_KEY_BYTES, EMPTY, histKey, histKeyCeil, histKeyFloor, parseHistKey, revKey, FLAG_TOMBSTONE,
} from './encoding';
import type { MvccDbs } from './env';

/** etcd api: RangeRequest.SortOrder. */
export const SortOrder = { NONE: 0, ASCEND: 1, DESCEND: 2 } as const;
/** etcd api: RangeRequest.SortTarget. */
export const SortTarget = { KEY: 0, VERSION: 1, CREATE: 2, MOD: 3, VALUE: 4 } as const;

/** Largest sub revision (u32): a history key sorting after every write of one main revision. */
export const MAX_SUB = 0xffffffff;
/** Safety bound on keys visited by one historical walk (far above any real store). */
export const MAX_RANGE_KEYS = 1 << 30;

/** What a range reads against: the view's revision and the store's compact revision. */
export interface RangeView {
  /** The revision the `kv` db currently reflects (store revision, or a write txn's revision after its writes). */
  revision: number;
  /** Compact revision: requested revisions below it fail with Compacted. */
  compactRevision: number;
}

/** Result of a range without the header (the caller adds cluster/member/term). */
export interface RangeResult {
  kvs: KeyValue[];
  more: boolean;
  /** Keys in the range at the revision, before filters and limit. */
  count: number;
  /** Header revision: the view's revision. */
  revision: number;
}

/**
 * etcd's mkGteRange + the single-key case: null = exactly `key`; EMPTY = every key ≥ key; else the exclusive end.
 */
export function rangeEndOf(rangeEnd: Uint8Array | undefined | null): Uint8Array | null {
  if (!rangeEnd || rangeEnd.length === 0) return null;
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return EMPTY;
  return rangeEnd;
}

/** A live key at a revision found in the history index. */
interface LiveRev {
  main: number;
  sub: number;
}

/**
 * Checks a requested revision against the view and returns the revision to read at.
 * @throws EtcdError FutureRev (rev > view revision) or Compacted (rev < compact revision).
 */
export function resolveRevision(view: RangeView, rev: number): number {
  if (rev > view.revision) throw etcdError('FutureRev');
  const at = rev <= 0 ? view.revision : rev;
  if (at < view.compactRevision) throw etcdError('Compacted');
  return at;
}

/**
 * The latest revision of `key` at or below `atRev` in the history index, or null if absent/deleted at atRev.
 * Must run inside an LMDB transaction of the caller's choosing (the implicit one is fine for a single call).
 */
export function liveRevOf(dbs: MvccDbs, key: Uint8Array, atRev: number): LiveRev | null {
  for (const e of dbs.hist.getRange({ start: histKey(key, atRev, MAX_SUB), end: histKeyFloor(key), reverse: true, limit: 1 })) {
    if ((e.value[0]! & FLAG_TOMBSTONE) !== 0) return null;
    const h = e.key;
    const off = h.length - 12;
    return { main: readMainAt(h, off), sub: h.readUInt32BE(off + 8) };
  }
  return null;
}

function readMainAt(b: Buffer, off: number): number {
  return b.readUInt32BE(off) * 0x1_0000_0000 + b.readUInt32BE(off + 4);
}

/**
 * Every key live at `atRev` in [key, end) (end EMPTY = unbounded) with its revision, in key order, from the
 * history index: one forward seek to find the next key, one reverse seek to find its revision ≤ atRev.
 */
export function liveKeysAt(dbs: MvccDbs, key: Uint8Array, end: Uint8Array, atRev: number, limit = 0): Array<LiveRev & { key: Buffer }> {
  const out: Array<LiveRev & { key: Buffer }> = [];
  const endBound = end.length > 0 ? histKeyFloor(end) : undefined;
  let low = histKeyFloor(key);
  for (let visited = 0; visited < MAX_RANGE_KEYS; visited++) {
    let first: Buffer | undefined;
    for (const e of dbs.hist.getRange({ start: low, end: endBound, limit: 1 })) first = e.key;
    if (first === undefined) break;
    const p = parseHistKey(first);
    low = histKeyCeil(p.key);
    if (p.main > atRev) continue; // the key's oldest stored revision is newer than atRev
    const live = liveRevOf(dbs, p.key, atRev);
    if (live !== null) {
      out.push({ key: p.key, main: live.main, sub: live.sub });
      if (limit > 0 && out.length >= limit) break;
    }
  }
  return out;
}

/**
 * Runs a RangeRequest against `dbs` in the caller's current LMDB transaction.
 * @param view the view's revision/compact revision; when the requested revision equals view.revision the `kv` db
 *   (current state) is read, otherwise the history index.
 * @throws EtcdError FutureRev / Compacted (see resolveRevision).
 */
export function rangeKvs(dbs: MvccDbs, view: RangeView, req: RangeRequest): RangeResult {
  const atRev = resolveRevision(view, req.revision ?? 0);
  const key = asBuffer(req.key);
  const end = rangeEndOf(req.rangeEnd);
  const limit = req.limit > 0 ? req.limit : 0;
  const sortOrder = req.sortOrder ?? SortOrder.NONE;
  const sortTarget = req.sortTarget ?? SortTarget.KEY;
  const filtered = !!(req.minModRevision || req.maxModRevision || req.minCreateRevision || req.maxCreateRevision);
  // etcd sorts before it strips values for keys_only, so a VALUE sort needs the values even then.
  const stripAfterSort = !!req.keysOnly && sortTarget === SortTarget.VALUE;
  const keysOnly = !!req.keysOnly && !stripAfterSort;
  const current = atRev === view.revision;

  if (end !== null && end.length > 0 && compareBytes(key, end) >= 0) return { kvs: [], more: false, count: 0, revision: view.revision };

  // Fast path: DESCEND by key without filters is a reverse scan of limit+1 keys.
  const reverseScan = current && end !== null && limit > 0 && !filtered && sortOrder === SortOrder.DESCEND && sortTarget === SortTarget.KEY;
  const fetchLimit = reverseScan ? limit + 1 : sortOrder !== SortOrder.NONE || filtered ? 0 : limit > 0 ? limit + 1 : 0;

  let kvs: KeyValue[];
  let count: number;
  if (current) {
    if (end === null) {
      const rec = key.length > 0 && key.length <= LMDB_MAX_KEY_BYTES ? dbs.kv.get(asBuffer(key)) : undefined;
      count = rec ? 1 : 0;
      kvs = rec && !req.countOnly ? [decodeRecord(rec, keysOnly)] : [];
    } else {
      const start = asBuffer(key);
      const stop = end.length > 0 ? asBuffer(end) : undefined;
      if (req.countOnly) {
        return { kvs: [], more: false, count: dbs.kv.getCount({ start, end: stop }), revision: view.revision };
      }
      kvs = [];
      const it = reverseScan
        ? dbs.kv.getRange({ start: stop, end: start, reverse: true, exclusiveStart: true, inclusiveEnd: true, limit: fetchLimit })
        : dbs.kv.getRange({ start, end: stop, limit: fetchLimit > 0 ? fetchLimit : undefined });
      for (const e of it) kvs.push(decodeRecord(e.value, keysOnly));
      count = fetchLimit > 0 && kvs.length >= fetchLimit ? dbs.kv.getCount({ start, end: stop }) : kvs.length;
    }
  } else {
    const live = end === null
      ? ((): Array<LiveRev & { key: Buffer }> => {
          const r = liveRevOf(dbs, key, atRev);
          return r ? [{ key: Buffer.from(key), main: r.main, sub: r.sub }] : [];
        })()
      : liveKeysAt(dbs, key, end, atRev);
    count = live.length;
    if (req.countOnly) return { kvs: [], more: false, count, revision: view.revision };
    const n = fetchLimit > 0 ? Math.min(fetchLimit, live.length) : live.length;
    kvs = new Array<KeyValue>(n);
    for (let i = 0; i < n; i++) {
      const l = live[i]!;
      const rec = dbs.rev.get(revKey(l.main, l.sub));
      if (!rec) throw new Error(`mvcc: revision ${l.main}.${l.sub} of an indexed key is missing (corrupt store)`);
      kvs[i] = decodeRecord(rec, keysOnly);
    }
  }

  if (filtered) kvs = applyFilters(kvs, req);
  if (!reverseScan) sortKvs(kvs, sortOrder, sortTarget);
  let more = false;
  if (limit > 0 && kvs.length > limit) {
    kvs.length = limit;
    more = true;
  }
  if (stripAfterSort) for (const kv of kvs) kv.value = EMPTY_VALUE;
  return { kvs, more, count, revision: view.revision };
}

/** The value of a keys_only result. */
const EMPTY_VALUE: Buffer = Buffer.alloc(0);

/** etcd's pruneKVs for the four min/max revision filters (0 = no bound). */
function applyFilters(kvs: KeyValue[], r: RangeRequest): KeyValue[] {
  return kvs.filter(
    (kv) =>
      !(r.maxModRevision && kv.modRevision > r.maxModRevision) &&
      !(r.minModRevision && kv.modRevision < r.minModRevision) &&
      !(r.maxCreateRevision && kv.createRevision > r.maxCreateRevision) &&
      !(r.minCreateRevision && kv.createRevision < r.minCreateRevision),
  );
}

/** Sorts in place like etcd: NONE with a non-KEY target means ASCEND; NONE/KEY keeps key order. Stable. */
export function sortKvs(kvs: KeyValue[], order: number, target: number): void {
  let o = order;
  if (target !== SortTarget.KEY && o === SortOrder.NONE) o = SortOrder.ASCEND;
  if (o === SortOrder.NONE || kvs.length < 2) return;
  let cmp: (a: KeyValue, b: KeyValue) => number;
  switch (target) {
    case SortTarget.VERSION: cmp = (a, b) => a.version - b.version; break;
    case SortTarget.CREATE: cmp = (a, b) => a.createRevision - b.createRevision; break;
    case SortTarget.MOD: cmp = (a, b) => a.modRevision - b.modRevision; break;
    case SortTarget.VALUE: cmp = (a, b) => compareBytes(a.value, b.value); break;
    default: cmp = (a, b) => compareBytes(a.key, b.key);
  }
  if (o === SortOrder.DESCEND) kvs.sort((a, b) => cmp(b, a));
  else kvs.sort(cmp);
}
