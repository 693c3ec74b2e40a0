/**
 * Test-only gateways for the gRPC layer: a tiny single-version in-memory KV (latest value per key, one
 * revision counter) that answers Range/Put/DeleteRange/Txn/Compaction with correctly encoded etcd responses,
 * and a fixed Maintenance view. Good enough to drive real clients (etcd3, etcdctl) through the API layer;
 * the real MVCC and Raft are tested elsewhere.
 */
import { EntryKind } from '../../src/wire/entry';
import { etcdError } from '../../src/errors';
import { Admission, Proposal, requestSizeCheck } from '../../src/server/admission';
import type { KvGateway, MaintenanceGateway, StatusInfo } from '../../src/api/grpc/gateway';
import {
  pb,
  type Compare,
  type CompactionRequest,
  type DeleteRangeRequest,
  type KeyValue,
  type PutRequest,
  type RangeRequest,
  type RequestOp,
  type ResponseHeader,
  type ResponseOp,
  type TxnRequest,
} from '../../src/wire/codec';

/** Fixed identity of the fake member. */
export const FAKE_CLUSTER_ID = 0x1234abcd;
export const FAKE_MEMBER_ID = 0x42;

const s = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

/** In-memory KvGateway (see module comment). `proposals` counts what propose() admitted. */
export class FakeKv implements KvGateway {
  rev = 1;
  compactRev = 0;
  proposals = 0;
  ranges = 0;
  /** When set, every call rejects with it (then it stays set until cleared). */
  failWith: Error | null = null;
  /** When true, range() answers a fixed pre-encoded response immediately (benchmarks). */
  instantRange: Uint8Array | null = null;
  private readonly kvs = new Map<string, KeyValue>();
  /** The server's own size check (src/server/admission.ts) when a --max-request-bytes is given; none otherwise. */
  private readonly admission = new Admission();

  constructor(opts: { maxRequestBytes?: number } = {}) {
    if (opts.maxRequestBytes !== undefined) this.admission.add('size', requestSizeCheck(opts.maxRequestBytes));
  }

  header(): ResponseHeader {
    return { clusterId: FAKE_CLUSTER_ID, memberId: FAKE_MEMBER_ID, revision: this.rev, raftTerm: 2 };
  }

  propose(kind: EntryKind, request: Uint8Array): Promise<Uint8Array> {
    // Refused by admission means never proposed (the server's size check runs before Raft).
    const refused = this.admission.admit(new Proposal(kind, request));
    if (refused !== null) return Promise.reject(refused);
    this.proposals++;
    if (this.failWith) return Promise.reject(this.failWith);
    try {
      switch (kind) {
        case EntryKind.Put: {
          const r = this.put(pb.PutRequest.decode(request) as unknown as PutRequest);
          this.rev++;
          return Promise.resolve(pb.PutResponse.encode({ header: this.header(), ...r }).finish());
        }
        case EntryKind.DeleteRange: {
          const r = this.del(pb.DeleteRangeRequest.decode(request) as unknown as DeleteRangeRequest);
          if (r.deleted > 0) this.rev++;
          return Promise.resolve(pb.DeleteRangeResponse.encode({ header: this.header(), ...r }).finish());
        }
        case EntryKind.Txn: {
          const before = this.rev;
          const r = this.txn(pb.TxnRequest.decode(request) as unknown as TxnRequest, before + 1);
          if (this.dirty) this.rev = before + 1;
          this.dirty = false;
          return Promise.resolve(pb.TxnResponse.encode({ header: this.header(), ...r }).finish());
        }
        case EntryKind.Compaction: {
          const r = pb.CompactionRequest.decode(request) as unknown as CompactionRequest;
          if (r.revision > this.rev) throw etcdError('FutureRev');
          if (r.revision <= this.compactRev) throw etcdError('Compacted');
          this.compactRev = r.revision;
          return Promise.resolve(pb.CompactionResponse.encode({ header: this.header() }).finish());
        }
        default:
          throw new Error(`unexpected kind ${kind}`);
      }
    } catch (err) {
      return Promise.reject(err);
    }
  }

