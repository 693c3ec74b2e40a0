/**
 * Where the v2 store keeps its state: one LMDB named database (`v2`, opened by src/mvcc/env.ts) holding the nodes,
 * the TTL index, the event history and the store index, written by the apply worker inside its batch transaction
 * (so v2 writes are as durable and as ordered as v3 writes, and travel in snapshots with the rest of the file) and
 * read by the main thread.
 *
 * Key layout (strings, lmdb-js ordered-binary, so byte order):
 * - `n` + depth (3 digits) + path → {@link NodeRecord}: depth first so a directory's children are one contiguous
 *   range (`n` + depth+1 + dir + `/`) without their descendants;
 * - `x` + expiry ms (15 digits) + path → 1: nodes with a TTL in expiry order (etcd's ttlKeyHeap);
 * - `h` + index (16 digits) → {@link HistoryEvent}: the last {@link HISTORY_CAPACITY} events (etcd's EventHistory),
 *   plus {@link HUB_SLACK_EVENTS} older ones only the watch hub reads;
 * - `m` → {@link V2Meta};
 * - `a` + name → the v2 auth store's records (src/v2store/auth.ts).
 */
import type { Database } from 'lmdb';

/** Events kept for `waitIndex` (etcd's EventHistory capacity). */
export const HISTORY_CAPACITY = 1000;
/**
 * Events kept on disk past the `waitIndex` window, for the watch hub only: etcd hands each event to its watchers as
 * it applies it, while the hub reads them after each applied batch, so a batch of more than HISTORY_CAPACITY v2
 * writes must not push events a watcher still waits for out of reach. A batch beyond both ends every watcher.
 */
export const HUB_SLACK_EVENTS = 9000;

/** A stored node. `v` is set for files, `d` for directories; `e` is the absolute expiry in ms (absent: permanent). */
export interface NodeRecord {
  v?: string;
  d?: true;
  /** createdIndex. */
  c: number;
  /** modifiedIndex. */
  m: number;
  e?: number;
}

/** The store's counters. */
export interface V2Meta {
  /** etcd's store CurrentIndex: the index of the last event. */
  index: number;
  /** Events in the history (≤ HISTORY_CAPACITY); they are the indexes index-count+1 … index. */
  historyCount: number;
}

/** etcd's NodeExtern as JSON (fields in Go's order). */
export interface NodeExtern {
  key?: string;
  value?: string;
  dir?: true;
  expiration?: string;
  ttl?: number;
  nodes?: NodeExtern[];
  modifiedIndex?: number;
  createdIndex?: number;
}

/** An event as stored in the history (etcd's Event; `refresh` events are kept but never returned to watchers). */
export interface HistoryEvent {
  action: string;
  node: NodeExtern;
  prevNode?: NodeExtern;
  refresh?: true;
}

/** The v2 database handle (values are msgpack, keys strings). */
export type V2Db = Database<unknown, string>;

const pad = (n: number, w: number): string => String(n).padStart(w, '0');

/** Depth of a clean absolute path ("/" is 0, "/a" 1, "/a/b" 2). */
export function depthOf(p: string): number {
  if (p === '/') return 0;
  let d = 0;
  for (let i = 0; i < p.length; i++) if (p.charCodeAt(i) === 47) d++;
  return d;
}

const nodeKey = (p: string): string => `n${pad(depthOf(p), 3)}${p}`;
const ttlKey = (expiryMs: number, p: string): string => `x${pad(expiryMs, 15)}${p}`;
const histKey = (index: number): string => `h${pad(index, 16)}`;
const META = 'm';
const STATS = 's';

/** etcd's v2 store write counters (stats/store), persisted with the store as etcd saves them in its snapshot. */
export type V2WriteStat =
  | 'setsSuccess' | 'setsFail' | 'deleteSuccess' | 'deleteFail' | 'updateSuccess' | 'updateFail' | 'createSuccess'
  | 'createFail' | 'compareAndSwapSuccess' | 'compareAndSwapFail' | 'compareAndDeleteSuccess' | 'compareAndDeleteFail'
  | 'expireCount';

