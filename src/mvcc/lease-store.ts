/**
 * The lease side of the MVCC store (etcd lease/lessor.go storage): lease records and the keys attached to each, in
 * the `lease` and `leaseKeys` dbs. Grants, revokes and checkpoints run in MvccStore's write transaction; these are the
 * pieces that only read or choose.
 */
import { etcdError } from '../errors';
import { MAX_LEASE_ID } from '../wire/lease';
import { leaseKeyPrefix } from './encoding';
import type { MvccDbs } from './env';

/** Attempts to find a free generated lease id before giving up (collisions are astronomically rare). */
export const LEASE_ID_ATTEMPTS = 64;

/**
 * A lease ID for a grant that named none: splitmix64 from `seed` (the entry's index), so every member picks the same
 * one; skips IDs in use. @throws EtcdError LeaseExist after LEASE_ID_ATTEMPTS taken IDs.
 */
export function freshLeaseId(leases: Pick<MvccDbs['lease'], 'get'>, seed: number): number {
  let x = BigInt(seed) + 0x9e3779b97f4a7c15n;
  for (let i = 0; i < LEASE_ID_ATTEMPTS; i++) {
    // splitmix64, deterministic on every member for the same entry.
    x = (x + 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
    let z = x;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn;
    z = z ^ (z >> 31n);
    const id = Number(z & BigInt(MAX_LEASE_ID));
    if (id !== 0 && leases.get(id) === undefined) return id;
  }
  throw etcdError('LeaseExist');
}

/** The `leaseKeys` entries of lease `id` (8-byte lease prefix + key), in key order. */
export function attachedEntries(dbs: Pick<MvccDbs, 'leaseKeys'>, id: number): Buffer[] {
  const out: Buffer[] = [];
  for (const k of dbs.leaseKeys.getKeys({ start: leaseKeyPrefix(id), end: leaseKeyPrefix(id + 1) })) out.push(k);
  return out;
}
