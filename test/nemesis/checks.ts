/**
 * Checks of a nemesis history beyond per-key linearizability, using the revisions etcd's API returns:
 *
 * - Real-time revision order (across keys): the store's revision only grows, so an operation invoked after another
 *   completed answers a revision at least as high, strictly higher when it writes (etcd api: ResponseHeader.revision
 *   is the store revision after the request; a write creates the next one).
 * - Write log: after healing, the key prefix's complete MVCC history (a watch from revision 1) must hold every
 *   acknowledged write with its value at the revision its response named; no value twice (a request applied twice);
 *   no value no client wrote or one whose write certainly failed; per key, one event per version.
 */
import type { RecordedOperation } from './history';

/** One put event of the prefix's MVCC history. */
export interface WriteEvent { key: string; value: string; modRevision: number; version: number }

const isWrite = (o: RecordedOperation): boolean => o.kind === 'put' || (o.kind === 'cas' && o.output?.succeeded === true);

/** Real-time revision order over every `ok` operation with a revision. Returns problems (empty = pass). */
export function checkRevisionOrder(ops: readonly RecordedOperation[]): string[] {
  const done = ops.filter((o) => o.outcome === 'ok' && o.revision !== undefined);
  const byCall = [...done].sort((a, b) => a.call - b.call);
  const byRet = [...done].sort((a, b) => a.ret - b.ret);
  const problems: string[] = [];
  let i = 0;
  let floor = 0;
  let floorOp: RecordedOperation | null = null;
  for (const b of byCall) {
    while (i < byRet.length && byRet[i].ret < b.call) {
      if (byRet[i].revision! > floor) { floor = byRet[i].revision!; floorOp = byRet[i]; }
      i++;
    }
    const rev = b.revision!;
    if (isWrite(b) ? rev <= floor : rev < floor) {
      if (problems.length < 10) {
        problems.push(`op #${b.id} (${b.kind} ${b.key} via ${b.member}, [${b.call}, ${b.ret}]) answered revision ${rev}, but op #${floorOp!.id} ` +
          `(${floorOp!.kind} ${floorOp!.key} via ${floorOp!.member}) completed before it was invoked with revision ${floor}`);
      }
    }
  }
  return problems;
}

/** Result of {@link checkWriteLog}. */
export interface WriteLogResult {
  problems: string[];
  /** Writes acknowledged (and found). */
  acknowledged: number;
  /** Writes with an unknown outcome that did take effect. */
  unknownLanded: number;
  /** Writes with an unknown outcome that did not. */
  unknownLost: number;
}

/**
 * Matches the prefix's write events against the history's writes. `finalVersions` maps each key to its version
 * (number of writes since creation) as a final read returned it.
 */
export function checkWriteLog(ops: readonly RecordedOperation[], events: readonly WriteEvent[], finalVersions: Map<string, number>): WriteLogResult {
  const problems: string[] = [];
  const add = (s: string): void => { if (problems.length < 20) problems.push(s); };
  const attempts = new Map<string, RecordedOperation>();
  for (const o of ops) if ((o.kind === 'put' || o.kind === 'cas') && o.value != null) attempts.set(`${o.key}\u0000${o.value}`, o);
  const seen = new Map<string, WriteEvent>();
  const perKey = new Map<string, number>();
  for (const e of events) {
    const id = `${e.key}\u0000${e.value}`;
    const prev = seen.get(id);
    if (prev) add(`value ${e.value} of ${e.key} written twice: revisions ${prev.modRevision} and ${e.modRevision}`);
    seen.set(id, e);
    perKey.set(e.key, (perKey.get(e.key) ?? 0) + 1);
    const a = attempts.get(id);
    if (!a) add(`${e.key}=${e.value} at revision ${e.modRevision}: no client wrote that value`);
    else if (a.outcome === 'fail') add(`${e.key}=${e.value} at revision ${e.modRevision}: written by op #${a.id}, whose client saw it fail before sending`);
    else if (a.kind === 'cas' && a.outcome === 'ok' && !a.output?.succeeded) add(`${e.key}=${e.value} at revision ${e.modRevision}: written by op #${a.id}, a CAS that answered "not succeeded"`);
  }
  for (const [key, v] of finalVersions) {
    const n = perKey.get(key) ?? 0;
    if (n !== v) add(`${key}: final version ${v} but ${n} write events in the history`);
  }
  let acknowledged = 0;
  let unknownLanded = 0;
  let unknownLost = 0;
  for (const o of ops) {
    if (o.kind === 'get' || o.value == null) continue;
    const e = seen.get(`${o.key}\u0000${o.value}`);
    if (o.outcome === 'ok' && isWrite(o)) {
      acknowledged++;
      if (!e) add(`LOST: op #${o.id} ${o.kind} ${o.key}=${o.value} acknowledged at revision ${o.revision} via ${o.member}, not in the history`);
      else if (e.modRevision !== o.revision) add(`op #${o.id} ${o.kind} ${o.key}=${o.value} acknowledged at revision ${o.revision}, but the history has it at ${e.modRevision}`);
    } else if (o.outcome === 'unknown') {
      if (e) unknownLanded++; else unknownLost++;
    }
  }
  return { problems, acknowledged, unknownLanded, unknownLost };
}
