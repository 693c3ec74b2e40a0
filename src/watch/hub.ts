/**
 * WatchHub: etcd's watchableStore on the main thread (etcd mvcc: watchable_store.go, watcher_group.go; v3rpc
 * watch.go for the stream side, in stream.ts).
 *
 * Input: the MVCC events of every applied batch, in revision order (the apply worker carries them in the applyOut
 * record next to the results; see src/apply/batch-format.ts). The hub's revision (`rev`) is the highest revision it
 * has been handed — not LMDB's, which may already hold a batch whose events are still in the ring.
 *
 * Watchers are in one of two groups:
 * - synced (minRev > rev at join time): indexed by key / prefix / range (watcher-index.ts) and fed directly from
 *   applied batches: one WatchResponse per watcher per batch (events with rev ≥ minRev only);
 * - unsynced: start_revision ≤ rev, or "slow" watchers whose stream had more than MAX_PENDING_BYTES_PER_STREAM
 *   unacknowledged bytes when events were due (etcd's victims). They are caught up from the `rev` db in bounded
 *   chunks (SYNC_CHUNK_RECORDS / SYNC_CHUNK_BYTES, whole revisions, at most MAX_WATCHERS_PER_SYNC watchers per turn,
 *   one chunk per event-loop turn via setImmediate) and join the synced group in the same turn they reach `rev`, so
 *   no event is lost or repeated. A watcher whose minRev is below the compact revision gets etcd's answer: a
 *   response with compact_revision set and canceled (the created response came before), and is removed.
 *
 * Memory of a stalled stream is bounded: events are never queued per watcher; a stream over its byte budget turns
 * the watchers that have something to send into unsynced ones, re-read from history once the stream drains below
 * half the budget.
 */
import type { KeyValue } from '../wire/codec';
import { pb } from '../wire/codec';
import { metrics } from '../metrics/registry';
import { revKey } from '../mvcc/encoding';
import type { MvccReader } from '../mvcc/reader';
import { MAX_SUB } from '../mvcc/range';
import { encodeFragmented, encodeWatchResponse, EVENT_DELETE, EVENT_PUT, WatchEvent } from './encode';
import { inRange, WatcherIndex } from './watcher-index';

/** Unacknowledged response bytes a stream may hold before its watchers become slow (caught up from history). */
export const MAX_PENDING_BYTES_PER_STREAM = 4 * 1024 * 1024;
/** etcd maxWatchersPerSync: unsynced watchers handled per catch-up turn. */
export const MAX_WATCHERS_PER_SYNC = 512;
/** `rev` records read per catch-up turn at most (whole revisions; etcd sends ≤ 1000 revisions per response). */
export const SYNC_CHUNK_RECORDS = 1000;
/** Bytes of `rev` records read per catch-up turn at most (a revision in progress is finished). */
export const SYNC_CHUNK_BYTES = 4 * 1024 * 1024;
/** How often unsynced watchers blocked on a congested stream are re-examined, ms (etcd: 100 ms resync). */
export const SYNC_RETRY_MS = 100;

/** Identity fields of response headers. */
export interface HeaderIdentity { clusterId: number; memberId: number; raftTerm: number }

/** The output side of a watch stream, as the hub sees it. */
export interface WatchOutput {
  /** Queues one encoded WatchResponse carrying `events` events. */
  send(buf: Buffer, events: number): void;
  /** True when the stream holds more unacknowledged bytes than its budget. */
  congested(): boolean;
  /** True when the stream has drained enough to take caught-up events. */
  canCatchUp(): boolean;
  /** etcd's per-stream progress bookkeeping: events were sent to this watch id. */
  sentEvents(watchId: number): void;
}

/** One watcher (etcd mvcc: watcher). */
export class Watcher {
  synced = false;
  removed = false;
  slow = false;
  constructor(
    readonly out: WatchOutput,
    readonly id: number,
    readonly key: Buffer,
    readonly end: Buffer | null,
    /** Next revision this watcher must see. */
    public minRev: number,
    readonly noPut: boolean,
    readonly noDelete: boolean,
    readonly prevKv: boolean,
    readonly fragment: boolean,
  ) {}
}

export interface WatchHubOptions {
  /** The member's MVCC reader (a getter: a snapshot restore replaces it). */
  reader: () => MvccReader;
  identity: () => HeaderIdentity;
  /** etcd --max-request-bytes: fragment size. */
  maxRequestBytes: number;
  /** First revision handed to the hub is above this (default: the reader's current revision). */
  initialRevision?: number;
}

/** etcd's watchableStore for one member. */
export class WatchHub {
  private rev: number;
  private readonly synced = new WatcherIndex<Watcher>();
  /** Every registered watcher. */
  private readonly all = new Set<Watcher>();
  private readonly unsynced = new Set<Watcher>();
  private syncScheduled = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private headerCache: { rev: number; term: number; bytes: Uint8Array } | null = null;
  private pendingEvents = 0;
  private closed = false;
  private readonly readerOf: () => MvccReader;
  readonly maxRequestBytes: number;
  private readonly identity: () => HeaderIdentity;
  private readonly lookupPrev = (ev: WatchEvent): KeyValue | null => this.prevKvOf(ev);

