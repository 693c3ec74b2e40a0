import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ErrBadRecord,
  ErrCrcMismatch,
  ErrTornRecord,
  RecordType,
  decodeRecord,
  encodeRecord,
  readEntry,
  readHardState,
  readMetadata,
  readSnapshot,
  recordSizeBytes,
  writeEntryRecord,
  writeHardStateRecord,
  writeMetadataRecord,
  writeSnapshotRecord,
} from '../../src/wal/record';

test('record round-trip for every type, 8-byte aligned', () => {
  const buf = new Uint8Array(4096);
  let off = 0;
  const data = new Uint8Array([1, 2, 3, 4, 5]);
  off = writeMetadataRecord(buf, off, { clusterId: 2 ** 53 - 1, memberId: 42, segmentSeq: 7, firstIndex: 1000, prevCrc: 0xdeadbeef });
  assert.equal(off % 8, 0);
  off = writeEntryRecord(buf, off, 2 ** 40 + 3, 9, 2, data, 0, data.length);
  off = writeEntryRecord(buf, off, 5, 1, 0, new Uint8Array(0), 0, 0);
  off = writeHardStateRecord(buf, off, { term: 3, vote: 2, commit: 2 ** 33 });
  off = writeSnapshotRecord(buf, off, { index: 77, term: 4 });
  assert.equal(off % 8, 0);

  let p = 0;
  const f1 = decodeRecord(buf, p, off);
  assert.equal(f1.type, RecordType.Metadata);
  assert.deepEqual(readMetadata(buf, f1), { clusterId: 2 ** 53 - 1, memberId: 42, segmentSeq: 7, firstIndex: 1000, prevCrc: 0xdeadbeef });
  p = f1.nextOffset;
  const f2 = decodeRecord(buf, p, off);
  const e = readEntry(buf, f2);
  assert.deepEqual({ ...e, data: Array.from(e.data) }, { index: 2 ** 40 + 3, term: 9, type: 2, data: [1, 2, 3, 4, 5] });
  assert.equal(f2.nextOffset - p, recordSizeBytes(17 + 5));
  p = f2.nextOffset;
  const f3 = decodeRecord(buf, p, off);
  assert.equal(readEntry(buf, f3).data.length, 0);
  p = f3.nextOffset;
  const f4 = decodeRecord(buf, p, off);
  assert.deepEqual(readHardState(buf, f4), { term: 3, vote: 2, commit: 2 ** 33 });
  p = f4.nextOffset;
  const f5 = decodeRecord(buf, p, off);
  assert.deepEqual(readSnapshot(buf, f5), { index: 77, term: 4 });
  assert.equal(f5.nextOffset, off);
  // the rest is preallocated zero space
  assert.throws(() => decodeRecord(buf, off), (err: unknown) => err instanceof ErrTornRecord && err.zeroFilled);
});

test('decoder: torn (short) record, CRC mismatch, bad type', () => {
  const rec = encodeRecord(RecordType.Snapshot, new Uint8Array(16).fill(7));
  for (let cut = 1; cut < 8 + 1 + 16; cut++) {
    assert.throws(() => decodeRecord(rec, 0, cut), ErrTornRecord, `cut at ${cut}`);
  }
  const flipped = rec.slice();
  flipped[12] = flipped[12]! ^ 1;
  assert.throws(() => decodeRecord(flipped, 0), ErrCrcMismatch);
  const wrongSize = encodeRecord(RecordType.HardState, new Uint8Array(3));
  assert.throws(() => decodeRecord(wrongSize, 0), ErrBadRecord);
  const unknown = encodeRecord(99 as RecordType, new Uint8Array(3));
  assert.throws(() => decodeRecord(unknown, 0), ErrBadRecord);
  assert.equal(decodeRecord(rec, 0).type, RecordType.Snapshot);
});
