/**
 * The Raft log's write-ahead log (our own implementation of the ideas of etcd's wal package: CRC-framed records,
 * preallocated segments named `%016x-%016x.wal`, torn-tail repair on open, one fdatasync per batch).
 *
 * Synchronous API on purpose: it runs in the dedicated WAL worker thread (src/wal/worker.ts), where blocking
 * fs calls are the fastest option and keep ordering trivial.
 *
 * Segment layout: every segment starts with a Metadata record (cluster id, member id, segment seq, first index,
 * CRC of the previous segment's last record = the CRC chain), then the latest HardState and snapshot marker if any
 * (so deleting old segments with releaseTo never loses them), then appended records.
 *
 * Replay rules (Wal.open):
 * - Entries are collected in order; an entry whose index is <= the last collected index overwrites it and drops
 *   everything after it (later writes win, like etcd's WAL replay). An index gap between collected entries is
 *   corruption.
 * - A snapshot marker (index S) drops collected entries with index <= S; later entries <= S are ignored.
 * - The latest HardState and snapshot marker win.
 * - Damage at the very tail of the last segment (torn record, zero-filled header followed by garbage, CRC
 *   mismatch) with no valid record after it is repaired: the bytes from the bad record on are zeroed and a warning
 *   names the file and offset. Any other damage (a bad record in a non-last segment, or one followed by a valid
 *   record, a broken CRC chain, a missing segment) throws ErrWalCorrupt and writes nothing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  HardState,
  Probe,
  RECORD_HEADER_BYTES,
  RecordType,
  SegmentMetadata,
  SnapshotMarker,
  WalEntry,
  WalMetadata,
  ENTRY_FIXED_BYTES,
  HARD_STATE_BYTES,
  METADATA_BYTES,
  SNAPSHOT_BYTES,
  decodeRecord,
  getU32,
  probeRecord,
  readEntry,
  readHardState,
  readMetadata,
  readSnapshot,
  recordSizeBytes,
  writeEntryRecord,
  writeHardStateRecord,
  writeMetadataRecord,
  writeSnapshotRecord,
} from './record';
import {
  DEFAULT_SEGMENT_SIZE_BYTES,
  PreallocateMode,
  SegmentName,
  createSegmentFile,
  fsyncDir,
  listSegments,
  listTempFiles,
  segmentFileName,
} from './segment';

/** Minimal logger (pino-compatible subset). */
export interface WalLogger {
  warn(fields: Record<string, unknown>, msg: string): void;
}

/** Options for Wal.create / Wal.open. */
export interface WalOptions {
  /** Preallocated size of each segment; rollover happens before a batch that would not fit. Default 64 MiB. */
  segmentSizeBytes?: number;
  /** 'zeros' (default) or 'sparse' — see src/wal/segment.ts. */
  preallocate?: PreallocateMode;
  /** Receives the torn-tail repair warnings. Default: one JSON line on stderr. */
  logger?: WalLogger;
}

/** Upper bound on bytes staged before a flush (a larger batch is a caller bug). */
export const MAX_STAGED_BYTES = 512 * 1024 * 1024;
const INITIAL_STAGE_BYTES = 1024 * 1024;

/** The WAL is damaged in a way that must not be repaired automatically. Nothing was modified. */
export class ErrWalCorrupt extends Error {
  override readonly name = 'ErrWalCorrupt';
  /** @param file segment path (or the directory); @param offset byte offset of the damage, -1 if not applicable */
  constructor(readonly file: string, readonly offset: number, detail: string) {
    super(`WAL corrupt: ${detail} (file ${file}${offset >= 0 ? `, offset ${offset}` : ''}); refusing to repair`);
  }
}

/** Wal.create on a directory that already holds segments. */
export class ErrWalExists extends Error {
  override readonly name = 'ErrWalExists';
}

/** Wal.open on a directory without segments. */
export class ErrWalNotFound extends Error {
  override readonly name = 'ErrWalNotFound';
}

