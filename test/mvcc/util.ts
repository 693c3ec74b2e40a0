/** Test helpers for the MVCC store: request builders with etcd's proto3 defaults and a temp data dir. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from '../../src/wire/codec';
import { MvccStore } from '../../src/mvcc/store';

export const b = (s: string): Buffer => Buffer.from(s);
export const s = (u: Uint8Array): string => Buffer.from(u).toString();

const made: string[] = [];
process.on('exit', () => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

/** A fresh temp directory, removed when the test process exits. */
export function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'etcetera-mvcc-'));
  made.push(d);
  return d;
}

/** Opens a store in a fresh temp dir; returns it with its dir. */
export function freshStore(): { store: MvccStore; dir: string } {
  const dir = tempDir();
  return { store: MvccStore.open(dir), dir };
}

export function put(key: string, value = '', extra: Partial<PutRequest> = {}): PutRequest {
  return { key: b(key), value: b(value), lease: 0, prevKv: false, ignoreValue: false, ignoreLease: false, ...extra };
}

export function rng(key: string, rangeEnd = '', extra: Partial<RangeRequest> = {}): RangeRequest {
  return {
    key: b(key), rangeEnd: b(rangeEnd), limit: 0, revision: 0, sortOrder: 0, sortTarget: 0, serializable: false,
    keysOnly: false, countOnly: false, minModRevision: 0, maxModRevision: 0, minCreateRevision: 0, maxCreateRevision: 0,
    ...extra,
  };
}

export function del(key: string, rangeEnd = '', prevKv = false): DeleteRangeRequest {
  return { key: b(key), rangeEnd: b(rangeEnd), prevKv };
}

export function cmp(key: string, target: Compare['target'], result: Compare['result'], v: number | string, rangeEnd = ''): Compare {
  const c: Compare = { key: b(key), rangeEnd: b(rangeEnd), target, result };
  if (target === 3) c.value = b(String(v));
  else if (target === 0) c.version = Number(v);
  else if (target === 1) c.createRevision = Number(v);
  else if (target === 2) c.modRevision = Number(v);
  else c.lease = Number(v);
  return c;
}

export const op = {
  put: (k: string, v = '', extra: Partial<PutRequest> = {}): RequestOp => ({ requestPut: put(k, v, extra) }),
  range: (k: string, end = '', extra: Partial<RangeRequest> = {}): RequestOp => ({ requestRange: rng(k, end, extra) }),
  del: (k: string, end = '', prevKv = false): RequestOp => ({ requestDeleteRange: del(k, end, prevKv) }),
  txn: (t: TxnRequest): RequestOp => ({ requestTxn: t }),
};

/** Keys of a range result as strings. */
export function keys(r: { kvs: { key: Uint8Array }[] }): string[] {
  return r.kvs.map((kv) => s(kv.key));
}

/** Number of entries in one of the store's LMDB dbs. */
export function countDb(store: MvccStore, name: 'rev' | 'hist' | 'kv' | 'leaseKeys'): number {
  store.dbs.root.resetReadTxn();
  return store.dbs[name].getCount({});
}

/** Asserts `fn` throws an EtcdError with the given errors.ts name's id. */
export function errId(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    return (e as { id?: number }).id ?? -1;
  }
  return 0;
}
