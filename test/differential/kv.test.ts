/**
 * Differential KV test: seeded random sequences of Put / DeleteRange / Txn / Range / Compact run in
 * lock-step against a fresh reference etcd 3.4 and a fresh system under test (env SUT, default
 * etcetera). Every response is compared field by field (header revision included; cluster_id,
 * member_id and raft_term excluded); errors by gRPC code + message.
 *
 *   DIFF_OPS=2000   number of operations (default 2000)
 *   DIFF_SEED=n     replay a run (the seed is printed at start and in every failure); DIFF_SEED=random explores
 *   SUT=etcd        run etcd against etcd (proves the harness)
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { startEtcd, startSut, sutKind, sutUnavailable, hasEtcd, NO_ETCD, ServerHandle } from '../helpers/servers';
import { RawClient } from '../helpers/grpc';
import { killAllChildren } from '../helpers/procs';
import { canon, pretty, firstDifference, normalize, showBytes } from '../helpers/compare';
import { Rng } from '../helpers/rng';

after(killAllChildren);

// ---------- request generation ----------
const B = (s: string): Buffer => Buffer.from(s, 'latin1');
/** Small key space (so overwrites, deletes and range overlaps are frequent), incl. prefixes and a non-ASCII key. */
const KEYS = ['a', 'a/1', 'a/2', 'a/3', 'a0', 'b', 'b/1', 'b/2', 'c', 'd', 'e', 'f', 'k\x00', 'z\xff'];
const VALUES = ['', 'v0', 'v1', 'v2', 'v3', 'x', 'yy', 'zzz', 'a', '\x00\x01'];

/** etcd's "prefix end": increment the last byte < 0xff, dropping trailing 0xff; all-0xff → "\0". */
function prefixEnd(key: Buffer): Buffer {
  const k = Buffer.from(key);
  for (let i = k.length - 1; i >= 0; i--) {
    if (k[i] < 0xff) { k[i]++; return k.subarray(0, i + 1); }
  }
  return Buffer.from([0]);
}

interface GenState { rev: number; compactRev: number }

type Op =
  | { kind: 'Put'; req: any }
  | { kind: 'DeleteRange'; req: any }
  | { kind: 'Txn'; req: any }
  | { kind: 'Range'; req: any }
  | { kind: 'Compact'; req: any };

function randKey(r: Rng): Buffer { return r.chance(0.01) ? B('') : B(r.pick(KEYS)); }
function randValue(r: Rng): Buffer { return r.chance(0.1) ? B(`r${r.int(1000)}-${'q'.repeat(r.int(20))}`) : B(r.pick(VALUES)); }

/** key + range_end for: single key, [k1,k2), prefix, from-key, all. */
function randSpan(r: Rng): { key: Buffer; rangeEnd: Buffer } {
  const x = r.int(10);
  if (x < 4) return { key: randKey(r), rangeEnd: B('') };
  if (x < 6) {
    const [k1, k2] = [B(r.pick(KEYS)), B(r.pick(KEYS))];
    return { key: k1, rangeEnd: k2 }; // may be empty or inverted on purpose
  }
  if (x < 8) { const k = B(r.pick(['a', 'a/', 'b/', 'k', 'z', 'c'])); return { key: k, rangeEnd: prefixEnd(k) }; }
  if (x < 9) return { key: B(r.pick(KEYS)), rangeEnd: B('\x00') }; // from-key
  return { key: B('\x00'), rangeEnd: B('\x00') }; // all keys
}

function genPut(r: Rng): any {
  const req: any = { key: randKey(r), value: randValue(r), prevKv: r.chance(0.5) };
  const e = r.int(100);
  if (e < 4) { req.ignoreValue = true; req.value = B(''); }          // key must exist
  else if (e < 5) { req.ignoreValue = true; }                        // value provided → error (if non-empty)
  else if (e < 8) { req.ignoreLease = true; }                        // lease 0 + ignore_lease
  else if (e < 9) { req.ignoreLease = true; req.lease = 7; }         // lease provided → error
  else if (e < 10) { req.lease = 0x1234; }                           // unknown lease → error
  else if (e < 12) { req.lease = 0; }                                // explicit zero lease
  return req;
}

