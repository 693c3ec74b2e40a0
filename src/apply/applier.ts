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
import { pb, type CompactionRequest, type DeleteRangeRequest, type PutRequest, type ResponseHeader, type TxnRequest } from '../wire/codec';
import { messageType } from '../wire/codec';
import { EtcdError, Errors } from '../errors';
import { isTxnReadonly, type MvccStore } from '../mvcc/store';
import { type ApplyResult, ENTRY_TYPE_NORMAL } from './batch-format';
import { decodeAuthedPayload, decodeEntryData, EntryKind } from '../wire/entry';
import { ALARM_ACTION_ACTIVATE, ALARM_ACTION_DEACTIVATE, ALARM_ACTION_GET, ALARM_CORRUPT, ALARM_NOSPACE } from '../wire/alarm';
import { txnPutCost } from '../wire/quota';
import { AuthApplier } from './auth-applier';
import { decodeAuthMgmt, type AuthMgmtRequest } from '../wire/auth-mgmt';
import { NO_AUTH, type AuthInfo } from '../auth/store';
import { ApplyStatus, ApplyWord } from './apply-status';
import { V2Store } from '../v2store/store';
import { V2Nodes } from '../v2store/nodes';
import { applyV2, decodeV2Request, encodeV2Result, type V2Request } from '../v2store/request';

const LeaseCheckpointRequest = messageType('etcdserverpb.LeaseCheckpointRequest');
const LeaseCheckpointResponse = messageType('etcdserverpb.LeaseCheckpointResponse');
const AlarmRequest = messageType('etcdserverpb.AlarmRequest');
const AlarmResponse = messageType('etcdserverpb.AlarmResponse');
const EMPTY = new Uint8Array(0);

/** Identity put in every response header. */
export interface ApplierOptions {
  /** This member's id (< 2^53). */
  memberId: number;
  /** The cluster id (< 2^53). */
  clusterId: number;
  /** Where corrupt-entry reports go (default console.error). */
  log?: (msg: string) => void;
  /**
   * Shared status words: the MVCC counters (ApplyWord.Mvcc*), the alarm words and the compaction histograms are
   * published there after every request (cumulative values; only changed words are stored).
   */
  status?: ApplyStatus;
}

/** Outcome counters of an Applier (for tests and logs). */
export interface ApplierStats {
  applied: number;
  skipped: number;
  corrupt: number;
}

/**
 * What etcd's applierV3Corrupt refuses (it wraps the capped applier, so these fail Corrupt before NoSpace). Txns
 * only when they can write: etcd serves read-only ones without the applier, so they keep working.
 */
const CORRUPT_REFUSED = new Set<EntryKind>([
  EntryKind.Put, EntryKind.DeleteRange, EntryKind.Txn, EntryKind.Compaction, EntryKind.LeaseGrant, EntryKind.LeaseRevoke,
]);

/** Applies entries to one MvccStore (single writer). */
export class Applier {
  readonly stats: ApplierStats = { applied: 0, skipped: 0, corrupt: 0 };
  private readonly log: (msg: string) => void;
  /** A NOSPACE alarm is raised: puts, txns with puts and lease grants fail with NoSpace (etcd applierV3Capped). */
  private capped: boolean;
  /** A CORRUPT alarm is raised: KV writes, compaction and lease grant/revoke fail with Corrupt (etcd applierV3Corrupt). */
  private corrupted: boolean;
  private readonly published = new Float64Array(8);
  /** etcd authApplierV3: the auth store and the permission checks at apply time. */
  readonly authApplier: AuthApplier;
  /** Who the entry being applied acts as (etcd authApplierV3.authInfo). */
  private ai: AuthInfo = NO_AUTH;
  /** etcd's v2 store (applierV2store), kept in the MVCC environment's `v2` database. */
  readonly v2: V2Store;

  constructor(readonly store: MvccStore, private readonly opts: ApplierOptions) {
    this.log = opts.log ?? ((m) => console.error(m));
    this.v2 = new V2Store(new V2Nodes(store.dbs.v2));
    const alarms = store.alarms();
    this.capped = alarms.some((a) => a.alarm === ALARM_NOSPACE);
    this.corrupted = alarms.some((a) => a.alarm === ALARM_CORRUPT);
    this.published.fill(-1);
    const st = opts.status;
    this.authApplier = new AuthApplier(store, () => {
      if (st) {
        st.store(ApplyWord.AuthRevision, this.authApplier.auth.revision);
        st.add(ApplyWord.AuthSeq, 1);
      }
    });
    st?.store(ApplyWord.AuthRevision, this.authApplier.auth.revision);
    if (st) {
      st.store(ApplyWord.AlarmCount, alarms.length);
      store.onCompaction = (t) => {
        st.observe('etcd_debugging_mvcc_index_compaction_pause_duration_milliseconds', t.indexPauseMs);
        st.observe('etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds', t.dbPauseMs);
        st.observe('etcd_debugging_mvcc_db_compaction_total_duration_milliseconds', t.totalMs);
        st.add(ApplyWord.CompactionCount, 1);
      };
      this.publishCounters();
    }
  }

