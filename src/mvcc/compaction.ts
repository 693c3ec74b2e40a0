/**
 * Physical compaction of the MVCC history (etcd mvcc: kvstore_compaction.go): after a compaction at revision `rev`,
 * superseded revisions are removed from the `rev` and `hist` dbs in chunks of COMPACT_CHUNK_REVISIONS.
 */
import { FLAG_TOMBSTONE, histKey, histKeyFloor, parseHistKey, recordKey, revKey } from './encoding';
import type { MvccDbs } from './env';
import { MAX_SUB } from './range';

/** Revisions collected per chunk while compacting (bounds the memory of one pass). */
export const COMPACT_CHUNK_REVISIONS = 10_000;

/** Durations (whole ms, as etcd observes them) of one compaction. */
export interface CompactionTimings { indexPauseMs: number; dbPauseMs: number; totalMs: number }

/**
 * Removes superseded revisions in (prevCompact, rev] and earlier ones of the keys changed there: for each such
 * key, every history entry ≤ rev except the latest, and the latest too when it is a tombstone. Runs inside the
 * caller's write transaction. Returns the phase durations and the number of revision records removed.
 */
export function compactPhysically(dbs: Pick<MvccDbs, 'rev' | 'hist'>, prevCompact: number, rev: number): { timings: CompactionTimings; removed: number } {
  const t0 = Date.now();
  const touched = new Map<string, Buffer>();
  let start: Buffer = revKey(prevCompact + 1, 0);
  const end = revKey(rev, MAX_SUB);
  for (;;) {
    let n = 0;
    let last: Buffer | undefined;
    for (const e of dbs.rev.getRange({ start, end, inclusiveEnd: true, limit: COMPACT_CHUNK_REVISIONS })) {
      const k = recordKey(e.value);
      touched.set(k.toString('latin1'), k);
      last = e.key;
      n++;
    }
    if (n < COMPACT_CHUNK_REVISIONS || last === undefined) break;
    start = Buffer.concat([last, Buffer.from([0])]);
  }
  const t1 = Date.now();
  let removed = 0;
  for (const key of touched.values()) {
    const entries: Array<{ h: Buffer; tomb: boolean }> = [];
    for (const e of dbs.hist.getRange({ start: histKeyFloor(key), end: histKey(key, rev, MAX_SUB), inclusiveEnd: true })) {
      entries.push({ h: e.key, tomb: (e.value[0]! & FLAG_TOMBSTONE) !== 0 });
    }
    const keepLast = entries.length > 0 && !entries[entries.length - 1]!.tomb;
    const removeCount = keepLast ? entries.length - 1 : entries.length;
    for (let i = 0; i < removeCount; i++) {
      const p = parseHistKey(entries[i]!.h);
      dbs.hist.removeSync(entries[i]!.h);
      dbs.rev.removeSync(revKey(p.main, p.sub));
    }
    removed += removeCount;
  }
  const t2 = Date.now();
  // etcd: the index compaction (finding what to remove) and the db compaction (removing it) are timed apart; here
  // both run in the caller's transaction, so the db pause and the total are the removal phase and the whole.
  return { timings: { indexPauseMs: t1 - t0, dbPauseMs: t2 - t1, totalMs: t2 - t0 }, removed };
}
