/** Shared helpers for WAL tests (not a test file). */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { WalEntry } from '../../src/wal/record';

/** A fresh temporary directory. */
export function tmpDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `etcetera-${tag}-`));
}

/** Deterministic entry i (index i, data depends on i and term). */
export function entry(index: number, term = 1, size = 10 + (index % 50)): WalEntry {
  const data = new Uint8Array(size);
  for (let k = 0; k < size; k++) data[k] = (index * 7 + term * 3 + k) & 0xff;
  return { index, term, type: index % 3 === 0 ? 1 : 0, data };
}

/** Entries [from, to] at one term. */
export function entries(from: number, to: number, term = 1): WalEntry[] {
  const out: WalEntry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term));
  return out;
}

/** Silent logger capturing warnings. */
export function captureLogger(): { warn(fields: Record<string, unknown>, msg: string): void; lines: { fields: Record<string, unknown>; msg: string }[] } {
  const lines: { fields: Record<string, unknown>; msg: string }[] = [];
  return { lines, warn: (fields, msg) => lines.push({ fields, msg }) };
}

/** Normalises entries for deepEqual (Buffer vs Uint8Array). */
export function plain(es: readonly WalEntry[]): { index: number; term: number; type: number; data: number[] }[] {
  return es.map((e) => ({ index: e.index, term: e.term, type: e.type, data: Array.from(e.data) }));
}
