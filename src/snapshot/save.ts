/**
 * Maintenance.Snapshot's data (etcd api: Maintenance.Snapshot; etcd 3.4 v3rpc/maintenance.go): the member's store
 * exported as etcd's bbolt backend into a temporary file (on a worker thread, ./export-worker.ts), then read back in
 * 32 KiB chunks, each sent with `remaining_bytes` = total − sent, and a last message holding the SHA-256 of the
 * database bytes with `remaining_bytes` 0 — the stream `etcdctl snapshot save` concatenates into a file whose last 32
 * bytes are the checksum `snapshot restore` verifies.
 *
 * Bounded memory: the export keeps one page per tree level, the stream one chunk (the consumer's backpressure
 * decides when the next is read). The temp file lives in `<member dir>/snap.tmp` (cleared at start) and is removed
 * when the stream ends or fails.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ExportContext, ExportResult } from './export';
import type { ExportWorkerData } from './export-worker';

/** etcd's snapshot chunk size (bytes). */
export const SNAPSHOT_CHUNK_BYTES = 32 * 1024;
/** Chunks read from the file at once (1 MiB): fewer reads, still a small bound on memory held. */
const READ_CHUNKS = 32;
/** Bytes of the trailing checksum. */
export const SHA256_BYTES = 32;

let seq = 0;

/** An exported snapshot file waiting to be streamed. */
export interface SnapshotFile extends ExportResult {
  file: string;
  /** Removes the file (idempotent). */
  remove(): void;
}

/**
 * Exports the store under `storeDir` (the member dir) to a new file in `tmpDir`, off the main thread.
 * @throws the worker's error (I/O, a damaged store).
 */
export async function exportSnapshotFile(storeDir: string, tmpDir: string, ctx: ExportContext): Promise<SnapshotFile> {
  fs.mkdirSync(tmpDir, { recursive: true });
  const file = path.join(tmpDir, `save-${process.pid}-${++seq}.db`);
  const remove = (): void => fs.rmSync(file, { force: true });
  try {
    return { ...await runExportWorker<ExportResult>({ storeDir, file, ctx }), file, remove };
  } catch (e) {
    remove();
    throw e;
  }
}

/**
 * Maintenance.Hash for the member whose store is under `storeDir` (./backend-hash.ts), computed on a worker thread
 * in one read transaction, writing nothing. Resolves with the unsigned 32-bit hash and the store revision hashed.
 * @throws the worker's error (a damaged store).
 */
export function hashStoreOffThread(storeDir: string, ctx: ExportContext): Promise<{ hash: number; revision: number }> {
  return runExportWorker({ storeDir, file: null, ctx });
}

/** Runs ./export-worker.ts once; resolves with its result. @throws its error, or its exit without one. */
function runExportWorker<R>(data: ExportWorkerData): Promise<R> {
  return new Promise((resolve, reject) => {
    const w = new Worker(path.join(__dirname, 'export-worker.js'), { workerData: data });
    let settled = false;
    w.once('message', (m: { result?: R; error?: string }) => {
      settled = true;
      if (m.result) resolve(m.result);
      else reject(new Error(`snapshot export failed: ${m.error}`));
    });
    w.once('error', (e) => {
      if (settled) return;
      settled = true;
      reject(e);
    });
    w.once('exit', (code) => {
      if (settled) return;
      settled = true;
      reject(new Error(`snapshot export worker exited with code ${code}`));
    });
  });
}

/** One Maintenance.Snapshot message. */
export interface SnapshotChunk {
  remainingBytes: number;
  blob: Uint8Array;
}

/**
 * The chunks of a snapshot file: the database in SNAPSHOT_CHUNK_BYTES pieces (remainingBytes = total − sent after
 * each, so the last piece also says 0, as etcd 3.4 does), then its SHA-256 with remainingBytes 0. Reads lazily, one
 * 1 MiB block at a time.
 */
export async function* snapshotChunks(file: string, sizeBytes: number): AsyncGenerator<SnapshotChunk> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const h = createHash('sha256');
    let sent = 0;
    while (sent < sizeBytes) {
      // One read per READ_CHUNKS messages; each message gets its own slice (grpc-js may hold it until sent).
      const block = Buffer.allocUnsafe(Math.min(SNAPSHOT_CHUNK_BYTES * READ_CHUNKS, sizeBytes - sent));
      const { bytesRead } = await fh.read(block, 0, block.length, sent);
      if (bytesRead !== block.length) throw new Error(`snapshot file ${file} shorter than ${sizeBytes} bytes`);
      h.update(block);
      for (let off = 0; off < block.length; off += SNAPSHOT_CHUNK_BYTES) {
        const blob = block.subarray(off, Math.min(off + SNAPSHOT_CHUNK_BYTES, block.length));
        sent += blob.length;
        yield { remainingBytes: sizeBytes - sent, blob };
      }
    }
    yield { remainingBytes: 0, blob: h.digest() };
  } finally {
    await fh.close();
  }
}

/**
 * Maintenance.Snapshot for a member: exports its store (`<memberDir>/mvcc`) with the membership it reports, and
 * streams the result; the temp file is removed when the iteration ends (completed, failed or abandoned).
 */
export async function snapshotStream(memberDir: string, tmpDir: string, ctx: ExportContext): Promise<ExportResult & { chunks: AsyncIterable<SnapshotChunk> }> {
  const f = await exportSnapshotFile(memberDir, tmpDir, ctx);
  const chunks = (async function* stream() {
    try {
      yield* snapshotChunks(f.file, f.sizeBytes);
    } finally {
      f.remove();
    }
  })();
  return { sizeBytes: f.sizeBytes, revision: f.revision, consistentIndex: f.consistentIndex, revisions: f.revisions, chunks };
}
