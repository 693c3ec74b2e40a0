/**
 * etcd 3.4's v2 store semantics (etcd api: v2store Store — Get, Set, Create, Update, CompareAndSwap, Delete,
 * CompareAndDelete, DeleteExpiredKeys, the event history scan) over {@link V2Nodes}: a hierarchical key space of
 * files and directories, TTLs on both, one store index incremented by every change, every change an event.
 *
 * Deterministic for the writer: every write takes its times from the request (absolute expiry) or the SYNC entry
 * (expiry cutoff), so every member applying the same entries holds the same nodes. Only the `ttl` shown in answers
 * depends on the local clock, as in etcd.
 *
 * Errors: write and read methods throw {@link V2Error} with etcd's code, cause and the store index.
 */
import { V2Error, V2ErrorCodes as C } from '../errors';
import { HISTORY_CAPACITY, type HistoryEvent, type NodeExtern, type NodeRecord, V2Nodes } from './nodes';

/** An answered event (etcd Event) with the store index to put in X-Etcd-Index. */
export interface V2Event extends HistoryEvent {
  etcdIndex: number;
}

/** TTL options of a write (etcd TTLOptionSet): absolute expiry in ms (undefined: permanent) and refresh. */
export interface TtlOptions {
  expiryMs?: number;
  refresh?: boolean;
}

/** Expiry times before this are treated as "permanent" (etcd's minExpireTime, 2000-01-01). */
const MIN_EXPIRY_MS = Date.UTC(2000, 0, 1);

/** Go's path.Clean of `/` + p. */
export function cleanPath(p: string): string {
  const parts: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  return '/' + parts.join('/');
}

const parentOf = (p: string): string => {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
};
const baseOf = (p: string): string => p.slice(p.lastIndexOf('/') + 1);
const join = (dir: string, name: string): string => (dir === '/' ? `/${name}` : `${dir}/${name}`);
const hiddenName = (name: string): boolean => name.startsWith('_');

/** Go's time.Time.Format(RFC3339Nano) of a UTC time in ms (trailing zeros of the fraction dropped). */
export function rfc3339Nano(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2026-01-02T03:04:05.678Z
  const frac = iso.slice(20, 23).replace(/0+$/, '');
  return `${iso.slice(0, 19)}${frac === '' ? '' : `.${frac}`}Z`;
}

/** etcd's remaining TTL: whole seconds rounded up for the future, towards zero for the past. */
function ttlSeconds(expiryMs: number, nowMs: number): number {
  const left = expiryMs - nowMs;
  return left > 0 ? Math.ceil(left / 1000) : Math.trunc(left / 1000);
}

function byteCompare(a: NodeExtern, b: NodeExtern): number {
  return Buffer.compare(Buffer.from(a.key ?? ''), Buffer.from(b.key ?? ''));
}

/** The v2 store over one V2Nodes; `now` is the clock used only for the `ttl` of answers. */
export class V2Store {
  constructor(readonly nodes: V2Nodes, private readonly now: () => number = Date.now) {}

  /** etcd's CurrentIndex. */
  index(): number {
    return this.nodes.meta().index;
  }

  // ---- representations ----

  private withTtl(out: NodeExtern, rec: NodeRecord): void {
    if (rec.e !== undefined) {
      out.expiration = rfc3339Nano(rec.e);
      out.ttl = ttlSeconds(rec.e, this.now());
    }
  }

  /** A node alone (etcd node.Repr(false,false)): files with value, directories without children. */
  private repr(p: string, rec: NodeRecord, recursive = false, sorted = false): NodeExtern {
    const out: NodeExtern = { key: p };
    if (rec.d) out.dir = true;
    else out.value = rec.v ?? '';
    this.withTtl(out, rec);
    if (rec.d && recursive) {
      const nodes = this.list(p, true, sorted);
      if (nodes.length > 0) out.nodes = nodes;
    }
    out.modifiedIndex = rec.m;
    out.createdIndex = rec.c;
    return reorder(out);
  }

  private list(dir: string, recursive: boolean, sorted: boolean): NodeExtern[] {
    const out: NodeExtern[] = [];
    for (const [name, rec] of this.nodes.children(dir)) {
      if (hiddenName(name)) continue;
      out.push(this.repr(join(dir, name), rec, recursive, sorted));
    }
    if (sorted) out.sort(byteCompare);
    return out;
  }

  private root(): NodeRecord {
    return this.nodes.get('/') ?? { d: true, c: 0, m: 0 };
  }

