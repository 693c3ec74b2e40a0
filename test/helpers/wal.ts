/**
 * A small, independent reader of etcetera's WAL layout, for corruption tests (it deliberately
 * does not import src/wal so a bug there cannot hide itself).
 *
 * Layout assumed (docs/architecture.md): `<data-dir>/member/wal/*.wal` segment files, preallocated
 * (zero-filled) to 64 MiB; each record is `[u32 len][u32 crc][u8 type][payload]`, little-endian,
 * `len` = type byte + payload length, the whole record padded with zeros to a multiple of 8 bytes. A zero `len`
 * with a zero `crc` where a record should start marks the end of the written part.
 * If the real format differs, adjust HEADER_BYTES / LEN_INCLUDES_TYPE here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';

export const HEADER_BYTES = 9;
export const LEN_INCLUDES_TYPE = true;

/** One record found in a segment. `offset` is where its header starts; `end` is the padded end. */
export interface WalRecord { offset: number; len: number; crc: number; type: number; payloadOffset: number; payloadBytes: number; end: number }

/** Sorted paths of the WAL segment files in a data dir. */
export function walSegments(dataDir: string): string[] {
  const dir = path.join(dataDir, 'member', 'wal');
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((f) => f.endsWith('.wal')).sort().map((f) => path.join(dir, f));
}

/** Padded size of a record with `len` in its header. */
export function recordSize(len: number): number {
  const raw = HEADER_BYTES + len - (LEN_INCLUDES_TYPE ? 1 : 0);
  return (raw + 7) & ~7;
}

/** Walks the records of one segment's bytes until the zero tail (or a record that would overrun the buffer). */
export function walkRecords(buf: Buffer): WalRecord[] {
  const out: WalRecord[] = [];
  let off = 0;
  while (off + HEADER_BYTES <= buf.length) {
    const len = buf.readUInt32LE(off);
    const crc = buf.readUInt32LE(off + 4);
    if (len === 0 && crc === 0) break;
    const end = off + recordSize(len);
    if (end > buf.length) break;
    out.push({ offset: off, len, crc, type: buf[off + 8], payloadOffset: off + HEADER_BYTES, payloadBytes: len - (LEN_INCLUDES_TYPE ? 1 : 0), end });
    off = end;
  }
  return out;
}

/** The last non-empty segment and its last record, or undefined if the WAL holds no record. */
export function lastWalRecord(dataDir: string): { file: string; record: WalRecord; records: WalRecord[] } | undefined {
  const segs = walSegments(dataDir);
  for (let i = segs.length - 1; i >= 0; i--) {
    const records = walkRecords(fs.readFileSync(segs[i]));
    if (records.length > 0) return { file: segs[i], record: records[records.length - 1], records };
  }
  return undefined;
}

/** XORs one byte of a file in place. */
export function flipByte(file: string, offset: number, mask = 0xff): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, offset);
    b[0] ^= mask;
    fs.writeSync(fd, b, 0, 1, offset);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * sha256 of every file under `dir` (relative path → hex), skipping names matching `ignore`
 * (by default LMDB lock files, which any opener may touch).
 */
export function hashTree(dir: string, ignore: RegExp = /(^|\/)(lock\.mdb|[^/]*-lock)$/): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const rel = path.relative(dir, p);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && !ignore.test(rel)) out[rel] = crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}