function genDelete(r: Rng): any {
  return { ...randSpan(r), prevKv: r.chance(0.5) };
}

function genRange(r: Rng, st: GenState): any {
  const req: any = { ...randSpan(r) };
  if (r.chance(0.3)) req.limit = r.between(1, 5);
  if (r.chance(0.02)) req.limit = -1;
  const rv = r.int(10);
  if (rv === 0) req.revision = r.between(1, Math.max(1, st.rev));          // past (maybe compacted)
  else if (rv === 1) req.revision = st.rev + r.between(0, 2);             // current or future
  else if (rv === 2 && st.compactRev > 0) req.revision = st.compactRev + r.between(-1, 1);
  if (r.chance(0.4)) req.sortOrder = r.int(3);
  if (r.chance(0.4)) req.sortTarget = r.int(5);
  if (r.chance(0.1)) req.keysOnly = true;
  if (r.chance(0.1)) req.countOnly = true;
  if (r.chance(0.2)) req.serializable = true;
  const around = (): number => Math.max(0, st.rev - r.int(Math.min(20, st.rev + 1)));
  if (r.chance(0.08)) req.minModRevision = around();
  if (r.chance(0.08)) req.maxModRevision = around();
  if (r.chance(0.08)) req.minCreateRevision = around();
  if (r.chance(0.08)) req.maxCreateRevision = around();
  return req;
}

function genCompare(r: Rng, st: GenState): any {
  const c: any = { result: r.int(4), target: r.int(5), key: B(r.pick(KEYS)) };
  if (r.chance(0.1)) c.rangeEnd = r.chance(0.5) ? prefixEnd(c.key) : B('\x00');
  switch (c.target) {
    case 0: c.version = r.int(5); break;
    case 1: c.createRevision = Math.max(0, st.rev - r.int(8)); break;
    case 2: c.modRevision = Math.max(0, st.rev - r.int(8)); break;
    case 3: c.value = B(r.pick(VALUES)); break;
    case 4: c.lease = r.chance(0.8) ? 0 : 5; break;
  }
  return c;
}

function genRequestOp(r: Rng, st: GenState, depth: number): any {
  const x = r.int(10);
  if (x < 4) return { requestPut: genPut(r) };
  if (x < 6) return { requestDeleteRange: genDelete(r) };
  if (x < 9 || depth >= 2) return { requestRange: genRange(r, st) };
  return { requestTxn: genTxn(r, st, depth + 1) };
}

/** True if the ops (or txns nested in them) delete anything. */
function hasDelete(ops: any[]): boolean {
  return ops.some((o) => o.requestDeleteRange || (o.requestTxn && (hasDelete(o.requestTxn.success) || hasDelete(o.requestTxn.failure))));
}

/** Drops ignore_value / ignore_lease from the puts of a branch (nested txns included). */
function stripIgnores(ops: any[]): void {
  for (const o of ops) {
    if (o.requestPut && (o.requestPut.ignoreValue || o.requestPut.ignoreLease)) {
      delete o.requestPut.ignoreValue;
      delete o.requestPut.ignoreLease;
      if (o.requestPut.value?.length === 0) o.requestPut.value = B('v-fixed');
    }
    if (o.requestTxn) { stripIgnores(o.requestTxn.success); stripIgnores(o.requestTxn.failure); }
  }
}

/**
 * etcd 3.4.23 PANICS (whole server down: "unexpected error during txn", error "etcdserver: key not found")
 * on a txn branch that deletes a key and then puts it with ignore_value: the pre-check sees the key
 * (it checks before the branch runs) and the duplicate-key check misses deletes whose range_end is
 * "\0" (found with DIFF_SEED=3, op #1178). The reference can't answer that, so a branch that deletes
 * never carries ignore_value/ignore_lease puts.
 */
function avoidEtcdPanic(txn: any): any {
  for (const branch of [txn.success, txn.failure]) if (hasDelete(branch)) stripIgnores(branch);
  return txn;
}

