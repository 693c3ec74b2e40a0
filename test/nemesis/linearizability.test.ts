/**
 * The linearizability checker on hand-made histories: linearizable ones must pass, non-linearizable ones (stale
 * reads, lost writes, impossible CAS answers, a write that certainly failed but is seen) must fail, unknown outcomes
 * may take effect late or never; and on generated histories whose truth is known by construction.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkKey, checkHistory, type Operation, type Value } from './linearizability';
import { Rng } from '../helpers/rng';

let nextId = 0;
/** An op on key "k" over [call, ret]; ret = Infinity for unknown. */
function op(kind: Operation['kind'], call: number, ret: number, f: Partial<Operation> = {}): Operation {
  return { id: ++nextId, process: f.process ?? nextId, key: 'k', kind, call, ret, outcome: ret === Infinity ? 'unknown' : 'ok', ...f };
}
const put = (v: string, call: number, ret: number, f: Partial<Operation> = {}): Operation => op('put', call, ret, { value: v, ...f });
const get = (v: Value, call: number, ret: number, f: Partial<Operation> = {}): Operation => op('get', call, ret, { output: { value: v }, ...f });
const cas = (exp: Value, v: string, ok: boolean | undefined, call: number, ret: number, saw?: Value): Operation =>
  op('cas', call, ret, { expected: exp, value: v, output: ok === undefined ? undefined : { succeeded: ok, value: ok ? undefined : saw } });

const lin = (ops: Operation[]): boolean | undefined => checkKey(ops).linearizable;

test('sequential puts and gets', () => {
  assert.equal(lin([get(null, 1, 2), put('a', 3, 4), get('a', 5, 6), put('b', 7, 8), get('b', 9, 10)]), true);
});

test('a stale read fails', () => {
  const r = checkKey([put('a', 1, 2), put('b', 3, 4), get('a', 5, 6)]);
  assert.equal(r.linearizable, false);
  assert.match(r.explanation!, /get\(\) → "a"/);
});

test('reading a value before its write was invoked fails', () => {
  assert.equal(lin([get('a', 1, 2), put('a', 3, 4)]), false);
});

test('a read concurrent with a write may see either value', () => {
  assert.equal(lin([put('a', 1, 2), put('b', 3, 8), get('a', 4, 5), get('b', 6, 7)]), true);
  assert.equal(lin([put('a', 1, 2), put('b', 3, 8), get('b', 4, 5)]), true);
  assert.equal(lin([put('a', 1, 2), put('b', 3, 8), get('a', 4, 5)]), true);
});

test('new-then-old inversion between two reads during one write fails', () => {
  // b is visible to the first read, so the later read cannot go back to a.
  assert.equal(lin([put('a', 1, 2), put('b', 3, 10), get('b', 4, 5), get('a', 6, 7)]), false);
});

test('concurrent writes: reads fix their order, and it must be the same for all readers', () => {
  const base = [put('a', 1, 10), put('b', 2, 11)];
  assert.equal(lin([...base, get('a', 12, 13), get('a', 14, 15)]), true);
  assert.equal(lin([...base, get('b', 12, 13), get('b', 14, 15)]), true);
  // Both writes finished before either read: the last one wins, for every later read.
  assert.equal(lin([...base, get('a', 12, 13), get('b', 14, 15)]), false);
  // A read inside the writes can see a, then b wins.
  assert.equal(lin([...base, get('a', 3, 4), get('b', 12, 13)]), true);
});

test('a lost acknowledged write fails (final read sees the older value)', () => {
  assert.equal(lin([put('a', 1, 2), put('b', 3, 4), get('a', 100, 101)]), false);
  assert.equal(lin([put('a', 1, 2), get(null, 100, 101)]), false);
});

test('unknown write: may take effect late, or never', () => {
  assert.equal(lin([put('a', 1, 2), put('x', 3, Infinity), get('a', 5, 6)]), true);
  assert.equal(lin([put('a', 1, 2), put('x', 3, Infinity), get('x', 5, 6)]), true);
  assert.equal(lin([put('a', 1, 2), put('x', 3, Infinity), get('a', 5, 6), get('x', 7, 8)]), true);
  // ...but it takes effect once: x cannot appear, vanish, and reappear without another write.
  assert.equal(lin([put('a', 1, 2), put('x', 3, Infinity), get('x', 5, 6), get('a', 7, 8)]), false);
  assert.equal(lin([put('a', 1, 2), put('x', 3, Infinity), get('x', 5, 6), get('a', 7, 8), get('x', 9, 10)]), false);
  // ...and not before its invocation.
  assert.equal(lin([get('x', 1, 2), put('x', 3, Infinity)]), false);
});

