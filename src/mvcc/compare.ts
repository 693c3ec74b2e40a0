/**
 * Txn compare evaluation (etcd api: Compare; etcdserver/apply.go applyCompare/compareKV).
 *
 * A compare over a key range holds when every key in the range satisfies it. When the range holds no key, a VALUE
 * compare fails and the other targets compare against a zero KeyValue (version/create/mod/lease 0).
 */
import type { Compare, KeyValue } from '../wire/codec';
import { compareBytes, EMPTY } from './encoding';

/** etcd api: Compare.CompareResult. */
export const CompareResult = { EQUAL: 0, GREATER: 1, LESS: 2, NOT_EQUAL: 3 } as const;
/** etcd api: Compare.CompareTarget. */
export const CompareTarget = { VERSION: 0, CREATE: 1, MOD: 2, VALUE: 3, LEASE: 4 } as const;

const ZERO_KV: KeyValue = { key: EMPTY, value: EMPTY, createRevision: 0, modRevision: 0, version: 0, lease: 0 };

function sign(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Compares one KeyValue against `c` (etcd's compareKV). A target value missing from the union counts as 0/empty. */
export function compareKv(c: Compare, kv: KeyValue): boolean {
  let r: number;
  switch (c.target ?? CompareTarget.VERSION) {
    case CompareTarget.VALUE: r = compareBytes(kv.value, c.value ?? EMPTY); break;
    case CompareTarget.CREATE: r = sign(kv.createRevision, c.createRevision ?? 0); break;
    case CompareTarget.MOD: r = sign(kv.modRevision, c.modRevision ?? 0); break;
    case CompareTarget.LEASE: r = sign(kv.lease, c.lease ?? 0); break;
    default: r = sign(kv.version, c.version ?? 0);
  }
  switch (c.result ?? CompareResult.EQUAL) {
    case CompareResult.EQUAL: return r === 0;
    case CompareResult.NOT_EQUAL: return r !== 0;
    case CompareResult.GREATER: return r > 0;
    case CompareResult.LESS: return r < 0;
    default: return true;
  }
}

/** Evaluates `c` over the KeyValues currently in its range (etcd's applyCompare). */
export function compareRange(c: Compare, kvs: readonly KeyValue[]): boolean {
  if (kvs.length === 0) {
    if ((c.target ?? CompareTarget.VERSION) === CompareTarget.VALUE) return false;
    return compareKv(c, ZERO_KV);
  }
  for (const kv of kvs) if (!compareKv(c, kv)) return false;
  return true;
}