/** Typed access to the v2 database; writes must run inside the caller's LMDB write transaction. */
export class V2Nodes {
  constructor(private readonly db: V2Db) {}

  meta(): V2Meta {
    return (this.db.get(META) as V2Meta | undefined) ?? { index: 0, historyCount: 0 };
  }

  get(p: string): NodeRecord | undefined {
    return this.db.get(nodeKey(p)) as NodeRecord | undefined;
  }

  /** The children of directory `dir` as [name, record], in byte order of their names. */
  children(dir: string): Array<[string, NodeRecord]> {
    const prefix = `n${pad(depthOf(dir) + 1, 3)}${dir === '/' ? '/' : `${dir}/`}`;
    const out: Array<[string, NodeRecord]> = [];
    for (const { key, value } of this.db.getRange({ start: prefix })) {
      const k = key as string;
      if (!k.startsWith(prefix)) break;
      out.push([k.slice(prefix.length), value as NodeRecord]);
    }
    return out;
  }

  put(p: string, rec: NodeRecord, old?: NodeRecord): void {
    if (old?.e !== undefined && old.e !== rec.e) this.db.removeSync(ttlKey(old.e, p));
    this.db.putSync(nodeKey(p), rec);
    if (rec.e !== undefined) this.db.putSync(ttlKey(rec.e, p), 1);
  }

  remove(p: string, old: NodeRecord): void {
    this.db.removeSync(nodeKey(p));
    if (old.e !== undefined) this.db.removeSync(ttlKey(old.e, p));
  }

  /** The node with the earliest expiry, or null when no node has a TTL. */
  firstExpiring(): { path: string; expiryMs: number } | null {
    for (const { key } of this.db.getRange({ start: 'x', end: 'y', limit: 1 })) {
      const k = key as string;
      return { expiryMs: Number(k.slice(1, 16)), path: k.slice(16) };
    }
    return null;
  }

  /**
   * Appends an event at `index` (= meta.index + 1): the window (`historyCount`) keeps HISTORY_CAPACITY, the
   * database HUB_SLACK_EVENTS more; saves the meta.
   */
  addEvent(index: number, e: HistoryEvent): void {
    const m = this.meta();
    this.db.putSync(histKey(index), e);
    const drop = index - HISTORY_CAPACITY - HUB_SLACK_EVENTS;
    if (drop > 0) this.db.removeSync(histKey(drop));
    this.db.putSync(META, { index, historyCount: Math.min(m.historyCount + 1, HISTORY_CAPACITY) } satisfies V2Meta);
  }

  /** Adds 1 to a write counter (inside the write transaction). */
  bump(stat: V2WriteStat): void {
    const st = this.stats();
    st[stat] = (st[stat] ?? 0) + 1;
    this.db.putSync(STATS, st);
  }

  stats(): Partial<Record<V2WriteStat, number>> {
    return (this.db.get(STATS) as Partial<Record<V2WriteStat, number>> | undefined) ?? {};
  }

  /** A v2 auth record (`a` keys). */
  aux(k: string): unknown {
    return this.db.get(`a${k}`);
  }

  putAux(k: string, v: unknown): void {
    this.db.putSync(`a${k}`, v);
  }

  removeAux(k: string): void {
    this.db.removeSync(`a${k}`);
  }

  /** Names of the auth records under `prefix`, in byte order. */
  auxNames(prefix: string): string[] {
    const start = `a${prefix}`;
    const out: string[] = [];
    for (const { key } of this.db.getRange({ start })) {
      const k = key as string;
      if (!k.startsWith(start)) break;
      out.push(k.slice(start.length));
    }
    return out;
  }

  event(index: number): HistoryEvent | undefined {
    return this.db.get(histKey(index)) as HistoryEvent | undefined;
  }
}
