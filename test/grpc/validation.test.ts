/**
 * The API layer's request validation against the reference: every request below is sent as raw protobuf
 * bytes to etcetera's gRPC server (with the in-memory test gateway) and to a real etcd 3.4 started with the
 * same --max-request-bytes / --max-txn-ops; both must answer the same gRPC code and message.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { startGrpcServer, type GrpcServerHandle } from '../../src/api/grpc/server';
import { checkIntervals, checkTxnRequest, raftRequestSize } from '../../src/wire/validate';
import { createEtcdMetrics } from '../../src/metrics/registry';
import { etcdError } from '../../src/errors';
import { pb, type RequestOp, type TxnRequest } from '../../src/wire/codec';
import { FakeKv, FakeMaintenance } from './fake-gateway';
import { haveEtcd, RawClient, startRealEtcd, type RealEtcd } from './helpers';

const MAX_REQUEST_BYTES = 10_000;
const MAX_TXN_OPS = 8;
const enc = (type: { encode(m: object): { finish(): Uint8Array } }, m: object): Uint8Array => type.encode(m).finish();
const b = (x: string): Buffer => Buffer.from(x);
const put = (key: string, extra: object = {}): object => ({ requestPut: { key: b(key), value: b('v'), ...extra } });
const del = (key: string, rangeEnd?: string): object => ({ requestDeleteRange: { key: b(key), ...(rangeEnd !== undefined ? { rangeEnd: b(rangeEnd) } : {}) } });
const txn = (t: object): Uint8Array => enc(pb.TxnRequest, t);
/** A Put whose encoded size is exactly `n` bytes (key "k", value of filler). */
function putOfSize(n: number): Uint8Array {
  for (let v = n - 8; v <= n; v++) {
    const bytes = enc(pb.PutRequest, { key: b('k'), value: Buffer.alloc(Math.max(0, v), 0x61) });
    if (bytes.length === n) return bytes;
  }
  throw new Error(`no put of size ${n}`);
}

interface Case { name: string; path: string; bytes: Uint8Array; expectCode: number; expectDetails?: string | RegExp }

