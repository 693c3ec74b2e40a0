/**
 * Invariants at both ends of the applyIn ring (src/invariant.ts): the producer refuses to write a record whose
 * indexes are not consecutive, the consumer refuses to read one (written past the producer's check, as corruption
 * would), and a broken invariant is classified as a BadRecord fault. applyOut: the producer learns the bytes it
 * wrote (asserted against the reserved size in the worker), the consumer refuses a record whose lengths overrun it
 * or leave bytes over.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { InvariantError } from '../../src/invariant';
import { forEachInEntry, inRecordBytes, writeInRecord, outRecordBytes, readOutRecord, writeOutRecord, IN_ENTRY_HEADER_BYTES, IN_RECORD_HEADER_BYTES, OUT_RECORD_HEADER_BYTES, type ApplyEntry, type ApplyResult } from '../../src/apply/batch-format';
import { ApplyFaultCode, applyFaultCodeOf } from '../../src/apply/apply-status';

const e = (index: number): ApplyEntry => ({ index, term: 2, type: 0, data: Buffer.from(`d${index}`) });

function record(entries: ApplyEntry[]): { buf: Uint8Array; view: DataView; len: number } {
  const len = inRecordBytes(entries);
  const buf = new Uint8Array(len + 16);
  return { buf, view: new DataView(buf.buffer), len };
}

test('applyIn record: consecutive indexes round-trip; a gap is refused at the producer and at the consumer', () => {
  const ok = [e(5), e(6), e(7)];
  const r = record(ok);
  writeInRecord(r.buf, r.view, 0, ok, 0, ok.length);
  const seen: number[] = [];
  assert.equal(forEachInEntry(r.buf, r.view, 0, r.len, (index) => seen.push(index)), 3);
  assert.deepEqual(seen, [5, 6, 7]);

  const gap = [e(5), e(7)];
  const g = record(gap);
  assert.throws(() => writeInRecord(g.buf, g.view, 0, gap, 0, gap.length), InvariantError);
  // Forge the same record as corruption would (index of the second entry rewritten after a valid write).
  const forged = [e(5), e(6)];
  const f = record(forged);
  writeInRecord(f.buf, f.view, 0, forged, 0, forged.length);
  const second = IN_RECORD_HEADER_BYTES + IN_ENTRY_HEADER_BYTES + forged[0]!.data.length;
  f.view.setUint32(second, 9, true);
  assert.throws(() => forEachInEntry(f.buf, f.view, 0, f.len, () => {}), (err: unknown) => err instanceof InvariantError && /index 9 follows 5/.test((err as Error).message));
  // A record length that does not match its entries.
  assert.throws(() => forEachInEntry(r.buf, r.view, 0, r.len + 8, () => {}), InvariantError);
  assert.equal(applyFaultCodeOf(new InvariantError('x')), ApplyFaultCode.BadRecord);
});

test('applyOut record: sizes agree at both ends; an overrunning or short-filled record is a broken invariant', () => {
  const results: ApplyResult[] = [{ requestId: 3, errorId: 0, response: Uint8Array.of(1, 2, 3) }, { requestId: 4, errorId: 7, response: new Uint8Array(0) }];
  const events = [Uint8Array.of(9, 9)];
  const len = outRecordBytes(results, 0, results.length, events);
  const buf = new Uint8Array(len + 64);
  const view = new DataView(buf.buffer);
  assert.equal(writeOutRecord(buf, view, 0, 12, results, 0, results.length, events), len, 'bytes written = bytes reserved');
  const rec = readOutRecord(buf, view, 0, len);
  assert.equal(rec.appliedIndex, 12);
  assert.deepEqual(rec.results.map((r) => [r.requestId, r.errorId, [...r.response]]), [[3, 0, [1, 2, 3]], [4, 7, []]]);
  assert.deepEqual(rec.events.map((e) => [...e]), [[9, 9]]);
  // A record length longer than its parts (bytes left over), shorter (a part overruns), or below the header.
  assert.throws(() => readOutRecord(buf, view, 0, len + 8), InvariantError);
  assert.throws(() => readOutRecord(buf, view, 0, len - 1), InvariantError);
  assert.throws(() => readOutRecord(buf, view, 0, OUT_RECORD_HEADER_BYTES - 1), InvariantError);
  // A result length rewritten as corruption would.
  view.setUint32(OUT_RECORD_HEADER_BYTES + 10, 1_000_000, true);
  assert.throws(() => readOutRecord(buf, view, 0, len), (err: unknown) => err instanceof InvariantError && /overruns its record/.test((err as Error).message));
});
