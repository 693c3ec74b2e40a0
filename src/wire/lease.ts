/** Lease limits of etcd's API, shared by the client API (validation) and the MVCC lease store (grant). */

/** etcd lease: MaxLeaseTTL (seconds). Larger grants fail with LeaseTTLTooLarge. */
export const MAX_LEASE_TTL_SECONDS = 9_000_000_000;
/** Largest lease id (ids stay JS-safe integers; docs/architecture.md "Raft IDs"). */
export const MAX_LEASE_ID = Number.MAX_SAFE_INTEGER;
