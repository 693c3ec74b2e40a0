/**
 * Which permissions a KV request needs (etcd etcdserver/apply_auth.go authApplierV3 and v3_server.go): run at
 * admission on the main thread and again at apply time by the apply worker, against the auth revision the request
 * was admitted under. Requests are the decoded protobuf objects (structural types here, so this module does not
 * depend on the wire layer).
 */
import type { EtcdError } from '../errors';
import { PermType, type AuthInfo, type AuthStore } from './store';

/** The fields of the decoded requests the checks read. */
export interface KeyRange { key?: Uint8Array | null; rangeEnd?: Uint8Array | null }
export interface PutLike { key?: Uint8Array | null; prevKv?: boolean | null; lease?: number | null }
export interface DeleteLike extends KeyRange { prevKv?: boolean | null }
export interface RequestOpLike {
  requestRange?: KeyRange | null;
  requestPut?: PutLike | null;
  requestDeleteRange?: DeleteLike | null;
  requestTxn?: TxnLike | null;
}
export interface TxnLike { compare?: KeyRange[] | null; success?: RequestOpLike[] | null; failure?: RequestOpLike[] | null }

const EMPTY = new Uint8Array(0);

/** etcd IsRangePermitted. */
export function rangeError(as: AuthStore, ai: AuthInfo, r: KeyRange): EtcdError | null {
  return as.opError(ai, r.key ?? EMPTY, r.rangeEnd, PermType.Read);
}

/** etcd authApplierV3.Put without the lease part: write on the key, read on it when prev_kv is asked. */
export function putError(as: AuthStore, ai: AuthInfo, r: PutLike): EtcdError | null {
  const key = r.key ?? EMPTY;
  return as.opError(ai, key, null, PermType.Write) ?? (r.prevKv ? as.opError(ai, key, null, PermType.Read) : null);
}

/** etcd authApplierV3.DeleteRange: write on the range, read on it when prev_kv is asked. */
export function deleteError(as: AuthStore, ai: AuthInfo, r: DeleteLike): EtcdError | null {
  const key = r.key ?? EMPTY;
  return as.opError(ai, key, r.rangeEnd, PermType.Write) ?? (r.prevKv ? as.opError(ai, key, r.rangeEnd, PermType.Read) : null);
}

function opsError(as: AuthStore, ai: AuthInfo, ops: RequestOpLike[] | null | undefined, depth: number): EtcdError | null {
  for (const op of ops ?? []) {
    let e: EtcdError | null = null;
    if (op.requestRange) e = rangeError(as, ai, op.requestRange);
    else if (op.requestPut) e = as.opError(ai, op.requestPut.key ?? EMPTY, null, PermType.Write);
    else if (op.requestDeleteRange) {
      const d = op.requestDeleteRange;
      e = (d.prevKv ? as.opError(ai, d.key ?? EMPTY, d.rangeEnd, PermType.Read) : null) ?? as.opError(ai, d.key ?? EMPTY, d.rangeEnd, PermType.Write);
    } else if (op.requestTxn) e = txnError(as, ai, op.requestTxn, depth + 1);
    if (e !== null) return e;
  }
  return null;
}

/**
 * etcd checkTxnAuth: read on every compare's range, then every op of success and failure (a put needs write, a
 * delete write — and read with prev_kv —, a range read). Nested txns are checked the same way, all the way down:
 * etcd 3.4's own check stops at the first level, which let a nested op bypass permissions; etcetera does not
 * reproduce that hole.
 */
export function txnError(as: AuthStore, ai: AuthInfo, t: TxnLike, depth = 0): EtcdError | null {
  for (const c of t.compare ?? []) {
    const e = rangeError(as, ai, c);
    if (e !== null) return e;
  }
  return opsError(as, ai, t.success, depth) ?? opsError(as, ai, t.failure, depth);
}

/**
 * etcd authApplierV3.checkLeasePuts: write permission on every key attached to the lease (LeaseRevoke, and a Put
 * that attaches a key to a lease whose keys the user could not write). `keys` are the lease's attached keys.
 */
export function leaseKeysError(as: AuthStore, ai: AuthInfo, keys: Iterable<Uint8Array>): EtcdError | null {
  if (!as.enabled) return null;
  for (const k of keys) {
    const e = as.opError(ai, k, null, PermType.Write);
    if (e !== null) return e;
  }
  return null;
}
