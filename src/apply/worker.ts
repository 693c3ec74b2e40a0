/**
 * The apply worker (worker_threads entry; started by ApplyClient). It owns the MVCC store's LMDB write transaction.
 *
 * Loop: block on the `applyIn` ring (Atomics.wait); on wake, drain every available record (up to
 * MAX_RECORDS_PER_BATCH) into ONE LMDB write transaction (one commit per wake, never per entry) — entries at or
 * below the stored consistent index are skipped — then publish the applied index / revision / compact revision /
 * db size in the apply status words (and StatusWord.AppliedIndex when given), then write one `applyOut` record
 * (layout: batch-format.ts) with every request's result. Results are written only after the commit, so a client
 * that sees a result can read the write from the main thread.
 *
 * Durability: LMDB commits are not fsynced (env noSync, see src/mvcc/env.ts); the worker fdatasyncs the LMDB file
 * at most every `syncIntervalMs` while there are unsynced commits, and on close, then publishes ApplyWord.SyncedIndex.
 *
 * Failures: request errors become result error ids (applier.ts). A store failure (LMDB error) aborts the current
 * transaction, sets ApplyWord.Fatal (and StatusWord.ApplyFatal), posts {type:'fatal'} and stops: the records of that
 * wake are consumed but not applied, so the server must restart the member (replay from the WAL above the
 * persisted consistent index).
 *
 * Messages to the parent: {type:'ready', appliedIndex, revision}, {type:'fatal', message}, {type:'closed'}.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { RingConsumer, RingProducer } from '../ring/ring';
import { StatusWord, StatusWords } from '../ring/status';
import { SharedHistogram } from '../ring/shared-histogram';
import { MvccStore } from '../mvcc/store';
import { Errors } from '../errors';
import { invariant } from '../invariant';
import { Applier } from './applier';
import { ApplyStatus, ApplyWord, applyFaultCodeOf } from './apply-status';
import {
  type ApplyResult, forEachInEntry, OUT_EVENT_HEADER_BYTES, OUT_RECORD_HEADER_BYTES, OUT_RESULT_HEADER_BYTES, outRecordBytes,
  writeOutRecord,
} from './batch-format';

/** What ApplyClient passes as workerData. */
export interface ApplyWorkerData {
  dataDir: string;
  memberId: number;
  clusterId: number;
  /** applyIn ring (main → worker). */
  applyIn: SharedArrayBuffer;
  /** applyOut ring (worker → main). */
  applyOut: SharedArrayBuffer;
  /** ApplyStatus buffer. */
  applyStatus: SharedArrayBuffer;
  /** Optional shared StatusWords buffer (src/ring/status.ts): AppliedIndex / ApplyFatal are mirrored there. */
  statusWords?: SharedArrayBuffer;
  /** Optional etcd_disk_backend_commit_duration_seconds histogram (SharedHistogram buffer + bucket bounds). */
  commitHistogram?: { sab: SharedArrayBuffer; buckets: number[] };
  minLeaseTtlSeconds?: number;
  /** Most time between an LMDB commit and its fdatasync, ms (default DEFAULT_SYNC_INTERVAL_MS). */
  syncIntervalMs?: number;
  mapSizeBytes?: number;
  /**
   * Spawned ahead of time (ApplyClient.prepare): post {type:'loaded'} once the modules are loaded, and open the
   * store only on the parent's {type:'open'} (a store swap then pays only for the open, not for the spawn).
   */
  deferOpen?: boolean;
}

/** Default fsync cadence of LMDB commits (etcd's backend batch interval is 100 ms). */
export const DEFAULT_SYNC_INTERVAL_MS = 100;
/** Ring records applied in one LMDB transaction at most. */
export const MAX_RECORDS_PER_BATCH = 1024;
/** Idle wait between checks of the ring's closed flag, ms. */
export const IDLE_WAIT_MS = 1000;
/** Wait slice while the applyOut ring is full, ms. */
export const OUT_SPACE_WAIT_MS = 100;

