/**
 * A bbolt database reader over a file descriptor (format: ./format.ts). Pages are read on demand with positional
 * reads, and iteration keeps one page per tree level, so reading or checking a large file needs little memory.
 *
 * Opening follows bbolt's DB.Open: a file shorter than two pages is "file size too small"; meta page 0 gives the
 * page size (the default when it does not validate); the meta used is the valid one with the higher txid, and when
 * neither validates the error is meta 0's (bbolt's texts: "invalid database", "version mismatch", "checksum error").
 */
import * as fs from 'node:fs';
import {
  BoltErrors, BoltFormatError, BUCKET_HEADER_BYTES, BUCKET_LEAF_FLAG, decodeMeta, DEFAULT_PAGE_SIZE, ELEMENT_BYTES, NO_FREELIST,
  PAGE_HEADER_BYTES, PageFlag, pageTypeName, validateMeta, type BoltMeta,
} from './format';

/** A bucket as its parent stores it: a root page id, or (root 0) an inline leaf page. */
export interface BucketRef {
  root: number;
  /** The inline page (header + elements) when root is 0. */
  inline: Buffer | null;
}

/** One entry of a bucket; `key`/`value` are views into a page buffer, valid until the iteration moves on. */
export interface BoltEntry {
  key: Buffer;
  value: Buffer;
  /** True when the value is a nested bucket (parse it with `bucketRef`). */
  isBucket: boolean;
}

/** A page read from the file (header fields + bytes, overflow pages included). */
interface Page {
  id: number;
  flags: number;
  count: number;
  overflow: number;
  buf: Buffer;
}

/** Parses a bucket value (header + optional inline page). @throws BoltFormatError on a short value. */
export function bucketRef(value: Uint8Array): BucketRef {
  if (value.length < BUCKET_HEADER_BYTES) throw new BoltFormatError('bucket value shorter than its header');
  const b = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  const root = Number(b.readBigUInt64LE(0));
  return { root, inline: root === 0 ? b.subarray(BUCKET_HEADER_BYTES) : null };
}

function pageOf(buf: Buffer): Page {
  if (buf.length < PAGE_HEADER_BYTES) throw new BoltFormatError('page shorter than its header');
  return { id: Number(buf.readBigUInt64LE(0)), flags: buf.readUInt16LE(8), count: buf.readUInt16LE(10), overflow: buf.readUInt32LE(12), buf };
}

function leafEntry(p: Page, i: number): BoltEntry {
  const at = PAGE_HEADER_BYTES + i * ELEMENT_BYTES;
  const flags = p.buf.readUInt32LE(at);
  const pos = at + p.buf.readUInt32LE(at + 4);
  const ksize = p.buf.readUInt32LE(at + 8);
  const vsize = p.buf.readUInt32LE(at + 12);
  if (pos + ksize + vsize > p.buf.length) throw new BoltFormatError(`page ${p.id}: element ${i} out of bounds`);
  return { key: p.buf.subarray(pos, pos + ksize), value: p.buf.subarray(pos + ksize, pos + ksize + vsize), isBucket: (flags & BUCKET_LEAF_FLAG) !== 0 };
}

function branchChild(p: Page, i: number): number {
  const at = PAGE_HEADER_BYTES + i * ELEMENT_BYTES;
  if (at + ELEMENT_BYTES > p.buf.length) throw new BoltFormatError(`page ${p.id}: element ${i} out of bounds`);
  return Number(p.buf.readBigUInt64LE(at + 8));
}

/** Reads a bbolt database file. Call `close()` when done. */
export class BoltReader {
  readonly meta: BoltMeta;
  readonly pageSize: number;
  /** File size in bytes at open. */
  readonly fileBytes: number;

  private constructor(private readonly fd: number, meta: BoltMeta, fileBytes: number) {
    this.meta = meta;
    this.pageSize = meta.pageSize;
    this.fileBytes = fileBytes;
  }