function genTxn(r: Rng, st: GenState, depth = 0): any {
  if (depth === 0 && r.chance(0.005)) {
    // too many operations (etcd's default --max-txn-ops is 128)
    return { compare: [], success: Array.from({ length: 129 }, () => ({ requestRange: { key: B('a') } })), failure: [] };
  }
  const n = (lo: number, hi: number): number => r.between(lo, hi);
  return avoidEtcdPanic({
    compare: Array.from({ length: n(0, 3) }, () => genCompare(r, st)),
    success: Array.from({ length: n(0, 3) }, () => genRequestOp(r, st, depth)),
    failure: Array.from({ length: n(0, 3) }, () => genRequestOp(r, st, depth)),
  });
}

function genCompact(r: Rng, st: GenState): any {
  const x = r.int(10);
  let revision: number;
  if (x < 7) revision = r.between(Math.min(st.compactRev + 1, st.rev), st.rev);   // forward
  else if (x < 9) revision = r.between(0, Math.max(0, st.compactRev));             // already compacted / 0
  else revision = st.rev + r.between(1, 3);                                        // future
  return { revision, physical: r.chance(0.8) };
}

function genOp(r: Rng, st: GenState): Op {
  const x = r.int(100);
  if (x < 33) return { kind: 'Put', req: genPut(r) };
  if (x < 45) return { kind: 'DeleteRange', req: genDelete(r) };
  if (x < 68) return { kind: 'Txn', req: genTxn(r, st) };
  if (x < 98) return { kind: 'Range', req: genRange(r, st) };
  return { kind: 'Compact', req: genCompact(r, st) };
}

// ---------- tie-order diagnosis ----------
/** True if two Range results hold the same kvs and differ only in order (sort ties). */
function onlyOrderDiffers(a: any, b: any): boolean {
  const ka = a?.ok?.kvs, kb = b?.ok?.kvs;
  if (!Array.isArray(ka) || !Array.isArray(kb) || ka.length !== kb.length) return false;
  const s = (xs: any[]): string => xs.map((x) => canon(x)).sort().join('|');
  return s(ka) === s(kb) && canon({ ...a.ok, kvs: [] }) === canon({ ...b.ok, kvs: [] });
}

/** The field a RangeRequest sorts on (etcd api: RangeRequest.SortTarget; KEY=0 VERSION=1 CREATE=2 MOD=3 VALUE=4). */
function sortValueOf(kv: any, target: number): string {
  switch (target) {
    case 1: return String(kv.version);
    case 2: return String(kv.createRevision);
    case 3: return String(kv.modRevision);
    case 4: return canon(kv.value);
    default: return canon(kv.key);
  }
}

/**
 * True when two Range answers differ only in how items with equal sort values are ordered (or which of several
 * tied items a limit cut off): every position holds an item with the same sort value on both sides and the rest
 * of the response is identical. etcd 3.4 sorts with Go's unstable sort.Sort, so that order is an artifact of Go's
 * sort algorithm, not a semantic etcd promises; everything else is still compared exactly.
 */
function onlyTieOrderDiffers(req: any, a: any, b: any): boolean {
  const target = Number(req?.sortTarget ?? 0);
  if (target === 0) return false; // key order has no ties
  const ka = a?.ok?.kvs, kb = b?.ok?.kvs;
  if (!Array.isArray(ka) || !Array.isArray(kb) || ka.length !== kb.length) return false;
  if (canon({ ...a.ok, kvs: [] }) !== canon({ ...b.ok, kvs: [] })) return false;
  for (let i = 0; i < ka.length; i++) if (sortValueOf(ka[i], target) !== sortValueOf(kb[i], target)) return false;
  // With keys_only the values are stripped, so VALUE ties cannot be checked from the answer: accept only if the
  // two sides hold the same set of keys.
  if (target === 4 && req?.keysOnly) return onlyOrderDiffers(a, b);
  return true;
}

/** Exit status and output tail of a server that died (a crash is the usual cause of transport errors). */
function serverState(h: ServerHandle, label: string): string {
  if (h.isRunning()) return '';
  const fatal = h.output().split('\n').filter((l) => /"level":"(panic|fatal|dpanic)"/.test(l)).map((l) => l.replace(/,"stacktrace":.*$/, '}'));
  return `\n--- ${label} process exited; fatal log lines ---\n${fatal.join('\n')}\n--- output tail ---\n${h.output().slice(-3000)}`;
}