/** Runs the worker loop until the applyIn ring is closed or a fatal error. */
function main(d: ApplyWorkerData): void {
  const port = parentPort!;
  const status = new ApplyStatus(d.applyStatus);
  const shared = d.statusWords ? new StatusWords(d.statusWords) : null;
  const hist = d.commitHistogram ? SharedHistogram.attach(d.commitHistogram.sab, d.commitHistogram.buckets) : null;
  const syncIntervalMs = d.syncIntervalMs ?? DEFAULT_SYNC_INTERVAL_MS;
  const store = MvccStore.open(d.dataDir, { minLeaseTtlSeconds: d.minLeaseTtlSeconds, mapSizeBytes: d.mapSizeBytes });
  const applier = new Applier(store, { memberId: d.memberId, clusterId: d.clusterId, status });
  const consumer = new RingConsumer(d.applyIn);
  const producer = new RingProducer(d.applyOut);
  const fd = fs.openSync(path.join(store.dbs.dir, 'data.mdb'), 'r+');
  const inView = consumer.view;
  const results: ApplyResult[] = [];
  // MVCC events of the current batch (the `rev` records written, in revision order), handed to the main thread's
  // watch hub in the same applyOut record as the results.
  const events: Buffer[] = [];
  store.eventSink = events;
  let lastSync = Date.now();
  let dirty = false;

  const publish = (): void => {
    status.store(ApplyWord.Revision, store.currentRevision());
    status.store(ApplyWord.CompactRevision, store.compactRevision());
    status.store(ApplyWord.DbSizeBytes, store.dbSizeBytes());
    status.store(ApplyWord.DbSizeInUseBytes, store.dbSizeInUseBytes());
    status.store(ApplyWord.AppliedTerm, store.consistentTerm());
    status.store(ApplyWord.AppliedIndex, store.consistentIndex());
    status.notify(ApplyWord.AppliedIndex);
    if (shared) {
      shared.store(StatusWord.AppliedIndex, store.consistentIndex());
      shared.notify(StatusWord.AppliedIndex);
    }
  };
  const syncNow = (): void => {
    const index = store.consistentIndex();
    fs.fdatasyncSync(fd);
    lastSync = Date.now();
    dirty = false;
    status.store(ApplyWord.SyncedIndex, index);
  };
  const onEntry = (index: number, term: number, type: number, data: Uint8Array): void => {
    applier.applyEntry(index, term, type, data, results);
  };
  const onRecord = (buf: Uint8Array, off: number, len: number): void => {
    forEachInEntry(buf, inView, off, len, onEntry);
  };

  status.store(ApplyWord.SyncedIndex, store.consistentIndex());
  publish();
  status.store(ApplyWord.Ready, 1);
  port.postMessage({ type: 'ready', appliedIndex: store.consistentIndex(), revision: store.currentRevision() });

  try {
    for (;;) {
      if (consumer.isEmpty()) {
        if (consumer.closed) break;
        const now = Date.now();
        if (dirty && now - lastSync >= syncIntervalMs) syncNow();
        consumer.waitSync(dirty ? Math.max(1, syncIntervalMs - (now - lastSync)) : IDLE_WAIT_MS);
        continue;
      }
      results.length = 0;
      events.length = 0;
      let fnEnd = 0n;
      const before = store.consistentIndex();
      store.batch(() => {
        consumer.drain(onRecord, MAX_RECORDS_PER_BATCH);
        fnEnd = process.hrtime.bigint();
      });
      hist?.observe(Number(process.hrtime.bigint() - fnEnd) / 1e9);
      if (store.consistentIndex() !== before) dirty = true;
      publish();
      writeResults(producer, store.consistentIndex(), results, events);
      if (dirty && Date.now() - lastSync >= syncIntervalMs) syncNow();
    }
    syncNow();
    publish();
    fs.closeSync(fd);
    producer.close();
    void store.close().then(() => port.postMessage({ type: 'closed' }));
  } catch (e) {
    const message = (e as Error).stack ?? String(e);
    console.error(`apply worker: fatal: ${message}`);
    // The code crosses to the main thread in the status words, stored before the 'fatal' message is posted.
    const code = applyFaultCodeOf(e);
    status.store(ApplyWord.Fatal, code);
    status.notify(ApplyWord.AppliedIndex);
    if (shared) {
      shared.store(StatusWord.ApplyFatal, code);
      shared.notify(StatusWord.ApplyFatal);
    }
    producer.close();
    port.postMessage({ type: 'fatal', message });
  }
}

/**
 * Writes the results of one applied batch as one applyOut record, split into several (same appliedIndex) when it
 * exceeds the ring's record limit. A single response larger than the limit is replaced by RequestTooLarge.
 * Blocks (Atomics.wait) while the ring is full.
 */
function writeResults(producer: RingProducer, appliedIndex: number, results: ApplyResult[], events: Buffer[] = []): void {
  const max = producer.maxRecordBytes;
  for (const r of results) {
    if (OUT_RECORD_HEADER_BYTES + OUT_RESULT_HEADER_BYTES + r.response.length > max) {
      r.errorId = Errors.RequestTooLarge.id;
      r.response = new Uint8Array(0);
    }
  }
  for (let i = 0; i < events.length; i++) {
    // Cannot happen with etcd's request limits (an event is one key + value of a request); never loop on it.
    if (OUT_RECORD_HEADER_BYTES + OUT_EVENT_HEADER_BYTES + events[i]!.length > max) {
      console.error(`apply worker: dropping a watch event of ${events[i]!.length} bytes (larger than the applyOut record limit)`);
      events.splice(i--, 1);
    }
  }
  let from = 0;
  let efrom = 0;
  do {
    let to = from;
    let eto = efrom;
    let bytes = OUT_RECORD_HEADER_BYTES;
    while (to < results.length && bytes + OUT_RESULT_HEADER_BYTES + results[to]!.response.length <= max) {
      bytes += OUT_RESULT_HEADER_BYTES + results[to]!.response.length;
      to++;
    }
    if (to === results.length) {
      while (eto < events.length && bytes + OUT_EVENT_HEADER_BYTES + events[eto]!.length <= max) {
        bytes += OUT_EVENT_HEADER_BYTES + events[eto]!.length;
        eto++;
      }
    }
    const len = outRecordBytes(results, from, to, events, efrom, eto);
    const f = from;
    const ef = efrom;
    const write = (buf: Uint8Array, off: number): void => {
      const wrote = writeOutRecord(buf, producer.view, off, appliedIndex, results, f, to, events, ef, eto);
      // applyOut producer end: the record is exactly the size reserved for it.
      invariant(wrote === len, () => `applyOut record wrote ${wrote} bytes into ${len} reserved`);
    };
    while (!producer.tryWrite(len, write)) {
      producer.waitSpaceSync(OUT_SPACE_WAIT_MS);
    }
    from = to;
    efrom = eto;
  } while (from < results.length || efrom < events.length);
}

if (parentPort && workerData && (workerData as { __applyWorker?: boolean }).__applyWorker) {
  const d = workerData as ApplyWorkerData;
  if (d.deferOpen === true) {
    const port = parentPort;
    port.once('message', (m: { type: string }) => {
      if (m.type === 'open') main(d);
      else port.close(); // cancelled: nothing was opened
    });
    port.postMessage({ type: 'loaded' });
  } else {
    main(d);
  }
}
