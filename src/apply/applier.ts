/**
 * Applies committed Raft entries to the MVCC store and encodes each request's protobuf response
 * (etcd: etcdserver/apply.go applierV3backend + server.go applyEntryNormal). Thread-agnostic: the apply worker
 * drives it, tests can drive it directly.
 *
 * Per entry (inside the caller's MvccStore.batch, i.e. one LMDB transaction per batch):
 * - index ≤ stored consistent index → skipped (replay after restart), no result;
 * - empty data (leader no-op) or a non-normal entry (conf change) → only advances the consistent index;
 * - a request → decoded, applied, response encoded with header {cluster_id, member_id, revision = store revision
 *   after the entry, raft_term = the entry's term}; requestId 0 → no result record.
 * Failures: an EtcdError (validation at apply time: LeaseNotFound, Compacted, FutureRev, KeyNotFound, LeaseExist,
 * ...) becomes the result's errorId and changes nothing. An undecodable entry (bad header or protobuf) is
 * deterministic on every member: it is logged, reported with Errors.Corrupt's id when its requestId is readable, and
 * skipped. Anything else (LMDB failure) propagates: the batch must abort and the worker stop (see worker.ts).
 */
import { pb, type CompactionRequest, type DeleteRangeRequest, type PutRequest, type ResponseHeader, type TxnRequest } from '../api/proto/codec';
import { messageType } from '../api/proto/codec';
import { EtcdError, Errors } from '../errors';
import type { MvccStore } from '../mvcc/store';
import { type ApplyResult, ENTRY_TYPE_NORMAL } from './batch-format';
import { decodeEntryData, EntryKind } from './entry';

const LeaseCheckpointRequest = messageType('etcdserverpb.LeaseCheckpointRequest');
const LeaseCheckpointResponse = messageType('etcdserverpb.LeaseCheckpointResponse');
const EMPTY = new Uint8Array(0);

/** Identity put in every response header. */
export interface ApplierOptions {
  /** This member's id (< 2^53). */
  memberId: number;
  /** The cluster id (< 2^53). */
  clusterId: number;
  /** Where corrupt-entry reports go (default console.error). */
  log?: (msg: string) => void;
}

/** Outcome counters of an Applier (for tests and logs). */
export interface ApplierStats {
  applied: number;
  skipped: number;
  corrupt: number;
}

/** Applies entries to one MvccStore (single writer). */
export class Applier {
  readonly stats: ApplierStats = { applied: 0, skipped: 0, corrupt: 0 };
  private readonly log: (msg: string) => void;

  constructor(readonly store: MvccStore, private readonly opts: ApplierOptions) {
    this.log = opts.log ?? ((m) => console.error(m));
  }

  private header(term: number): ResponseHeader {
    return { clusterId: this.opts.clusterId, memberId: this.opts.memberId, revision: this.store.currentRevision(), raftTerm: term };
  }

  /**
   * Applies one entry; must run inside `store.batch()`. Appends at most one result to `out`.
   * @throws only on store failures (not EtcdErrors, not decode failures).
   */
  applyEntry(index: number, term: number, type: number, data: Uint8Array, out: ApplyResult[]): void {
    if (index <= this.store.consistentIndex()) {
      this.stats.skipped++;
      return;
    }
    this.stats.applied++;
    if (type === ENTRY_TYPE_NORMAL && data.length > 0) this.applyRequest(index, term, data, out);
    this.store.setConsistentIndex(index, term);
  }

  private applyRequest(index: number, term: number, data: Uint8Array, out: ApplyResult[]): void {
    let kind: EntryKind;
    let requestId: number;
    let payload: Uint8Array;
    try {
      const d = decodeEntryData(data)!;
      kind = d.kind;
      requestId = d.requestId;
      payload = d.payload;
    } catch (e) {
      this.stats.corrupt++;
      this.log(`apply: skipping undecodable entry ${index} (term ${term}): ${(e as Error).message}`);
      return;
    }
    let response: Uint8Array = EMPTY;
    let errorId = 0;
    let req: unknown;
    try {
      req = decodeRequest(kind, payload);
    } catch (e) {
      this.stats.corrupt++;
      this.log(`apply: skipping entry ${index} (term ${term}, kind ${kind}, request ${requestId}): bad protobuf: ${(e as Error).message}`);
      if (requestId !== 0) out.push({ requestId, errorId: Errors.Corrupt.id, response: EMPTY });
      return;
    }
    try {
      response = this.execute(kind, req, index, term);
    } catch (e) {
      if (!(e instanceof EtcdError)) throw e;
      errorId = e.id;
    }
    if (requestId !== 0) out.push({ requestId, errorId, response });
  }

  private execute(kind: EntryKind, req: unknown, index: number, term: number): Uint8Array {
    const s = this.store;
    switch (kind) {
      case EntryKind.Put: {
        const r = s.put(req as PutRequest);
        return pb.PutResponse.encode({ header: this.header(term), prevKv: r.prevKv }).finish();
      }
      case EntryKind.DeleteRange: {
        const r = s.deleteRange(req as DeleteRangeRequest);
        return pb.DeleteRangeResponse.encode({ header: this.header(term), deleted: r.deleted, prevKvs: r.prevKvs }).finish();
      }
      case EntryKind.Txn: {
        const r = s.txn(req as TxnRequest);
        return pb.TxnResponse.encode({ header: this.header(term), succeeded: r.succeeded, responses: r.responses }).finish();
      }
      case EntryKind.Compaction: {
        s.compact(req as CompactionRequest);
        return pb.CompactionResponse.encode({ header: this.header(term) }).finish();
      }
      case EntryKind.LeaseGrant: {
        const r = s.leaseGrant(req as { ID: number; TTL: number }, index);
        return pb.LeaseGrantResponse.encode({ header: this.header(term), ID: r.ID, TTL: r.TTL }).finish();
      }
      case EntryKind.LeaseRevoke: {
        s.leaseRevoke(req as { ID: number });
        return pb.LeaseRevokeResponse.encode({ header: this.header(term) }).finish();
      }
      case EntryKind.LeaseCheckpoint: {
        for (const c of (req as { checkpoints?: Array<{ ID: number; remaining_TTL: number }> }).checkpoints ?? []) {
          s.leaseCheckpoint(c.ID, c.remaining_TTL);
        }
        return LeaseCheckpointResponse.encode({ header: this.header(term) }).finish();
      }
      default:
        throw new RangeError(`unknown entry kind ${kind as number}`);
    }
  }
}

/** Decodes a request payload for its kind. @throws on bad protobuf or an unknown kind. */
function decodeRequest(kind: EntryKind, payload: Uint8Array): unknown {
  switch (kind) {
    case EntryKind.Put: return pb.PutRequest.decode(payload);
    case EntryKind.DeleteRange: return pb.DeleteRangeRequest.decode(payload);
    case EntryKind.Txn: return pb.TxnRequest.decode(payload);
    case EntryKind.Compaction: return pb.CompactionRequest.decode(payload);
    case EntryKind.LeaseGrant: return pb.LeaseGrantRequest.decode(payload);
    case EntryKind.LeaseRevoke: return pb.LeaseRevokeRequest.decode(payload);
    case EntryKind.LeaseCheckpoint: return LeaseCheckpointRequest.decode(payload);
    default: throw new RangeError(`unknown entry kind ${kind as number}`);
  }
}
