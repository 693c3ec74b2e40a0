/**
 * Key-range arithmetic of etcd's permission checks (etcd auth: range_perm_cache.go over pkg/adt's interval tree of
 * "bytes affine" intervals). An interval is [begin, end) over byte strings, `end === null` meaning "to the end of
 * the keyspace"; a single key k is [k, k + "\0").
 *
 * The checks are answered from a sorted list rather than a tree: a user's permissions are few (tens), and the
 * list is rebuilt only when the auth store changes.
 */

/** [begin, end); end null = +infinity. */
export interface KeyInterval { readonly begin: Uint8Array; readonly end: Uint8Array | null }

function cmp(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/** Compares two interval ends, null (= +infinity) being the largest. */
function cmpEnd(a: Uint8Array | null, b: Uint8Array | null): number {
  if (a === null) return b === null ? 0 : 1;
  if (b === null) return -1;
  return cmp(a, b);
}

const ZERO = Uint8Array.of(0);

/** The interval of a single key: [k, k + "\0"). */
export function pointInterval(key: Uint8Array): KeyInterval {
  const end = new Uint8Array(key.length + 1);
  end.set(key);
  return { begin: key, end };
}

/**
 * The interval a permission or request names (etcd adt.NewBytesAffineInterval / NewBytesAffinePoint):
 * an empty `rangeEnd` is the single key; `"\0"` is "from key to the end".
 */
export function intervalOf(key: Uint8Array, rangeEnd: Uint8Array | null | undefined): KeyInterval {
  if (rangeEnd === null || rangeEnd === undefined || rangeEnd.length === 0) return pointInterval(key);
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { begin: key, end: null };
  return { begin: key, end: rangeEnd };
}

/**
 * A set of permitted intervals (one per permission type of one user), sorted by begin as etcd's interval tree
 * visits them.
 */
export class IntervalSet {
  private readonly ivls: KeyInterval[];

  constructor(ivls: KeyInterval[]) {
    this.ivls = [...ivls].sort((a, b) => cmp(a.begin, b.begin));
  }

  /** True when no interval is in the set. */
  get empty(): boolean {
    return this.ivls.length === 0;
  }

  /** etcd adt IntervalTree.Intersects(point): some interval holds `key`. */
  containsKey(key: Uint8Array): boolean {
    for (const i of this.ivls) {
      if (cmp(i.begin, key) > 0) return false; // sorted by begin: no later interval can start at or before key
      if (i.end === null || cmp(key, i.end) < 0) return true;
    }
    return false;
  }

  /**
   * etcd adt IntervalTree.Contains(ivl): the intervals overlapping `q`, visited in begin order, are contiguous
   * and together reach from at most q.begin to at least q.end.
   */
  covers(q: KeyInterval): boolean {
    let minBegin: Uint8Array | null = null;
    let maxEnd: Uint8Array | null = null;
    for (const i of this.ivls) {
      // Overlap as adt defines it: i.begin < q.end && q.begin < i.end.
      if (!(cmpEnd(i.begin, q.end) < 0 && cmpEnd(q.begin, i.end) < 0)) continue;
      if (minBegin === null) {
        minBegin = i.begin;
        maxEnd = i.end;
        continue;
      }
      if (cmpEnd(maxEnd, i.begin) < 0) return false;
      if (cmpEnd(i.end, maxEnd) > 0) maxEnd = i.end;
    }
    return minBegin !== null && cmpEnd(maxEnd, q.end) >= 0 && cmp(minBegin, q.begin) <= 0;
  }
}

/** True when the range is a single key (etcd: an empty range_end). */
export function isSingleKey(rangeEnd: Uint8Array | null | undefined): boolean {
  return rangeEnd === null || rangeEnd === undefined || rangeEnd.length === 0;
}

/** "\0" as a range end (every key from `key` on). */
export const RANGE_END_ALL = ZERO;