  /**
   * Opens `path` read-only and selects the meta page as bbolt does.
   * @throws BoltFormatError with bbolt's text when the file is too small or no meta page validates.
   */
  static open(path: string): BoltReader {
    const fd = fs.openSync(path, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const first = Buffer.alloc(DEFAULT_PAGE_SIZE);
      fs.readSync(fd, first, 0, first.length, 0);
      const err0 = validateMeta(first);
      const pageSize = err0 === null ? decodeMeta(first).pageSize : DEFAULT_PAGE_SIZE;
      if (size < pageSize * 2) throw new BoltFormatError('file size too small');
      const p0 = Buffer.alloc(pageSize);
      const p1 = Buffer.alloc(pageSize);
      fs.readSync(fd, p0, 0, pageSize, 0);
      fs.readSync(fd, p1, 0, pageSize, pageSize);
      const e0 = validateMeta(p0);
      const e1 = validateMeta(p1);
      if (e0 !== null && e1 !== null) throw new BoltFormatError(e0);
      const m0 = decodeMeta(p0);
      const m1 = decodeMeta(p1);
      let meta: BoltMeta;
      if (e0 !== null) meta = m1;
      else if (e1 !== null) meta = m0;
      else meta = m1.txid > m0.txid ? m1 : m0;
      return new BoltReader(fd, meta, size);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  /** Bytes the database uses: meta.pgid × page size (bbolt's Tx.Size). */
  get sizeBytes(): number {
    return Number(this.meta.pgid) * this.pageSize;
  }

  /** The root bucket (its entries are the top-level buckets). */
  rootBucket(): BucketRef {
    return { root: Number(this.meta.root), inline: null };
  }

  /**
   * Reads page `id` with its overflow pages. Bytes past the end of the file read as zeros, as they do in bbolt's
   * memory map of a truncated file's last page.
   * @throws BoltFormatError when the page starts beyond the end of the file.
   */
  private readPage(id: number): Page {
    const off = id * this.pageSize;
    if (!Number.isSafeInteger(off) || off + PAGE_HEADER_BYTES > this.fileBytes) {
      throw new BoltFormatError(`page ${id}: beyond the end of the file`);
    }
    const head = Buffer.alloc(this.pageSize);
    fs.readSync(this.fd, head, 0, this.pageSize, off);
    const overflow = head.readUInt32LE(12);
    if (overflow === 0) return pageOf(head);
    const total = (overflow + 1) * this.pageSize;
    if (off + this.pageSize >= this.fileBytes || !Number.isSafeInteger(off + total)) {
      throw new BoltFormatError(`page ${id}: overflow beyond the end of the file`);
    }
    const buf = Buffer.alloc(total);
    head.copy(buf, 0);
    fs.readSync(this.fd, buf, this.pageSize, Math.min(total, this.fileBytes - off) - this.pageSize, off + this.pageSize);
    return pageOf(buf);
  }

  /** A top-level (or nested, with `parent`) bucket by name, or null. */
  bucket(name: string | Uint8Array, parent: BucketRef = this.rootBucket()): BucketRef | null {
    const want = typeof name === 'string' ? Buffer.from(name, 'latin1') : name;
    for (const e of this.entries(parent)) {
      const c = Buffer.compare(e.key, want);
      if (c === 0) return e.isBucket ? bucketRef(Buffer.from(e.value)) : null;
      if (c > 0) return null;
    }
    return null;
  }

  /**
   * Every entry of a bucket in key order (depth-first over its pages; one page per level held).
   * @throws BoltFormatError on a page of the wrong type or out of the file.
   */
  *entries(b: BucketRef): Generator<BoltEntry> {
    if (b.root === 0) {
      const p = pageOf(b.inline!);
      for (let i = 0; i < p.count; i++) yield leafEntry(p, i);
      return;
    }
    yield* this.walk(b.root, 0);
  }

  private *walk(id: number, depth: number): Generator<BoltEntry> {
    if (depth > 64) throw new BoltFormatError(`page ${id}: tree deeper than 64 levels`);
    const p = this.readPage(id);
    if (p.flags & PageFlag.Leaf) {
      for (let i = 0; i < p.count; i++) yield leafEntry(p, i);
    } else if (p.flags & PageFlag.Branch) {
      for (let i = 0; i < p.count; i++) yield* this.walk(branchChild(p, i), depth + 1);
    } else {
      throw new BoltFormatError(`page ${id}: invalid type: ${pageTypeName(p.flags)}`);
    }
  }

  /**
   * bbolt's Tx.Check: every page of every bucket referenced once, below the high-water mark, and a branch or leaf;
   * every page below the high-water mark reachable or free (with no stored freelist, every unreachable page counts
   * as free, as bbolt derives it). Returns bbolt's error texts (empty when the file is sound).
   */
  check(): string[] {
    const errors: string[] = [];
    const hwm = Number(this.meta.pgid);
    const reachable = new Uint8Array(Math.max(2, hwm + 1));
    const freed = new Set<number>();
    reachable[0] = 1;
    reachable[1] = 1;
    const freelist = this.meta.freelist;
    if (freelist !== NO_FREELIST) {
      try {
        const fp = this.readPage(Number(freelist));
        for (let i = 0; i <= fp.overflow; i++) if (Number(freelist) + i < reachable.length) reachable[Number(freelist) + i] = 1;
        for (const id of this.freelistIds(fp)) {
          if (freed.has(id)) errors.push(`page ${id}: already freed`);
          freed.add(id);
        }
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    const visit = (b: BucketRef): void => {
      if (b.root === 0) {
        for (const e of this.entries(b)) if (e.isBucket) visit(bucketRef(Buffer.from(e.value)));
        return;
      }
      const pages = (id: number, depth: number): void => {
        const p = this.readPage(id);
        if (p.id > hwm) errors.push(`page ${p.id}: out of bounds: ${hwm}`);
        for (let i = 0; i <= p.overflow; i++) {
          const at = p.id + i;
          if (at < reachable.length) {
            if (reachable[at]) errors.push(`page ${at}: multiple references`);
            reachable[at] = 1;
          }
        }
        if (freed.has(p.id)) errors.push(`page ${p.id}: reachable freed`);
        else if ((p.flags & (PageFlag.Branch | PageFlag.Leaf)) === 0) {
          errors.push(`page ${p.id}: invalid type: ${pageTypeName(p.flags)}`);
          return;
        }
        if (p.flags & PageFlag.Branch && depth < 64) for (let i = 0; i < p.count; i++) pages(branchChild(p, i), depth + 1);
      };
      try {
        pages(b.root, 0);
        for (const e of this.entries(b)) if (e.isBucket) visit(bucketRef(Buffer.from(e.value)));
      } catch (e) {
        errors.push((e as Error).message);
      }
    };
    visit(this.rootBucket());
    if (freelist !== NO_FREELIST) {
      for (let i = 0; i < hwm; i++) if (!reachable[i] && !freed.has(i)) errors.push(`page ${i}: unreachable unfreed`);
    }
    return errors;
  }

  /** Page ids listed on a freelist page (count 0xFFFF: the real count is the first u64). */
  private freelistIds(p: Page): number[] {
    if ((p.flags & PageFlag.Freelist) === 0) throw new BoltFormatError(`invalid freelist page: ${p.id}, page type is ${pageTypeName(p.flags)}`);
    let count = p.count;
    let at = PAGE_HEADER_BYTES;
    if (count === 0xffff) {
      count = Number(p.buf.readBigUInt64LE(at));
      at += 8;
    }
    const ids: number[] = [];
    for (let i = 0; i < count && at + 8 <= p.buf.length; i++, at += 8) ids.push(Number(p.buf.readBigUInt64LE(at)));
    return ids;
  }
}