/** An I/O error while writing or syncing. The WAL is then failed: every later call throws ErrWalFailed. */
export class WalIoError extends Error {
  override readonly name: string = 'WalIoError';
  /** @param code errno code (e.g. 'EIO'); @param op which operation failed */
  constructor(readonly code: string, readonly op: string, cause: unknown) {
    super(`WAL ${op} failed: ${code}: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

/** The disk is full (ENOSPC). The file was restored to its previous valid content (zeros after the last record). */
export class WalNoSpaceError extends WalIoError {
  override readonly name = 'WalNoSpaceError';
}

/** A call on a WAL that already failed (or was closed). */
export class ErrWalFailed extends Error {
  override readonly name = 'ErrWalFailed';
  constructor(readonly cause0: Error | null) {
    super(cause0 ? `WAL is unusable after an earlier error: ${cause0.message}` : 'WAL is closed');
  }
}

/** Repair performed by Wal.open. */
export interface WalRepair {
  file: string;
  offset: number;
  reason: string;
}

/** What Wal.open replays. */
export interface WalReplay {
  metadata: WalMetadata;
  hardState: HardState | null;
  /** Entries with index > snapshot.index (when there is a marker), contiguous, conflicts resolved. */
  entries: WalEntry[];
  snapshot: SnapshotMarker | null;
  /** Set when a damaged tail was truncated. */
  repaired: WalRepair | null;
}

const defaultLogger: WalLogger = {
  warn(fields, msg) {
    process.stderr.write(JSON.stringify({ level: 'warn', msg, ...fields }) + '\n');
  },
};

function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === 0 && hs.commit === 0;
}

function checkId(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${name} must be a safe integer >= 0, got ${v}`);
}

function checkSegmentSize(segSize: number): number {
  if (!Number.isInteger(segSize) || segSize < 4096 || segSize % 8 !== 0) {
    throw new RangeError(`segmentSizeBytes must be a multiple of 8 >= 4096, got ${segSize}`);
  }
  return segSize;
}

function errnoOf(e: unknown): string {
  return (e as NodeJS.ErrnoException)?.code ?? 'EUNKNOWN';
}

function ioError(op: string, e: unknown): WalIoError {
  const code = errnoOf(e);
  return code === 'ENOSPC' || code === 'EDQUOT' ? new WalNoSpaceError(code, op, e) : new WalIoError(code, op, e);
}

function writeFully(fd: number, buf: Uint8Array, len: number, pos: number): void {
  let done = 0;
  while (done < len) done += fs.writeSync(fd, buf, done, len - done, pos + done);
}

/** The write-ahead log (see module doc). Not thread-safe: one owner thread. */
export class Wal {
  private segs: SegmentName[];
  private fd: number;
  private writeOffset: number;
  private fileSizeBytes: number;
  private segmentHeaderEnd: number;
  private lastCrc: number;
  private lastIdx: number;
  private lastTrm: number;
  private hs: HardState | null;
  private snap: SnapshotMarker | null;
  private failure: Error | null = null;
  private closed = false;

  private stage: Buffer = Buffer.alloc(INITIAL_STAGE_BYTES);
  private stageLen = 0;
  private stageLastRecordOff = -1;
  private stageLastIdx = -1;
  private stageLastTrm = 0;
  private stageHs: HardState | null = null;
  private stageSnap: SnapshotMarker | null = null;

  private readonly segmentSizeBytes: number;
  private readonly preallocateMode: PreallocateMode;

