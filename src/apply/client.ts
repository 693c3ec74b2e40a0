/**
 * ApplyClient: the main thread's handle on the apply worker. It owns the `applyIn` producer and the `applyOut`
 * consumer (layouts in batch-format.ts; the server never touches them), spawns src/apply/worker.ts, and exposes
 * the worker's published counters (applied index, revision, compact revision, db size) without a message hop.
 *
 * apply(): one ring record per call (split only when larger than the ring's record limit). When the ring is full
 * the batch waits in an in-memory queue drained on ring space (Atomics.waitAsync). The queue's bound
 * (MAX_QUEUED_BATCHES / maxQueuedBytes) is enforced by the caller: `hasRoom()` turns false at the bound and the
 * Raft host stops handing committed entries over until `whenRoom()` resolves (src/server/raft-host.ts). apply()
 * itself never refuses entries for lack of room: committed entries are never dropped.
 *
 * onApplied(): driven by Atomics.waitAsync on `applyOut`, callbacks receive every applied batch in order.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { createRing, RingConsumer, RingProducer } from '../ring/ring';
import type { StatusWords } from '../ring/status';
import type { SharedHistogram } from '../ring/shared-histogram';
import { ApplyFaultCode, ApplyStatus, ApplyWord, applyFaultCodeOf } from './apply-status';
import { invariant } from '../invariant';
import {
  type ApplyEntry, type ApplyResult, IN_ENTRY_HEADER_BYTES, IN_RECORD_HEADER_BYTES, readOutRecord, writeInRecord,
} from './batch-format';
import type { ApplyWorkerData } from './worker';

/** Default applyIn ring data size: 64 MiB (largest record 32 MiB). */
export const DEFAULT_APPLY_IN_BYTES = 64 * 1024 * 1024;
/** Default applyOut ring data size: 64 MiB. */
export const DEFAULT_APPLY_OUT_BYTES = 64 * 1024 * 1024;
/** Batches waiting for ring space at most. */
export const MAX_QUEUED_BATCHES = 4096;
/** Default bound on bytes of queued entry data. */
export const DEFAULT_MAX_QUEUED_BYTES = 256 * 1024 * 1024;
/** How long close() waits for the worker to finish, ms. */
export const CLOSE_TIMEOUT_MS = 30_000;

/** Options of ApplyClient.start. */
export interface ApplyClientOptions {
  /** Member data directory; the store lives in `<dataDir>/mvcc`. */
  dataDir: string;
  /** This member's id (< 2^53), put in response headers. */
  memberId: number;
  /** Cluster id (< 2^53), put in response headers. */
  clusterId: number;
  /** Shared status words: the worker mirrors AppliedIndex / ApplyFatal there. */
  statusWords?: StatusWords;
  /** etcd_disk_backend_commit_duration_seconds (seconds, observed by the worker). */
  commitHistogram?: SharedHistogram;
  /** etcd's minimum lease TTL in seconds. */
  minLeaseTtlSeconds?: number;
  /** LMDB fsync cadence, ms (worker.ts DEFAULT_SYNC_INTERVAL_MS). */
  syncIntervalMs?: number;
  /** Ring sizes (powers of two). */
  applyInBytes?: number;
  applyOutBytes?: number;
  /** Bound on queued entry bytes before hasRoom() turns false. */
  maxQueuedBytes?: number;
  /** LMDB map size, bytes. */
  mapSizeBytes?: number;
}

/**
 * Callback for applied batches: index of the last applied entry, the results of that batch, and its MVCC events
 * (`rev` records in revision order, src/mvcc/encoding.ts; decode with decodeRecord / recordIsTombstone).
 */
export type AppliedCallback = (appliedIndex: number, results: ApplyResult[], events: Buffer[]) => void;

/** An apply worker spawned by ApplyClient.prepare: `open` exactly once, or `cancel`. */
export interface PreparedApplyClient {
  /** Opens the store in the worker; resolves once it is ready. @throws the worker's open error. */
  open(): Promise<ApplyClient>;
  /** Stops the worker without opening anything. */
  cancel(): Promise<void>;
}

