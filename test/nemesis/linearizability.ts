/**
 * Linearizability checker for a history of register operations (put / get / compare-and-set) on independent keys.
 *
 * Source of the method: Wing & Gong, "Testing and verifying concurrent objects" (1993), with the two improvements
 * of Lowe, "Testing for linearizability" (2017): the history is a doubly linked list of call and return entries in
 * real-time order, an operation is "lifted" out of the list when it is linearized (and put back on backtrack), and a
 * cache of (set of linearized operations, register state) pairs prunes configurations already explored.
 * Linearizability is local (Herlihy & Wing 1990, §3.3), so each key is checked on its own.
 *
 * Outcomes follow Jepsen's convention: `ok` (the operation took effect and returned `output`), `fail` (it certainly
 * did not take effect: dropped before checking), `unknown` (a timeout or Unavailable: it may have taken effect, at
 * any time after its call, or never). An unknown operation's return is placed after every other entry, so it may
 * be linearized anywhere after its call; "never" is equivalent to "last" because nothing observes it afterwards.
 * An unknown get observes nothing and is dropped.
 *
 * Values should be unique per write (the workload makes them so): the checker does not need it for soundness, but
 * unique values keep the search short.
 */

/** The register's value; `null` = key absent. */
export type Value = string | null;

/** What an operation did to one key. */
export type OpKind = 'put' | 'get' | 'cas';

/** Outcome as the client saw it. */
export type Outcome = 'ok' | 'fail' | 'unknown';

/**
 * One completed (or abandoned) operation.
 * - put: `value` written; no output.
 * - get: `output.value` read (null = absent).
 * - cas: if value == `expected` then value := `value`. `output.succeeded`; when false, `output.value` is the value
 *   the failed compare saw (the Txn's else-branch read), or undefined if the client did not read it.
 * `call` and `ret` are positions in one real-time order (any increasing numbers, e.g. event sequence numbers);
 * `ret` is Infinity for an unknown outcome.
 */
export interface Operation {
  /** Unique within the history (used in reports). */
  id: number;
  process: number;
  key: string;
  kind: OpKind;
  value?: Value;
  expected?: Value;
  output?: { value?: Value; succeeded?: boolean };
  outcome: Outcome;
  call: number;
  ret: number;
}

/** Result for one key. */
export interface KeyResult {
  key: string;
  /** true: a linearization exists; false: none exists; undefined: search budget exhausted (no verdict). */
  linearizable: boolean | undefined;
  /** Operations checked (fail and unknown gets excluded). */
  ops: number;
  /** Search steps taken (linearization attempts). */
  steps: number;
  /** For a violation: the operation whose return no linearization could get past, and the ops concurrent with it. */
  explanation?: string;
}

/** Default cap on search steps per key; past it the verdict is undefined (reported, never treated as a pass). */
export const DEFAULT_MAX_STEPS = 20_000_000;

/** Register model step: the state after `op` from `state`, or undefined if `op`'s output is impossible there. */
export function step(state: Value, op: Operation): { next: Value } | undefined {
  switch (op.kind) {
    case 'put':
      return { next: op.value ?? null };
    case 'get':
      return op.outcome === 'unknown' || op.output?.value === state ? { next: state } : undefined;
    case 'cas': {
      const matches = state === (op.expected ?? null);
      if (op.outcome === 'unknown') return { next: matches ? op.value ?? null : state };
      if (op.output?.succeeded) return matches ? { next: op.value ?? null } : undefined;
      if (matches) return undefined;
      if (op.output?.value !== undefined && op.output.value !== state) return undefined;
      return { next: state };
    }
  }
}

/** A call or return entry of the linked list. */
interface Entry {
  op: Operation;
  /** Index of `op` in the per-key operation array (its bit in the linearized set). */
  slot: number;
  isCall: boolean;
  time: number;
  /** For a call entry: its return entry. */
  match: Entry | null;
  prev: Entry | null;
  next: Entry | null;
}