  /** etcd internalGet: the node at a clean path; KeyNotFound / NotDir on the way. */
  private lookup(p: string): NodeRecord {
    if (p === '/') return this.root();
    let cur = '/';
    let rec = this.root();
    for (const seg of p.slice(1).split('/')) {
      if (!rec.d) throw new V2Error(C.NotDir, cur, this.index());
      const next = join(cur, seg);
      const child = this.nodes.get(next);
      if (child === undefined) throw new V2Error(C.KeyNotFound, next, this.index());
      cur = next;
      rec = child;
    }
    return rec;
  }

  // ---- reads ----

  /** etcd Store.Get. */
  get(path: string, recursive: boolean, sorted: boolean): V2Event {
    const p = cleanPath(path);
    const rec = this.lookup(p);
    const node: NodeExtern = p === '/' ? {} : { key: p };
    if (rec.d) {
      node.dir = true;
      const nodes = this.list(p, recursive, sorted);
      if (nodes.length > 0) node.nodes = nodes;
    } else {
      node.value = rec.v ?? '';
    }
    this.withTtl(node, rec);
    if (rec.m !== 0) node.modifiedIndex = rec.m;
    if (rec.c !== 0) node.createdIndex = rec.c;
    return { action: 'get', node: reorder(node), etcdIndex: this.index() };
  }

  /**
   * etcd EventHistory.scan: the first event at or after `since` that concerns `key` (itself, below it when
   * recursive, or a deleted directory above it), null when none yet. Throws EventIndexCleared (index = current
   * store index) when `since` is older than the history.
   */
  scan(key: string, recursive: boolean, since: number): HistoryEvent | null {
    const m = this.nodes.meta();
    const start = m.index - m.historyCount + 1;
    if (m.historyCount > 0 && since < start) {
      throw new V2Error(C.EventIndexCleared, `the requested history has been cleared [${start}/${since}]`, m.index);
    }
    for (let i = Math.max(since, start); i <= m.index; i++) {
      const e = this.nodes.event(i);
      if (e !== undefined && !e.refresh && eventConcerns(e, key, recursive)) return e;
    }
    return null;
  }

  // ---- writes (inside the caller's LMDB write transaction) ----

  private record(index: number, e: HistoryEvent): V2Event {
    this.nodes.addEvent(index, e);
    return { ...e, etcdIndex: index };
  }

  /**
   * Takes the next index for a change outside the key space (the v2 auth store), with an event whose key (no
   * leading `/`) no watcher or history scan matches, as etcd's `/2/…` events are invisible to the keys API.
   */
  recordHidden(key: string): number {
    const index = this.index() + 1;
    this.nodes.addEvent(index, { action: 'set', node: { key, modifiedIndex: index, createdIndex: index } });
    return index;
  }

  /** Walks to directory `dir`, creating missing directories with createdIndex `next` (etcd walk + checkDir). */
  private ensureDir(dir: string, next: number): void {
    if (dir === '/') return;
    let cur = '/';
    for (const seg of dir.slice(1).split('/')) {
      const p = join(cur, seg);
      const rec = this.nodes.get(p);
      if (rec === undefined) this.nodes.put(p, { d: true, c: next, m: next });
      else if (!rec.d) throw new V2Error(C.NotDir, p, next - 1);
      cur = p;
    }
  }

  private expiryOf(o: TtlOptions): number | undefined {
    return o.expiryMs === undefined || o.expiryMs < MIN_EXPIRY_MS ? undefined : o.expiryMs;
  }

  /** etcd internalCreate. */
  private create(path: string, dir: boolean, value: string, unique: boolean, replace: boolean, o: TtlOptions, action: string): { e: HistoryEvent; index: number } {
    const cur = this.index();
    const next = cur + 1;
    let p = cleanPath(path);
    if (unique) p = cleanPath(`${p}/${String(next).padStart(20, '0')}`);
    if (p === '/') throw new V2Error(C.RootROnly, '/', cur);
    this.ensureDir(parentOf(p), next);
    const old = this.nodes.get(p);
    const e: HistoryEvent = { action, node: { key: p } };
    if (old !== undefined) {
      if (!replace) throw new V2Error(C.NodeExist, p, cur);
      if (old.d) throw new V2Error(C.NotFile, p, cur);
      e.prevNode = this.repr(p, old);
      this.nodes.remove(p, old);
    }
    const rec: NodeRecord = dir ? { d: true, c: next, m: next } : { v: value, c: next, m: next };
    const exp = this.expiryOf(o);
    if (exp !== undefined) rec.e = exp;
    this.nodes.put(p, rec);
    if (dir) e.node.dir = true;
    else e.node.value = value;
    this.withTtl(e.node, rec);
    e.node.modifiedIndex = next;
    e.node.createdIndex = next;
    e.node = reorder(e.node);
    return { e: orderEvent(e), index: next };
  }

