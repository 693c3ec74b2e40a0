/**
 * The on-disk format of a bbolt database (the B+tree file etcd keeps its backend in), as bbolt's documentation and
 * source describe it. Pure byte layout: no I/O, no project imports.
 *
 * - The file is a sequence of pages of `pageSize` bytes, page id (pgid) p at byte offset p × pageSize. Pages 0 and 1
 *   are the two meta pages; a reader takes the valid one with the higher txid.
 * - Page header (16 bytes, little-endian): `[u64 id][u16 flags][u16 count][u32 overflow]`; a page whose content is
 *   longer than one page spans `1 + overflow` consecutive pages.
 * - Meta (after the header): `[u32 magic][u32 version][u32 pageSize][u32 flags][u64 root pgid][u64 root sequence]
 *   [u64 freelist pgid][u64 pgid (high-water mark: pages in use)][u64 txid][u64 checksum]`; the checksum is FNV-1a 64
 *   over the 56 bytes before it.
 * - Branch element (16 bytes): `[u32 pos][u32 ksize][u64 child pgid]`; leaf element (16 bytes): `[u32 flags][u32 pos]
 *   [u32 ksize][u32 vsize]`. `pos` counts from the element's own first byte to its key; a leaf value follows its key.
 * - A bucket is a leaf value with flag 0x01: `[u64 root pgid][u64 sequence]`; root pgid 0 means an inline bucket,
 *   whose single leaf page (header + elements) follows in the value itself.
 * - freelist pgid 0xFFFFFFFFFFFFFFFF: no freelist stored; readers treat every unreachable page as free.
 */

/** bbolt's magic number (meta.magic). */
export const BOLT_MAGIC = 0xed0cdaed;
/** bbolt's data file format version (meta.version). */
export const BOLT_VERSION = 2;
/** The page size every file we write uses (etcd's on Linux/amd64: the OS page size). */
export const DEFAULT_PAGE_SIZE = 4096;
/** Bytes of a page header. */
export const PAGE_HEADER_BYTES = 16;
/** Bytes of a branch or a leaf element. */
export const ELEMENT_BYTES = 16;
/** Bytes of a bucket header (root pgid + sequence). */
export const BUCKET_HEADER_BYTES = 16;
/** Bytes of the meta fields covered by the checksum. */
export const META_CHECKSUMMED_BYTES = 56;
/** Bytes of the whole meta struct. */
export const META_BYTES = 64;

/** Page flags (page.flags). */
export const PageFlag = { Branch: 0x01, Leaf: 0x02, Meta: 0x04, Freelist: 0x10 } as const;
/** Leaf element flag: the value is a bucket. */
export const BUCKET_LEAF_FLAG = 0x01;
/** meta.freelist when no freelist page is stored. */
export const NO_FREELIST = 0xffff_ffff_ffff_ffffn;

const FNV64_OFFSET = 0xcbf29ce484222325n;
const FNV64_PRIME = 0x100000001b3n;
const MASK64 = 0xffff_ffff_ffff_ffffn;

/** FNV-1a 64-bit hash of `b` (Go's hash/fnv New64a), the meta checksum. */
export function fnv1a64(b: Uint8Array): bigint {
  let h = FNV64_OFFSET;
  for (let i = 0; i < b.length; i++) {
    h ^= BigInt(b[i]!);
    h = (h * FNV64_PRIME) & MASK64;
  }
  return h;
}

/** The fields of a meta page (pgids and txid as bigint: they are u64 on disk). */
export interface BoltMeta {
  magic: number;
  version: number;
  pageSize: number;
  flags: number;
  root: bigint;
  sequence: bigint;
  freelist: bigint;
  /** High-water mark: number of pages the database uses (file size = pgid × pageSize). */
  pgid: bigint;
  txid: bigint;
  checksum: bigint;
}

/** Writes meta page `id` (header + meta + checksum) into `page` (at least PAGE_HEADER_BYTES + META_BYTES long). */
export function encodeMetaPage(page: Buffer, id: number, m: Omit<BoltMeta, 'checksum'>): void {
  page.fill(0, 0, PAGE_HEADER_BYTES + META_BYTES);
  page.writeBigUInt64LE(BigInt(id), 0);
  page.writeUInt16LE(PageFlag.Meta, 8);
  const o = PAGE_HEADER_BYTES;
  page.writeUInt32LE(m.magic, o);
  page.writeUInt32LE(m.version, o + 4);
  page.writeUInt32LE(m.pageSize, o + 8);
  page.writeUInt32LE(m.flags, o + 12);
  page.writeBigUInt64LE(m.root, o + 16);
  page.writeBigUInt64LE(m.sequence, o + 24);
  page.writeBigUInt64LE(m.freelist, o + 32);
  page.writeBigUInt64LE(m.pgid, o + 40);
  page.writeBigUInt64LE(m.txid, o + 48);
  page.writeBigUInt64LE(fnv1a64(page.subarray(o, o + META_CHECKSUMMED_BYTES)), o + META_CHECKSUMMED_BYTES);
}

/** Reads the meta of a meta page (no validation). */
export function decodeMeta(page: Uint8Array): BoltMeta {
  const b = Buffer.from(page.buffer, page.byteOffset, page.byteLength);
  const o = PAGE_HEADER_BYTES;
  return {
    magic: b.readUInt32LE(o),
    version: b.readUInt32LE(o + 4),
    pageSize: b.readUInt32LE(o + 8),
    flags: b.readUInt32LE(o + 12),
    root: b.readBigUInt64LE(o + 16),
    sequence: b.readBigUInt64LE(o + 24),
    freelist: b.readBigUInt64LE(o + 32),
    pgid: b.readBigUInt64LE(o + 40),
    txid: b.readBigUInt64LE(o + 48),
    checksum: b.readBigUInt64LE(o + 56),
  };
}

/** The checksum a meta page should carry. */
export function metaChecksum(page: Uint8Array): bigint {
  return fnv1a64(page.subarray(PAGE_HEADER_BYTES, PAGE_HEADER_BYTES + META_CHECKSUMMED_BYTES));
}

/** Errors bbolt reports when a meta page does not validate (bbolt errors.go texts). */
export const BoltErrors = {
  Invalid: 'invalid database',
  VersionMismatch: 'version mismatch',
  Checksum: 'checksum error',
} as const;

/** An error about the file's structure; `message` is bbolt's text. */
export class BoltFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BoltFormatError';
  }
}

/**
 * bbolt's meta.validate: magic, then version, then checksum.
 * @returns null when valid, else bbolt's error text.
 */
export function validateMeta(page: Uint8Array): string | null {
  const m = decodeMeta(page);
  if (m.magic !== BOLT_MAGIC) return BoltErrors.Invalid;
  if (m.version !== BOLT_VERSION) return BoltErrors.VersionMismatch;
  if (m.checksum !== metaChecksum(page)) return BoltErrors.Checksum;
  return null;
}

/** Page type names as bbolt prints them (page.typ). */
export function pageTypeName(flags: number): string {
  if (flags & PageFlag.Branch) return 'branch';
  if (flags & PageFlag.Leaf) return 'leaf';
  if (flags & PageFlag.Meta) return 'meta';
  if (flags & PageFlag.Freelist) return 'freelist';
  return `unknown<${flags.toString(16).padStart(2, '0')}>`;
}