  private constructor(
    /** WAL directory. */
    readonly dir: string,
    /** Cluster and member ids. */
    readonly metadata: WalMetadata,
    opts: WalOptions,
    st: {
      segs: SegmentName[];
      fd: number;
      writeOffset: number;
      fileSizeBytes: number;
      lastCrc: number;
      lastIndex: number;
      lastTerm: number;
      hardState: HardState | null;
      snapshot: SnapshotMarker | null;
    },
  ) {
    this.segmentSizeBytes = checkSegmentSize(opts.segmentSizeBytes ?? DEFAULT_SEGMENT_SIZE_BYTES);
    this.preallocateMode = opts.preallocate ?? 'zeros';
    this.segs = st.segs;
    this.fd = st.fd;
    this.writeOffset = st.writeOffset;
    this.segmentHeaderEnd = st.writeOffset;
    this.fileSizeBytes = st.fileSizeBytes;
    this.lastCrc = st.lastCrc;
    this.lastIdx = st.lastIndex;
    this.lastTrm = st.lastTerm;
    this.hs = st.hardState;
    this.snap = st.snapshot;
  }

  /**
   * Creates a new WAL in `dir` (created if missing) with its first segment `0000000000000000-0000000000000000.wal`.
   * @throws ErrWalExists when segments already exist; RangeError on bad ids or segment size; WalIoError on I/O.
   */
  static create(dir: string, metadata: WalMetadata, opts: WalOptions = {}): Wal {
    checkId('clusterId', metadata.clusterId);
    checkId('memberId', metadata.memberId);
    const segSize = checkSegmentSize(opts.segmentSizeBytes ?? DEFAULT_SEGMENT_SIZE_BYTES);
    fs.mkdirSync(dir, { recursive: true });
    if (listSegments(dir).length > 0) throw new ErrWalExists(`WAL already exists in ${dir}`);
    const header = Buffer.alloc(recordSizeBytes(METADATA_BYTES));
    const end = writeMetadataRecord(header, 0, { ...metadata, segmentSeq: 0, firstIndex: 0, prevCrc: 0 });
    let created: { fd: number; file: string };
    try {
      created = createSegmentFile(dir, 0, 0, segSize, opts.preallocate ?? 'zeros', header.subarray(0, end));
      fsyncDir(path.dirname(path.resolve(dir)));
    } catch (e) {
      throw ioError('create', e);
    }
    return new Wal(dir, { clusterId: metadata.clusterId, memberId: metadata.memberId }, opts, {
      segs: [{ seq: 0, firstIndex: 0, file: path.basename(created.file) }],
      fd: created.fd,
      writeOffset: end,
      fileSizeBytes: segSize,
      lastCrc: getU32(header, 4),
      lastIndex: 0,
      lastTerm: 0,
      hardState: null,
      snapshot: null,
    });
  }

  /** True when `dir` holds at least one segment. */
  static exists(dir: string): boolean {
    return listSegments(dir).length > 0;
  }