/** Short text of one operation for reports. */
export function describeOp(op: Operation): string {
  const v = (x: Value | undefined): string => (x === undefined ? '?' : x === null ? 'nil' : JSON.stringify(x));
  const ret = op.ret === Infinity ? '∞' : String(op.ret);
  let what: string;
  switch (op.kind) {
    case 'put': what = `put(${v(op.value)})`; break;
    case 'get': what = `get() → ${op.outcome === 'ok' ? v(op.output?.value) : '?'}`; break;
    case 'cas': what = `cas(${v(op.expected)} → ${v(op.value)}) → ${op.outcome === 'ok' ? (op.output?.succeeded ? 'true' : `false (saw ${v(op.output?.value)})`) : '?'}`; break;
  }
  return `#${op.id} p${op.process} ${what} ${op.outcome} [${op.call}, ${ret}]`;
}

/**
 * Checks the operations of one key. `ops` must all have the same key; `fail` operations and unknown gets are
 * dropped here. `initial` is the register's value before the history (default absent).
 */
export function checkKey(opsIn: readonly Operation[], opts: { initial?: Value; maxSteps?: number } = {}): KeyResult {
  const key = opsIn[0]?.key ?? '';
  for (const o of opsIn) {
    if (o.key !== key) throw new Error(`checkKey: mixed keys ${key} and ${o.key}`);
    if (o.outcome === 'ok' && !(o.ret > o.call)) throw new Error(`checkKey: op #${o.id} returns (${o.ret}) before its call (${o.call})`);
  }
  const initial = opts.initial ?? null;
  const ops = prune(opsIn.filter((o) => o.outcome !== 'fail' && !(o.kind === 'get' && o.outcome === 'unknown')));

  // A value observed but never written (by an op that may have happened) can never be linearized.
  const written = new Set<Value>([initial]);
  for (const o of ops) if (o.kind !== 'get') written.add(o.value ?? null);
  for (const o of ops) {
    if (o.outcome !== 'ok') continue;
    const seen = o.kind === 'get' ? o.output?.value : o.kind === 'cas' && o.output?.succeeded ? o.expected ?? null : o.output?.value;
    if (seen !== undefined && !written.has(seen)) {
      return { key, linearizable: false, ops: ops.length, steps: 0, explanation: `${describeOp(o)} observed a value no operation that may have happened wrote` };
    }
  }
  const maxSteps = opts.maxSteps ?? DEFAULT_MAX_STEPS;

  // Entries in real-time order; an unknown op returns after everything (Infinity). Ties: calls first, so two ops
  // with touching intervals count as concurrent (the weaker, always sound, reading).
  const entries: Entry[] = [];
  ops.forEach((op, slot) => {
    const ret: Entry = { op, slot, isCall: false, time: op.outcome === 'unknown' ? Infinity : op.ret, match: null, prev: null, next: null };
    const call: Entry = { op, slot, isCall: true, time: op.call, match: ret, prev: null, next: null };
    entries.push(call, ret);
  });
  entries.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? 0 : a.isCall ? -1 : 1));
  const head: Entry = { op: null as unknown as Operation, slot: -1, isCall: false, time: -Infinity, match: null, prev: null, next: null };
  let last = head;
  for (const e of entries) { last.next = e; e.prev = last; last = e; }

  const lift = (e: Entry): void => {
    e.prev!.next = e.next; if (e.next) e.next.prev = e.prev;
    const r = e.match!;
    r.prev!.next = r.next; if (r.next) r.next.prev = r.prev;
  };
  const unlift = (e: Entry): void => {
    const r = e.match!;
    r.prev!.next = r; if (r.next) r.next.prev = r;
    e.prev!.next = e; if (e.next) e.next.prev = e;
  };

  const words = new Uint32Array(Math.ceil(ops.length / 32) + 1);
  const cacheKey = (state: Value): string => `${state === null ? '\u0000' : state}\u0001${words.join(',')}`;
  const cache = new Set<string>();
  const stack: { entry: Entry; state: Value }[] = [];
  let state: Value = initial;
  let steps = 0;
  let deepest = -1;
  let stuckAt: Entry | null = null;

  let entry = head.next;
  while (head.next !== null) {
    if (steps++ >= maxSteps) return { key, linearizable: undefined, ops: ops.length, steps };
    if (entry === null) throw new Error('checkKey: ran off the end of the history (bug)');
    if (entry.isCall) {
      const r = step(state, entry.op);
      if (r !== undefined) {
        const bit = 1 << (entry.slot & 31);
        const w = entry.slot >>> 5;
        words[w] |= bit;
        const k = cacheKey(r.next);
        if (!cache.has(k)) {
          cache.add(k);
          stack.push({ entry, state });
          state = r.next;
          lift(entry);
          entry = head.next;
          continue;
        }
        words[w] &= ~bit;
      }
      entry = entry.next;
    } else {
      // A return whose op is not linearized yet: every candidate before it failed, so undo the last choice.
      if (stack.length > deepest) { deepest = stack.length; stuckAt = entry; }
      const top = stack.pop();
      if (top === undefined) {
        return { key, linearizable: false, ops: ops.length, steps, explanation: explain(ops, stuckAt ?? entry, deepest) };
      }
      state = top.state;
      words[top.entry.slot >>> 5] &= ~(1 << (top.entry.slot & 31));
      unlift(top.entry);
      entry = top.entry.next;
    }
  }
  return { key, linearizable: true, ops: ops.length, steps };
}

