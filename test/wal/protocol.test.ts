/** The walIn ring record codec (src/wal/protocol.ts): commit-only records and their bounds. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  WAL_IN_HEAD_BYTES, WAL_IN_NO_SYNC, WalInRecordError, decodeWalInRecord, walInRecordBytes, writeWalInCommitOnly, writeWalInRecord,
  type WalInSink,
} from '../../src/wal/protocol';
import { entries } from './helpers';

function recorder(): { sink: WalInSink; got: string[] } {
  const got: string[] = [];
  return {
    got,
    sink: {
      entry: (index, term) => got.push(`entry ${index}/${term}`),
      hardState: (term, vote, commit) => got.push(`hs ${term}/${vote}/${commit}`),
    },
  };
}

test('a commit-only record decodes to its HardState and asks for no fdatasync; an entry record returns its count', () => {
  const buf = new Uint8Array(256);
  const view = new DataView(buf.buffer);
  const end = writeWalInCommitOnly(view, 0, { term: 7, vote: 2, commit: 2 ** 40 });
  assert.equal(end, WAL_IN_HEAD_BYTES);
  const a = recorder();
  assert.equal(decodeWalInRecord(view, buf, 0, end, a.sink), WAL_IN_NO_SYNC);
  assert.deepEqual(a.got, [`hs 7/2/${2 ** 40}`]);

  const es = entries(3, 4, 7);
  const len = walInRecordBytes(es, 0, 2);
  writeWalInRecord(view, buf, 0, { term: 7, vote: 2, commit: 3 }, es, 0, 2);
  const b = recorder();
  assert.equal(decodeWalInRecord(view, buf, 0, len, b.sink), 2);
  assert.deepEqual(b.got, ['entry 3/7', 'entry 4/7', 'hs 7/2/3']);
});

test('a commit-only record with trailing bytes is a WalInRecordError and reaches no callback', () => {
  const buf = new Uint8Array(64);
  const view = new DataView(buf.buffer);
  writeWalInCommitOnly(view, 0, { term: 1, vote: 1, commit: 1 });
  const r = recorder();
  assert.throws(() => decodeWalInRecord(view, buf, 0, WAL_IN_HEAD_BYTES + 8, r.sink), WalInRecordError);
  assert.deepEqual(r.got, []);
});