function describeReq(op: Op): string {
  return `${op.kind} ${JSON.stringify(normalize(op.req))}`;
}

// ---------- the test ----------
const skip = !hasEtcd() ? NO_ETCD : sutUnavailable();

test(`differential KV: etcd 3.4 vs ${sutKind()}`, { skip, timeout: 30 * 60_000 }, async (t) => {
  const ops = Number(process.env.DIFF_OPS ?? 2000);
  // A fixed default keeps CI deterministic; DIFF_SEED=random (or any number) explores further.
  const seed = process.env.DIFF_SEED === 'random' ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.DIFF_SEED ?? 20261122);
  const replay = `DIFF_SEED=${seed} DIFF_OPS=${ops} SUT=${sutKind()} node scripts/run-tests.js differential/kv`;
  t.diagnostic(`seed=${seed} ops=${ops} sut=${sutKind()}  (replay: ${replay})`);

  let ref: ServerHandle | undefined, sut: ServerHandle | undefined;
  let cr: RawClient | undefined, cs: RawClient | undefined;
  try {
    [ref, sut] = await Promise.all([startEtcd({ name: 'ref' }), startSut({ name: 'sut' })]);
    cr = new RawClient(ref.clientUrl);
    cs = new RawClient(sut.clientUrl);
    const r = new Rng(seed);
    const st: GenState = { rev: 1, compactRev: 0 };
    const counts: Record<string, number> = {};
    const errs: Record<string, number> = {};
    const recent: string[] = [];
    let tieOrderDiffs = 0;
    for (let i = 0; i < ops; i++) {
      const op = genOp(r, st);
      recent.push(`#${i} ${describeReq(op)}`);
      if (recent.length > 6) recent.shift();
      const [a, b] = await Promise.all([cr.settle('KV', op.kind, op.req), cs.settle('KV', op.kind, op.req)]);
      counts[op.kind] = (counts[op.kind] ?? 0) + 1;
      if (a.err) errs[a.err.details] = (errs[a.err.details] ?? 0) + 1;
      const ca = canon(a), cb = canon(b);
      if (ca !== cb && op.kind === 'Range' && onlyTieOrderDiffers(op.req, a, b)) {
        tieOrderDiffs++;
      } else if (ca !== cb) {
        const hint = op.kind === 'Range' && onlyOrderDiffers(a, b)
          ? '\nNOTE: same kvs, different order — a sort with ties (etcd sorts with Go sort.Sort, which is unstable above 12 elements).'
          : '';
        assert.fail(
          `differential mismatch at op #${i} (seed=${seed}, sut=${sutKind()})\n` +
          `first difference: ${firstDifference(normalize(a), normalize(b))}${hint}\n` +
          `recent ops (state: revision ${st.rev}, compacted at ${st.compactRev}):\n  ${recent.join('\n  ')}\n` +
          `request: ${describeReq(op)}\n` +
          `--- etcd 3.4 ---\n${pretty(a)}\n--- ${sutKind()} ---\n${pretty(b)}\n` +
          `replay: ${replay}` + serverState(ref!, 'etcd 3.4') + serverState(sut!, sutKind()),
        );
      }
      const h = a.ok?.header;
      if (h && typeof h.revision === 'number') st.rev = h.revision;
      if (op.kind === 'Compact' && a.ok) st.compactRev = Math.max(st.compactRev, op.req.revision);
    }
    t.diagnostic(`ops by kind: ${JSON.stringify(counts)}; final revision ${st.rev}, compacted at ${st.compactRev}`);
    t.diagnostic(`errors seen (both sides agreed): ${JSON.stringify(errs)}`);
    t.diagnostic(`ranges whose only difference was the order of equal sort values (Go's unstable sort): ${tieOrderDiffs}`);
  } finally {
    cr?.close();
    cs?.close();
    await Promise.all([ref?.stop(), sut?.stop()]);
  }
});

// Exported for reuse by other differential tests.
export { Rng, prefixEnd, showBytes };