  /** etcd Store.Set (PUT without conditions). */
  set(path: string, dir: boolean, value: string, o: TtlOptions): V2Event {
    const p = cleanPath(path);
    let prev: NodeRecord | undefined;
    try {
      prev = this.lookup(p);
    } catch (err) {
      if (!(err instanceof V2Error) || err.errorCode !== C.KeyNotFound || o.refresh) throw err;
    }
    if (o.refresh && prev !== undefined) value = prev.v ?? '';
    const { e, index } = this.create(p, dir, value, false, true, o, 'set');
    if (o.refresh) e.refresh = true;
    return this.record(index, e);
  }

  /** etcd Store.Create (PUT prevExist=false, or POST with `unique` for in-order keys). */
  createNode(path: string, dir: boolean, value: string, unique: boolean, o: TtlOptions): V2Event {
    const { e, index } = this.create(path, dir, value, unique, false, o, 'create');
    return this.record(index, e);
  }

  /** etcd Store.Update (PUT prevExist=true): new value and TTL, same createdIndex. */
  update(path: string, value: string, o: TtlOptions): V2Event {
    const p = cleanPath(path);
    const cur = this.index();
    if (p === '/') throw new V2Error(C.RootROnly, '/', cur);
    const next = cur + 1;
    const old = this.lookup(p);
    if (old.d && value.length !== 0) throw new V2Error(C.NotFile, p, cur);
    if (o.refresh) value = old.v ?? '';
    const e: HistoryEvent = { action: 'update', node: { key: p }, prevNode: this.repr(p, old) };
    // etcd's node.Write refuses directories, so a directory keeps its modifiedIndex (only its TTL changes).
    const rec: NodeRecord = old.d ? { d: true, c: old.c, m: old.m } : { v: value, c: old.c, m: next };
    const exp = o.expiryMs; // etcd's UpdateTTL: no minimum, zero means permanent
    if (exp !== undefined && exp !== 0) rec.e = exp;
    this.nodes.put(p, rec, old);
    if (old.d) e.node.dir = true;
    else e.node.value = value;
    return this.rewritten(e, rec, old, next, o);
  }

  /** Completes the event of a node rewritten in place (same createdIndex) and records it. */
  private rewritten(e: HistoryEvent, rec: NodeRecord, old: NodeRecord, next: number, o: TtlOptions): V2Event {
    this.withTtl(e.node, rec);
    e.node.modifiedIndex = next;
    e.node.createdIndex = old.c;
    e.node = reorder(e.node);
    if (o.refresh) e.refresh = true;
    return this.record(next, orderEvent(e));
  }

  private compare(rec: NodeRecord, prevValue: string, prevIndex: number): void {
    const indexOk = prevIndex === 0 || rec.m === prevIndex;
    const valueOk = prevValue === '' || rec.v === prevValue;
    if (indexOk && valueOk) return;
    const cause = indexOk ? `[${prevValue} != ${rec.v ?? ''}]` : valueOk ? `[${prevIndex} != ${rec.m}]` : `[${prevValue} != ${rec.v ?? ''}] [${prevIndex} != ${rec.m}]`;
    throw new V2Error(C.TestFailed, cause, this.index());
  }

  /** etcd Store.CompareAndSwap (PUT with prevValue / prevIndex). */
  compareAndSwap(path: string, prevValue: string, prevIndex: number, value: string, o: TtlOptions): V2Event {
    const p = cleanPath(path);
    if (p === '/') throw new V2Error(C.RootROnly, '/', this.index());
    const old = this.lookup(p);
    if (old.d) throw new V2Error(C.NotFile, p, this.index());
    this.compare(old, prevValue, prevIndex);
    if (o.refresh) value = old.v ?? '';
    const next = this.index() + 1;
    const rec: NodeRecord = { v: value, c: old.c, m: next };
    if (o.expiryMs !== undefined && o.expiryMs !== 0) rec.e = o.expiryMs;
    const e: HistoryEvent = { action: 'compareAndSwap', node: { key: p, value }, prevNode: this.repr(p, old) };
    this.nodes.put(p, rec, old);
    return this.rewritten(e, rec, old, next, o);
  }

