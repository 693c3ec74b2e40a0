/**
 * `snapshot status` (etcdctl 3.4 snapshot status / etcdutl): opens the file as a bbolt database, runs bbolt's
 * structure check, then hashes every top-level bucket in name order with CRC-32C (bucket name, then each key and
 * value; a nested bucket contributes its key only), counts entries, and reads the revision from the last key of
 * `key`. Output shapes and texts are etcdctl's: `-w json` {"hash","revision","totalKey","totalSize"}, `-w table`
 * (tablewriter, sizes as go-humanize prints them), default "simple" (comma-separated).
 */
import { crc32c } from '@node-rs/crc32';
import { BoltReader, bucketRef } from '../bbolt';
import { readU64be } from './etcd-schema';
import { HASH_IGNORED } from './backend-hash';

/** etcdctl's snapshot.Status. */
export interface SnapshotStatus {
  hash: number;
  revision: number;
  totalKey: number;
  totalSize: number;
}

/** Raised with etcdctl's message when the file fails bbolt's check. */
export class SnapshotStatusError extends Error {}

/**
 * Status of the snapshot file at `file`.
 * @throws BoltFormatError (bbolt's open errors: "invalid database", "checksum error", …), SnapshotStatusError
 *   ("snapshot file integrity check failed. N errors found." + the errors), I/O errors (ENOENT).
 */
export function snapshotStatus(file: string): SnapshotStatus {
  const r = BoltReader.open(file);
  try {
    const errors = r.check();
    if (errors.length > 0) {
      throw new SnapshotStatusError(`snapshot file integrity check failed. ${errors.length} errors found.\n${errors.join('\n')}`);
    }
    const { crc, totalKey, revision } = hashBuckets(r, null);
    return { hash: crc, revision, totalKey, totalSize: r.sizeBytes };
  } finally {
    r.close();
  }
}

/**
 * Maintenance.Hash of a bbolt backend file, e.g. an etcd data dir's `member/snap/db` (etcd 3.4 backend.Hash with
 * mvcc's DefaultIgnores, ./backend-hash.ts): CRC-32C of every top-level bucket in name order (name, then each key
 * and value) except `meta`/`consistent_index`. `revision` is the last main revision of `key`.
 * @throws BoltFormatError on a file that is not a bbolt database; I/O errors.
 */
export function backendHash(file: string): { hash: number; revision: number } {
  const r = BoltReader.open(file);
  try {
    const { crc, revision } = hashBuckets(r, HASH_IGNORED);
    return { hash: crc, revision };
  } finally {
    r.close();
  }
}

/** One pass over every top-level bucket: the CRC-32C (unsigned), entries counted, last revision of `key`. */
function hashBuckets(r: BoltReader, skip: { bucket: string; key: string } | null): { crc: number; totalKey: number; revision: number } {
  let crc = 0;
  let totalKey = 0;
  let revision = 0;
  for (const b of r.entries(r.rootBucket())) {
    const name = Buffer.from(b.key);
    crc = crc32c(name, crc);
    if (!b.isBucket) continue;
    const bucketName = name.toString('latin1');
    const isKey = bucketName === 'key';
    const skipKey = skip !== null && skip.bucket === bucketName ? Buffer.from(skip.key, 'latin1') : null;
    for (const e of r.entries(bucketRef(Buffer.from(b.value)))) {
      totalKey++;
      if (skipKey !== null && skipKey.equals(e.key)) continue;
      crc = crc32c(e.key, crc);
      if (!e.isBucket) crc = crc32c(e.value, crc);
      if (isKey && e.key.length >= 8) revision = readU64be(e.key, 0) ?? revision;
    }
  }
  return { crc: crc >>> 0, totalKey, revision };
}

/** go-humanize's Bytes: SI units, one decimal below 10 (Go's %.0f rounds a half to even: 20.5 kB prints "20 kB"). */
export function humanizeBytes(n: number): string {
  if (n < 10) return `${n} B`;
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  const e = Math.floor(Math.log(n) / Math.log(1000));
  const v = Math.floor((n / 1000 ** e) * 10 + 0.5) / 10;
  if (v < 10) return `${v.toFixed(1)} ${units[e]}`;
  const whole = Math.floor(v);
  const rounded = v - whole === 0.5 ? (whole % 2 === 0 ? whole : whole + 1) : Math.round(v);
  return `${rounded} ${units[e]}`;
}

/** The status as etcdctl prints it for `-w` `simple` (default), `json`, `table` or `fields`. @throws Error on another format. */
export function formatStatus(s: SnapshotStatus, format: string): string {
  const hash = s.hash.toString(16);
  switch (format) {
    case 'simple':
      return `${hash}, ${s.revision}, ${s.totalKey}, ${humanizeBytes(s.totalSize)}\n`;
    case 'json':
      return `${JSON.stringify({ hash: s.hash, revision: s.revision, totalKey: s.totalKey, totalSize: s.totalSize })}\n`;
    case 'fields':
      return `"Hash" : ${s.hash}\n"Revision" : ${s.revision}\n"Keys" : ${s.totalKey}\n"Size" : ${s.totalSize}\n`;
    case 'table':
      return table(['HASH', 'REVISION', 'TOTAL KEYS', 'TOTAL SIZE'], [hash, String(s.revision), String(s.totalKey), humanizeBytes(s.totalSize)]);
    default:
      throw new Error(`unknown output format "${format}"`);
  }
}

/** tablewriter as etcdctl configures it: centred headers, right-aligned cells, one space of padding. */
function table(head: string[], row: string[]): string {
  const w = head.map((h, i) => Math.max(h.length, row[i]!.length));
  const line = `+${w.map((n) => '-'.repeat(n + 2)).join('+')}+\n`;
  const centre = (s: string, n: number): string => {
    const left = Math.floor((n - s.length) / 2);
    return ' '.repeat(left) + s + ' '.repeat(n - s.length - left);
  };
  const hdr = `|${head.map((h, i) => ` ${centre(h, w[i]!)} `).join('|')}|\n`;
  const body = `|${row.map((c, i) => ` ${c.padStart(w[i]!)} `).join('|')}|\n`;
  return line + hdr + line + body + line;
}