  /**
   * Opens an existing WAL, replays it (see module doc) and repairs a damaged tail of the last segment.
   * @returns the writable Wal plus the replayed state.
   * @throws ErrWalNotFound (no segments), ErrWalCorrupt (damage that is not a tail; nothing touched), WalIoError.
   */
  static open(dir: string, opts: WalOptions = {}): WalReplay & { wal: Wal } {
    const logger = opts.logger ?? defaultLogger;
    const segs = listSegments(dir);
    if (segs.length === 0) throw new ErrWalNotFound(`no WAL segments in ${dir}`);
    for (let i = 1; i < segs.length; i++) {
      if (segs[i]!.seq !== segs[i - 1]!.seq + 1) {
        throw new ErrWalCorrupt(path.join(dir, segs[i]!.file), -1, `segment sequence gap after ${segs[i - 1]!.file}`);
      }
    }

    let metadata: WalMetadata | null = null;
    let hardState: HardState | null = null;
    let snapshot: SnapshotMarker | null = null;
    let entries: WalEntry[] = [];
    let lastCrc = 0;
    let repair: { file: string; offset: number; reason: string; dataEnd: number } | null = null;
    let lastSegEnd = 0;
    let lastSegSize = 0;

    for (let si = 0; si < segs.length; si++) {
      const seg = segs[si]!;
      const file = path.join(dir, seg.file);
      const isLast = si === segs.length - 1;
      const buf = fs.readFileSync(file);
      let off = 0;
      let first = true;
      for (;;) {
        const p = probeRecord(buf, off, buf.length);
        if (p !== Probe.Ok) {
          if (p === Probe.BadType) {
            throw new ErrWalCorrupt(file, off, 'record with a valid CRC but an unknown type or size');
          }
          if (off === buf.length) break;
          const validAfter = findValidRecord(buf, off + 8);
          if (validAfter >= 0) {
            throw new ErrWalCorrupt(file, off, `${probeName(p)} record followed by a valid record at offset ${validAfter}`);
          }
          if (first) throw new ErrWalCorrupt(file, off, `segment does not start with a valid metadata record (${probeName(p)})`);
          if (!isLast) {
            if (p === Probe.Zero) break; // unused, preallocated rest of a full segment
            throw new ErrWalCorrupt(file, off, `${probeName(p)} record in a segment that is not the last`);
          }
          const dataEnd = lastNonZero(buf, off);
          if (p !== Probe.Zero || dataEnd > off) {
            repair = { file, offset: off, reason: probeName(p), dataEnd };
          }
          break;
        }
        const f = decodeRecord(buf, off, buf.length);
        if (first) {
          if (f.type !== RecordType.Metadata) throw new ErrWalCorrupt(file, off, 'segment does not start with a metadata record');
          const md: SegmentMetadata = readMetadata(buf, f);
          if (md.segmentSeq !== seg.seq || md.firstIndex !== seg.firstIndex) {
            throw new ErrWalCorrupt(file, off, `metadata (seq ${md.segmentSeq}, first index ${md.firstIndex}) does not match the file name`);
          }
          if (metadata && (md.clusterId !== metadata.clusterId || md.memberId !== metadata.memberId)) {
            throw new ErrWalCorrupt(file, off, 'cluster/member id differs from the previous segment');
          }
          if (si > 0 && md.prevCrc !== lastCrc) {
            throw new ErrWalCorrupt(file, off, `CRC chain broken: previous segment ended with ${lastCrc.toString(16)}, metadata says ${md.prevCrc.toString(16)}`);
          }
          metadata = { clusterId: md.clusterId, memberId: md.memberId };
          first = false;
        } else {
          switch (f.type) {
            case RecordType.Entry: {
              const e = readEntry(buf, f);
              if (snapshot && e.index <= snapshot.index) break;
              if (entries.length > 0) {
                const firstIdx = entries[0]!.index;
                const nextIdx = entries[entries.length - 1]!.index + 1;
                if (e.index > nextIdx) {
                  throw new ErrWalCorrupt(file, off, `entry index gap: expected <= ${nextIdx}, found ${e.index}`);
                }
                if (e.index < nextIdx) entries.length = Math.max(0, e.index - firstIdx);
              }
              entries.push(e);
              break;
            }
            case RecordType.HardState:
              hardState = readHardState(buf, f);
              break;
            case RecordType.Snapshot: {
              const s = readSnapshot(buf, f);
              snapshot = s;
              if (entries.length > 0 && entries[0]!.index <= s.index) {
                entries = entries.filter((x) => x.index > s.index);
              }
              break;
            }
            case RecordType.Metadata:
              throw new ErrWalCorrupt(file, off, 'metadata record in the middle of a segment');
          }
        }
        lastCrc = f.crc;
        off = f.nextOffset;
      }
      if (isLast) {
        lastSegEnd = off;
        lastSegSize = buf.length;
      }
    }

    const lastSeg = segs[segs.length - 1]!;
    const lastFile = path.join(dir, lastSeg.file);
    // Validation done: now (and only now) modify files.
    let fd: number;
    try {
      fd = fs.openSync(lastFile, 'r+');
    } catch (e) {
      throw ioError('open', e);
    }
    try {
      if (repair) {
        logger.warn(
          { file: repair.file, offset: repair.offset, reason: repair.reason, discardedBytes: repair.dataEnd - repair.offset },
          'WAL: truncating damaged tail of the last segment',
        );
        const zeros = Buffer.alloc(Math.min(1 << 20, repair.dataEnd - repair.offset));
        let o = repair.offset;
        while (o < repair.dataEnd) {
          const n = Math.min(zeros.length, repair.dataEnd - o);
          writeFully(fd, zeros, n, o);
          o += n;
        }
        fs.fdatasyncSync(fd);
      }
      for (const t of listTempFiles(dir)) fs.unlinkSync(path.join(dir, t));
    } catch (e) {
      fs.closeSync(fd);
      throw ioError('repair', e);
    }

    const lastEntry = entries.length > 0 ? entries[entries.length - 1]! : null;
    const md = metadata!;
    const wal = new Wal(dir, md, opts, {
      segs,
      fd,
      writeOffset: lastSegEnd,
      fileSizeBytes: lastSegSize,
      lastCrc,
      lastIndex: lastEntry ? lastEntry.index : snapshot ? snapshot.index : 0,
      lastTerm: lastEntry ? lastEntry.term : snapshot ? snapshot.term : 0,
      hardState,
      snapshot,
    });
    return {
      wal,
      metadata: md,
      hardState,
      entries,
      snapshot,
      repaired: repair ? { file: repair.file, offset: repair.offset, reason: repair.reason } : null,
    };
  }

