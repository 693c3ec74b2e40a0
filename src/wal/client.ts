/**
 * Main-thread side of the WAL: spawns the WAL worker (src/wal/worker.ts) with the walIn ring and the status words,
 * encodes each append directly into the ring (one record per Ready), and reports durability without ever blocking
 * the event loop (Atomics.waitAsync on StatusWord.DurableSeq). The server never touches the ring layout.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { RingProducer, createRing } from '../ring/ring';
import { StatusWord, StatusWords } from '../ring/status';
import type { SharedHistogram } from '../ring/shared-histogram';
import { invariant } from '../invariant';
import type { HardState, WalEntry, WalMetadata } from './record';
import type { PreallocateMode } from './segment';
import type { WalReplay } from './wal';
import {
  WAL_IN_CONTROL_BYTES, WAL_IN_ENTRY_FIXED_BYTES, WAL_IN_HEAD_BYTES, WAL_IN_MAX_ENTRIES, WalErrorCode, walInRecordBytes, writeWalInControl,
  writeWalInCommitOnly, writeWalInRecord, assertWalInEntries, type WalControl,
} from './protocol';
import type { WalWorkerData, WalWorkerMessage } from './worker';

/** Default walIn ring size (16 MiB → records up to 8 MiB). */
export const DEFAULT_WAL_RING_CAPACITY_BYTES = 16 * 1024 * 1024;
/** Default bound of the in-process queue used while the ring is full. */
export const DEFAULT_WAL_MAX_QUEUED_RECORDS = 4096;

/** Options of WalClient.open. */
export interface WalClientOptions {
  /** WAL directory (`<data-dir>/member/wal`, see walDirOf). */
  dir: string;
  /** When set and the directory holds no WAL, a new WAL is created with it. */
  metadata?: WalMetadata;
  segmentSizeBytes?: number;
  preallocate?: PreallocateMode;
  /** Power of two; default DEFAULT_WAL_RING_CAPACITY_BYTES. */
  ringCapacityBytes?: number;
  /** Ring records queued in memory while the ring is full; beyond it append throws WalBackpressureError. */
  maxQueuedRecords?: number;
  /** Histogram observed with each fdatasync duration (seconds), e.g. etcd_disk_wal_fsync_duration_seconds. */
  fsyncHistogram?: SharedHistogram;
  /** Receives worker warnings (e.g. torn-tail repair). Default: stderr JSON line. */
  onWarn?: (fields: Record<string, unknown>, msg: string) => void;
  /** Called after the worker deleted released segments (control records). */
  onReleased?: (info: { releaseIndex: number; files: string[]; remaining: number }) => void;
}

/** The WAL worker stopped on a fatal error; the server must stop (like etcd's fatal WAL errors). */
export class WalFatalError extends Error {
  override readonly name = 'WalFatalError';
  /** @param code WalErrorCode; @param causeName error class name in the worker */
  constructor(readonly code: WalErrorCode, readonly causeName: string, message: string) {
    super(`WAL worker failed (${WalErrorCode[code] ?? code}): ${causeName}: ${message}`);
  }
}

/** append() while the ring is full and the in-memory queue holds maxQueuedRecords records. */
export class WalBackpressureError extends Error {
  override readonly name = 'WalBackpressureError';
}

/** append() after close() started. */
export class WalClosedError extends Error {
  override readonly name = 'WalClosedError';
}

/** One queued ring record: entries[from, to) plus the HardState (only on the last piece of an append). */
interface Pending {
  hs: HardState | null;
  entries: readonly WalEntry[];
  from: number;
  to: number;
  sizeBytes: number;
  /** Set for a control record (hs/entries unused). */
  control?: WalControl;
  /** A commit-only HardState (hs set, no entries): written without an fdatasync of its own. */
  commitOnly?: boolean;
}

/** Callback of onDurable: everything up to ring record `seq` is durable; the log ends at (durableIndex, durableTerm). */
export type DurableCallback = (durableIndex: number, durableTerm: number, seq: number) => void;