  constructor(opts: WatchHubOptions) {
    this.readerOf = opts.reader;
    this.identity = opts.identity;
    this.maxRequestBytes = opts.maxRequestBytes;
    this.rev = opts.initialRevision ?? opts.reader().currentRevision();
  }

  private get reader(): MvccReader { return this.readerOf(); }

  /**
   * The store was replaced (snapshot restore on a follower, etcd watchableStore.Restore): every synced watcher
   * becomes unsynced and is caught up from the new store; the hub revision jumps to the restored one.
   */
  restore(): void {
    const rev = this.reader.currentRevision();
    // Collect synced watchers through the index by re-adding them as unsynced.
    for (const w of this.all) {
      if (w.synced) {
        this.synced.delete(w);
        w.synced = false;
        this.unsynced.add(w);
      }
    }
    if (rev > this.rev) this.rev = rev;
    this.updateSlowGauge();
    this.scheduleSync();
  }

  /** The highest revision whose events the hub has been handed (etcd: watchableStore.rev()). */
  currentRevision(): number { return this.rev; }
  /** Watchers in the synced group. */
  syncedCount(): number { return this.synced.size; }
  /** Watchers waiting for catch-up (unsynced + slow). */
  unsyncedCount(): number { return this.unsynced.size; }

  /** An encoded ResponseHeader at `rev` (cached per revision and term). */
  header(rev: number): Uint8Array {
    const id = this.identity();
    const c = this.headerCache;
    if (c && c.rev === rev && c.term === id.raftTerm) return c.bytes;
    const bytes = pb.ResponseHeader.encode({ clusterId: id.clusterId, memberId: id.memberId, revision: rev, raftTerm: id.raftTerm }).finish();
    if (rev === this.rev) this.headerCache = { rev, term: id.raftTerm, bytes };
    return bytes;
  }

  /** Registers a watcher starting at `startRev` (etcd watchableStore.watch). */
  add(w: Watcher): void {
    metrics.etcd_debugging_mvcc_watcher_total.inc();
    this.all.add(w);
    if (w.minRev > this.rev) {
      w.synced = true;
      this.synced.add(w);
    } else {
      this.unsynced.add(w);
      this.updateSlowGauge();
      this.scheduleSync();
    }
  }

  /** Removes a watcher (cancel or stream close); false when it was already gone. */
  remove(w: Watcher): boolean {
    if (w.removed) return false;
    w.removed = true;
    this.all.delete(w);
    if (w.synced) this.synced.delete(w);
    else this.unsynced.delete(w);
    w.synced = false;
    metrics.etcd_debugging_mvcc_watcher_total.dec();
    this.updateSlowGauge();
    return true;
  }

  /** A watcher is synced (etcd: in the synced group), for progress notifications. */
  isSynced(w: Watcher): boolean { return w.synced; }

  /** Accounts events handed to / acknowledged by a stream (etcd_debugging_mvcc_pending_events_total). */
  pendingDelta(n: number): void {
    this.pendingEvents += n;
    metrics.etcd_debugging_mvcc_pending_events_total.set(this.pendingEvents);
  }

  /** A stream drained below its catch-up threshold: resume catching up its slow watchers. */
  kick(): void {
    if (this.unsynced.size > 0) this.scheduleSync();
  }

  /**
   * Delivers one applied batch's events (`rev` records, revision order) to the synced watchers
   * (etcd watchableStore.notify), one response per watcher.
   */
  onEvents(records: readonly Buffer[]): void {
    if (records.length === 0 || this.closed) return;
    const events = records.map((r) => new WatchEvent(r));
    const last = events[events.length - 1]!.rev;
    if (last <= this.rev) return; // already covered (hub created after these were committed)
    const per = new Map<Watcher, WatchEvent[]>();
    if (this.synced.size > 0) {
      for (const ev of events) {
        if (ev.rev <= this.rev) continue;
        this.synced.forEachMatch(ev.key, (w) => {
          if (ev.rev < w.minRev) return;
          const l = per.get(w);
          if (l) l.push(ev);
          else per.set(w, [ev]);
        });
      }
    }
    this.rev = last;
    for (const [w, evs] of per) {
      if (w.out.congested()) {
        // etcd: a blocked watcher becomes a victim; here it is re-read from history once its stream drains.
        this.synced.delete(w);
        w.synced = false;
        w.slow = true;
        w.minRev = evs[0]!.rev;
        this.unsynced.add(w);
        continue;
      }
      this.deliver(w, evs, last);
      w.minRev = last + 1;
    }
    if (this.unsynced.size > 0) {
      this.updateSlowGauge();
      this.scheduleSync();
    }
  }