/**
 * Drops unknown writes (puts and CASes) whose value no operation observed (no read returned it, no CAS expected or
 * saw it), when every failed CAS reports the value it saw. Such a write changes the register to a value that only a
 * later overwrite can follow (any read or CAS after it would have to observe it), so in any linearization it can be
 * moved to the end — where it is unobserved — together with the unknown CASes it turned into no-ops; and a
 * linearization without it extends to one with it by appending it. So dropping it changes no verdict, and it
 * removes most of the search's width: each unknown op stays concurrent with everything after its call.
 */
function prune(ops: Operation[]): Operation[] {
  const observed = new Set<Value>();
  for (const o of ops) {
    if (o.kind === 'get' && o.output) observed.add(o.output.value ?? null);
    if (o.kind === 'cas') {
      observed.add(o.expected ?? null);
      if (o.outcome === 'ok' && !o.output?.succeeded) {
        if (o.output?.value === undefined) return ops; // a failed CAS that did not say what it saw: keep everything
        observed.add(o.output.value);
      }
    }
  }
  return ops.filter((o) => !(o.outcome === 'unknown' && o.kind !== 'get' && !observed.has(o.value ?? null)));
}

/** Report for a violation: the op no linearization got past, and every op whose interval overlaps it. */
function explain(ops: readonly Operation[], stuck: Entry, deepest: number): string {
  const op = stuck.op;
  const end = op.outcome === 'unknown' ? Infinity : op.ret;
  const around = ops.filter((o) => o !== op && o.call <= end && (o.outcome === 'unknown' ? Infinity : o.ret) >= op.call - 0);
  const before = ops.filter((o) => o.outcome === 'ok' && o.ret < op.call).sort((a, b) => b.ret - a.ret).slice(0, 5);
  const lines = [
    `no linearization gets past the return of ${describeOp(op)} (at most ${deepest} ops linearized before it)`,
    `last ops completed before its call:`,
    ...before.map((o) => `  ${describeOp(o)}`),
    `ops concurrent with it (${around.length}${around.length > 20 ? ', first 20' : ''}):`,
    ...around.slice(0, 20).map((o) => `  ${describeOp(o)}`),
  ];
  return lines.join('\n');
}

/** Checks every key of a history (operations of several keys); results sorted by key. */
export function checkHistory(ops: readonly Operation[], opts: { maxSteps?: number } = {}): KeyResult[] {
  const byKey = new Map<string, Operation[]>();
  for (const o of ops) {
    let l = byKey.get(o.key);
    if (!l) byKey.set(o.key, (l = []));
    l.push(o);
  }
  return [...byKey.keys()].sort().map((k) => checkKey(byKey.get(k)!, opts));
}
