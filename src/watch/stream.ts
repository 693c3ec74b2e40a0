/**
 * One watch stream (etcd v3rpc watch.go serverWatchStream + mvcc watchStream): decodes WatchRequests, keeps the
 * stream's watch ids, sends created / canceled / progress responses, and accounts the bytes handed to the
 * transport that it has not yet acknowledged (the memory bound of a client that stops reading).
 *
 * etcd 3.4 rules kept here:
 * - create: empty key → "\0"; range_end "\0" → every key ≥ key; range_end ≤ key (non-empty) → created+canceled with
 *   watch_id -1 and "mvcc: watcher range is empty"; watch_id 0 → the next free id of the stream (ids count up from
 *   0); a given id already in use → created+canceled, -1, "mvcc: duplicate watch ID provided on the WatchStream";
 *   start_revision 0 → current revision + 1; the created response carries the current revision.
 * - cancel of a known id → canceled response; unknown ids are ignored.
 * - progress request → one response with watch_id -1 and the current revision.
 * - progress_notify → every interval, a watcher that got no events since the last tick and is synced gets an empty
 *   response with the current revision.
 */
import { pb } from '../wire/codec';
import { metrics } from '../metrics/registry';
import { compareBytes } from '../mvcc/encoding';
import { encodeWatchResponse } from './encode';
import { MAX_PENDING_BYTES_PER_STREAM, Watcher, type WatchHub, type WatchOutput } from './hub';

/** etcd clientv3.InvalidWatchID. */
export const INVALID_WATCH_ID = -1;
export const ERR_EMPTY_WATCHER_RANGE = 'mvcc: watcher range is empty';
export const ERR_WATCHER_DUPLICATE_ID = 'mvcc: duplicate watch ID provided on the WatchStream';
/** etcd WatchCreateRequest.FilterType. */
const FILTER_NOPUT = 0;
const FILTER_NODELETE = 1;

/** Writes one encoded response to the transport; `done` runs once the transport took it (flushed). */
export type WriteFn = (buf: Buffer, done: () => void) => void;

export interface WatchStreamOptions {
  /** Progress notification interval, ms (etcd --experimental-watch-progress-notify-interval; 0 = off). */
  progressIntervalMs: number;
  /** Unacknowledged bytes before watchers become slow (default MAX_PENDING_BYTES_PER_STREAM). */
  maxPendingBytes?: number;
}

/** A decoded WatchCreateRequest (protobufjs field names). */
interface CreateRequest {
  key?: Uint8Array; rangeEnd?: Uint8Array; startRevision?: number; progressNotify?: boolean;
  filters?: number[]; prevKv?: boolean; watchId?: number; fragment?: boolean;
}

/** One client stream. */
export class WatchStream implements WatchOutput {
  private readonly watchers = new Map<number, Watcher>();
  /** etcd sws.progress: id → "no events sent since the last tick". */
  private readonly progress = new Map<number, boolean>();
  private nextId = 0;
  private pendingBytes = 0;
  private pendingEventCount = 0;
  private closed = false;
  private readonly timer: NodeJS.Timeout | null;
  private readonly maxPending: number;

  constructor(private readonly hub: WatchHub, private readonly write: WriteFn, opts: WatchStreamOptions) {
    this.maxPending = opts.maxPendingBytes ?? MAX_PENDING_BYTES_PER_STREAM;
    metrics.etcd_debugging_mvcc_watch_stream_total.inc();
    this.timer = opts.progressIntervalMs > 0 ? setInterval(() => this.progressTick(), opts.progressIntervalMs) : null;
    this.timer?.unref();
  }

  /** Bytes handed to the transport and not yet flushed. */
  pending(): number { return this.pendingBytes; }
  /** Watchers of this stream. */
  size(): number { return this.watchers.size; }

  congested(): boolean { return this.pendingBytes > this.maxPending; }
  canCatchUp(): boolean { return this.pendingBytes <= this.maxPending / 2; }

  sentEvents(watchId: number): void {
    if (this.progress.has(watchId)) this.progress.set(watchId, false);
  }

