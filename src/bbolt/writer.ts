/**
 * A streaming bbolt database writer (format: ./format.ts). Keys arrive in order and pages are written as soon as
 * they fill, bottom-up: a B+tree level keeps at most one page of pending elements, so memory stays at one page per
 * tree level per open bucket however large the database (a single element larger than a page is the exception:
 * it gets a page with overflow of its own). Page ids are handed out in write order, so the file is written
 * sequentially from page 2; the two meta pages are written last by `finish`.
 *
 * The result is what bbolt itself would accept: meta pages 0 and 1 (txid T and T − 1, each with its FNV-1a 64
 * checksum), branch and leaf pages, nested buckets, small buckets inline (bbolt's rule: no nested bucket and the
 * inline page no larger than a quarter page), and no stored freelist (freelist pgid 0xFFFFFFFFFFFFFFFF, as etcd
 * writes its snapshots): every page below the high-water mark is reachable exactly once.
 */
import {
  BOLT_MAGIC, BOLT_VERSION, BUCKET_HEADER_BYTES, BUCKET_LEAF_FLAG, DEFAULT_PAGE_SIZE, ELEMENT_BYTES, encodeMetaPage,
  NO_FREELIST, PAGE_HEADER_BYTES, PageFlag,
} from './format';

/** Where pages go: a positional write of `data` at byte `offset` (e.g. fs.writeSync on a file descriptor). */
export interface PageSink {
  write(data: Uint8Array, offset: number): void;
}

/** One pending element of a page being filled. */
interface Element {
  key: Uint8Array;
  /** Leaf: the value. Branch: unused. */
  value: Uint8Array;
  /** Leaf element flags (BUCKET_LEAF_FLAG for a bucket). */
  flags: number;
  /** Branch: the child page id. */
  child: number;
}

const EMPTY = new Uint8Array(0);

/** Shared state of one file being written: the page allocator and a scratch page buffer. */
class PageFile {
  nextPgid = 2;
  private scratch: Buffer;
  bytesWritten = 0;

  constructor(readonly sink: PageSink, readonly pageSize: number) {
    this.scratch = Buffer.alloc(pageSize);
  }

  /** A zeroed buffer of `pages` pages (reused between calls: valid until the next call). */
  buffer(bytes: number): Buffer {
    const pages = Math.max(1, Math.ceil(bytes / this.pageSize));
    const need = pages * this.pageSize;
    if (this.scratch.length < need) this.scratch = Buffer.alloc(need);
    const b = this.scratch.subarray(0, need);
    b.fill(0);
    return b;
  }

  /** Writes a page (header id/overflow set here) and returns its pgid. */
  writePage(page: Buffer): number {
    const pages = page.length / this.pageSize;
    if (!Number.isInteger(pages) || pages < 1) throw new RangeError(`bbolt writer: page buffer of ${page.length} bytes`);
    const id = this.nextPgid;
    page.writeBigUInt64LE(BigInt(id), 0);
    page.writeUInt32LE(pages - 1, 12);
    this.sink.write(page, id * this.pageSize);
    this.nextPgid += pages;
    this.bytesWritten += page.length;
    return id;
  }
}

/** Encodes a leaf page (header + elements + keys/values) into `out` from offset 0; returns its length. */
function encodeLeaf(out: Buffer, elems: readonly Element[]): number {
  out.writeUInt16LE(PageFlag.Leaf, 8);
  out.writeUInt16LE(elems.length, 10);
  let data = PAGE_HEADER_BYTES + elems.length * ELEMENT_BYTES;
  for (let i = 0; i < elems.length; i++) {
    const e = elems[i]!;
    const at = PAGE_HEADER_BYTES + i * ELEMENT_BYTES;
    out.writeUInt32LE(e.flags, at);
    out.writeUInt32LE(data - at, at + 4);
    out.writeUInt32LE(e.key.length, at + 8);
    out.writeUInt32LE(e.value.length, at + 12);
    out.set(e.key, data);
    data += e.key.length;
    out.set(e.value, data);
    data += e.value.length;
  }
  return data;
}