  /** Stores the MVCC counters that changed since the last call into the status words. */
  publishCounters(): void {
    const st = this.opts.status;
    if (!st) return;
    const c = this.store.counters;
    const p = this.published;
    if (p[0] !== c.puts) st.store(ApplyWord.MvccPuts, (p[0] = c.puts));
    if (p[1] !== c.deletes) st.store(ApplyWord.MvccDeletes, (p[1] = c.deletes));
    if (p[2] !== c.txns) st.store(ApplyWord.MvccTxns, (p[2] = c.txns));
    if (p[3] !== c.ranges) st.store(ApplyWord.MvccRanges, (p[3] = c.ranges));
    if (p[4] !== c.putBytes) st.store(ApplyWord.MvccPutBytes, (p[4] = c.putBytes));
    if (p[5] !== c.keys) st.store(ApplyWord.MvccKeys, (p[5] = Math.max(0, c.keys)));
    if (p[6] !== c.compactionKeys) st.store(ApplyWord.MvccCompactionKeys, (p[6] = c.compactionKeys));
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
      this.ai = NO_AUTH;
      if (kind === EntryKind.Authed) {
        const a = decodeAuthedPayload(payload);
        kind = a.kind;
        payload = a.payload;
        this.ai = { username: a.username, revision: a.authRevision };
      }
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
    this.publishCounters();
    if (requestId !== 0) out.push({ requestId, errorId, response });
  }

  private execute(kind: EntryKind, req: unknown, index: number, term: number): Uint8Array {
    const s = this.store;
    if (this.corrupted && CORRUPT_REFUSED.has(kind) && !(kind === EntryKind.Txn && isTxnReadonly(req as TxnRequest, 0))) {
      throw new EtcdError(Errors.Corrupt);
    }
    if (this.capped) {
      // etcd applierV3Capped: the store is capped while a NOSPACE alarm is raised; deletes, compaction, ranges,
      // lease revokes and txns without puts still apply.
      if (kind === EntryKind.Put || kind === EntryKind.LeaseGrant) throw new EtcdError(Errors.NoSpace);
      if (kind === EntryKind.Txn && txnPutCost(req as TxnRequest) > 0) throw new EtcdError(Errors.NoSpace);
    }
    if (kind !== EntryKind.AuthMgmt) this.authApplier.check(kind, req, this.ai);
    switch (kind) {
      case EntryKind.AuthMgmt:
        return this.authApplier.apply(req as AuthMgmtRequest, this.ai, index, () => this.header(term));
      case EntryKind.Alarm:
        return this.alarm(req as { action?: number; memberID?: number; alarm?: number }, term);
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
      case EntryKind.V2:
        return encodeV2Result(applyV2(this.v2, req as V2Request), (req as V2Request).val);
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

  /** etcd applierV3backend.Alarm: ACTIVATE / DEACTIVATE change the alarm store; GET lists it. */
  private alarm(r: { action?: number; memberID?: number; alarm?: number }, term: number): Uint8Array {
    const s = this.store;
    const at = r.alarm ?? 0;
    let alarms: Array<{ memberID: number; alarm: number }> = [];
    switch (r.action ?? 0) {
      case ALARM_ACTION_GET:
        alarms = s.alarms().filter((a) => at === 0 || a.alarm === at);
        break;
      case ALARM_ACTION_ACTIVATE: {
        if (at === 0) break; // etcd's alarm store ignores NONE
        const { member, added } = s.activateAlarm(r.memberID ?? 0, at);
        alarms = [member];
        if (added) this.log(`apply: alarm raised: ${at === ALARM_NOSPACE ? 'NOSPACE' : at === ALARM_CORRUPT ? 'CORRUPT' : at} from ${(r.memberID ?? 0).toString(16)}`);
        break;
      }
      case ALARM_ACTION_DEACTIVATE: {
        const m = s.deactivateAlarm(r.memberID ?? 0, at);
        if (m) alarms = [m];
        break;
      }
      default:
        break;
    }
    const all = s.alarms();
    this.capped = all.some((a) => a.alarm === ALARM_NOSPACE);
    this.corrupted = all.some((a) => a.alarm === ALARM_CORRUPT);
    const st = this.opts.status;
    if (st && (r.action === ALARM_ACTION_ACTIVATE || r.action === ALARM_ACTION_DEACTIVATE)) {
      st.store(ApplyWord.AlarmCount, all.length);
      st.add(ApplyWord.AlarmSeq, 1);
    }
    return AlarmResponse.encode({ header: this.header(term), alarms }).finish();
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
    case EntryKind.Alarm: return AlarmRequest.decode(payload);
    case EntryKind.AuthMgmt: return decodeAuthMgmt(payload);
    case EntryKind.V2: return decodeV2Request(payload);
    default: throw new RangeError(`unknown entry kind ${kind as number}`);
  }
}
