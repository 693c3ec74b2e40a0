/**
 * Request validation done by the API layer before anything is proposed or read, with etcd 3.4's rules
 * and order (etcd v3rpc: key.go checkRangeRequest / checkPutRequest / checkDeleteRequest / checkTxnRequest /
 * checkRequestOp / checkIntervals; etcdserver: v3_server.go processInternalRaftRequestOnce for the size limit).
 *
 * Checks return the offending error's name from src/errors.ts, or null when the request is fine; the caller
 * builds the EtcdError only on failure (no allocation on the hot path).
 */
import type { ErrorName } from '../errors';
import type { DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from './codec';

/** etcd v3rpc: key.go checkRangeRequest — empty key → EmptyKey. */
export function checkRangeRequest(r: RangeRequest): ErrorName | null {
  return r.key.length === 0 ? 'EmptyKey' : null;
}

/**
 * etcd v3rpc: key.go checkPutRequest — empty key → EmptyKey; ignore_value with a value → ValueProvided;
 * ignore_lease with a lease → LeaseProvided.
 */
export function checkPutRequest(r: PutRequest): ErrorName | null {
  if (r.key.length === 0) return 'EmptyKey';
  if (r.ignoreValue && r.value.length !== 0) return 'ValueProvided';
  if (r.ignoreLease && r.lease !== 0) return 'LeaseProvided';
  return null;
}

/** etcd v3rpc: key.go checkDeleteRequest — empty key → EmptyKey. */
export function checkDeleteRequest(r: DeleteRangeRequest): ErrorName | null {
  return r.key.length === 0 ? 'EmptyKey' : null;
}

/**
 * etcd v3rpc: key.go checkTxnRequest — the largest of |compare|, |success|, |failure| above `maxTxnOps` →
 * TooManyOps; a compare with an empty key → EmptyKey; then each op of success, then of failure, through
 * {@link checkRequestOp} (nested txns get the remaining budget `maxTxnOps - that largest count`, as etcd).
 */
export function checkTxnRequest(r: TxnRequest, maxTxnOps: number): ErrorName | null {
  let opc = r.compare.length;
  if (opc < r.success.length) opc = r.success.length;
  if (opc < r.failure.length) opc = r.failure.length;
  if (opc > maxTxnOps) return 'TooManyOps';
  for (const c of r.compare) if (c.key.length === 0) return 'EmptyKey';
  for (const op of r.success) {
    const e = checkRequestOp(op, maxTxnOps - opc);
    if (e !== null) return e;
  }
  for (const op of r.failure) {
    const e = checkRequestOp(op, maxTxnOps - opc);
    if (e !== null) return e;
  }
  return null;
}

/** etcd v3rpc: key.go checkRequestOp — dispatches on the op's oneof; an empty op → KeyNotFound. */
export function checkRequestOp(op: RequestOp, maxTxnOps: number): ErrorName | null {
  switch (op.request) {
    case 'requestRange':
      return checkRangeRequest(op.requestRange as RangeRequest);
    case 'requestPut':
      return checkPutRequest(op.requestPut as PutRequest);
    case 'requestDeleteRange':
      return checkDeleteRequest(op.requestDeleteRange as DeleteRangeRequest);
    case 'requestTxn':
      return checkTxnRequest(op.requestTxn as TxnRequest, maxTxnOps);
    default:
      return 'KeyNotFound';
  }
}

// --- checkIntervals -------------------------------------------------------------------------------------
// Keys are compared as latin1 strings (one UTF-16 unit per byte, so string order = byte order). As in etcd's
// adt "string affine" intervals, an empty bound means +infinity, a point p is [p, p+"\x00"), and a delete
// range is [key, range_end) — so "from key" deletes (range_end "\x00") form an empty interval, exactly as etcd.

type Interval = readonly [begin: string, end: string];

function cmp(a: string, b: string): number {
  if (a.length === 0) return b.length === 0 ? 0 : 1;
  if (b.length === 0) return -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function intersects(a: Interval, b: Interval): boolean {
  return cmp(a[0], b[1]) < 0 && cmp(b[0], a[1]) < 0;
}

function pointHits(dels: readonly Interval[], k: string): boolean {
  const p: Interval = [k, k + '\x00'];
  for (const d of dels) if (intersects(d, p)) return true;
  return false;
}

const EVERYTHING: Interval = ['\x00', ''];

function latin1(b: Uint8Array): string {
  return (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)).toString('latin1');
}

interface IntervalResult { puts: Set<string>; dels: Interval[] }

function intervals(reqs: readonly RequestOp[]): IntervalResult | null {
  const dels: Interval[] = [];
  for (const op of reqs) {
    if (op.request !== 'requestDeleteRange' || !op.requestDeleteRange) continue;
    const d = op.requestDeleteRange;
    const k = latin1(d.key);
    dels.push(d.rangeEnd.length !== 0 ? [k, latin1(d.rangeEnd)] : [k, k + '\x00']);
  }
  const puts = new Set<string>();
  for (const op of reqs) {
    if (op.request !== 'requestTxn' || !op.requestTxn) continue;
    const thenR = intervals(op.requestTxn.success);
    if (thenR === null) return null;
    const elseR = intervals(op.requestTxn.failure);
    if (elseR === null) return null;
    for (const k of thenR.puts) {
      if (puts.has(k) || pointHits(dels, k)) return null;
      puts.add(k);
    }
    for (const k of elseR.puts) {
      // a key put by both branches is fine: then/else are mutually exclusive
      if (puts.has(k) && !thenR.puts.has(k)) return null;
      if (pointHits(dels, k)) return null;
      puts.add(k);
    }
    for (const d of thenR.dels) if (intersects(d, EVERYTHING)) dels.push(d);
    for (const d of elseR.dels) if (intersects(d, EVERYTHING)) dels.push(d);
  }
  for (const op of reqs) {
    if (op.request !== 'requestPut' || !op.requestPut) continue;
    const k = latin1(op.requestPut.key);
    if (puts.has(k) || pointHits(dels, k)) return null;
    puts.add(k);
  }
  return { puts, dels };
}

/**
 * etcd v3rpc: key.go checkIntervals — within one branch (recursing into nested txns), a key put twice, or put
 * and covered by a delete range of the same branch → DuplicateKey. Run after {@link checkTxnRequest}, on
 * success then failure (as etcd's kvServer.Txn).
 */
export function checkIntervals(reqs: readonly RequestOp[]): ErrorName | null {
  return intervals(reqs) === null ? 'DuplicateKey' : null;
}

function varintSize(n: number): number {
  let s = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    s++;
  }
  return s;
}

/**
 * The size etcd 3.4 compares with --max-request-bytes for a proposed request of `requestBytes` bytes: its
 * marshalled InternalRaftRequest = RequestHeader (field 100: 2-byte tag + length + ID, counted as a 10-byte
 * varint) + the request (1-byte tag + length varint + bytes). Exact up to the 1-byte difference a
 * member-dependent request ID makes. (etcdserver: v3_server.go processInternalRaftRequestOnce)
 */
export function raftRequestSize(requestBytes: number): number {
  return requestBytes + 15 + varintSize(requestBytes);
}

/** RequestTooLarge when the proposed request would exceed `maxRequestBytes` (see {@link raftRequestSize}). */
export function checkRequestSize(requestBytes: number, maxRequestBytes: number): ErrorName | null {
  return raftRequestSize(requestBytes) > maxRequestBytes ? 'RequestTooLarge' : null;
}