test('a write that certainly failed must never be seen', () => {
  assert.equal(lin([put('a', 1, 2), put('x', 3, 4, { outcome: 'fail' }), get('x', 5, 6)]), false);
  assert.equal(lin([put('a', 1, 2), put('x', 3, 4, { outcome: 'fail' }), get('a', 5, 6)]), true);
});

test('failed and unknown reads are ignored', () => {
  assert.equal(lin([put('a', 1, 2), get('zzz', 3, 4, { outcome: 'fail' }), get('zzz', 5, Infinity), get('a', 7, 8)]), true);
});

test('compare-and-set', () => {
  assert.equal(lin([put('a', 1, 2), cas('a', 'b', true, 3, 4), get('b', 5, 6)]), true);
  assert.equal(lin([cas(null, 'a', true, 1, 2), get('a', 3, 4)]), true);
  // Two sequential CASes from the same expected value cannot both succeed.
  assert.equal(lin([put('a', 1, 2), cas('a', 'b', true, 3, 4), cas('a', 'c', true, 5, 6)]), false);
  // ...but concurrent ones can't either.
  assert.equal(lin([put('a', 1, 2), cas('a', 'b', true, 3, 10), cas('a', 'c', true, 4, 11)]), false);
  // One wins, the other sees the winner's value.
  assert.equal(lin([put('a', 1, 2), cas('a', 'b', true, 3, 10), cas('a', 'c', false, 4, 11, 'b')]), true);
  // A failed CAS while the value equals its expectation is impossible.
  assert.equal(lin([put('a', 1, 2), cas('a', 'b', false, 3, 4, 'a')]), false);
  assert.equal(lin([put('a', 1, 2), cas('a', 'b', false, 3, 4)]), false);
  // A failed CAS's read must be the current value.
  assert.equal(lin([put('a', 1, 2), put('c', 3, 4), cas('z', 'b', false, 5, 6, 'a')]), false);
  assert.equal(lin([put('a', 1, 2), put('c', 3, 4), cas('z', 'b', false, 5, 6, 'c')]), true);
  // A successful CAS whose expectation never held fails.
  assert.equal(lin([put('a', 1, 2), cas('q', 'b', true, 3, 4)]), false);
});

test('unknown compare-and-set applies only if its expectation holds when it lands', () => {
  assert.equal(lin([put('a', 1, 2), cas('a', 'b', undefined, 3, Infinity), get('b', 5, 6)]), true);
  assert.equal(lin([put('a', 1, 2), cas('a', 'b', undefined, 3, Infinity), get('a', 5, 6), get('b', 7, 8)]), true);
  assert.equal(lin([put('a', 1, 2), cas('a', 'b', undefined, 3, Infinity), get('b', 5, 6), get('a', 7, 8)]), false);
  // After c overwrote a, the CAS can no longer apply.
  assert.equal(lin([put('a', 1, 2), cas('a', 'b', undefined, 3, Infinity), put('c', 5, 6), get('b', 7, 8)]), false);
});

test('the search budget gives no verdict rather than a pass', () => {
  const ops: Operation[] = [];
  for (let i = 0; i < 30; i++) ops.push(put(`v${i}`, 4 * i + 1, 4 * i + 2), get(`v${i}`, 4 * i + 3, 4 * i + 4));
  const r = checkKey(ops, { maxSteps: 10 });
  assert.equal(r.linearizable, undefined);
  assert.equal(checkKey(ops).linearizable, true);
});

test('an unknown write that only a failed CAS observed still counts', () => {
  // The CAS failed because u had landed: u must be linearizable before it.
  assert.equal(lin([put('a', 1, 2), put('u', 3, Infinity), cas('a', 'y', false, 5, 6, 'u')]), true);
  // A failed CAS that did not report what it saw: u (never read) must still be allowed to explain it.
  assert.equal(lin([put('a', 1, 2), put('u', 3, Infinity), cas('a', 'y', false, 5, 6)]), true);
  assert.equal(lin([put('a', 1, 2), cas('a', 'y', false, 5, 6)]), false);
});

test('a value no write produced fails at once', () => {
  const r = checkKey([put('a', 1, 2), get('zz', 3, 4)]);
  assert.equal(r.linearizable, false);
  assert.match(r.explanation!, /no operation that may have happened wrote/);
});

test('checkHistory checks each key on its own', () => {
  const a = put('1', 1, 2, { key: 'a' });
  const b = put('1', 1, 2, { key: 'b' });
  const rs = checkHistory([a, b, get('1', 3, 4, { key: 'a' }), get(null, 3, 4, { key: 'b' })]);
  assert.deepEqual(rs.map((r) => [r.key, r.linearizable]), [['a', true], ['b', false]]);
});