/** Encodes a branch page into `out`; returns its length. */
function encodeBranch(out: Buffer, elems: readonly Element[]): number {
  out.writeUInt16LE(PageFlag.Branch, 8);
  out.writeUInt16LE(elems.length, 10);
  let data = PAGE_HEADER_BYTES + elems.length * ELEMENT_BYTES;
  for (let i = 0; i < elems.length; i++) {
    const e = elems[i]!;
    const at = PAGE_HEADER_BYTES + i * ELEMENT_BYTES;
    out.writeUInt32LE(data - at, at);
    out.writeUInt32LE(e.key.length, at + 4);
    out.writeBigUInt64LE(BigInt(e.child), at + 8);
    out.set(e.key, data);
    data += e.key.length;
  }
  return data;
}

function elementBytes(e: Element, leaf: boolean): number {
  return ELEMENT_BYTES + e.key.length + (leaf ? e.value.length : 0);
}

/** One level of a B+tree being built bottom-up (level 0 = leaves). */
interface Level {
  elems: Element[];
  /** Bytes the pending elements take on a page (header included). */
  bytes: number;
  /** Pages already written at this level. */
  written: number;
}

/** Builds one B+tree from ordered elements, writing full pages as it goes. */
class TreeBuilder {
  private readonly levels: Level[] = [];

  constructor(private readonly file: PageFile) {}

  add(e: Element): void {
    this.push(0, e);
  }

  private push(level: number, e: Element): void {
    let l = this.levels[level];
    if (l === undefined) {
      l = { elems: [], bytes: PAGE_HEADER_BYTES, written: 0 };
      this.levels[level] = l;
    }
    const n = elementBytes(e, level === 0);
    if (l.elems.length > 0 && l.bytes + n > this.file.pageSize) this.flush(level);
    l.elems.push(e);
    l.bytes += n;
  }

  private writeLevel(level: number): number {
    const l = this.levels[level]!;
    const page = this.file.buffer(l.bytes);
    const len = level === 0 ? encodeLeaf(page, l.elems) : encodeBranch(page, l.elems);
    if (len !== l.bytes) throw new Error(`bbolt writer: page size accounting ${len} != ${l.bytes}`);
    const id = this.file.writePage(page);
    l.written++;
    return id;
  }

  private flush(level: number): void {
    const l = this.levels[level]!;
    const first = l.elems[0]!.key;
    const id = this.writeLevel(level);
    l.elems = [];
    l.bytes = PAGE_HEADER_BYTES;
    this.push(level + 1, { key: first, value: EMPTY, flags: 0, child: id });
  }

  /** Writes every pending page and returns the root's pgid (an empty tree is one empty leaf page). */
  finish(): number {
    if (this.levels.length === 0) this.levels.push({ elems: [], bytes: PAGE_HEADER_BYTES, written: 0 });
    for (let i = 0; ; i++) {
      const l = this.levels[i]!;
      if (l.written === 0) {
        // The whole level fits one page: it is the root, unless it is a branch with a single child.
        if (i > 0 && l.elems.length === 1) return l.elems[0]!.child;
        return this.writeLevel(i);
      }
      if (l.elems.length > 0) this.flush(i);
    }
  }
}

/**
 * Writes one bucket's key/value pairs (strictly ascending keys, byte order) and nested buckets. `finish` returns the
 * value its parent stores for it (bucket header, plus the inline page when the bucket is inlined).
 * The writer keeps references to the keys and values it was given until their page is written.
 * @throws RangeError when keys are not strictly ascending.
 */
export class BucketWriter {
  private tree: TreeBuilder | null = null;
  /** Elements held while the bucket can still be inline. */
  private held: Element[] | null = [];
  private heldBytes = PAGE_HEADER_BYTES;
  private last: Uint8Array | null = null;
  private finished = false;
  private count = 0;

  /** @param inlineAllowed false for the root bucket (its root must be a page). */
  constructor(private readonly file: PageFile, private readonly inlineAllowed: boolean) {
    if (!inlineAllowed) this.held = null;
  }

  /** Number of entries put (values and buckets). */
  get size(): number {
    return this.count;
  }

  /** Adds a key/value pair. */
  put(key: Uint8Array, value: Uint8Array): void {
    this.add({ key, value, flags: 0, child: 0 });
  }

  /** Adds a nested bucket: `value` is what the child's `finish` returned. A bucket holding one is never inline. */
  putBucket(key: Uint8Array, value: Uint8Array): void {
    this.add({ key, value, flags: BUCKET_LEAF_FLAG, child: 0 });
  }

