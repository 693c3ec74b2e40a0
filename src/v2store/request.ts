/**
 * The v2 write request carried by an EntryKind.V2 Raft entry (etcd api: etcdserverpb.Request as the v2 keys API
 * fills it), its application to the store (etcd applierV2store: Put / Post / Delete / Sync) and the result the
 * apply worker hands back. Requests and results are JSON (UTF-8): small, and the v2 API's answers are JSON anyway.
 */
import { V2Error, V2ErrorCodes } from '../errors';
import type { HistoryEvent } from './nodes';
import type { V2Event, V2Store } from './store';
import { applyV2Auth, type V2AuthAnswer, type V2AuthOp } from './auth';

/** A v2 write. `expiryMs` is absolute (the receiving member's clock + ttl), so every member applies the same. */
export interface V2Request {
  method: 'PUT' | 'POST' | 'DELETE' | 'SYNC' | 'AUTH';
  path: string;
  val?: string;
  dir?: boolean;
  prevValue?: string;
  prevIndex?: number;
  /** Absent: not given. */
  prevExist?: boolean;
  recursive?: boolean;
  refresh?: boolean;
  expiryMs?: number;
  /** SYNC: the leader's time, ms; nodes expiring at or before it are removed. */
  time?: number;
  /** AUTH: the /v2/auth change. */
  auth?: V2AuthOp;
}

/** What the apply worker answers a V2 entry with: the event, or etcd's error fields. */
export type V2Result =
  | { event: HistoryEvent; etcdIndex: number }
  | { errorCode: number; cause: string; index: number }
  | { auth: V2AuthAnswer };

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeV2Request(r: V2Request): Uint8Array {
  return enc.encode(JSON.stringify(r));
}

/** @throws SyntaxError on bytes that are not a request's JSON. */
export function decodeV2Request(b: Uint8Array): V2Request {
  const r = JSON.parse(dec.decode(b)) as V2Request;
  if (typeof r !== 'object' || r === null || typeof r.method !== 'string') throw new SyntaxError('not a v2 request');
  return r;
}

export function encodeV2Result(r: V2Result): Uint8Array {
  return enc.encode(JSON.stringify(r));
}

export function decodeV2Result(b: Uint8Array): V2Result {
  return JSON.parse(dec.decode(b)) as V2Result;
}

type Op = 'sets' | 'delete' | 'update' | 'create' | 'compareAndSwap' | 'compareAndDelete';

/** Runs one store write, counting its success or failure under etcd's stats name. */
function toResult(store: V2Store, op: Op, f: () => V2Event): V2Result {
  try {
    const e = f();
    store.nodes.bump(`${op}Success`);
    const { etcdIndex, ...event } = e;
    return { event, etcdIndex };
  } catch (err) {
    if (!(err instanceof V2Error)) throw err;
    // etcd 3.4's CompareAndDelete counts a failed comparison as a success (its deferred counter misses that error).
    store.nodes.bump(op === 'compareAndDelete' && err.errorCode === V2ErrorCodes.TestFailed ? 'compareAndDeleteSuccess' : `${op}Fail`);
    return { errorCode: err.errorCode, cause: err.cause, index: err.index };
  }
}

/**
 * Applies one request (etcd applierV2store): PUT is Create (prevExist=false), Update (prevExist=true without
 * conditions), CompareAndSwap (prevValue/prevIndex) or Set; POST an in-order Create; DELETE CompareAndDelete or
 * Delete; SYNC expires keys. Store errors become an error result; other failures (LMDB) propagate.
 */
export function applyV2(store: V2Store, r: V2Request): V2Result {
  const o = { expiryMs: r.expiryMs, refresh: r.refresh === true };
  const val = r.val ?? '';
  const dir = r.dir === true;
  const pv = r.prevValue ?? '';
  const pi = r.prevIndex ?? 0;
  switch (r.method) {
    case 'POST':
      return toResult(store, 'create', () => store.createNode(r.path, dir, val, true, o));
    case 'PUT':
      if (r.prevExist !== undefined) {
        if (r.prevExist) {
          if (pi === 0 && pv === '') return toResult(store, 'update', () => store.update(r.path, val, o));
          return toResult(store, 'compareAndSwap', () => store.compareAndSwap(r.path, pv, pi, val, o));
        }
        return toResult(store, 'create', () => store.createNode(r.path, dir, val, false, o));
      }
      if (pi > 0 || pv !== '') return toResult(store, 'compareAndSwap', () => store.compareAndSwap(r.path, pv, pi, val, o));
      return toResult(store, 'sets', () => store.set(r.path, dir, val, o));
    case 'DELETE':
      if (pi > 0 || pv !== '') return toResult(store, 'compareAndDelete', () => store.compareAndDelete(r.path, pv, pi));
      return toResult(store, 'delete', () => store.delete(r.path, dir, r.recursive === true));
    case 'SYNC': {
      const events = store.expire(r.time ?? 0);
      return { event: { action: 'sync', node: {} }, etcdIndex: events.length > 0 ? events[events.length - 1]!.etcdIndex : store.index() };
    }
    case 'AUTH':
      if (r.auth === undefined) throw new SyntaxError('v2 AUTH request without its change');
      return { auth: applyV2Auth(store, r.auth) };
    default:
      throw new SyntaxError(`unknown v2 method ${String(r.method)}`);
  }
}
