/**
 * Flow control at the door (etcd: EtcdServer.processInternalRaftRequestOnce and its pending-request bound): a
 * proposal is refused with "etcdserver: too many requests" (gRPC ResourceExhausted, retryable) while
 *  - the committed index runs more than MAX_GAP_APPLY_COMMIT_ENTRIES ahead of the applied index (the apply worker
 *    is behind: etcd's maxGapBetweenApplyAndCommitIndex), or
 *  - MAX_PENDING_PROPOSALS proposals or MAX_PENDING_PROPOSAL_BYTES of their data wait for their apply result.
 * Refusing new work at these bounds keeps every queue behind them (Raft's log, the apply hand-off, the rings)
 * bounded: clients back off and retry instead of the member running out of memory or stalling.
 */
import type { ErrorName } from '../errors';
import type { AdmissionCheck } from './admission';

/** etcd's maxGapBetweenApplyAndCommitIndex: committed − applied beyond which new proposals are refused (entries). */
export const MAX_GAP_APPLY_COMMIT_ENTRIES = 5000;
/** Proposals waiting for their apply result at most (PendingProposals enforces the same count). */
export const MAX_PENDING_PROPOSALS = 200_000;
/** Bytes of proposal data waiting for their apply result at most. */
export const MAX_PENDING_PROPOSAL_BYTES = 128 * 1024 * 1024;

/** What the flow check reads of the member; every function is called once per proposal, so keep them O(1). */
export interface FlowSource {
  /** This member's Raft commit index. */
  committedIndex(): number;
  /** The apply worker's applied index. */
  appliedIndex(): number;
  /** Proposals of this member waiting for their apply result. */
  pendingCount(): number;
  /** Bytes of those proposals' data. */
  pendingBytes(): number;
}

/** Optional overrides of the bounds (tests use small ones). */
export interface FlowBounds {
  maxGapEntries?: number;
  maxPendingCount?: number;
  maxPendingBytes?: number;
}

/**
 * Why a proposal of `requestBytes` would be refused now, or null to let it through. Pure: exported for tests.
 */
export function flowRefusal(src: FlowSource, requestBytes: number, bounds: FlowBounds = {}): ErrorName | null {
  const gap = bounds.maxGapEntries ?? MAX_GAP_APPLY_COMMIT_ENTRIES;
  if (src.committedIndex() - src.appliedIndex() > gap) return 'RequestTooManyRequests';
  if (src.pendingCount() >= (bounds.maxPendingCount ?? MAX_PENDING_PROPOSALS)) return 'RequestTooManyRequests';
  // A single request larger than the byte bound still passes when nothing else is pending (it is size-checked
  // already), so the bound cannot lock out a legal request forever.
  const pendingBytes = src.pendingBytes();
  if (pendingBytes > 0 && pendingBytes + requestBytes > (bounds.maxPendingBytes ?? MAX_PENDING_PROPOSAL_BYTES)) return 'RequestTooManyRequests';
  return null;
}

/** The admission check named `flow` (src/server/admission.ts): {@link flowRefusal} for each proposal. */
export function flowCheck(src: FlowSource, bounds: FlowBounds = {}): AdmissionCheck {
  return (p) => flowRefusal(src, p.bytes.length, bounds);
}
