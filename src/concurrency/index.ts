/** etcd's concurrency services (v3lock, v3election) on a member's own KV, lease and watch. */
export * from './host';
export { lock, unlock, type LockResult } from './mutex';
export { campaign, proclaim, resign, leader, observe, type LeaderKey } from './election';