/** Main-thread WAL handle (see module doc). */
export class WalClient {
  private readonly producer: RingProducer;
  private readonly status: StatusWords;
  private readonly queue: Pending[] = [];
  private readonly maxQueued: number;
  private readonly durableCbs = new Set<DurableCallback>();
  private readonly fatalCbs = new Set<(e: WalFatalError) => void>();
  private seq = 0;
  private seenSeq = 0;
  private pumping = false;
  private closing = false;
  private fatalErr: WalFatalError | null = null;
  private exited: Promise<number>;
  private fillHs: HardState | null = null;
  private fillEntries: readonly WalEntry[] = [];
  private fillFrom = 0;
  private fillTo = 0;
  private fillControl: WalControl | null = null;
  private fillCommitOnly = false;
  private readonly fill = (buf: Uint8Array, off: number): void => {
    if (this.fillControl) writeWalInControl(this.producer.view, off, this.fillControl);
    else if (this.fillCommitOnly) writeWalInCommitOnly(this.producer.view, off, this.fillHs as HardState);
    else {
      const end = writeWalInRecord(this.producer.view, buf, off, this.fillHs, this.fillEntries, this.fillFrom, this.fillTo);
      // Producer end: the record fills exactly the bytes reserved for it (the size the consumer will read).
      invariant(end - off === walInRecordBytes(this.fillEntries, this.fillFrom, this.fillTo), () => `walIn record wrote ${end - off} bytes`);
    }
  };

  private constructor(
    private readonly worker: Worker,
    ringSab: SharedArrayBuffer,
    statusSab: SharedArrayBuffer,
    maxQueued: number,
  ) {
    this.producer = new RingProducer(ringSab);
    this.status = new StatusWords(statusSab);
    this.maxQueued = maxQueued;
    this.exited = new Promise((resolve) => worker.once('exit', resolve));
  }

  /**
   * Spawns the WAL worker, which opens (or creates) the WAL and replays it.
   * @returns the client and the replayed state (metadata, HardState, entries, snapshot marker, repair info).
   * @throws WalFatalError when the worker cannot open the WAL (e.g. ErrWalCorrupt, ErrWalNotFound); the worker has
   *   exited by then.
   */
  static async open(opts: WalClientOptions): Promise<{ client: WalClient; replay: WalReplay; created: boolean }> {
    const ringSab = createRing(opts.ringCapacityBytes ?? DEFAULT_WAL_RING_CAPACITY_BYTES);
    const status = StatusWords.create();
    const data: WalWorkerData & { __walWorker: true } = {
      __walWorker: true,
      dir: opts.dir,
      createMetadata: opts.metadata ?? null,
      segmentSizeBytes: opts.segmentSizeBytes,
      preallocate: opts.preallocate,
      ringSab,
      statusSab: status.sab,
      fsyncHistogramSab: opts.fsyncHistogram?.sab ?? null,
      fsyncHistogramBuckets: opts.fsyncHistogram ? [...opts.fsyncHistogram.bucketUpperBounds] : null,
    };
    const worker = new Worker(path.join(__dirname, 'worker.js'), { workerData: data });
    const client = new WalClient(worker, ringSab, status.sab, opts.maxQueuedRecords ?? DEFAULT_WAL_MAX_QUEUED_RECORDS);
    const warn =
      opts.onWarn ?? ((fields: Record<string, unknown>, msg: string) => process.stderr.write(JSON.stringify({ level: 'warn', msg, ...fields }) + '\n'));
    return new Promise((resolve, reject) => {
      let ready = false;
      worker.on('message', (m: WalWorkerMessage) => {
        if (m.type === 'ready') {
          ready = true;
          void client.durableLoop();
          resolve({ client, replay: m.replay, created: m.created });
        } else if (m.type === 'fatal') {
          const err = new WalFatalError(m.code, m.errorName, m.message);
          if (!ready) reject(err);
          else client.setFatal(err);
        } else if (m.type === 'warn') {
          warn(m.fields, m.msg);
        } else if (m.type === 'released') {
          opts.onReleased?.({ releaseIndex: m.releaseIndex, files: m.files, remaining: m.remaining });
        }
      });
      worker.on('error', (e: Error) => {
        const err = new WalFatalError(WalErrorCode.Internal, e.name, e.message);
        if (!ready) reject(err);
        else client.setFatal(err);
      });
      worker.once('exit', (code) => {
        if (!ready) reject(new WalFatalError(WalErrorCode.Internal, 'exit', `WAL worker exited with code ${code} before it was ready`));
        // Wake the durable loop so it can end.
        client.status.store(StatusWord.WalStopped, 1);
        client.status.notify(StatusWord.DurableSeq);
      });
    });
  }

