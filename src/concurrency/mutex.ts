/**
 * etcd 3.4's v3lock server (etcdserver/api/v3lock/lock.go over clientv3/concurrency mutex.go), on this member's
 * own KV and watch hub:
 *  - Lock(name, lease): key = name + "/" + hex(lease), created by a Txn
 *      if create_revision(key) == 0 then put(key, "", lease), get(first created under name/)
 *      else get(key), get(first created under name/);
 *    the lock is held when no key under the prefix was created before ours; otherwise we wait for the deletion of
 *    the newest key created before ours, and again until none is left (waitDeletes). Lease 0 → a 60 s lease is
 *    granted first (etcd's session does that); an unknown lease fails the Txn with "requested lease not found".
 *  - a caller that goes away while waiting has its key deleted (etcd: Mutex.Lock unlocks when waitDeletes fails);
 *    so does one that went away while its own Txn was in flight (etcd would leave that key to its lease).
 *  - Unlock(key) = DeleteRange(key).
 */
import type { ResponseHeader } from '../wire/codec';
import { canceled, deleteKey, firstCreate, leaseHex, opGet, opPut, rangeRequest, txn, waitDeletes, createRevIs, DEFAULT_SESSION_TTL, type ConcurrencyHost } from './host';

/** Lock's answer. */
export interface LockResult { header: ResponseHeader; key: Buffer }

/** etcd v3lock Lock. Rejects EtcdError / ConcurrencyError; `signal` = the caller went away. */
export async function lock(host: ConcurrencyHost, name: Uint8Array, leaseId: number, signal: AbortSignal): Promise<LockResult> {
  const lease = leaseId === 0 ? await host.grantLease(DEFAULT_SESSION_TTL) : leaseId;
  if (signal.aborted) throw canceled();
  const pfx = Buffer.concat([name, Buffer.from('/')]);
  const key = Buffer.concat([pfx, Buffer.from(leaseHex(lease))]);
  const owner = firstCreate(pfx);
  const resp = await txn(host, [createRevIs(key, 0)], [opPut(key, Buffer.alloc(0), lease), opGet(owner)], [opGet(rangeRequest({ key })), opGet(owner)]);
  let myRev = resp.header.revision;
  if (!resp.succeeded) myRev = resp.responses[0]!.responseRange!.kvs[0]!.createRevision;
  if (signal.aborted) {
    if (resp.succeeded) await deleteKey(host, key).catch(() => undefined);
    throw canceled();
  }
  const first = resp.responses[1]!.responseRange!.kvs ?? [];
  if (first.length === 0 || first[0]!.createRevision === myRev) return { header: resp.header, key };
  try {
    const header = await waitDeletes(host, pfx, myRev - 1, signal);
    return { header, key };
  } catch (e) {
    await deleteKey(host, key).catch(() => undefined);
    throw e;
  }
}

/** etcd v3lock Unlock: deletes the key; resolves the DeleteRange header. */
export function unlock(host: ConcurrencyHost, key: Buffer): Promise<ResponseHeader> {
  return deleteKey(host, key);
}
