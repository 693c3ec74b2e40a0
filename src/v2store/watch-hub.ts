/**
 * v2 watchers (etcd api: v2store watcherHub) on the main thread: `wait=true` GETs. The history in LMDB is the
 * source: {@link V2WatchHub.poll} reads the events applied since the last poll (called after every applied batch)
 * and hands each to the watchers it concerns, with etcd's rules — a watcher on the event's key, a recursive watcher
 * on a directory above it (unless the path between passes through a hidden `_` node), and any watcher below a
 * deleted or expired directory; the event's index must be ≥ the watcher's `since`.
 *
 * Bounded: at most `maxWatchers` watchers (etcd has no limit; beyond it `watch` throws RangeError and the HTTP
 * layer answers 500 Raft Internal Error). A poll finds at most HISTORY_CAPACITY + HUB_SLACK_EVENTS events since the
 * last one still on disk (one applied batch may carry more than the `waitIndex` window); beyond that every watcher
 * ends without an event, as etcd ends a watcher that cannot keep up.
 */
import { HISTORY_CAPACITY, HUB_SLACK_EVENTS, type HistoryEvent } from './nodes';
import type { V2Store } from './store';

/** Default bound on concurrent watchers. */
export const DEFAULT_MAX_WATCHERS = 100_000;

/** One registered watcher; `onEvent` returns nothing; a non-stream watcher is removed after its first event. */
export interface V2Watcher {
  readonly key: string;
  readonly recursive: boolean;
  readonly stream: boolean;
  readonly since: number;
  /** The store index when the watch started (etcd's StartIndex, X-Etcd-Index of the answer). */
  readonly startIndex: number;
  onEvent(e: HistoryEvent): void;
  /** The hub lost events (history overrun or store replaced): the watcher ends without an event. */
  onCleared(): void;
}

function hiddenBetween(watchPath: string, keyPath: string): boolean {
  if (watchPath.length > keyPath.length) return false;
  const after = keyPath.slice(watchPath === '/' ? 0 : watchPath.length);
  return after.includes('/_');
}

function concerns(w: V2Watcher, e: HistoryEvent): boolean {
  if (e.refresh) return false;
  const k = e.node.key ?? '/';
  if (k === w.key) return true;
  const deletedDir = (e.action === 'delete' || e.action === 'expire' || e.action === 'compareAndDelete') && e.prevNode?.dir === true;
  if (deletedDir && (w.key.startsWith(`${k}/`) || k === '/')) return true;
  const below = w.key === '/' ? k.startsWith('/') : k.startsWith(`${w.key}/`);
  return w.recursive && below && !hiddenBetween(w.key, k);
}

/** The member's v2 watchers over a store read on the main thread. */
export class V2WatchHub {
  private readonly watchers = new Set<V2Watcher>();
  private seen: number;

  constructor(private readonly store: () => V2Store, private readonly maxWatchers = DEFAULT_MAX_WATCHERS) {
    this.seen = store().index();
  }

  get size(): number {
    return this.watchers.size;
  }

  /** The last index delivered to watchers. */
  get seenIndex(): number {
    return this.seen;
  }

  /**
   * etcd Store.Watch: returns a matching event from the history at or after `since` (0: next change), or registers
   * `w` and returns null. Throws V2Error EventIndexCleared for a `since` older than the history; RangeError at the
   * watcher bound.
   */
  watch(make: (since: number, startIndex: number) => V2Watcher, key: string, recursive: boolean, since: number): { event: HistoryEvent; startIndex: number } | V2Watcher {
    this.poll();
    const s = this.store();
    const startIndex = this.seen;
    const from = since === 0 ? startIndex + 1 : since;
    const e = s.scan(key, recursive, from);
    if (e !== null && since !== 0) return { event: e, startIndex };
    if (this.watchers.size >= this.maxWatchers) throw new RangeError('too many v2 watchers');
    const w = make(from, startIndex);
    this.watchers.add(w);
    return w;
  }

  remove(w: V2Watcher): void {
    this.watchers.delete(w);
  }

  /** Delivers the events applied since the last poll. */
  poll(): void {
    const s = this.store();
    const top = s.index();
    if (top <= this.seen) {
      if (top < this.seen) this.reset();
      return;
    }
    if (top - this.seen > HISTORY_CAPACITY + HUB_SLACK_EVENTS) {
      this.reset();
      return;
    }
    if (this.watchers.size === 0) {
      // Nobody to deliver to: no event is read (a v2 write would otherwise pay one LMDB read and decode here).
      this.seen = top;
      return;
    }
    for (let i = this.seen + 1; i <= top; i++) {
      const e = s.nodes.event(i);
      this.seen = i;
      if (e === undefined || this.watchers.size === 0) continue;
      for (const w of [...this.watchers]) {
        if (i < w.since || !concerns(w, e)) continue;
        if (!w.stream) this.watchers.delete(w);
        w.onEvent(e);
      }
    }
  }

  /** The store was replaced (snapshot install) or events were lost: every watcher ends. */
  reset(): void {
    this.seen = this.store().index();
    const all = [...this.watchers];
    this.watchers.clear();
    for (const w of all) w.onCleared();
  }

  close(): void {
    this.reset();
  }
}