  send(buf: Buffer, events: number): void {
    if (this.closed) return;
    const len = buf.length;
    this.pendingBytes += len;
    this.pendingEventCount += events;
    this.hub.pendingDelta(events);
    this.write(buf, () => {
      if (this.closed) return;
      const wasBlocked = !this.canCatchUp();
      this.pendingBytes -= len;
      this.pendingEventCount -= events;
      this.hub.pendingDelta(-events);
      if (wasBlocked && this.canCatchUp()) this.hub.kick();
    });
  }

  /** Handles one encoded WatchRequest. @throws on undecodable bytes (the caller fails the stream). */
  handle(bytes: Uint8Array): void {
    if (this.closed) return;
    const req = pb.WatchRequest.decode(bytes) as unknown as {
      createRequest?: CreateRequest; cancelRequest?: { watchId?: number }; progressRequest?: object;
    };
    if (req.createRequest) this.create(req.createRequest);
    else if (req.cancelRequest) this.cancel(Number(req.cancelRequest.watchId ?? 0));
    else if (req.progressRequest) {
      this.send(encodeWatchResponse(this.hub.header(this.hub.currentRevision()), { watchId: INVALID_WATCH_ID }), 0);
    }
  }

  private create(c: CreateRequest): void {
    let key = Buffer.from(c.key ?? []);
    if (key.length === 0) key = Buffer.from([0]);
    let end: Buffer | null = c.rangeEnd && c.rangeEnd.length > 0 ? Buffer.from(c.rangeEnd) : null;
    if (end !== null && end.length === 1 && end[0] === 0) end = Buffer.alloc(0);
    const wsrev = this.hub.currentRevision();
    let start = Number(c.startRevision ?? 0);
    if (start === 0) start = wsrev + 1;
    let err: string | null = null;
    let id = Number(c.watchId ?? 0);
    if (end !== null && end.length !== 0 && compareBytes(key, end) >= 0) err = ERR_EMPTY_WATCHER_RANGE;
    else if (id === 0) {
      while (this.watchers.has(this.nextId)) this.nextId++;
      id = this.nextId++;
    } else if (this.watchers.has(id)) err = ERR_WATCHER_DUPLICATE_ID;
    const header = this.hub.header(wsrev);
    if (err !== null) {
      this.send(encodeWatchResponse(header, { watchId: INVALID_WATCH_ID, created: true, canceled: true, cancelReason: err }), 0);
      return;
    }
    const filters = c.filters ?? [];
    const w = new Watcher(
      this, id, key, end, start, filters.includes(FILTER_NOPUT), filters.includes(FILTER_NODELETE), !!c.prevKv, !!c.fragment,
    );
    this.watchers.set(id, w);
    if (c.progressNotify) this.progress.set(id, true);
    // The created response goes out before any event of this watcher (etcd buffers events until it is sent).
    this.send(encodeWatchResponse(header, { watchId: id, created: true }), 0);
    this.hub.add(w);
  }

  private cancel(id: number): void {
    const w = this.watchers.get(id);
    if (!w) return;
    this.watchers.delete(id);
    this.progress.delete(id);
    this.hub.remove(w);
    this.send(encodeWatchResponse(this.hub.header(this.hub.currentRevision()), { watchId: id, canceled: true }), 0);
  }

  /** etcd sendLoop progressTicker: RequestProgress for ids with no events since the last tick, then re-arm all. */
  private progressTick(): void {
    if (this.closed) return;
    for (const [id, idle] of this.progress) {
      const w = this.watchers.get(id);
      if (idle && w && this.hub.isSynced(w)) {
        this.send(encodeWatchResponse(this.hub.header(this.hub.currentRevision()), { watchId: id }), 0);
      }
      this.progress.set(id, true);
    }
  }

  /** Removes every watcher (client closed the stream or went away). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const w of this.watchers.values()) this.hub.remove(w);
    this.watchers.clear();
    this.hub.pendingDelta(-this.pendingEventCount);
    this.pendingEventCount = 0;
    metrics.etcd_debugging_mvcc_watch_stream_total.dec();
  }
}