  /** A new writer for a bucket nested in this file (give its `finish()` to the parent's putBucket). */
  nested(): BucketWriter {
    return new BucketWriter(this.file, true);
  }

  private add(e: Element): void {
    if (this.finished) throw new Error('bbolt writer: bucket already finished');
    if (e.key.length === 0) throw new RangeError('bbolt writer: empty key');
    if (this.last !== null && Buffer.compare(this.last, e.key) >= 0) {
      throw new RangeError('bbolt writer: keys must be strictly ascending');
    }
    this.last = e.key;
    this.count++;
    if (this.held !== null) {
      this.heldBytes += ELEMENT_BYTES + e.key.length + e.value.length;
      this.held.push(e);
      if (e.flags & BUCKET_LEAF_FLAG || this.heldBytes > this.file.pageSize / 4) this.spill();
      return;
    }
    this.treeOf().add(e);
  }

  private treeOf(): TreeBuilder {
    if (this.tree === null) this.tree = new TreeBuilder(this.file);
    return this.tree;
  }

  /** The bucket can no longer be inline: its held elements go to its own pages. */
  private spill(): void {
    const t = this.treeOf();
    for (const e of this.held!) t.add(e);
    this.held = null;
  }

  /** Ends the bucket: the bucket value for the parent (16-byte header + inline page when inline). */
  finish(): Buffer {
    const root = this.finishRoot();
    if (root !== 0) {
      const v = Buffer.alloc(BUCKET_HEADER_BYTES);
      v.writeBigUInt64LE(BigInt(root), 0);
      return v;
    }
    const v = Buffer.alloc(BUCKET_HEADER_BYTES + this.heldBytes);
    encodeLeaf(v.subarray(BUCKET_HEADER_BYTES), this.held!);
    return v;
  }

  /** Ends the bucket: its root pgid, or 0 when it stays inline. */
  finishRoot(): number {
    if (this.finished) throw new Error('bbolt writer: bucket already finished');
    this.finished = true;
    if (this.held !== null && this.inlineAllowed) return 0;
    if (this.held !== null) this.spill();
    return this.treeOf().finish();
  }
}

/** What `BoltWriter.finish` reports. */
export interface BoltFileInfo {
  /** File size in bytes: pages in use × page size. */
  sizeBytes: number;
  /** Pages in use (meta.pgid). */
  pages: number;
  /** Page id of the root bucket's root page. */
  rootPgid: number;
}

/**
 * Writes a whole bbolt database to `sink`: put top-level buckets into `root` (in ascending name order), then
 * `finish(txid)`.
 */
export class BoltWriter {
  private readonly file: PageFile;
  /** The root bucket: its entries are the top-level buckets. */
  readonly root: BucketWriter;

  constructor(sink: PageSink, readonly pageSize = DEFAULT_PAGE_SIZE) {
    if (pageSize < 1024 || (pageSize & (pageSize - 1)) !== 0) throw new RangeError(`bbolt writer: bad page size ${pageSize}`);
    this.file = new PageFile(sink, pageSize);
    this.root = new BucketWriter(this.file, false);
  }

  /** A writer for a top-level bucket; pass its `finish()` to `root.putBucket(name, …)`. */
  bucket(): BucketWriter {
    return new BucketWriter(this.file, true);
  }

  /**
   * Writes the root bucket's pages and both meta pages: page 0 with `txid`, page 1 with `txid − 1` (the layout
   * bbolt's Tx.WriteTo produces). `txid` ≥ 2.
   */
  finish(txid: number): BoltFileInfo {
    if (!Number.isSafeInteger(txid) || txid < 2) throw new RangeError(`bbolt writer: txid ${txid}`);
    const rootPgid = this.root.finishRoot();
    const pages = this.file.nextPgid;
    const meta = {
      magic: BOLT_MAGIC, version: BOLT_VERSION, pageSize: this.pageSize, flags: 0, root: BigInt(rootPgid), sequence: 0n,
      freelist: NO_FREELIST, pgid: BigInt(pages),
    };
    for (const [id, t] of [[0, txid], [1, txid - 1]] as const) {
      const page = Buffer.alloc(this.pageSize);
      encodeMetaPage(page, id, { ...meta, txid: BigInt(t) });
      this.file.sink.write(page, id * this.pageSize);
    }
    return { sizeBytes: pages * this.pageSize, pages, rootPgid };
  }
}
