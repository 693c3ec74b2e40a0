/**
 * Random request generators for histories replayed on etcd and etcetera alike (HashKV and snapshot differentials):
 * a small key space so keys are overwritten, deleted and recreated often (one key holds a 0x00 byte, one a 0xFF),
 * explicit lease IDs so both servers attach the same ones, txns writing several keys in one revision.
 */
import type { Rng } from './rng';

const B = (s: string): Buffer => Buffer.from(s, 'latin1');

/** The key space. */
export const KEYS = ['a', 'a/1', 'a/2', 'b', 'b/1', 'c', 'k\x00', 'z\xff'];
/** Lease ids given explicitly so both servers attach the same ids (a granted id would be random). */
export const LEASES = [0x100, 0x2000000001];

/** A PutRequest on a random key, with a lease from `leases` 30 % of the time. */
export function randPut(r: Rng, leases: number[]): any {
  const lease = leases.length > 0 && r.chance(0.3) ? r.pick(leases) : 0;
  const value = r.chance(0.1) ? B('') : B(`v${r.int(1000)}${'x'.repeat(r.int(12))}`);
  return { key: B(r.pick(KEYS)), value, lease };
}

/** A DeleteRangeRequest of one key or a prefix range. */
export function randDelete(r: Rng): any {
  if (r.chance(0.6)) return { key: B(r.pick(KEYS)) };
  const p = r.pick(['a', 'b']);
  return { key: B(p), rangeEnd: B(String.fromCharCode(p.charCodeAt(0) + 1)) };
}

/** A txn whose branches write several keys (distinct, as etcd requires), so one revision carries sub revisions. */
export function randTxn(r: Rng, leases: number[]): any {
  const branch = (): any[] => {
    const ops: any[] = [];
    const used = new Set<string>();
    for (let i = r.int(4); i > 0; i--) {
      const k = r.pick(KEYS);
      if (used.has(k)) continue;
      used.add(k);
      ops.push(r.chance(0.7) ? { requestPut: { ...randPut(r, leases), key: B(k) } } : { requestDeleteRange: { key: B(k) } });
    }
    return ops;
  };
  return {
    compare: [{ key: B(r.pick(KEYS)), target: 0 /* VERSION */, result: r.pick([0, 2]) /* EQUAL, GREATER */, version: r.int(3) }],
    success: branch(),
    failure: branch(),
  };
}

/** `n` random puts, deletes and txns (5:2:3) through `apply` (which runs one request, e.g. on two servers). */
export async function randomOps(r: Rng, n: number, leases: number[], apply: (service: string, method: string, req: object) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < n; i++) {
    const x = r.int(10);
    if (x < 5) await apply('KV', 'Put', randPut(r, leases));
    else if (x < 7) await apply('KV', 'DeleteRange', randDelete(r));
    else await apply('KV', 'Txn', randTxn(r, leases));
  }
}
