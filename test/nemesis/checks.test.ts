/**
 * The nemesis's history bookkeeping and revision checks on hand-made histories: pairing of invoke/complete events,
 * real-time revision order across keys (a stale read on another key, a write whose revision goes back), and the
 * write log (a lost acknowledged write, a value applied twice, a value nobody wrote, a write whose client saw it
 * fail, a version count that does not match).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { History, toOperations, type RecordedOperation } from './history';
import { checkRevisionOrder, checkWriteLog } from './checks';
import { checkHistory } from './linearizability';

test('History pairs invocations with completions; unfinished ones are unknown', () => {
  const h = new History();
  h.invoke({ process: 1, op: 'put', key: 'a', value: '1.1', member: 'n1' });
  h.invoke({ process: 2, op: 'get', key: 'a', member: 'n2' });
  h.complete(2, 'ok', { output: { value: null }, revision: 1 });
  h.nemesis('kill', 'n3');
  h.complete(1, 'unknown', { error: 'deadline' });
  h.invoke({ process: 3, op: 'cas', key: 'a', value: '3.1', expected: '1.1', member: 'n1' });
  assert.throws(() => h.invoke({ process: 3, op: 'get', key: 'a', member: 'n1' }), /already has an operation pending/);
  assert.throws(() => h.complete(9, 'ok'), /no operation pending/);
  const ops = toOperations(h.events);
  assert.deepEqual(ops.map((o) => [o.process, o.kind, o.outcome, o.call, o.ret]), [
    [1, 'put', 'unknown', 1, Infinity],
    [2, 'get', 'ok', 2, 3],
    [3, 'cas', 'unknown', 6, Infinity],
  ]);
  assert.deepEqual(ops[1].output, { value: null });
  assert.equal(checkHistory(ops)[0].linearizable, true);
});

let id = 0;
function rop(kind: RecordedOperation['kind'], key: string, call: number, ret: number, revision: number | undefined, f: Partial<RecordedOperation> = {}): RecordedOperation {
  return { id: ++id, process: id, key, kind, call, ret, outcome: 'ok', revision, member: 'n1', ...f };
}

test('revision order: later operations answer later revisions, across keys', () => {
  const ok = [
    rop('put', 'a', 1, 2, 5, { value: 'x' }),
    rop('get', 'b', 3, 4, 5, { output: { value: null } }),
    rop('put', 'b', 5, 6, 6, { value: 'y' }),
    rop('get', 'a', 5, 8, 6, { output: { value: 'x' } }),
    // concurrent with the put of b: an older revision is fine
    rop('get', 'a', 5, 9, 5, { output: { value: 'x' } }),
  ];
  assert.deepEqual(checkRevisionOrder(ok), []);
  // A read of another key invoked after the put of b completed, answering an older revision: a stale read.
  const stale = rop('get', 'a', 10, 11, 5, { output: { value: 'x' } });
  const p = checkRevisionOrder([...ok, stale]);
  assert.equal(p.length, 1);
  assert.match(p[0], /answered revision 5, but op #\d+ \(put b via n1\) completed before it was invoked with revision 6/);
  // A write must answer a strictly higher revision than anything completed before it.
  assert.equal(checkRevisionOrder([...ok, rop('put', 'c', 10, 11, 6, { value: 'z' })]).length, 1);
  // Unknown and failed operations carry no revision and are ignored.
  assert.deepEqual(checkRevisionOrder([...ok, rop('put', 'c', 10, Infinity, undefined, { outcome: 'unknown', value: 'q' })]), []);
});

test('write log: every acknowledged write present once at its revision, nothing else', () => {
  const ops = [
    rop('put', 'a', 1, 2, 2, { value: '1.1' }),
    rop('cas', 'a', 3, 4, 3, { value: '2.1', expected: '1.1', output: { succeeded: true } }),
    rop('cas', 'a', 5, 6, 3, { value: '3.1', expected: '1.1', output: { succeeded: false, value: '2.1' } }),
    rop('put', 'b', 5, Infinity, undefined, { value: '4.1', outcome: 'unknown' }),
    rop('put', 'b', 5, Infinity, undefined, { value: '5.1', outcome: 'unknown' }),
    rop('put', 'b', 7, 8, undefined, { value: '6.1', outcome: 'fail' }),
  ];
  const events = [
    { key: 'a', value: '1.1', modRevision: 2, version: 1 },
    { key: 'a', value: '2.1', modRevision: 3, version: 2 },
    { key: 'b', value: '4.1', modRevision: 4, version: 1 },
  ];
  const versions = new Map([['a', 2], ['b', 1]]);
  const good = checkWriteLog(ops, events, versions);
  assert.deepEqual(good.problems, []);
  assert.deepEqual([good.acknowledged, good.unknownLanded, good.unknownLost], [2, 1, 1]);

  const bad = (evs: typeof events, v = versions): string => checkWriteLog(ops, evs, v).problems.join('\n');
  assert.match(bad(events.filter((e) => e.value !== '2.1'), new Map([['a', 1], ['b', 1]])), /LOST: op #\d+ cas a=2.1 acknowledged at revision 3/);
  assert.match(bad([...events, { key: 'b', value: '4.1', modRevision: 5, version: 2 }], new Map([['a', 2], ['b', 2]])), /value 4.1 of b written twice: revisions 4 and 5/);
  assert.match(bad([...events, { key: 'b', value: 'zz', modRevision: 5, version: 2 }], new Map([['a', 2], ['b', 2]])), /b=zz at revision 5: no client wrote that value/);
  assert.match(bad([...events, { key: 'b', value: '6.1', modRevision: 5, version: 2 }], new Map([['a', 2], ['b', 2]])), /whose client saw it fail/);
  assert.match(bad([...events, { key: 'a', value: '3.1', modRevision: 5, version: 3 }], new Map([['a', 3], ['b', 1]])), /a CAS that answered "not succeeded"/);
  assert.match(bad(events.map((e) => (e.value === '1.1' ? { ...e, modRevision: 9 } : e))), /acknowledged at revision 2, but the history has it at 9/);
  assert.match(bad(events, new Map([['a', 3], ['b', 1]])), /a: final version 3 but 2 write events/);
});
