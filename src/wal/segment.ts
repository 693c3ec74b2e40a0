/**
 * WAL segment files: naming, listing, creation with preallocation, directory fsync.
 *
 * Names follow etcd's convention `%016x-%016x.wal` = (segment sequence, index of the first entry expected in the
 * segment), in `<data-dir>/member/wal/`.
 *
 * Preallocation choice: Node has no fallocate(2), so a new segment is filled by *writing zeros* in
 * PREALLOC_CHUNK_BYTES chunks (default mode 'zeros'). This really reserves the blocks: a later append inside the
 * segment cannot hit ENOSPC on ordinary filesystems, and fdatasync does not have to flush block-allocation
 * metadata on every batch. It costs one sequential write of the segment size at rollover. Mode 'sparse' uses
 * ftruncate instead (instant, but blocks are allocated — and ENOSPC may surface — during appends).
 *
 * Creation is atomic: the file is built as `<name>.tmp`, fsynced, renamed, then the directory is fsynced.
 * Leftover `.tmp` files (a crash during creation) are ignored and removed by Wal.open.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** etcd's default segment size: 64 MiB. */
export const DEFAULT_SEGMENT_SIZE_BYTES = 64 * 1024 * 1024;
/** Chunk size for zero-fill preallocation. */
export const PREALLOC_CHUNK_BYTES = 1024 * 1024;

/** How to preallocate segment files (see module doc). */
export type PreallocateMode = 'zeros' | 'sparse';

/** A parsed segment file name. */
export interface SegmentName {
  seq: number;
  firstIndex: number;
  file: string;
}

const NAME_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;

/** The WAL directory inside an etcd-style data dir: `<dataDir>/member/wal`. */
export function walDirOf(dataDir: string): string {
  return path.join(dataDir, 'member', 'wal');
}

/** Formats a segment file name (`%016x-%016x.wal`). */
export function segmentFileName(seq: number, firstIndex: number): string {
  return `${seq.toString(16).padStart(16, '0')}-${firstIndex.toString(16).padStart(16, '0')}.wal`;
}

/** Parses a segment file name, or returns null for anything else. */
export function parseSegmentFileName(file: string): SegmentName | null {
  const m = NAME_RE.exec(file);
  if (!m) return null;
  const seq = parseInt(m[1]!, 16);
  const firstIndex = parseInt(m[2]!, 16);
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(firstIndex)) return null;
  return { seq, firstIndex, file };
}

/** Lists the segments of a WAL directory sorted by sequence (missing directory = empty list). */
export function listSegments(dir: string): SegmentName[] {
  let files: string[];
  try {
    files = fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const segs: SegmentName[] = [];
  for (const f of files) {
    const s = parseSegmentFileName(f);
    if (s) segs.push(s);
  }
  return segs.sort((a, b) => a.seq - b.seq);
}

/** Leftover temporary files from an interrupted segment creation. */
export function listTempFiles(dir: string): string[] {
  try {
    return fs.readdirSync(dir).filter((f) => f.endsWith('.wal.tmp'));
  } catch {
    return [];
  }
}

/** fsyncs a directory so a create/rename/unlink in it is durable. */
export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Preallocates `sizeBytes` at the start of an open file (see module doc for the modes).
 * @throws the fs error (e.g. ENOSPC); the caller removes the file.
 */
export function preallocate(fd: number, sizeBytes: number, mode: PreallocateMode): void {
  if (mode === 'sparse') {
    fs.ftruncateSync(fd, sizeBytes);
    return;
  }
  const zeros = Buffer.alloc(Math.min(PREALLOC_CHUNK_BYTES, sizeBytes));
  let off = 0;
  while (off < sizeBytes) {
    const n = Math.min(zeros.length, sizeBytes - off);
    let done = 0;
    while (done < n) done += fs.writeSync(fd, zeros, done, n - done, off + done);
    off += n;
  }
}

/**
 * Creates a segment atomically: `<name>.tmp` → preallocate → write `header` at offset 0 → fsync → rename → fsync dir.
 * @param header the first records of the segment (metadata, HardState, snapshot marker), already encoded.
 * @returns an fd opened read/write on the final file, and its path.
 * @throws the fs error (ENOSPC, EIO...) after removing the temporary file.
 */
export function createSegmentFile(
  dir: string,
  seq: number,
  firstIndex: number,
  sizeBytes: number,
  mode: PreallocateMode,
  header: Uint8Array,
): { fd: number; file: string } {
  const final = path.join(dir, segmentFileName(seq, firstIndex));
  const tmp = `${final}.tmp`;
  const fd = fs.openSync(tmp, 'w+');
  try {
    preallocate(fd, sizeBytes, mode);
    let done = 0;
    while (done < header.length) done += fs.writeSync(fd, header, done, header.length - done, done);
    fs.fsyncSync(fd);
    fs.renameSync(tmp, final);
    fsyncDir(dir);
  } catch (e) {
    try {
      fs.closeSync(fd);
    } catch {
      /* already failing */
    }
    try {
      fs.unlinkSync(tmp);
    } catch {
      /* may not exist */
    }
    throw e;
  }
  return { fd, file: final };
}