  /** Sends `evs` (after the watcher's filters) in one response (fragmented when asked). */
  private deliver(w: Watcher, evs: readonly WatchEvent[], headerRev: number): void {
    const bytes: Uint8Array[] = [];
    for (const ev of evs) {
      if (w.noPut && ev.type === EVENT_PUT) continue;
      if (w.noDelete && ev.type === EVENT_DELETE) continue;
      bytes.push(ev.encoded(w.prevKv, this.lookupPrev));
    }
    if (bytes.length === 0) return;
    const header = this.header(headerRev);
    if (w.fragment) {
      const parts = encodeFragmented(header, { watchId: w.id }, bytes, this.maxRequestBytes);
      for (let i = 0; i < parts.length; i++) w.out.send(parts[i]!, i === parts.length - 1 ? bytes.length : 0);
    } else {
      w.out.send(encodeWatchResponse(header, { watchId: w.id }, bytes), bytes.length);
    }
    metrics.etcd_debugging_mvcc_events_total.inc(bytes.length);
    w.out.sentEvents(w.id);
  }

  /** etcd v3rpc: prev_kv = the key at mod_revision - 1 (absent when compacted or none). */
  private prevKvOf(ev: WatchEvent): KeyValue | null {
    try {
      const r = this.reader.range({
        key: ev.key, rangeEnd: Buffer.alloc(0), limit: 0, revision: ev.rev - 1, sortOrder: 0, sortTarget: 0,
        serializable: true, keysOnly: false, countOnly: false, minModRevision: 0, maxModRevision: 0,
        minCreateRevision: 0, maxCreateRevision: 0,
      });
      return r.kvs[0] ?? null;
    } catch {
      return null;
    }
  }

  private updateSlowGauge(): void {
    metrics.etcd_debugging_mvcc_slow_watcher_total.set(this.unsynced.size);
  }

  private scheduleSync(): void {
    if (this.syncScheduled || this.closed) return;
    this.syncScheduled = true;
    setImmediate(() => {
      this.syncScheduled = false;
      this.syncStep();
    });
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== null || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.syncStep();
    }, SYNC_RETRY_MS);
    this.retryTimer.unref();
  }

  /**
   * One catch-up turn (etcd syncWatchers): up to MAX_WATCHERS_PER_SYNC unsynced watchers whose streams can take
   * events; one bounded chunk of `rev` records from their lowest minRev up to the hub revision, read on one LMDB
   * snapshot; each watcher gets its matching events and joins the synced group when the chunk reached the hub
   * revision.
   */
  private syncStep(): void {
    if (this.unsynced.size === 0 || this.closed) return;
    const group: Watcher[] = [];
    let blocked = false;
    for (const w of this.unsynced) {
      if (!w.out.canCatchUp()) { blocked = true; continue; }
      group.push(w);
      if (group.length >= MAX_WATCHERS_PER_SYNC) break;
    }
    if (group.length === 0) {
      if (blocked) this.scheduleRetry();
      return;
    }
    const meta = this.reader.meta(); // fresh read snapshot for the reads below
    const compactRev = meta.compactRevision;
    const curRev = this.rev;
    let minRev = Infinity;
    const live: Watcher[] = [];
    for (const w of group) {
      if (w.minRev < compactRev) {
        // etcd chooseAll: compacted → WatchResponse{CompactRevision}; v3rpc marks it canceled (header revision 0).
        w.out.send(encodeWatchResponse(this.header(0), { watchId: w.id, compactRevision: compactRev, canceled: true }), 0);
        this.remove(w);
        continue;
      }
      if (w.minRev > curRev) {
        this.joinSynced(w);
        continue;
      }
      live.push(w);
      if (w.minRev < minRev) minRev = w.minRev;
    }
    if (live.length > 0) {
      // Read whole revisions in [minRev, curRev], bounded.
      const events: WatchEvent[] = [];
      let bytes = 0;
      let lastMain = minRev - 1;
      let cut = false;
      for (const { value } of this.reader.dbs.rev.getRange({ start: revKey(minRev, 0), end: revKey(curRev, MAX_SUB), inclusiveEnd: true })) {
        const ev = new WatchEvent(value);
        if ((events.length >= SYNC_CHUNK_RECORDS || bytes >= SYNC_CHUNK_BYTES) && ev.rev !== lastMain) { cut = true; break; }
        events.push(ev);
        bytes += value.length;
        lastMain = ev.rev;
      }
      const covered = cut ? lastMain : curRev;
      for (const w of live) {
        if (w.removed) continue;
        const mine: WatchEvent[] = [];
        for (const ev of events) if (ev.rev >= w.minRev && ev.rev <= covered && inRange(ev.key, w)) mine.push(ev);
        if (mine.length > 0) this.deliver(w, mine, curRev);
        w.minRev = covered + 1;
        if (covered >= curRev) this.joinSynced(w);
      }
    }
    this.updateSlowGauge();
    if (this.unsynced.size > 0) this.scheduleSync();
  }

  private joinSynced(w: Watcher): void {
    this.unsynced.delete(w);
    w.slow = false;
    w.synced = true;
    this.synced.add(w);
  }

  /** Stops background work. */
  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }
}
