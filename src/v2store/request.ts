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

const dec = new TextDecoder();

/**
 * Largest v2 entry payload or apply result (bytes): Go's 10 MiB form limit (the largest value etcd's v2 API takes)
 * plus room for the rest of the request. A value travels as raw bytes beside a small JSON header (never
 * JSON-escaped, which could grow it sixfold), so every request the HTTP side accepts fits; the rings are sized for
 * it when v2 is enabled.
 */
export const MAX_V2_ENTRY_BYTES = 10 * 1024 * 1024 + 64 * 1024;

/** First byte of the framed layout: marker, header length (u32 BE), JSON header, raw value bytes. */
const FRAMED = 1;

function frame(header: unknown, raw: string | undefined): Uint8Array {
  // Sized first and written in place: one allocation per request on the v2 write path.
  const h = JSON.stringify(header);
  const hLen = Buffer.byteLength(h);
  const out = Buffer.allocUnsafe(5 + hLen + (raw === undefined ? 0 : Buffer.byteLength(raw)));
  out[0] = FRAMED;
  out.writeUInt32BE(hLen, 1);
  out.write(h, 5, 'utf8');
  if (raw !== undefined) out.write(raw, 5 + hLen, 'utf8');
  return out;
}

/** The header and raw value of a framed payload; null for the plain JSON of entries written before framing. */
function unframe(b: Uint8Array): { header: unknown; raw: string } | null {
  if (b[0] !== FRAMED) return null;
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const n = buf.readUInt32BE(1);
  return { header: JSON.parse(buf.toString('utf8', 5, 5 + n)), raw: buf.toString('utf8', 5 + n) };
}

/** The entry payload of a request: `val` as raw bytes after the JSON of the other fields. */
export function encodeV2Request(r: V2Request): Uint8Array {
  const { val, ...rest } = r;
  return frame(val === undefined ? rest : { ...rest, hasVal: true }, val);
}

/** @throws SyntaxError on bytes that are not a request. */
export function decodeV2Request(b: Uint8Array): V2Request {
  const f = unframe(b);
  let r: V2Request & { hasVal?: boolean };
  if (f === null) r = JSON.parse(dec.decode(b)) as V2Request;
  else {
    r = f.header as V2Request & { hasVal?: boolean };
    if (r !== null && typeof r === 'object' && r.hasVal === true) {
      delete r.hasVal;
      r.val = f.raw;
    }
  }
  if (typeof r !== 'object' || r === null || typeof r.method !== 'string') throw new SyntaxError('not a v2 request');
  return r;
}

/**
 * The apply result's bytes. Values stay out of the JSON: the node's value is left out when it is the request's
 * value or the previous node's (set, CAS, refresh), and the previous node's value goes raw after the header.
 */
export function encodeV2Result(r: V2Result, reqVal?: string): Uint8Array {
  if (!('event' in r)) return frame(r, undefined);
  const { node, prevNode } = r.event;
  const header: { r: V2Result; nv?: 'req' | 'prev'; pv?: true } = { r };
  let raw: string | undefined;
  let outNode = node;
  let outPrev = prevNode;
  if (prevNode?.value !== undefined) {
    raw = prevNode.value;
    header.pv = true;
    outPrev = { ...prevNode };
    delete outPrev.value;
  }
  if (node.value !== undefined && (node.value === reqVal || (raw !== undefined && node.value === raw))) {
    header.nv = node.value === reqVal ? 'req' : 'prev';
    outNode = { ...node };
    delete outNode.value;
  }
  header.r = { event: { ...r.event, node: outNode, ...(outPrev === undefined ? {} : { prevNode: outPrev }) }, etcdIndex: r.etcdIndex };
  return frame(header, raw);
}

/** The result of a request whose value was `reqVal` (the one given to {@link encodeV2Result}). */
export function decodeV2Result(b: Uint8Array, reqVal?: string): V2Result {
  const f = unframe(b);
  if (f === null) return JSON.parse(dec.decode(b)) as V2Result;
  const h = f.header as { r: V2Result; nv?: 'req' | 'prev'; pv?: true; event?: unknown };
  if (!('r' in h)) return h as unknown as V2Result;
  const r = h.r;
  if (!('event' in r)) return r;
  const e = r.event;
  // Keys in etcd's order: the value goes where it was (before the indexes).
  const withValue = (n: HistoryEvent['node'], v: string): HistoryEvent['node'] => {
    const { key, ...rest } = n;
    return key === undefined ? { value: v, ...rest } : { key, value: v, ...rest };
  };
  if (h.pv === true && e.prevNode !== undefined) e.prevNode = withValue(e.prevNode, f.raw);
  if (h.nv !== undefined) e.node = withValue(e.node, h.nv === 'req' ? (reqVal ?? '') : f.raw);
  return r;
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
