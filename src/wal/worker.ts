/**
 * WAL worker thread entry (worker_threads). Spawned by WalClient with WalWorkerData.
 *
 * Loop: drain every walIn record available (bounded by WORKER_MAX_RECORDS_PER_BATCH and the ring's capacity),
 * stage them (entries, then HardState) into the WAL's write buffer, one write, **one fdatasync per batch**, then
 * publish DurableTerm, DurableIndex and DurableSeq (+= records in the batch) in the status words and notify
 * DurableSeq. A batch of commit-only HardState records alone is written without an fdatasync (nothing waits on
 * them; the next synced batch covers them), so DurableSeq means: every record up to it that needs durability is
 * durable. fdatasync durations go to the shared histogram (etcd_disk_wal_fsync_duration_seconds).
 *
 * On a fatal error (I/O, ENOSPC, corrupt WAL on open, malformed ring record) it stores a WalErrorCode in
 * StatusWord.WalFatal, notifies, posts a 'fatal' message with details and stops consuming. It exits after the
 * producer closes the ring (everything before the close is made durable first).
 *
 * Messages posted to the parent: WalWorkerMessage.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { RingConsumer, RingCorruptError } from '../ring/ring';
import { StatusWord, StatusWords } from '../ring/status';
import { SharedHistogram } from '../ring/shared-histogram';
import { ErrWalCorrupt, Wal, WalIoError, WalNoSpaceError, WalReplay, type WalOptions } from './wal';
import type { WalMetadata } from './record';
import { InvariantError, invariant } from '../invariant';
import { WAL_IN_NO_SYNC, WalErrorCode, WalInRecordError, WalInSink, decodeWalInRecord, type WalControl } from './protocol';
import { parseSegmentFileName } from './segment';

/** Named limit: walIn records staged into one write + fdatasync. */
export const WORKER_MAX_RECORDS_PER_BATCH = 4096;
/** Named limit: how long the worker sleeps on an empty ring before re-checking (ms). */
export const WORKER_IDLE_WAIT_MS = 1000;

/** What WalClient passes to the worker (all SharedArrayBuffers are shared, not copied). */
export interface WalWorkerData {
  dir: string;
  /** Create the WAL with this metadata when the directory has no segments. */
  createMetadata: WalMetadata | null;
  segmentSizeBytes?: number;
  preallocate?: WalOptions['preallocate'];
  ringSab: SharedArrayBuffer;
  statusSab: SharedArrayBuffer;
  fsyncHistogramSab: SharedArrayBuffer | null;
  fsyncHistogramBuckets: number[] | null;
}

/** Messages from the worker. `replay` omits the Wal handle. */
export type WalWorkerMessage =
  | { type: 'ready'; replay: WalReplay; created: boolean }
  | { type: 'fatal'; code: WalErrorCode; errorName: string; message: string }
  | { type: 'warn'; fields: Record<string, unknown>; msg: string }
  | { type: 'released'; releaseIndex: number; files: string[]; remaining: number }
  | { type: 'closed' };

/**
 * The index to pass to Wal.releaseTo so that only segments wholly <= `releaseIndex` are deleted and at least
 * `maxWals` segment files remain (0 = unlimited retention → -1, delete nothing). `files` are the live segment
 * names, oldest first. Exported for tests.
 */
export function effectiveReleaseIndex(files: readonly string[], releaseIndex: number, maxWals: number): number {
  if (maxWals <= 0 || releaseIndex <= 0) return -1;
  const segs = files.map((f) => parseSegmentFileName(f));
  if (segs.some((s) => s === null)) return -1;
  // Segment i may go when segment i+1 starts at or below releaseIndex + 1 (all of i's entries are <= releaseIndex).
  let eligible = 0;
  while (eligible < segs.length - 1 && segs[eligible + 1]!.firstIndex <= releaseIndex + 1) eligible++;
  const drop = Math.min(eligible, segs.length - maxWals);
  if (drop <= 0) return -1;
  return segs[drop]!.firstIndex - 1;
}

function codeOf(e: unknown): WalErrorCode {
  if (e instanceof WalNoSpaceError) return WalErrorCode.NoSpace;
  if (e instanceof WalIoError) return WalErrorCode.Io;
  if (e instanceof ErrWalCorrupt) return WalErrorCode.Corrupt;
  if (e instanceof WalInRecordError || e instanceof RingCorruptError || e instanceof InvariantError) return WalErrorCode.BadRecord;
  return WalErrorCode.Internal;
}

/**
 * Runs the worker loop (exported for tests that want to run it in a thread of their own making).
 * @param post sends a WalWorkerMessage to the parent.
 */
