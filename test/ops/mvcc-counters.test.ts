/**
 * Exact etcd 3.4 counting (mvcc/metrics_txn.go, etcdserver/apply.go) of the MVCC counters the apply worker
 * publishes: every request is one MVCC txn (a write Txn two: its compares' read txn, then the write txn), which
 * counts its ranges, puts and deletes; a txn with more than one of them also counts in etcd_mvcc_txn_total.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MvccStore } from '../../src/mvcc/store';
import type { PutRequest, TxnRequest, DeleteRangeRequest, CompactionRequest } from '../../src/wire/codec';

const b = (s: string): Buffer => Buffer.from(s);
const put = (k: string, v: string, extra: Partial<PutRequest> = {}): PutRequest => ({ key: b(k), value: b(v), lease: 0, prevKv: false, ignoreValue: false, ignoreLease: false, ...extra } as PutRequest);

it('MvccStore counters follow etcd metricsTxnWrite', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcetera-counters-'));
  const s = MvccStore.open(dir);
  try {
    s.put(put('a', '12'));
    assert.deepEqual(s.counters, { puts: 1, deletes: 0, txns: 0, ranges: 0, putBytes: 3, keys: 1, compactionKeys: 0 });
    s.put(put('a', '123', { prevKv: true })); // range + put → a txn
    assert.deepEqual({ ...s.counters }, { puts: 2, deletes: 0, txns: 1, ranges: 1, putBytes: 7, keys: 1, compactionKeys: 0 });
    // compare (read txn: 1 range) then one put (write txn: 1 put): neither counts as a txn
    s.txn({ compare: [{ key: b('a'), result: 0, target: 3, value: b('123') }], success: [{ requestPut: put('b', 'x') }], failure: [] } as unknown as TxnRequest);
    assert.deepEqual({ ...s.counters }, { puts: 3, deletes: 0, txns: 1, ranges: 2, putBytes: 9, keys: 2, compactionKeys: 0 });
    // read-only txn: compare + range op in one txn → a txn
    s.txn({ compare: [{ key: b('a'), result: 0, target: 3, value: b('123') }], success: [{ requestRange: { key: b('a') } }], failure: [] } as unknown as TxnRequest);
    assert.deepEqual({ ...s.counters }, { puts: 3, deletes: 0, txns: 2, ranges: 4, putBytes: 9, keys: 2, compactionKeys: 0 });
    s.deleteRange({ key: b('a'), rangeEnd: b('c') } as unknown as DeleteRangeRequest); // one delete op, two keys gone
    assert.deepEqual({ ...s.counters }, { puts: 3, deletes: 1, txns: 2, ranges: 4, putBytes: 9, keys: 0, compactionKeys: 0 });
    s.compact({ revision: s.currentRevision(), physical: false } as CompactionRequest);
    assert.ok(s.counters.compactionKeys > 0, 'compaction removed revisions');
  } finally {
    await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
