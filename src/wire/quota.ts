/**
 * The storage cost of a write request as etcd's backend quota counts it (etcd: etcdserver/quota.go). Used by the
 * server to refuse a write that would pass the quota and by the apply worker to refuse one while NOSPACE is raised.
 */
import type { PutRequest, TxnRequest } from './codec';

/** etcd quota.go kvOverhead: the estimated cost in bytes of storing a key's metadata. */
export const QUOTA_KV_OVERHEAD = 256;

/** etcd quota.go costPut: bytes a put adds (overhead + key + value). */
export function putCost(p: Pick<PutRequest, 'key' | 'value'>): number {
  return QUOTA_KV_OVERHEAD + (p.key?.length ?? 0) + (p.value?.length ?? 0);
}

/** etcd quota.go costTxn: the larger of the two branches' top-level put costs (nested txns cost 0), in bytes. */
export function txnPutCost(t: TxnRequest): number {
  const cost = (ops: TxnRequest['success'] | undefined): number => {
    let n = 0;
    for (const op of ops ?? []) {
      const p = op.requestPut;
      if (p) n += putCost(p);
    }
    return n;
  };
  return Math.max(cost(t.success), cost(t.failure));
}