const CASES: Case[] = [
  { name: 'Range empty key', path: '/etcdserverpb.KV/Range', bytes: enc(pb.RangeRequest, {}), expectCode: 3, expectDetails: 'etcdserver: key is not provided' },
  { name: 'Put empty key', path: '/etcdserverpb.KV/Put', bytes: enc(pb.PutRequest, { value: b('v') }), expectCode: 3, expectDetails: 'etcdserver: key is not provided' },
  { name: 'Put ignore_value with value', path: '/etcdserverpb.KV/Put', bytes: enc(pb.PutRequest, { key: b('a'), value: b('v'), ignoreValue: true }), expectCode: 3, expectDetails: 'etcdserver: value is provided' },
  { name: 'Put ignore_lease with lease', path: '/etcdserverpb.KV/Put', bytes: enc(pb.PutRequest, { key: b('a'), lease: 5, ignoreLease: true }), expectCode: 3, expectDetails: 'etcdserver: lease is provided' },
  { name: 'Put ignore_value on a missing key (apply-time)', path: '/etcdserverpb.KV/Put', bytes: enc(pb.PutRequest, { key: b('never-written'), ignoreValue: true }), expectCode: 3, expectDetails: 'etcdserver: key not found' },
  { name: 'DeleteRange empty key', path: '/etcdserverpb.KV/DeleteRange', bytes: enc(pb.DeleteRangeRequest, {}), expectCode: 3, expectDetails: 'etcdserver: key is not provided' },
  { name: 'Txn compare with empty key', path: '/etcdserverpb.KV/Txn', bytes: txn({ compare: [{ target: 0, result: 0 }] }), expectCode: 3, expectDetails: 'etcdserver: key is not provided' },
  { name: 'Txn too many ops in success', path: '/etcdserverpb.KV/Txn', bytes: txn({ success: Array.from({ length: 9 }, (_, i) => put(`k${i}`)) }), expectCode: 3, expectDetails: 'etcdserver: too many operations in txn request' },
  { name: 'Txn too many compares', path: '/etcdserverpb.KV/Txn', bytes: txn({ compare: Array.from({ length: 9 }, (_, i) => ({ key: b(`k${i}`) })) }), expectCode: 3, expectDetails: 'etcdserver: too many operations in txn request' },
  { name: 'Txn max ops exactly', path: '/etcdserverpb.KV/Txn', bytes: txn({ success: Array.from({ length: 8 }, (_, i) => put(`k${i}`)) }), expectCode: 0 },
  { name: 'Txn nested over the remaining budget', path: '/etcdserverpb.KV/Txn', bytes: txn({ success: [put('a'), put('b'), put('c'), put('d'), put('e'), { requestTxn: { success: [put('x1'), put('x2'), put('x3'), put('x4')] } }] }), expectCode: 3, expectDetails: 'etcdserver: too many operations in txn request' },
  { name: 'Txn empty op', path: '/etcdserverpb.KV/Txn', bytes: txn({ success: [{}] }), expectCode: 3, expectDetails: 'etcdserver: key not found' },
  { name: 'Txn put with empty key', path: '/etcdserverpb.KV/Txn', bytes: txn({ failure: [{ requestPut: { value: b('v') } }] }), expectCode: 3, expectDetails: 'etcdserver: key is not provided' },
  { name: 'Txn duplicate put', path: '/etcdserverpb.KV/Txn', bytes: txn({ success: [put('a'), put('a')] }), expectCode: 3, expectDetails: 'etcdserver: duplicate key given in txn request' },
  { name: 'Txn same key in success and failure', path: '/etcdserverpb.KV/Txn', bytes: txn({ success: [put('a')], failure: [put('a')] }), expectCode: 0 },
  { name: 'Txn put inside deleted range', path: '/etcdserverpb.KV/Txn', bytes: txn({ success: [del('a', 'c'), put('b')] }), expectCode: 3, expectDetails: 'etcdserver: duplicate key given in txn request' },
  { name: 'Txn put at deleted range end (exclusive)', path: '/etcdserverpb.KV/Txn', bytes: txn({ success: [del('a', 'c'), put('c')] }), expectCode: 0 },
  { name: 'Txn put and delete same key', path: '/etcdserverpb.KV/Txn', bytes: txn({ success: [put('a'), del('a')] }), expectCode: 3, expectDetails: 'etcdserver: duplicate key given in txn request' },
  { name: 'Txn from-key delete + put (etcd does not flag)', path: '/etcdserverpb.KV/Txn', bytes: txn({ success: [del('a', '\x00'), put('b')] }), expectCode: 0 },
  { name: 'Txn nested put duplicates outer put', path: '/etcdserverpb.KV/Txn', bytes: txn({ success: [put('a'), { requestTxn: { success: [put('a')] } }] }), expectCode: 3, expectDetails: 'etcdserver: duplicate key given in txn request' },
  { name: 'Txn nested then/else same key', path: '/etcdserverpb.KV/Txn', bytes: txn({ success: [{ requestTxn: { success: [put('a')], failure: [put('a')] } }] }), expectCode: 0 },
  { name: 'Txn nested delete covers outer put', path: '/etcdserverpb.KV/Txn', bytes: txn({ success: [put('b'), { requestTxn: { failure: [del('a', 'z')] } }] }), expectCode: 3, expectDetails: 'etcdserver: duplicate key given in txn request' },
  { name: 'Txn two nested txns put same key', path: '/etcdserverpb.KV/Txn', bytes: txn({ success: [{ requestTxn: { success: [put('q')] } }, { requestTxn: { failure: [put('q')] } }] }), expectCode: 3, expectDetails: 'etcdserver: duplicate key given in txn request' },
  { name: 'Txn outer delete covers nested put', path: '/etcdserverpb.KV/Txn', bytes: txn({ success: [del('p'), { requestTxn: { success: [put('p')] } }] }), expectCode: 3, expectDetails: 'etcdserver: duplicate key given in txn request' },
  { name: 'Put far over max-request-bytes', path: '/etcdserverpb.KV/Put', bytes: putOfSize(3 * MAX_REQUEST_BYTES), expectCode: 3, expectDetails: 'etcdserver: request is too large' },
  { name: 'Put just over max-request-bytes', path: '/etcdserverpb.KV/Put', bytes: putOfSize(MAX_REQUEST_BYTES - 10), expectCode: 3, expectDetails: 'etcdserver: request is too large' },
  { name: 'Put just under max-request-bytes', path: '/etcdserverpb.KV/Put', bytes: putOfSize(MAX_REQUEST_BYTES - 20), expectCode: 0 },
  { name: 'Txn over max-request-bytes', path: '/etcdserverpb.KV/Txn', bytes: txn({ success: [{ requestPut: { key: b('big'), value: Buffer.alloc(MAX_REQUEST_BYTES, 0x62) } }] }), expectCode: 3, expectDetails: 'etcdserver: request is too large' },
  { name: 'Range larger than max-request-bytes is fine', path: '/etcdserverpb.KV/Range', bytes: enc(pb.RangeRequest, { key: Buffer.alloc(2 * MAX_REQUEST_BYTES, 0x63) }), expectCode: 0 },
  { name: 'Put over the gRPC receive limit', path: '/etcdserverpb.KV/Put', bytes: putOfSize(MAX_REQUEST_BYTES + 512 * 1024 + 100), expectCode: 8, expectDetails: /eceived message larger than max/ },
  { name: 'Compact a future revision (apply-time)', path: '/etcdserverpb.KV/Compact', bytes: enc(pb.CompactionRequest, { revision: 1_000_000 }), expectCode: 11, expectDetails: 'etcdserver: mvcc: required revision is a future revision' },
  { name: 'Range a future revision (read-time)', path: '/etcdserverpb.KV/Range', bytes: enc(pb.RangeRequest, { key: b('a'), revision: 1_000_000 }), expectCode: 11, expectDetails: 'etcdserver: mvcc: required revision is a future revision' },
  { name: 'Malformed Range (truncated bytes field)', path: '/etcdserverpb.KV/Range', bytes: Buffer.from([0x0a, 0x05, 0x61]), expectCode: 13, expectDetails: /^grpc: error unmarshalling request: / },
  { name: 'Malformed Put (bad wire type)', path: '/etcdserverpb.KV/Put', bytes: Buffer.from([0x0a, 0x01, 0x61, 0x0f]), expectCode: 13, expectDetails: /^grpc: error unmarshalling request: / },
  { name: 'Malformed Txn (truncated varint)', path: '/etcdserverpb.KV/Txn', bytes: Buffer.from([0x12, 0x02, 0x12, 0x80]), expectCode: 13, expectDetails: /^grpc: error unmarshalling request: / },
  { name: 'Malformed Compact', path: '/etcdserverpb.KV/Compact', bytes: Buffer.from([0x08]), expectCode: 13, expectDetails: /^grpc: error unmarshalling request: / },
  { name: 'Malformed Status', path: '/etcdserverpb.Maintenance/Status', bytes: Buffer.from([0x0a, 0x09]), expectCode: 13, expectDetails: /^grpc: error unmarshalling request: / },
];