/** Main-thread client of the apply worker. */
export class ApplyClient {
  private readonly producer: RingProducer;
  private readonly consumer: RingConsumer;
  private readonly callbacks: AppliedCallback[] = [];
  private readonly queue: ApplyEntry[][] = [];
  private queuedBytes = 0;
  /** The running flush (one at a time), or null. */
  private flushing: Promise<void> | null = null;
  /** Callers of whenRoom() waiting for the queue to drop below its bound. */
  private roomWaiters: (() => void)[] = [];
  private closing = false;
  private exited = false;
  private fatalMessage: string | null = null;
  private readonly fatalCallbacks: ((message: string, code: ApplyFaultCode) => void)[] = [];
  private readonly exitPromise: Promise<void>;
  /**
   * Resolves when the worker reported its store closed ({type:'closed'}) or exited. The thread's own teardown after
   * that (its V8 heap) took 75-175 ms under load, and a store swap need not wait for it: only the store must be shut.
   */
  private readonly storeClosed: Promise<void>;
  private readLoopDone: Promise<void>;

  private constructor(
    private readonly worker: Worker,
    applyIn: SharedArrayBuffer,
    applyOut: SharedArrayBuffer,
    /** The worker's published counters. */
    readonly status: ApplyStatus,
    private readonly maxQueuedBytes: number,
  ) {
    this.producer = new RingProducer(applyIn);
    this.consumer = new RingConsumer(applyOut);
    this.exitPromise = new Promise((resolve) => worker.once('exit', () => { this.exited = true; this.wakeRoomWaiters(true); this.consumer.interrupt(); resolve(); }));
    let storeClosed!: () => void;
    this.storeClosed = new Promise((resolve) => { storeClosed = resolve; });
    void this.exitPromise.then(storeClosed);
    worker.on('message', (m: { type: string; message?: string }) => {
      if (m.type === 'closed') storeClosed();
      if (m.type === 'fatal') {
        this.fatalMessage = m.message ?? 'apply worker failed';
        // The worker stored the fault's code before posting; a worker that died without one is Internal.
        const code: ApplyFaultCode = this.status.load(ApplyWord.Fatal) || ApplyFaultCode.Internal;
        for (const cb of this.fatalCallbacks) cb(this.fatalMessage, code);
        this.wakeRoomWaiters(true);
      }
    });
    this.readLoopDone = this.readLoop();
  }

  /**
   * Spawns the worker, which opens (or creates) the store; resolves once it is ready.
   * @throws the worker's error if it fails to start.
   */
  static async start(opts: ApplyClientOptions): Promise<ApplyClient> {
    return ApplyClient.spawn(opts, false).then((p) => p.open());
  }

  /**
   * Spawns the worker and lets it load its modules without opening the store; `open()` then opens it (what
   * {@link start} does, minus the spawn), `cancel()` stops the unused worker. For a store swap: the worker is
   * prepared while the old store still serves, so the pause only covers the open.
   * @throws the worker's error if it fails to load.
   */
  static prepare(opts: ApplyClientOptions): Promise<PreparedApplyClient> {
    return ApplyClient.spawn(opts, true);
  }

  private static async spawn(opts: ApplyClientOptions, deferOpen: boolean): Promise<PreparedApplyClient> {
    const applyIn = createRing(opts.applyInBytes ?? DEFAULT_APPLY_IN_BYTES);
    const applyOut = createRing(opts.applyOutBytes ?? DEFAULT_APPLY_OUT_BYTES);
    const status = ApplyStatus.create();
    const data: ApplyWorkerData & { __applyWorker: true } = {
      __applyWorker: true,
      dataDir: opts.dataDir,
      memberId: opts.memberId,
      clusterId: opts.clusterId,
      applyIn,
      applyOut,
      applyStatus: status.sab,
      statusWords: opts.statusWords?.sab,
      commitHistogram: opts.commitHistogram ? { sab: opts.commitHistogram.sab, buckets: [...opts.commitHistogram.bucketUpperBounds] } : undefined,
      minLeaseTtlSeconds: opts.minLeaseTtlSeconds,
      syncIntervalMs: opts.syncIntervalMs,
      mapSizeBytes: opts.mapSizeBytes,
      deferOpen,
    };
    const worker = new Worker(path.join(__dirname, 'worker.js'), { workerData: data });
    const until = (want: string): Promise<void> => new Promise<void>((resolve, reject) => {
      const onMsg = (m: { type: string; message?: string }): void => {
        if (m.type === want) { cleanup(); resolve(); }
        else if (m.type === 'fatal') { cleanup(); reject(new Error(m.message)); }
      };
      const onErr = (e: Error): void => { cleanup(); reject(e); };
      const onExit = (code: number): void => { cleanup(); reject(new Error(`apply worker exited with code ${code} before ${want}`)); };
      const cleanup = (): void => { worker.off('message', onMsg); worker.off('error', onErr); worker.off('exit', onExit); };
      worker.on('message', onMsg);
      worker.once('error', onErr);
      worker.once('exit', onExit);
    });
    const open = async (): Promise<ApplyClient> => {
      const ready = until('ready');
      if (deferOpen) worker.postMessage({ type: 'open' });
      await ready;
      return new ApplyClient(worker, applyIn, applyOut, status, opts.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES);
    };
    const cancel = async (): Promise<void> => {
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.postMessage({ type: 'cancel' });
      await exited;
    };
    if (deferOpen) await until('loaded');
    return { open, cancel };
  }

