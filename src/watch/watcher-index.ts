/**
 * The synced watchers, indexed so that matching an event's key costs lookups, not a scan of every watcher
 * (etcd mvcc: watcher_group.go keeps a key map plus an interval tree of ranges).
 *
 * - single-key watchers: Map key → watchers;
 * - prefix watchers (range_end = prefix end of key, i.e. `--prefix`): Map prefix → watchers, probed once per distinct
 *   prefix length present (an event key of length L costs at most one lookup per such length ≤ L);
 * - any other range (incl. from-key, range_end "\0", and "all keys"): grouped by distinct (key, end) so that N
 *   watchers on one range cost one comparison; scanned per event (few distinct ranges in practice).
 */
import { compareBytes } from '../mvcc/encoding';

/** What the index needs of a watcher. */
export interface RangeWatcher {
  /** Watched key (never empty: etcd turns an empty key into "\0"). */
  readonly key: Buffer;
  /** null = the single key; empty = every key ≥ key; else [key, end). */
  readonly end: Buffer | null;
}

/** etcd clientv3.GetPrefixRangeEnd: the smallest key greater than every key with this prefix; empty = none. */
export function prefixEnd(key: Uint8Array): Buffer {
  const end = Buffer.from(key);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.alloc(0);
}

/** True when `key` is in the watcher's range. */
export function inRange(key: Uint8Array, w: RangeWatcher): boolean {
  if (w.end === null) return compareBytes(key, w.key) === 0;
  if (compareBytes(key, w.key) < 0) return false;
  return w.end.length === 0 || compareBytes(key, w.end) < 0;
}

interface RangeGroup<W> { key: Buffer; end: Buffer; set: Set<W> }

/** A set of watchers with key/prefix/range lookup. */
export class WatcherIndex<W extends RangeWatcher> {
  private readonly keys = new Map<string, Set<W>>();
  private readonly prefixes = new Map<string, Set<W>>();
  private readonly prefixLens = new Map<number, number>();
  private sortedLens: number[] = [];
  private readonly ranges = new Map<string, RangeGroup<W>>();
  private count = 0;

  get size(): number { return this.count; }

  private kind(w: W): 'key' | 'prefix' | 'range' {
    if (w.end === null) return 'key';
    if (w.end.length > 0 && prefixEnd(w.key).equals(w.end)) return 'prefix';
    return 'range';
  }

  add(w: W): void {
    this.count++;
    switch (this.kind(w)) {
      case 'key': addTo(this.keys, w.key.toString('latin1'), w); break;
      case 'prefix': {
        addTo(this.prefixes, w.key.toString('latin1'), w);
        const l = w.key.length;
        const c = this.prefixLens.get(l) ?? 0;
        this.prefixLens.set(l, c + 1);
        if (c === 0) this.sortedLens = [...this.prefixLens.keys()].sort((a, b) => a - b);
        break;
      }
      default: {
        const id = `${w.key.toString('latin1')}\u0100${w.end!.toString('latin1')}`;
        let g = this.ranges.get(id);
        if (!g) this.ranges.set(id, (g = { key: w.key, end: w.end!, set: new Set() }));
        g.set.add(w);
      }
    }
  }

  /** Removes `w`; false when it was not indexed. */
  delete(w: W): boolean {
    let ok = false;
    switch (this.kind(w)) {
      case 'key': ok = deleteFrom(this.keys, w.key.toString('latin1'), w); break;
      case 'prefix': {
        ok = deleteFrom(this.prefixes, w.key.toString('latin1'), w);
        if (ok) {
          const l = w.key.length;
          const c = this.prefixLens.get(l)! - 1;
          if (c === 0) {
            this.prefixLens.delete(l);
            this.sortedLens = [...this.prefixLens.keys()].sort((a, b) => a - b);
          } else this.prefixLens.set(l, c);
        }
        break;
      }
      default: {
        const id = `${w.key.toString('latin1')}\u0100${w.end!.toString('latin1')}`;
        const g = this.ranges.get(id);
        if (g) {
          ok = g.set.delete(w);
          if (g.set.size === 0) this.ranges.delete(id);
        }
      }
    }
    if (ok) this.count--;
    return ok;
  }

  /** Calls `fn` for every watcher whose range holds `key`. */
  forEachMatch(key: Buffer, fn: (w: W) => void): void {
    if (this.keys.size > 0) {
      const s = this.keys.get(key.toString('latin1'));
      if (s) for (const w of s) fn(w);
    }
    if (this.prefixes.size > 0) {
      for (const l of this.sortedLens) {
        if (l > key.length) break;
        const s = this.prefixes.get(key.toString('latin1', 0, l));
        if (s) for (const w of s) fn(w);
      }
    }
    for (const g of this.ranges.values()) {
      if (compareBytes(key, g.key) < 0) continue;
      if (g.end.length !== 0 && compareBytes(key, g.end) >= 0) continue;
      for (const w of g.set) fn(w);
    }
  }
}

function addTo<W>(m: Map<string, Set<W>>, k: string, w: W): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(w);
}

function deleteFrom<W>(m: Map<string, Set<W>>, k: string, w: W): boolean {
  const s = m.get(k);
  if (!s) return false;
  const ok = s.delete(w);
  if (s.size === 0) m.delete(k);
  return ok;
}