export function runWalWorker(data: WalWorkerData, post: (m: WalWorkerMessage) => void): void {
  const status = new StatusWords(data.statusSab);
  const fatal = (e: unknown): void => {
    const code = codeOf(e);
    status.store(StatusWord.WalFatal, code);
    status.store(StatusWord.WalStopped, 1);
    status.notify(StatusWord.DurableSeq);
    status.notify(StatusWord.WalFatal);
    const err = e as Error;
    post({ type: 'fatal', code, errorName: err?.name ?? 'Error', message: err?.message ?? String(e) });
  };

  let consumer: RingConsumer;
  let wal: Wal;
  let hist: SharedHistogram | null = null;
  try {
    consumer = new RingConsumer(data.ringSab);
    if (data.fsyncHistogramSab && data.fsyncHistogramBuckets) {
      hist = SharedHistogram.attach(data.fsyncHistogramSab, data.fsyncHistogramBuckets);
    }
    const opts: WalOptions = {
      segmentSizeBytes: data.segmentSizeBytes,
      preallocate: data.preallocate,
      logger: { warn: (fields, msg) => post({ type: 'warn', fields, msg }) },
    };
    let created = false;
    let replay: WalReplay;
    if (!Wal.exists(data.dir) && data.createMetadata) {
      wal = Wal.create(data.dir, data.createMetadata, opts);
      created = true;
      replay = { metadata: wal.metadata, hardState: null, entries: [], snapshot: null, repaired: null };
    } else {
      const r = Wal.open(data.dir, opts);
      wal = r.wal;
      replay = { metadata: r.metadata, hardState: r.hardState, entries: r.entries, snapshot: r.snapshot, repaired: r.repaired };
    }
    status.store(StatusWord.DurableTerm, wal.lastTerm);
    status.store(StatusWord.DurableIndex, wal.lastIndex);
    status.store(StatusWord.WalReady, 1);
    status.notify(StatusWord.WalReady);
    post({ type: 'ready', replay, created });
  } catch (e) {
    fatal(e);
    return;
  }

  const w = wal;
  // Release requested by control records of the current batch; carried out after its fdatasync (the marker that
  // covers the released entries must be durable first).
  let release: WalControl | null = null;
  // Consumer end across records: an append may rewrite the log's tail (a new leader's conflicting entries) but
  // never leaves a gap after the last entry or the newest snapshot marker. An empty WAL may start anywhere: Raft's
  // bootstrap entries are re-derived from cluster.json on every start, never written here.
  let lastIndex = w.lastIndex;
  const sink: WalInSink = {
    entry: (index, term, type, buf, off, len) => {
      invariant(lastIndex === 0 || index <= lastIndex + 1, () => `walIn: entry ${index} leaves a gap after ${lastIndex}`);
      lastIndex = index;
      w.stageEntry(index, term, type, buf, off, len);
    },
    hardState: (term, vote, commit) => w.stageHardState(term, vote, commit),
    control: (c) => {
      if (c.snapIndex > lastIndex) lastIndex = c.snapIndex;
      if (c.snapIndex > 0) w.saveSnapshot({ index: c.snapIndex, term: c.snapTerm });
      if (c.releaseIndex > 0 && (release === null || c.releaseIndex >= release.releaseIndex)) release = c;
    },
  };
  const doRelease = (): void => {
    const c = release as WalControl | null;
    release = null;
    if (c === null) return;
    const at = effectiveReleaseIndex(w.segmentFiles(), c.releaseIndex, c.maxWals);
    if (at < 0) return;
    try {
      const files = w.releaseTo(at);
      if (files.length > 0) post({ type: 'released', releaseIndex: c.releaseIndex, files, remaining: w.segmentFiles().length });
    } catch (e) {
      // Not fatal: the files stay and the next release retries.
      post({ type: 'warn', fields: { err: (e as Error)?.message ?? String(e), releaseIndex: c.releaseIndex }, msg: 'WAL: failed to release old segments' });
    }
  };
  const view = consumer.view;
  // Set by any record of the batch other than a commit-only HardState: only those need the fdatasync.
  let syncNeeded = false;
  const onRecord = (buf: Uint8Array, off: number, len: number): void => {
    if (decodeWalInRecord(view, buf, off, len, sink) !== WAL_IN_NO_SYNC) syncNeeded = true;
  };

  try {
    for (;;) {
      syncNeeded = false;
      const n = consumer.drain(onRecord, WORKER_MAX_RECORDS_PER_BATCH);
      if (n > 0) {
        w.flush();
        if (syncNeeded) {
          const t0 = process.hrtime.bigint();
          w.sync();
          hist?.observe(Number(process.hrtime.bigint() - t0) / 1e9);
        }
        status.store(StatusWord.DurableTerm, w.lastTerm);
        status.store(StatusWord.DurableIndex, w.lastIndex);
        status.store(StatusWord.WalWriteBytes, w.writtenBytes);
        status.add(StatusWord.DurableSeq, n);
        status.notify(StatusWord.DurableSeq);
        doRelease();
        continue;
      }
      if (consumer.closed) break;
      consumer.waitSync(WORKER_IDLE_WAIT_MS);
    }
  } catch (e) {
    fatal(e);
    w.close();
    return;
  }
  w.close();
  status.store(StatusWord.WalStopped, 1);
  status.notify(StatusWord.DurableSeq);
  post({ type: 'closed' });
}

if (!isMainThread && parentPort && workerData && (workerData as { __walWorker?: boolean }).__walWorker) {
  const port = parentPort;
  runWalWorker(workerData as WalWorkerData, (m) => port.postMessage(m));
}