  /**
   * Hands committed entries (ascending indexes) to the worker. Never blocks and never refuses for lack of room
   * (check {@link hasRoom} first); entries' data is copied into the ring now or when space frees up (do not mutate
   * it until then).
   * @throws Error after close() or a worker failure; RingRecordTooLargeError when one entry alone exceeds the
   *   ring's record limit.
   */
  apply(entries: readonly ApplyEntry[]): void {
    if (this.closing) throw new Error('apply client is closed');
    if (this.fatalMessage !== null) throw new Error(`apply worker failed: ${this.fatalMessage}`);
    if (entries.length === 0) return;
    if (this.queue.length === 0 && this.writeNow(entries)) return;
    let bytes = 0;
    for (const e of entries) bytes += e.data.length;
    this.queue.push(entries.slice());
    this.queuedBytes += bytes;
    this.startFlush();
  }

  /** Batches waiting for ring space. */
  queuedBatches(): number {
    return this.queue.length;
  }

  /** Bytes of entry data waiting for ring space. */
  queuedEntryBytes(): number {
    return this.queuedBytes;
  }

  /** False once the queue reached MAX_QUEUED_BATCHES or maxQueuedBytes: hand nothing more until {@link whenRoom}. */
  hasRoom(): boolean {
    return this.queue.length < MAX_QUEUED_BATCHES && this.queuedBytes < this.maxQueuedBytes;
  }

