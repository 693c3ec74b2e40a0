/**
 * Concurrent clients of the nemesis run: each does put / get / txn-compare-and-set on a few keys through a
 * randomly chosen member, one operation at a time, and records every invocation and completion in the History.
 *
 * Every written value is unique (`<process>.<n>`), so a read names the write it saw. A client whose operation
 * ended in an unknown outcome (timeout, Unavailable) continues as a new process: its old operation may still take
 * effect at any time (Jepsen's convention, which keeps each process sequential).
 */
import type * as grpc from '@grpc/grpc-js';
import { Rng } from '../helpers/rng';
import type { NemesisCluster } from './cluster';
import type { History } from './history';
import type { Outcome, Value } from './linearizability';

/** Key prefix of every key the workload writes (the durability check reads this prefix's whole history). */
export const KEY_PREFIX = 'nemesis/';

/** gRPC Unavailable. */
const UNAVAILABLE = 14;

/** Compare.CompareTarget / CompareResult values (etcd api: KV.Txn). */
const CMP_EQUAL = 0;
const TARGET_VERSION = 0;
const TARGET_VALUE = 3;

export interface WorkloadOptions {
  clients: number;
  keys: number;
  /** Client deadline of every operation (ms); a deadline is an unknown outcome. */
  opTimeoutMs: number;
  seed: number;
}

/** Counters of the workload. */
export interface WorkloadStats { invoked: number; ok: number; fail: number; unknown: number; errors: Map<string, number> }

/**
 * Outcome of a failed request. Reads never change state, so any failure is `fail`. A write refused before it left
 * this process (the channel has no connection: the member is down) certainly did not happen; anything else —
 * deadline, Unavailable from the server (no leader, leader changed, request timed out), a dropped connection —
 * may have been proposed and is `unknown`.
 */
export function classifyError(e: unknown, isRead: boolean): Outcome {
  if (isRead) return 'fail';
  const se = e as grpc.ServiceError;
  if (se?.code === UNAVAILABLE && /^No connection established/.test(se.details ?? '')) return 'fail';
  return 'unknown';
}

function errText(e: unknown): string {
  const se = e as grpc.ServiceError;
  return typeof se?.code === 'number' ? `${se.code} ${se.details}` : String((e as Error)?.message ?? e);
}

const str = (b: Uint8Array | undefined): Value => (b === undefined ? null : Buffer.from(b).toString());

/** Runs the clients until `stop()` is true; resolves when every client finished its current operation. */
export async function runWorkload(cluster: NemesisCluster, history: History, o: WorkloadOptions, stop: () => boolean): Promise<WorkloadStats> {
  const keys = Array.from({ length: o.keys }, (_, i) => `${KEY_PREFIX}k${i}`);
  const stats: WorkloadStats = { invoked: 0, ok: 0, fail: 0, unknown: 0, errors: new Map() };
  /** Last value some client saw per key: what a CAS expects, so that CASes mostly succeed. */
  const lastSeen = new Map<string, Value>();
  /** A few older values per key, for CASes that should fail. */
  const older = new Map<string, Value[]>();
  const saw = (key: string, v: Value): void => {
    lastSeen.set(key, v);
    const l = older.get(key) ?? [];
    l.push(v);
    if (l.length > 8) l.shift();
    older.set(key, l);
  };

  const client = async (w: number): Promise<void> => {
    const rng = new Rng((o.seed ^ Math.imul(w + 1, 0x9e3779b1)) >>> 0);
    let process = w;
    let n = 0;
    while (!stop()) {
      const key = rng.pick(keys);
      const member = rng.pick(cluster.members);
      const r = rng.next();
      const kind = r < 0.4 ? 'get' : r < 0.65 ? 'put' : 'cas';
      const value = `${process}.${++n}`;
      const expected: Value = rng.chance(0.15) ? rng.pick(older.get(key) ?? [null]) : lastSeen.get(key) ?? null;
      stats.invoked++;
      const kv = member.client;
      try {
        if (kind === 'get') {
          history.invoke({ process, op: 'get', key, member: member.name });
          const res = await kv.call('KV', 'Range', { key: Buffer.from(key) }, o.opTimeoutMs);
          const v = str(res.kvs[0]?.value);
          history.complete(process, 'ok', { output: { value: v }, revision: res.header.revision });
          saw(key, v);
        } else if (kind === 'put') {
          history.invoke({ process, op: 'put', key, value, member: member.name });
          const res = await kv.call('KV', 'Put', { key: Buffer.from(key), value: Buffer.from(value) }, o.opTimeoutMs);
          history.complete(process, 'ok', { revision: res.header.revision });
          saw(key, value);
        } else {
          history.invoke({ process, op: 'cas', key, value, expected, member: member.name });
          const compare = expected === null
            ? { result: CMP_EQUAL, target: TARGET_VERSION, key: Buffer.from(key), version: 0 }
            : { result: CMP_EQUAL, target: TARGET_VALUE, key: Buffer.from(key), value: Buffer.from(expected) };
          const res = await kv.call('KV', 'Txn', {
            compare: [compare],
            success: [{ requestPut: { key: Buffer.from(key), value: Buffer.from(value) } }],
            failure: [{ requestRange: { key: Buffer.from(key) } }],
          }, o.opTimeoutMs);
          if (res.succeeded) {
            history.complete(process, 'ok', { output: { succeeded: true }, revision: res.header.revision });
            saw(key, value);
          } else {
            const v = str(res.responses[0]?.responseRange?.kvs?.[0]?.value);
            history.complete(process, 'ok', { output: { succeeded: false, value: v }, revision: res.header.revision });
            saw(key, v);
          }
        }
        stats.ok++;
      } catch (e) {
        const outcome = classifyError(e, kind === 'get');
        const text = errText(e);
        history.complete(process, outcome, { error: text });
        stats[outcome]++;
        const short = text.replace(/\d+\.\d+\.\d+\.\d+:\d+/g, 'ADDR').slice(0, 80);
        stats.errors.set(short, (stats.errors.get(short) ?? 0) + 1);
        if (outcome === 'unknown') process += o.clients;
        // Do not spin on a member that is down or partitioned away.
        await new Promise((r) => setTimeout(r, 20 + rng.int(80)));
      }
    }
  };
  await Promise.all(Array.from({ length: o.clients }, (_, w) => client(w)));
  return stats;
}