  /** Index of the last entry written (flushed), or the snapshot index when there are none; 0 for a new WAL. */
  get lastIndex(): number {
    return this.lastIdx;
  }

  /** Term of the entry at lastIndex. */
  get lastTerm(): number {
    return this.lastTrm;
  }

  /** The latest HardState written (flushed), or null. */
  get hardState(): HardState | null {
    return this.hs;
  }

  /** File names of the live segments, oldest first. */
  segmentFiles(): string[] {
    return this.segs.map((s) => s.file);
  }

  /** Bytes staged and not yet written. */
  get stagedBytes(): number {
    return this.stageLen;
  }

  /**
   * Stages a HardState and entries, then writes them with one write (no fsync; call sync()).
   * An all-zero or null HardState is not written.
   * @throws ErrWalFailed after an earlier I/O error, WalNoSpaceError / WalIoError on I/O errors, RangeError on bad input.
   */
  append(hardState: HardState | null, entries: readonly WalEntry[]): void {
    // Entries before the HardState (as etcd does): a torn batch can never leave a commit index above the log.
    for (const e of entries) this.stageEntry(e.index, e.term, e.type, e.data, 0, e.data.length);
    if (hardState) this.stageHardState(hardState.term, hardState.vote, hardState.commit);
    this.flush();
  }

  /** Stages a HardState record (no I/O). All-zero = empty, skipped. */
  stageHardState(term: number, vote: number, commit: number): void {
    this.checkUsable();
    const hs = { term, vote, commit };
    if (isEmptyHardState(hs)) return;
    const off = this.reserveStage(recordSizeBytes(HARD_STATE_BYTES));
    this.stageLen = writeHardStateRecord(this.stage, off, hs);
    this.stageLastRecordOff = off;
    this.stageHs = hs;
  }

  /**
   * Stages one entry record from `src[srcOff, srcOff + srcLen)` (no I/O, the bytes are copied now, so `src` may
   * be a view into a ring that is released right after).
   * @throws RangeError when index/term are not safe integers >= 1 / >= 0.
   */
  stageEntry(index: number, term: number, type: number, src: Uint8Array, srcOff: number, srcLen: number): void {
    this.checkUsable();
    if (!Number.isSafeInteger(index) || index < 1) throw new RangeError(`entry index must be a safe integer >= 1, got ${index}`);
    if (!Number.isSafeInteger(term) || term < 0) throw new RangeError(`entry term must be a safe integer >= 0, got ${term}`);
    const off = this.reserveStage(recordSizeBytes(ENTRY_FIXED_BYTES + srcLen));
    this.stageLen = writeEntryRecord(this.stage, off, index, term, type & 0xff, src, srcOff, srcLen);
    this.stageLastRecordOff = off;
    this.stageLastIdx = index;
    this.stageLastTrm = term;
  }