  range(req: RangeRequest): Promise<Uint8Array> {
    this.ranges++;
    if (this.instantRange) return Promise.resolve(this.instantRange);
    if (this.failWith) return Promise.reject(this.failWith);
    try {
      return Promise.resolve(pb.RangeResponse.encode({ header: this.header(), ...this.doRange(req) }).finish());
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private dirty = false;

  private match(key: Uint8Array, rangeEnd: Uint8Array): KeyValue[] {
    const k = s(key);
    if (rangeEnd.length === 0) {
      const kv = this.kvs.get(k);
      return kv ? [kv] : [];
    }
    const end = s(rangeEnd);
    const all = end === '\x00';
    return [...this.kvs.entries()]
      .filter(([x]) => x >= k && (all || x < end))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, v]) => v);
  }

  private doRange(req: RangeRequest): { kvs: KeyValue[]; more: boolean; count: number } {
    if (req.revision > this.rev) throw etcdError('FutureRev');
    if (req.revision > 0 && req.revision < this.compactRev) throw etcdError('Compacted');
    let kvs = this.match(req.key, req.rangeEnd);
    const count = kvs.length;
    if (req.sortOrder === 2) kvs = kvs.reverse();
    const more = req.limit > 0 && kvs.length > req.limit;
    if (req.limit > 0) kvs = kvs.slice(0, req.limit);
    if (req.countOnly) kvs = [];
    if (req.keysOnly) kvs = kvs.map((kv) => ({ ...kv, value: new Uint8Array() }));
    return { kvs, more, count };
  }

  private put(r: PutRequest, rev = this.rev + 1): { prevKv?: KeyValue } {
    const k = s(r.key);
    const prev = this.kvs.get(k);
    if ((r.ignoreValue || r.ignoreLease) && !prev) throw etcdError('KeyNotFound');
    this.kvs.set(k, {
      key: r.key,
      value: r.ignoreValue && prev ? prev.value : r.value,
      lease: r.ignoreLease && prev ? prev.lease : r.lease,
      createRevision: prev ? prev.createRevision : rev,
      modRevision: rev,
      version: prev ? prev.version + 1 : 1,
    });
    this.dirty = true;
    return r.prevKv && prev ? { prevKv: prev } : {};
  }

  private del(r: DeleteRangeRequest): { deleted: number; prevKvs: KeyValue[] } {
    const hit = this.match(r.key, r.rangeEnd);
    for (const kv of hit) this.kvs.delete(s(kv.key));
    if (hit.length > 0) this.dirty = true;
    return { deleted: hit.length, prevKvs: r.prevKv ? hit : [] };
  }

  private compare(c: Compare): boolean {
    const kv = this.kvs.get(s(c.key));
    let a: number | string;
    let b: number | string;
    switch (c.target) {
      case 0: a = kv?.version ?? 0; b = c.version ?? 0; break;
      case 1: a = kv?.createRevision ?? 0; b = c.createRevision ?? 0; break;
      case 2: a = kv?.modRevision ?? 0; b = c.modRevision ?? 0; break;
      case 3:
        if (!kv) return false;
        a = s(kv.value); b = s(c.value ?? new Uint8Array()); break;
      default: a = kv?.lease ?? 0; b = c.lease ?? 0;
    }
    switch (c.result) {
      case 0: return a === b;
      case 1: return a > b;
      case 2: return a < b;
      default: return a !== b;
    }
  }

  private txn(t: TxnRequest, rev: number): { succeeded: boolean; responses: ResponseOp[] } {
    const succeeded = t.compare.every((c) => this.compare(c));
    const ops: RequestOp[] = succeeded ? t.success : t.failure;
    const responses = ops.map((op): ResponseOp => {
      const h = { ...this.header(), revision: rev };
      if (op.requestRange) return { responseRange: { header: h, ...this.doRange(op.requestRange) } };
      if (op.requestPut) return { responsePut: { header: h, ...this.put(op.requestPut, rev) } };
      if (op.requestDeleteRange) return { responseDeleteRange: { header: h, ...this.del(op.requestDeleteRange) } };
      return { responseTxn: { header: h, ...this.txn(op.requestTxn!, rev) } };
    });
    return { succeeded, responses };
  }
}

/** Fixed one-member MaintenanceGateway over a FakeKv's header. */
export class FakeMaintenance implements MaintenanceGateway {
  constructor(private readonly kv: FakeKv, private readonly clientUrl: () => string) {}
  status(): StatusInfo {
    return {
      header: this.kv.header(),
      version: '3.4.23',
      dbSize: 20480,
      dbSizeInUse: 16384,
      leader: FAKE_MEMBER_ID,
      raftIndex: this.kv.rev + 3,
      raftTerm: 2,
      raftAppliedIndex: this.kv.rev + 3,
      errors: [],
      isLearner: false,
    };
  }
  members() {
    return {
      header: this.kv.header(),
      members: [{ ID: FAKE_MEMBER_ID, name: 'fake0', peerURLs: ['http://127.0.0.1:2380'], clientURLs: [this.clientUrl()], isLearner: false }],
    };
  }
  alarms() {
    return { header: this.kv.header(), alarms: [] as { memberID: number; alarm: number }[] };
  }
}