  /** Removes a node and, for a directory, everything below it. */
  private removeTree(p: string, rec: NodeRecord): void {
    if (rec.d) for (const [name, child] of this.nodes.children(p)) this.removeTree(join(p, name), child);
    this.nodes.remove(p, rec);
  }

  /** Removes `p` (and what is below it) as one `delete` or `expire` event at the next index. */
  private removal(action: string, p: string, old: NodeRecord): V2Event {
    const next = this.index() + 1;
    const node: NodeExtern = { key: p };
    if (old.d) node.dir = true;
    node.modifiedIndex = next;
    node.createdIndex = old.c;
    const e: HistoryEvent = { action, node, prevNode: this.repr(p, old) };
    this.removeTree(p, old);
    return this.record(next, e);
  }

  /** etcd Store.Delete (DELETE without conditions); `recursive` implies `dir`. */
  delete(path: string, dir: boolean, recursive: boolean): V2Event {
    const p = cleanPath(path);
    const cur = this.index();
    if (p === '/') throw new V2Error(C.RootROnly, '/', cur);
    if (recursive) dir = true;
    const old = this.lookup(p);
    if (old.d) {
      if (!dir) throw new V2Error(C.NotFile, p, cur);
      if (!recursive && this.nodes.children(p).length > 0) throw new V2Error(C.DirNotEmpty, p, cur);
    }
    return this.removal('delete', p, old);
  }

  /** etcd Store.CompareAndDelete (DELETE with prevValue / prevIndex). */
  compareAndDelete(path: string, prevValue: string, prevIndex: number): V2Event {
    const p = cleanPath(path);
    if (p === '/') throw new V2Error(C.RootROnly, '/', this.index());
    const old = this.lookup(p);
    if (old.d) throw new V2Error(C.NotFile, p, this.index());
    this.compare(old, prevValue, prevIndex);
    const next = this.index() + 1;
    const e: HistoryEvent = { action: 'compareAndDelete', node: { key: p, modifiedIndex: next, createdIndex: old.c }, prevNode: this.repr(p, old) };
    this.nodes.remove(p, old);
    return this.record(next, e);
  }

  /** etcd Store.DeleteExpiredKeys: every node whose expiry is ≤ `cutoffMs` becomes an `expire` event, oldest first. */
  expire(cutoffMs: number): V2Event[] {
    const out: V2Event[] = [];
    for (;;) {
      const first = this.nodes.firstExpiring();
      if (first === null || first.expiryMs > cutoffMs) break;
      const rec = this.nodes.get(first.path);
      if (rec === undefined) break; // cannot happen: the index entry is written and removed with its node
      out.push(this.removal('expire', first.path, rec));
      this.nodes.bump('expireCount');
    }
    return out;
  }

  /** True when some node has a TTL (the leader then proposes SYNC entries). */
  hasTtlKeys(): boolean {
    return this.nodes.firstExpiring() !== null;
  }
}

/** Keeps Go's field order (key, value, dir, expiration, ttl, nodes, modifiedIndex, createdIndex) in JSON output. */
function reorder(n: NodeExtern): NodeExtern {
  const out: NodeExtern = {};
  if (n.key !== undefined) out.key = n.key;
  if (n.value !== undefined) out.value = n.value;
  if (n.dir) out.dir = true;
  if (n.expiration !== undefined) out.expiration = n.expiration;
  if (n.ttl !== undefined) out.ttl = n.ttl;
  if (n.nodes !== undefined) out.nodes = n.nodes;
  if (n.modifiedIndex !== undefined) out.modifiedIndex = n.modifiedIndex;
  if (n.createdIndex !== undefined) out.createdIndex = n.createdIndex;
  return out;
}

function orderEvent(e: HistoryEvent): HistoryEvent {
  const out: HistoryEvent = { action: e.action, node: e.node };
  if (e.prevNode !== undefined) out.prevNode = e.prevNode;
  if (e.refresh) out.refresh = true;
  return out;
}

/** etcd's scan match: the key itself, a key below it (recursive), or a deleted/expired directory above it. */
export function eventConcerns(e: HistoryEvent, key: string, recursive: boolean): boolean {
  const k = e.node.key ?? '/';
  if (k === key) return true;
  if (recursive && k.startsWith(key === '/' ? '/' : `${key}/`)) return true;
  return (e.action === 'delete' || e.action === 'expire') && e.prevNode?.dir === true && key.startsWith(e.prevNode.key ?? '/');
}

export { HISTORY_CAPACITY };