  /**
   * Writes a snapshot marker (after the snapshot itself is durable) and flushes (no fsync; call sync()).
   * @throws as append.
   */
  saveSnapshot(marker: SnapshotMarker): void {
    this.checkUsable();
    const off = this.reserveStage(recordSizeBytes(SNAPSHOT_BYTES));
    this.stageLen = writeSnapshotRecord(this.stage, off, marker);
    this.stageLastRecordOff = off;
    this.stageSnap = { index: marker.index, term: marker.term };
    this.flush();
  }

  /**
   * Writes the staged records with a single write at the end of the current segment, rolling over to a new
   * segment first when they would not fit in the preallocated size (a batch is never split; a batch larger than a
   * segment grows that segment). No fsync.
   * @throws ErrWalFailed, WalNoSpaceError, WalIoError. On a write error the partial bytes are zeroed again.
   */
  /** Record bytes written by flush() since open (etcd_disk_wal_write_bytes_total). */
  writtenBytes = 0;

  flush(): void {
    this.checkUsable();
    if (this.stageLen === 0) return;
    if (this.writeOffset + this.stageLen > this.segmentSizeBytes && this.writeOffset > this.segmentHeaderEnd) {
      this.rollover();
    }
    const off = this.writeOffset;
    try {
      writeFully(this.fd, this.stage, this.stageLen, off);
    } catch (e) {
      this.undoWrite(off);
      throw this.fail(ioError('write', e));
    }
    this.writeOffset += this.stageLen;
    this.writtenBytes += this.stageLen;
    if (this.writeOffset > this.fileSizeBytes) this.fileSizeBytes = this.writeOffset;
    this.lastCrc = getU32(this.stage, this.stageLastRecordOff + 4);
    if (this.stageLastIdx >= 0) {
      this.lastIdx = this.stageLastIdx;
      this.lastTrm = this.stageLastTrm;
    }
    if (this.stageHs) this.hs = this.stageHs;
    if (this.stageSnap) this.snap = this.stageSnap;
    this.resetStage();
  }

  /**
   * flush() then one fdatasync of the current segment: everything appended so far is durable on return.
   * @throws ErrWalFailed, WalNoSpaceError, WalIoError (an fsync error fails the WAL for good: no retry).
   */
  sync(): void {
    this.flush();
    try {
      fs.fdatasyncSync(this.fd);
    } catch (e) {
      throw this.fail(ioError('fdatasync', e));
    }
  }

  /**
   * Deletes the oldest segments whose entries are all <= `index` (an index covered by a saved snapshot); never
   * the current segment. fsyncs the directory.
   * @returns the deleted file names.
   */
  releaseTo(index: number): string[] {
    this.checkUsable();
    const deleted: string[] = [];
    while (this.segs.length > 1 && this.segs[1]!.firstIndex <= index + 1) {
      const s = this.segs[0]!;
      fs.unlinkSync(path.join(this.dir, s.file));
      this.segs.shift();
      deleted.push(s.file);
    }
    if (deleted.length > 0) fsyncDir(this.dir);
    return deleted;
  }