  /** Sequence number of the last ring record handed to append (records are numbered from 1). */
  get appendedSeq(): number {
    return this.seq;
  }

  /** Sequence number of the last ring record known durable. */
  get durableSeq(): number {
    return this.seenSeq;
  }

  /** Index of the last durable entry (status word, racy snapshot). */
  get durableIndex(): number {
    return this.status.load(StatusWord.DurableIndex);
  }

  /** Bytes queued in the walIn ring (etcetera_ring_occupancy_bytes{ring="walIn"}). */
  ringUsedBytes(): number {
    return this.producer.usedBytes();
  }

  /** Bytes the WAL worker wrote since it started (etcd_disk_wal_write_bytes_total). */
  writeBytes(): number {
    return this.status.load(StatusWord.WalWriteBytes);
  }

  /** The fatal error, once the worker failed. */
  get fatal(): WalFatalError | null {
    return this.fatalErr;
  }

  /** Records queued in memory because the ring was full. */
  get queuedRecords(): number {
    return this.queue.length;
  }

  /**
   * Hands one Ready's HardState and entries to the WAL worker: one ring record, or several when larger than the
   * ring's record limit (the HardState then rides on the last one). Never blocks: when the ring is full the
   * records are queued (bounded) and written as space frees up. The entries' data must not be mutated until
   * durable (queued records keep references).
   * @returns the sequence number to compare with onDurable's `seq`.
   * @throws WalFatalError (worker failed), WalClosedError, WalBackpressureError (queue full), RangeError (bad
   *   index/term or a single entry larger than the ring's record limit).
   */
  append(hardState: HardState | null, entries: readonly WalEntry[]): number {
    if (this.fatalErr) throw this.fatalErr;
    if (this.closing) throw new WalClosedError('WAL client is closing');
    const code = this.status.load(StatusWord.WalFatal);
    if (code !== 0) throw new WalFatalError(code, 'WalFatal', 'the WAL worker stopped');
    for (const e of entries) {
      if (!Number.isSafeInteger(e.index) || e.index < 1 || !Number.isSafeInteger(e.term) || e.term < 0) {
        throw new RangeError(`bad entry index/term ${e.index}/${e.term}`);
      }
    }
    if (hardState && !(Number.isSafeInteger(hardState.term) && Number.isSafeInteger(hardState.vote) && Number.isSafeInteger(hardState.commit))) {
      throw new RangeError('bad HardState');
    }
    assertWalInEntries(entries);
    const pieces = this.split(hardState, entries);
    if (this.queue.length + pieces.length > this.maxQueued) {
      throw new WalBackpressureError(`WAL queue full (${this.queue.length} records queued, limit ${this.maxQueued})`);
    }
    for (const p of pieces) {
      this.seq++;
      if (this.queue.length > 0 || !this.tryWrite(p)) {
        if (this.queue.length >= this.maxQueued) throw new WalBackpressureError(`WAL queue full (limit ${this.maxQueued})`);
        this.queue.push(p);
      }
    }
    if (this.queue.length > 0) void this.pump();
    return this.seq;
  }