/**
 * Generates a history of a real register: each op has a random interval, and takes effect at a random point
 * inside it (unknown ops: maybe never, and their return is lost). The result is linearizable by construction.
 */
function generate(rng: Rng, n: number, procs: number): Operation[] {
  type Plan = { op: Operation; at: number };
  const plans: Plan[] = [];
  const free = Array.from({ length: procs }, () => 0);
  let vals = 0;
  for (let i = 0; i < n; i++) {
    const p = rng.int(procs);
    const call = free[p] + 1 + rng.int(5);
    const ret = call + 1 + rng.int(30);
    free[p] = ret;
    const r = rng.next();
    const unknown = rng.chance(0.1);
    const kind: Operation['kind'] = r < 0.4 ? 'get' : r < 0.7 ? 'put' : 'cas';
    const o: Operation = { id: i + 1, process: p, key: 'k', kind, call, ret: unknown ? Infinity : ret, outcome: unknown ? 'unknown' : 'ok' };
    if (kind !== 'get') o.value = `v${++vals}`;
    plans.push({ op: o, at: unknown && rng.chance(0.5) ? Infinity : call + 0.5 + rng.next() * (ret - call - 1) });
  }
  // Apply in effect order; expectations of CASes are filled from a recent value so that some succeed.
  let state: Value = null;
  const recent: Value[] = [null];
  for (const { op: o, at } of [...plans].sort((a, b) => a.at - b.at)) {
    if (o.kind === 'cas') o.expected = rng.chance(0.6) ? state : rng.pick(recent);
    if (at === Infinity) continue;
    if (o.kind === 'get') o.output = { value: state };
    else if (o.kind === 'put') state = o.value!;
    else {
      const ok = state === o.expected;
      if (o.outcome === 'ok') o.output = ok ? { succeeded: true } : { succeeded: false, value: state };
      if (ok) state = o.value!;
    }
    recent.push(state);
  }
  return plans.map((p) => p.op);
}

test('generated linearizable histories pass; one corrupted read makes them fail', () => {
  const rng = new Rng(42);
  let corruptedFailed = 0;
  let staleFailed = 0;
  for (let round = 0; round < 60; round++) {
    const ops = generate(rng, 40 + rng.int(120), 2 + rng.int(5));
    const r = checkKey(ops);
    assert.equal(r.linearizable, true, `round ${round}: generated history judged not linearizable\n${r.explanation}`);
    // A read of a value nobody ever wrote can never be linearized.
    const reads = ops.filter((o) => o.kind === 'get' && o.outcome === 'ok');
    if (reads.length === 0) continue;
    const victim = rng.pick(reads);
    const saved = victim.output;
    victim.output = { value: 'never-written' };
    assert.equal(checkKey(ops).linearizable, false, `round ${round}: corrupted read passed`);
    corruptedFailed++;
    victim.output = saved;
    // A stale read: the victim returns the value of an acknowledged put P that was followed, before the victim was
    // invoked, by another acknowledged put Q (P done before Q began). Values are unique, so no linearization exists,
    // and only the search can tell (the value was written).
    const puts = ops.filter((o) => o.kind === 'put' && o.outcome === 'ok');
    const stale = puts.find((p) => puts.some((q) => p.ret < q.call && q.ret < victim.call));
    if (!stale) continue;
    victim.output = { value: stale.value };
    const r2 = checkKey(ops);
    assert.equal(r2.linearizable, false, `round ${round}: stale read of ${stale.value} passed`);
    staleFailed++;
    victim.output = saved;
  }
  assert.ok(corruptedFailed > 40);
  assert.ok(staleFailed > 20, `only ${staleFailed} stale-read rounds`);
});

test('generated histories with a stale read injected fail', () => {
  // Sequential writes a0..aN with one reader reading after each; then the reader returns an older value.
  const rng = new Rng(7);
  for (let round = 0; round < 30; round++) {
    const ops: Operation[] = [];
    let t = 1;
    const n = 5 + rng.int(20);
    for (let i = 0; i < n; i++) {
      ops.push(put(`a${i}`, t, t + 1));
      ops.push(get(`a${i}`, t + 2, t + 3));
      t += 4;
    }
    assert.equal(checkKey(ops).linearizable, true);
    ops.push(get(`a${rng.int(n - 1)}`, t, t + 1));
    assert.equal(checkKey(ops).linearizable, false);
  }
});