describe('gRPC KV validation matches etcd 3.4', () => {
  let ours: GrpcServerHandle;
  let kv: FakeKv;
  let client: RawClient;
  let ref: RealEtcd | null = null;
  let refClient: RawClient | null = null;

  before(async () => {
    kv = new FakeKv({ maxRequestBytes: MAX_REQUEST_BYTES });
    const registry = new Registry();
    ours = await startGrpcServer({
      urls: ['http://127.0.0.1:0'],
      gateway: kv,
      maintenance: new FakeMaintenance(kv, () => 'http://127.0.0.1:0'),
      maxRequestBytes: MAX_REQUEST_BYTES,
      maxTxnOps: MAX_TXN_OPS,
      metrics: createEtcdMetrics(registry),
    });
    client = new RawClient(`127.0.0.1:${ours.ports[0]}`);
    if (haveEtcd()) {
      ref = await startRealEtcd({ maxRequestBytes: MAX_REQUEST_BYTES, maxTxnOps: MAX_TXN_OPS });
      refClient = new RawClient(ref.endpoint);
    }
  });

  after(async () => {
    client?.close();
    refClient?.close();
    await ours?.close();
    await ref?.stop();
  });

  it('the reference etcd is running when installed', () => {
    assert.equal(refClient !== null, haveEtcd());
  });

  for (const c of CASES) {
    it(c.name, async () => {
      const proposalsBefore = kv.proposals;
      const got = await client.call(c.path, c.bytes);
      assert.equal(got.code, c.expectCode, `ours: ${got.code} ${got.details}`);
      if (typeof c.expectDetails === 'string') assert.equal(got.details, c.expectDetails);
      else if (c.expectDetails) assert.match(got.details, c.expectDetails);
      // validation failures never reach Raft
      if (c.expectCode === 3 && !/not found/.test(String(c.expectDetails))) assert.equal(kv.proposals, proposalsBefore, 'proposed an invalid request');
      if (refClient) {
        const want = await refClient.call(c.path, c.bytes);
        assert.equal(got.code, want.code, `etcd answered ${want.code} ${want.details}`);
        if (c.expectCode !== 13 && c.expectCode !== 8) assert.equal(got.details, want.details);
        else assert.match(want.details, c.expectDetails as RegExp);
      }
      // the server keeps serving after any of the above
      const next = await client.call('/etcdserverpb.KV/Range', enc(pb.RangeRequest, { key: b('a') }));
      assert.equal(next.code, 0, next.details);
    });
  }

  it('a gateway failure reaches the client as its etcd status', async () => {
    kv.failWith = etcdError('NoLeader');
    try {
      const r = await client.call('/etcdserverpb.KV/Put', enc(pb.PutRequest, { key: b('a'), value: b('v') }));
      assert.deepEqual([r.code, r.details], [14, 'etcdserver: no leader']);
      kv.failWith = new Error('boom');
      const u = await client.call('/etcdserverpb.KV/Range', enc(pb.RangeRequest, { key: b('a') }));
      assert.deepEqual([u.code, u.details], [2, 'boom']);
    } finally {
      kv.failWith = null;
    }
  });
});