  /** Closes the current segment (no sync; call sync() first). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      fs.closeSync(this.fd);
    } catch {
      /* closing after a failure */
    }
  }

  private checkUsable(): void {
    if (this.failure || this.closed) throw new ErrWalFailed(this.failure);
  }

  private fail(e: WalIoError): WalIoError {
    this.failure = e;
    return e;
  }

  private resetStage(): void {
    this.stageLen = 0;
    this.stageLastRecordOff = -1;
    this.stageLastIdx = -1;
    this.stageHs = null;
    this.stageSnap = null;
  }

  private reserveStage(bytes: number): number {
    const need = this.stageLen + bytes;
    if (need > MAX_STAGED_BYTES) throw new RangeError(`WAL batch exceeds ${MAX_STAGED_BYTES} bytes`);
    if (need > this.stage.length) {
      let n = this.stage.length * 2;
      while (n < need) n *= 2;
      const bigger = Buffer.alloc(Math.min(n, MAX_STAGED_BYTES));
      this.stage.copy(bigger, 0, 0, this.stageLen);
      this.stage = bigger;
    }
    return this.stageLen;
  }

  /** After a failed write at `off`: give the file its previous content back (zeros from off on). */
  private undoWrite(off: number): void {
    try {
      const size = fs.fstatSync(this.fd).size;
      fs.ftruncateSync(this.fd, off);
      if (size > off) fs.ftruncateSync(this.fd, Math.max(off, Math.min(size, this.fileSizeBytes)));
      fs.fdatasyncSync(this.fd);
    } catch {
      /* best effort: open() repairs a torn tail anyway */
    }
  }

  private rollover(): void {
    try {
      fs.fdatasyncSync(this.fd);
    } catch (e) {
      throw this.fail(ioError('fdatasync', e));
    }
    const prev = this.segs[this.segs.length - 1]!;
    const seq = prev.seq + 1;
    const firstIndex = this.lastIdx + 1;
    const header = Buffer.alloc(recordSizeBytes(METADATA_BYTES) + recordSizeBytes(HARD_STATE_BYTES) + recordSizeBytes(SNAPSHOT_BYTES));
    let end = writeMetadataRecord(header, 0, { ...this.metadata, segmentSeq: seq, firstIndex, prevCrc: this.lastCrc });
    let lastOff = 0;
    if (this.hs) {
      lastOff = end;
      end = writeHardStateRecord(header, end, this.hs);
    }
    if (this.snap) {
      lastOff = end;
      end = writeSnapshotRecord(header, end, this.snap);
    }
    let created: { fd: number; file: string };
    try {
      created = createSegmentFile(this.dir, seq, firstIndex, this.segmentSizeBytes, this.preallocateMode, header.subarray(0, end));
    } catch (e) {
      throw this.fail(ioError('segment create', e));
    }
    try {
      fs.closeSync(this.fd);
    } catch {
      /* the old segment is already synced */
    }
    this.fd = created.fd;
    this.segs.push({ seq, firstIndex, file: segmentFileName(seq, firstIndex) });
    this.writeOffset = end;
    this.segmentHeaderEnd = end;
    this.fileSizeBytes = this.segmentSizeBytes;
    this.lastCrc = getU32(header, lastOff + 4);
  }
}

function probeName(p: Probe): string {
  switch (p) {
    case Probe.Zero:
      return 'zero-filled';
    case Probe.Torn:
      return 'torn';
    case Probe.Crc:
      return 'CRC-mismatched';
    default:
      return 'bad';
  }
}

/** Offset of the first valid record at an 8-aligned offset >= from, or -1. Zero words are skipped quickly. */
function findValidRecord(buf: Uint8Array, from: number): number {
  const start = Math.ceil(from / 8) * 8;
  for (let off = start; off + RECORD_HEADER_BYTES < buf.length; off += 8) {
    if (buf[off] === 0 && buf[off + 1] === 0 && buf[off + 2] === 0 && buf[off + 3] === 0) continue;
    if (probeRecord(buf, off, buf.length) === Probe.Ok) return off;
  }
  return -1;
}

/** Offset just past the last non-zero byte at or after `from` (== from when all zero). */
function lastNonZero(buf: Uint8Array, from: number): number {
  for (let i = buf.length - 1; i >= from; i--) if (buf[i] !== 0) return i + 1;
  return from;
}

export { RecordType } from './record';
export type { HardState, WalEntry, SnapshotMarker, WalMetadata } from './record';