  /** Resolves once {@link hasRoom} is true again, or the worker exited / failed (never rejects). */
  whenRoom(): Promise<void> {
    if (this.hasRoom() || this.exited || this.fatalMessage !== null) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /** Resolves when the queue is empty (every batch handed so far is in the ring), or the worker is gone. */
  async whenWritable(): Promise<void> {
    while (this.queue.length > 0 && !this.exited && this.fatalMessage === null) await this.startFlush();
  }

  /** Registers a callback for every applied batch (in order). */
  onApplied(cb: AppliedCallback): void {
    this.callbacks.push(cb);
  }

  /** Index of the last applied entry (the persisted consistent index), from the shared status words. */
  appliedIndex(): number { return this.status.load(ApplyWord.AppliedIndex); }
  /** Store revision after the last applied batch. */
  revision(): number { return this.status.load(ApplyWord.Revision); }
  /** Compact revision (0 = never compacted). */
  compactRevision(): number { return this.status.load(ApplyWord.CompactRevision); }
  /** LMDB data file size in bytes. */
  dbSizeBytes(): number { return this.status.load(ApplyWord.DbSizeBytes); }
  /** LMDB bytes in use. */
  dbSizeInUseBytes(): number { return this.status.load(ApplyWord.DbSizeInUseBytes); }
  /** Consistent index covered by the last LMDB fsync (WAL may be truncated up to it). */
  syncedIndex(): number { return this.status.load(ApplyWord.SyncedIndex); }
  /** Bytes queued in the applyIn and applyOut rings (etcetera_ring_occupancy_bytes). */
  ringUsedBytes(): { applyIn: number; applyOut: number } {
    return { applyIn: this.producer.usedBytes(), applyOut: this.consumer.usedBytes() };
  }
  /** `cb` runs once when the worker stops on a fatal (non-request) error, e.g. a full disk. */
  onFatal(cb: (message: string, code: ApplyFaultCode) => void): void {
    this.fatalCallbacks.push(cb);
  }

  /** Non-null once the worker stopped on a fatal error. */
  fatal(): string | null { return this.fatalMessage; }

  /**
   * Flushes queued batches, closes the applyIn ring (the worker applies what is left, fsyncs LMDB and closes it),
   * delivers the remaining results, and resolves once the worker closed its store (its thread may still be tearing
   * down; it is terminated if it has not exited after CLOSE_TIMEOUT_MS).
   */
  async close(): Promise<void> {
    if (this.closing) { await this.storeClosed; return; }
    // Each await is a running flush that waits on ring space (a real event), so this loop yields to the event loop.
    await this.whenWritable();
    this.closing = true;
    this.wakeRoomWaiters(true);
    this.producer.close();
    const timer = setTimeout(() => void this.worker.terminate(), CLOSE_TIMEOUT_MS);
    void this.exitPromise.then(() => clearTimeout(timer));
    await this.storeClosed;
    await this.readLoopDone;
  }

  // ------------------------------------------------------------------ internals

  /** Writes entries as ring records; false (nothing written) when the first record does not fit now. */
  private writeNow(entries: readonly ApplyEntry[]): boolean {
    const max = this.producer.maxRecordBytes;
    let from = 0;
    while (from < entries.length) {
      let to = from;
      let bytes = IN_RECORD_HEADER_BYTES;
      while (to < entries.length && (to === from || bytes + IN_ENTRY_HEADER_BYTES + entries[to]!.data.length <= max)) {
        bytes += IN_ENTRY_HEADER_BYTES + entries[to]!.data.length;
        to++;
      }
      const f = from;
      const ok = this.producer.tryWrite(bytes, (buf, off) => writeInRecord(buf, this.producer.view, off, entries, f, to));
      if (!ok) {
        if (from === 0) return false;
        // Part written: queue the rest at the front so order is kept.
        const rest = entries.slice(from);
        this.queue.unshift(rest);
        for (const e of rest) this.queuedBytes += e.data.length;
        this.startFlush();
        return true;
      }
      from = to;
    }
    return true;
  }

  /** Starts draining the queue into the ring unless a drain runs already; returns the running drain. */
  private startFlush(): Promise<void> {
    if (this.flushing === null) {
      this.flushing = this.flushQueue().finally(() => {
        this.flushing = null;
      });
    }
    return this.flushing;
  }

  private async flushQueue(): Promise<void> {
    while (this.queue.length > 0 && !this.exited && this.fatalMessage === null) {
      const head = this.queue[0]!;
      this.queue.shift();
      let bytes = 0;
      for (const e of head) bytes += e.data.length;
      this.queuedBytes -= bytes;
      if (!this.writeNow(head)) {
        this.queue.unshift(head);
        this.queuedBytes += bytes;
        await this.producer.waitSpaceAsync(100);
      }
      this.wakeRoomWaiters(false);
    }
    this.wakeRoomWaiters(true);
  }

  /** Resolves whenRoom() callers once there is room (or `always`: the drain ended, the worker is gone). */
  private wakeRoomWaiters(always: boolean): void {
    if (this.roomWaiters.length === 0 || (!always && !this.hasRoom())) return;
    const ws = this.roomWaiters;
    this.roomWaiters = [];
    for (const w of ws) w();
  }

  /** A fault found on this side of the rings: the same outcome as the worker's own 'fatal'. */
  private failHere(e: unknown): void {
    if (this.fatalMessage !== null) return;
    this.fatalMessage = (e as Error)?.message ?? String(e);
    const code = applyFaultCodeOf(e);
    for (const cb of this.fatalCallbacks) cb(this.fatalMessage, code);
    this.wakeRoomWaiters(true);
  }

  private async readLoop(): Promise<void> {
    const view = this.consumer.view;
    let lastApplied = -1;
    const onRecord = (buf: Uint8Array, off: number, len: number): void => {
      let rec: ReturnType<typeof readOutRecord>;
      // applyOut consumer end: the record's sizes add up (readOutRecord) and the applied index never goes back.
      try {
        rec = readOutRecord(buf, view, off, len);
        invariant(rec.appliedIndex >= lastApplied, () => `applyOut: applied index ${rec.appliedIndex} after ${lastApplied}`);
      } catch (e) {
        this.failHere(e);
        return;
      }
      const { appliedIndex, results, events } = rec;
      lastApplied = appliedIndex;
      for (const cb of this.callbacks) {
        try {
          cb(appliedIndex, results, events);
        } catch (e) {
          console.error(`apply client: onApplied callback threw: ${(e as Error).stack ?? String(e)}`);
        }
      }
    };
    for (;;) {
      this.consumer.drain(onRecord);
      if (this.consumer.closed || (this.exited && this.consumer.isEmpty())) return;
      // The worker's exit interrupts this wait (no race against exitPromise: see RingConsumer.interrupt).
      await this.consumer.waitAsync();
    }
  }
}
