/**
 * Write admission: the one place a proposed request is checked before it enters Raft (etcd: the v3rpc quota
 * servers, the learner interceptor and EtcdServer.processInternalRaftRequestOnce's size check).
 *
 * A request is decoded at most once on the main thread: the service that validated it hands its decoded form
 * along, otherwise {@link Proposal.decoded} decodes on first use (only checks near a limit need it). Checks run in
 * the order they were added; the first that names an error refuses the request with it. Auth and flow-control
 * ("too many requests") checks plug in with {@link Admission.add} (or `before` an existing check).
 */
import { etcdError, type EtcdError, type ErrorName } from '../errors';
import { pb, type PutRequest, type TxnRequest } from '../wire/codec';
import { EntryKind } from '../wire/entry';
import { QUOTA_KV_OVERHEAD, putCost, txnPutCost } from '../wire/quota';
import { raftRequestSize } from '../wire/validate';
import { MAX_V2_ENTRY_BYTES } from '../v2store/request';

/** etcd etcdserver/quota.go leaseOverhead: the estimated cost of a lease grant (bytes). */
export const QUOTA_LEASE_OVERHEAD = 64;

/** The decoders of the request kinds a check may look into (the client's protobuf bytes, unchanged). */
const DECODERS: Partial<Record<EntryKind, { decode(b: Uint8Array): unknown }>> = {
  [EntryKind.Put]: pb.PutRequest,
  [EntryKind.DeleteRange]: pb.DeleteRangeRequest,
  [EntryKind.Txn]: pb.TxnRequest,
  [EntryKind.Compaction]: pb.CompactionRequest,
  [EntryKind.LeaseGrant]: pb.LeaseGrantRequest,
  [EntryKind.LeaseRevoke]: pb.LeaseRevokeRequest,
};

/** One request on its way into Raft. */
export class Proposal {
  private decodedRequest: unknown;

  /**
   * `bytes`: the request's protobuf bytes as they will be proposed; `decoded`: the same request already decoded
   * by the caller (protobufjs camelCase shape), or undefined.
   */
  constructor(readonly kind: EntryKind, readonly bytes: Uint8Array, decoded?: unknown) {
    this.decodedRequest = decoded;
  }

  /**
   * The decoded request (decoded here on first use when the caller did not pass it). Throws RangeError for a kind
   * without a protobuf request (MemberAttributes) and protobufjs's error for bytes that do not decode.
   */
  decoded<T>(): T {
    if (this.decodedRequest === undefined) {
      const d = DECODERS[this.kind];
      if (d === undefined) throw new RangeError(`entry kind ${this.kind} has no protobuf request`);
      this.decodedRequest = d.decode(this.bytes);
    }
    return this.decodedRequest as T;
  }
}

/** A check: the error that refuses `p`, or null to let it through. May have side effects (raise an alarm). */
export type AdmissionCheck = (p: Proposal) => ErrorName | null;

/** The ordered admission checks of one member. */
export class Admission {
  private readonly checks: { name: string; check: AdmissionCheck }[] = [];

  /**
   * Adds `check` under `name` at the end, or just before the check named `before`. Throws Error when `name` is
   * taken or `before` is unknown.
   */
  add(name: string, check: AdmissionCheck, before?: string): this {
    if (this.checks.some((c) => c.name === name)) throw new Error(`admission check ${name} added twice`);
    const at = before === undefined ? this.checks.length : this.checks.findIndex((c) => c.name === before);
    if (at < 0) throw new Error(`no admission check named ${before}`);
    this.checks.splice(at, 0, { name, check });
    return this;
  }

  /** The names of the checks, in the order they run. */
  names(): string[] {
    return this.checks.map((c) => c.name);
  }

  /** Runs the checks in order; returns the first refusal as an EtcdError, or null when `p` is admitted. */
  admit(p: Proposal): EtcdError | null {
    for (const c of this.checks) {
      const err = c.check(p);
      if (err !== null) return etcdError(err);
    }
    return null;
  }
}

/**
 * etcd processInternalRaftRequestOnce: RequestTooLarge when the request, wrapped as etcd wraps it into an
 * InternalRaftRequest (wire/validate.ts raftRequestSize), exceeds `maxRequestBytes`.
 */
export function requestSizeCheck(maxRequestBytes: number): AdmissionCheck {
  return (p) => {
    // etcd proposes v2 requests without this check (their bound is the 10 MiB form limit); ours are bounded by
    // the size the rings are built for.
    if (p.kind === EntryKind.V2) return p.bytes.length > MAX_V2_ENTRY_BYTES ? 'RequestTooLarge' : null;
    return raftRequestSize(p.bytes.length) > maxRequestBytes ? 'RequestTooLarge' : null;
  };
}

/** True for the kinds that can grow the backend (etcd's quota servers check exactly these). */
export function addsData(kind: EntryKind): boolean {
  return kind === EntryKind.Put || kind === EntryKind.Txn || kind === EntryKind.LeaseGrant;
}

/** What {@link quotaCheck} reads of the member. */
export interface QuotaCheckOptions {
  /** --quota-backend-bytes as effective (negative: disabled), in bytes. */
  quotaBytes: number;
  /** --max-txn-ops: bounds a txn's put overhead so small txns pass without a decode. */
  maxTxnOps: number;
  /** Current backend size in bytes (etcd backend.Size()). */
  backendSize(): number;
}

/**
 * The quota check of etcd's quota servers (v3rpc/quota.go) for Put, Txn and LeaseGrant: their cost (etcd
 * quota.go: 256 + key + value per put, the larger txn branch, 64 per lease) must fit under the quota, else NoSpace.
 * Other requests (deletes, compaction, revokes) always pass. The request is decoded only near the quota.
 */
export function quotaExceeded(p: Proposal, o: QuotaCheckOptions): boolean {
  const q = o.quotaBytes;
  if (q < 0) return false;
  const size = o.backendSize();
  switch (p.kind) {
    case EntryKind.Put: {
      if (size + QUOTA_KV_OVERHEAD + p.bytes.length < q) return false; // key + value <= request bytes
      return size + putCost(p.decoded<PutRequest>()) >= q;
    }
    case EntryKind.Txn: {
      if (size + p.bytes.length + QUOTA_KV_OVERHEAD * o.maxTxnOps < q) return false;
      const cost = txnPutCost(p.decoded<TxnRequest>());
      return cost > 0 && size + cost >= q;
    }
    case EntryKind.LeaseGrant:
      return size + QUOTA_LEASE_OVERHEAD >= q;
    default:
      return false;
  }
}
