/**
 * Password hashing for the auth store: bcrypt (npm `bcrypt`, native, async API). Hashes and comparisons run on
 * libuv's thread pool, never on the main thread's reactor nor in the apply worker: a cost-10 hash takes ~100 ms.
 * etcd hashes with golang.org/x/crypto/bcrypt at bcrypt.DefaultCost (10); its `$2a$` hashes verify here too.
 */
import * as bcrypt from 'bcrypt';

/** etcd's --bcrypt-cost default (bcrypt.DefaultCost). */
export const DEFAULT_BCRYPT_COST = 10;

/** bcrypt hash of `password` at `cost` (4..31). Rejects on a bad cost. */
export function hashPassword(password: string, cost = DEFAULT_BCRYPT_COST): Promise<string> {
  return bcrypt.hash(password, cost);
}

/** True when `password` matches the bcrypt `hash`; false for an empty or malformed hash. */
export async function checkPassword(password: string, hash: string): Promise<boolean> {
  if (hash.length === 0) return false;
  try {
    return await bcrypt.compare(password, hash);
  } catch {
    return false;
  }
}