  /**
   * Hands a control record to the worker, in order with appends: a snapshot marker (snapIndex > 0) written where
   * it falls in the log, and/or a release of the segments whose entries are all <= releaseIndex, carried out after
   * the batch's fdatasync and keeping at least `maxWals` files (0 = delete nothing). Never blocks (queued like
   * append when the ring is full).
   * @returns the sequence number to compare with onDurable's `seq`.
   * @throws as append.
   */
  control(c: WalControl): number {
    if (this.fatalErr) throw this.fatalErr;
    if (this.closing) throw new WalClosedError('WAL client is closing');
    for (const v of [c.snapIndex, c.snapTerm, c.releaseIndex, c.maxWals]) {
      if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`bad WAL control field ${v}`);
    }
    if (this.queue.length >= this.maxQueued) throw new WalBackpressureError(`WAL queue full (limit ${this.maxQueued})`);
    const p: Pending = { hs: null, entries: [], from: 0, to: 0, sizeBytes: WAL_IN_CONTROL_BYTES, control: { ...c } };
    this.seq++;
    if (this.queue.length > 0 || !this.tryWrite(p)) {
      this.queue.push(p);
      void this.pump();
    }
    return this.seq;
  }

  /**
   * Hands a HardState whose only change is the commit index to the worker, in order with appends. The worker writes
   * it without an fdatasync of its own (etcd: raft.MustSync is false); the next synced batch makes it durable. The
   * worker is not woken for it: it is read with the next record or after the worker's idle wait (at most
   * WORKER_IDLE_WAIT_MS), and a SIGKILL before then loses it, which recovery tolerates like an unsynced write. A
   * restart that finds an older commit index recovers it (the commit index is volatile, Raft thesis §3.8).
   * @returns the sequence number (nobody needs to wait for it). @throws as append.
   */
  appendCommitOnly(hardState: HardState): number {
    if (this.fatalErr) throw this.fatalErr;
    if (this.closing) throw new WalClosedError('WAL client is closing');
    if (!(Number.isSafeInteger(hardState.term) && Number.isSafeInteger(hardState.vote) && Number.isSafeInteger(hardState.commit))) {
      throw new RangeError('bad HardState');
    }
    if (this.queue.length >= this.maxQueued) throw new WalBackpressureError(`WAL queue full (limit ${this.maxQueued})`);
    const p: Pending = { hs: { ...hardState }, entries: [], from: 0, to: 0, sizeBytes: WAL_IN_HEAD_BYTES, commitOnly: true };
    this.seq++;
    if (this.queue.length > 0 || !this.tryWrite(p)) {
      this.queue.push(p);
      void this.pump();
    }
    return this.seq;
  }

  /** Registers a callback fired after durable batches (several worker batches that complete before the main thread
   * wakes are reported once, with the latest index/seq). @returns an unsubscribe function. */
  onDurable(cb: DurableCallback): () => void {
    this.durableCbs.add(cb);
    return () => this.durableCbs.delete(cb);
  }

  /** Registers a callback fired once if the worker fails. @returns an unsubscribe function. */
  onFatal(cb: (e: WalFatalError) => void): () => void {
    this.fatalCbs.add(cb);
    return () => this.fatalCbs.delete(cb);
  }

  /** Resolves when ring record `seq` is durable. @throws (rejects) WalFatalError if the worker fails first. */
  waitDurable(seq: number): Promise<void> {
    if (this.seenSeq >= seq) return Promise.resolve();
    if (this.fatalErr) return Promise.reject(this.fatalErr);
    return new Promise((resolve, reject) => {
      const offD = this.onDurable((_i, _t, s) => {
        if (s >= seq) {
          offD();
          offF();
          resolve();
        }
      });
      const offF = this.onFatal((e) => {
        offD();
        offF();
        reject(e);
      });
    });
  }

  /**
   * Writes what is still queued, closes the ring (the worker makes everything durable, then exits) and waits for
   * the worker to exit. Idempotent.
   */
  async close(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      while (this.queue.length > 0 && !this.fatalErr && this.status.load(StatusWord.WalStopped) === 0) {
        await this.producer.waitSpaceAsync(100);
        this.flushQueue();
      }
      this.producer.close();
    }
    await this.exited;
  }

  private split(hs: HardState | null, entries: readonly WalEntry[]): Pending[] {
    const max = this.producer.maxRecordBytes;
    const total = walInRecordBytes(entries, 0, entries.length);
    if (total <= max && entries.length <= WAL_IN_MAX_ENTRIES) {
      return [{ hs, entries, from: 0, to: entries.length, sizeBytes: total }];
    }
    const out: Pending[] = [];
    let from = 0;
    let size = WAL_IN_HEAD_BYTES;
    for (let i = 0; i < entries.length; i++) {
      const sz = WAL_IN_ENTRY_FIXED_BYTES + entries[i]!.data.length;
      if (WAL_IN_HEAD_BYTES + sz > max) {
        throw new RangeError(`entry ${entries[i]!.index} of ${entries[i]!.data.length} bytes exceeds the WAL ring record limit of ${max} bytes`);
      }
      if (size + sz > max || i - from >= WAL_IN_MAX_ENTRIES) {
        out.push({ hs: null, entries, from, to: i, sizeBytes: size });
        from = i;
        size = WAL_IN_HEAD_BYTES;
      }
      size += sz;
    }
    out.push({ hs, entries, from, to: entries.length, sizeBytes: size });
    return out;
  }

  private tryWrite(p: Pending): boolean {
    this.fillControl = p.control ?? null;
    this.fillCommitOnly = p.commitOnly === true;
    this.fillHs = p.hs;
    this.fillEntries = p.entries;
    this.fillFrom = p.from;
    this.fillTo = p.to;
    // A commit-only HardState is published without waking the worker: nothing waits for it, and at low load a
    // wake per Ready for it alone doubled the worker's wakes (and the main thread's durable wakes after them). It
    // rides with the next append, or the worker's idle wait (WORKER_IDLE_WAIT_MS) picks it up.
    const ok = this.producer.tryWrite(p.sizeBytes, this.fill, this.fillCommitOnly);
    if (ok && this.fillCommitOnly) this.producer.publishQuiet();
    this.fillEntries = [];
    this.fillHs = null;
    this.fillControl = null;
    this.fillCommitOnly = false;
    return ok;
  }

  private flushQueue(): void {
    while (this.queue.length > 0 && this.tryWrite(this.queue[0]!)) this.queue.shift();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0 && !this.fatalErr) {
        this.flushQueue();
        if (this.queue.length === 0) break;
        await this.producer.waitSpaceAsync(1000);
        if (this.status.load(StatusWord.WalStopped) !== 0) break;
      }
    } finally {
      this.pumping = false;
    }
  }

  private setFatal(e: WalFatalError): void {
    if (this.fatalErr) return;
    this.fatalErr = e;
    for (const cb of [...this.fatalCbs]) cb(e);
  }

  private async durableLoop(): Promise<void> {
    for (;;) {
      await this.status.waitAsync(StatusWord.DurableSeq, this.seenSeq);
      const seq = this.status.load(StatusWord.DurableSeq);
      // Consumer end of the worker's status words: the durable sequence only moves forward, and never past the
      // records handed over. A break is a bug or corruption: the WAL is treated as failed (BadRecord).
      if (seq < this.seenSeq || seq > this.seq) {
        this.setFatal(new WalFatalError(WalErrorCode.BadRecord, 'InvariantError', `walIn durable sequence ${seq} after ${this.seenSeq} (${this.seq} handed over)`));
        return;
      }
      if (seq !== this.seenSeq) {
        this.seenSeq = seq;
        const idx = this.status.load(StatusWord.DurableIndex);
        const term = this.status.load(StatusWord.DurableTerm);
        for (const cb of [...this.durableCbs]) cb(idx, term, seq);
      }
      const code = this.status.load(StatusWord.WalFatal);
      if (code !== 0 && !this.fatalErr) {
        // Details arrive by message; make sure waiters learn about it even if the message is late.
        setTimeout(() => this.setFatal(new WalFatalError(code, 'WalFatal', 'the WAL worker stopped')), 50).unref();
      }
      if (this.status.load(StatusWord.WalStopped) !== 0 && this.status.load(StatusWord.DurableSeq) === this.seenSeq) return;
    }
  }
}