describe('validate.ts units', () => {
  const ops = (t: object): TxnRequest => pb.TxnRequest.decode(pb.TxnRequest.encode(t).finish()) as unknown as TxnRequest;
  it('checkIntervals flags only same-branch overlaps', () => {
    assert.equal(checkIntervals(ops({ success: [put('a'), put('b')] }).success), null);
    assert.equal(checkIntervals(ops({ success: [put('a'), put('a')] }).success), 'DuplicateKey');
    assert.equal(checkIntervals(ops({ success: [del('a', 'b'), put('a')] }).success), 'DuplicateKey');
    assert.equal(checkIntervals(ops({ success: [del('a', 'b'), put('b')] }).success), null);
    assert.equal(checkIntervals(ops({ success: [del('a'), del('a')] }).success), null);
    const nested: RequestOp[] = ops({ success: [{ requestTxn: { success: [put('a')] } }, del('a')] }).success;
    assert.equal(checkIntervals(nested), 'DuplicateKey');
  });
  it('checkTxnRequest counts the widest of compare/success/failure', () => {
    assert.equal(checkTxnRequest(ops({ compare: [{ key: b('a') }], success: [put('a')], failure: [put('b'), put('c')] }), 2), null);
    assert.equal(checkTxnRequest(ops({ failure: [put('b'), put('c'), put('d')] }), 2), 'TooManyOps');
  });
  it('raftRequestSize mirrors the InternalRaftRequest wrapping', () => {
    assert.equal(raftRequestSize(100), 100 + 15 + 1);
    assert.equal(raftRequestSize(10_000), 10_000 + 15 + 2);
  });
});
