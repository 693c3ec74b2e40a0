/**
 * Shared Raft types: message/entry/state shapes, typed errors and small helpers.
 *
 * Shapes follow the etcd raft protobuf model (raftpb) re-expressed in TypeScript. Node IDs, terms and indexes
 * are non-negative integer `number`s (IDs are positive, at most 2^53-1; 0 means "none").
 */
import { InvariantError, invariant as sharedInvariant } from '../invariant';

/** Raft message kinds (etcd raft: raftpb.MessageType). Local-only kinds are never sent on the wire. */
export enum MessageType {
  MsgHup,
  MsgBeat,
  MsgProp,
  MsgApp,
  MsgAppResp,
  MsgVote,
  MsgVoteResp,
  MsgSnap,
  MsgHeartbeat,
  MsgHeartbeatResp,
  MsgUnreachable,
  MsgSnapStatus,
  MsgCheckQuorum,
  MsgTransferLeader,
  MsgTimeoutNow,
  MsgReadIndex,
  MsgReadIndexResp,
  MsgPreVote,
  MsgPreVoteResp,
}

/** Number of MessageType members (used by wire validation). */
export const MESSAGE_TYPE_COUNT = 19;

/** Log entry kinds. `Normal` with empty data is the leader's no-op entry (Raft thesis §6.4). */
export enum EntryType {
  Normal = 0,
  ConfChange = 1,
}

/** One replicated log entry. `term`/`index` are Raft term and log index; `data` is opaque to Raft. */
export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

/** Persistent per-node state (Raft paper figure 2: currentTerm, votedFor; plus the commit index as etcd does). */
export interface HardState {
  term: number;
  vote: number;
  commit: number;
}

/** Cluster membership: voting members and non-voting learners (node IDs). */
export interface ConfState {
  voters: number[];
  learners: number[];
}

/** Snapshot position: last included index/term and the membership at that index (Raft paper §7). */
export interface SnapshotMetadata {
  index: number;
  term: number;
  confState: ConfState;
}

/** A state-machine snapshot; `data` is opaque to Raft. */
export interface Snapshot {
  metadata: SnapshotMetadata;
  data: Uint8Array;
}

/**
 * A Raft message (etcd raft: raftpb.Message). Unused numeric fields are 0, `entries` is [] when unused.
 * `context` carries the ReadIndex request context (MsgReadIndex, MsgHeartbeat(Resp), MsgReadIndexResp) and the
 * leader-transfer marker on MsgVote/MsgPreVote.
 */
export interface Message {
  type: MessageType;
  to: number;
  from: number;
  term: number;
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  snapshot?: Snapshot;
  reject: boolean;
  rejectHint: number;
  context?: Uint8Array;
}

/** Result of a ReadIndex request: reads issued with `requestCtx` may be served once applied index >= `index`. */
export interface ReadState {
  index: number;
  requestCtx: Uint8Array;
}

/** Role of a node (etcd raft: StateType). */
export enum StateType {
  Follower,
  Candidate,
  Leader,
  PreCandidate,
}

/** Volatile state surfaced in a Ready only when it changes. */
export interface SoftState {
  lead: number;
  raftState: StateType;
}

/**
 * One batch of work for the host (etcd raft: Ready). Contract:
 * 1. persist `snapshot` (if any), then `entries` (appending, truncating any conflicting suffix), then `hardState`;
 * 2. `messages` may be sent at once, `messagesAfterPersist` only once step 1 is durable;
 * 3. apply `committedEntries` (all are already durable locally);
 * 4. call `RawNode.advance(rd)` — meaning "everything in rd is durable and committedEntries were handed to apply".
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  readStates: ReadState[];
  entries: Entry[];
  snapshot?: Snapshot;
  committedEntries: Entry[];
  messages: Message[];
  messagesAfterPersist: Message[];
}

/** Durable log storage as read by Raft (etcd raft: Storage). */
export interface Storage {
  /** Persisted HardState and the ConfState of the latest snapshot / bootstrap. */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * Entries [lo, hi) (hi exclusive). Returns at least one entry if lo < hi, then stops before exceeding
   * maxSizeBytes (see entrySize). Throws ErrCompacted if lo <= the snapshot index, ErrUnavailable if hi > lastIndex+1.
   */
  entries(lo: number, hi: number, maxSizeBytes: number): Entry[];
  /** Term of entry i; i may be the snapshot index. Throws ErrCompacted (i < snapshot index) or ErrUnavailable. */
  term(i: number): number;
  /** Index of the last stored entry (or the snapshot index if none). */
  lastIndex(): number;
  /** Index of the first entry still available (snapshot index + 1). */
  firstIndex(): number;
  /** The most recent snapshot. May throw ErrSnapshotTemporarilyUnavailable. */
  snapshot(): Snapshot;
}

/** Logger hook; Raft never writes to the console itself. */
export type RaftLogger = (level: 'debug' | 'info' | 'warn', msg: string) => void;

/** Configuration of one Raft node (etcd raft: Config). Ticks are host-defined logical clock units. */
export interface RaftConfig {
  /** This node's ID, a positive integer. */
  id: number;
  /** Election timeout in ticks; the randomized timeout lies in [electionTick, 2*electionTick). Must be > heartbeatTick. */
  electionTick: number;
  /** Heartbeat interval in ticks (leader). */
  heartbeatTick: number;
  /** Stable storage; holds everything already persisted. */
  storage: Storage;
  /** Last index already applied by the state machine (restart). Default: storage.firstIndex()-1. */
  applied?: number;
  /** Max bytes of entries per MsgApp (default 1 MiB). */
  maxSizePerMsg?: number;
  /** Max MsgApp in flight per follower in replicate state (default 256). */
  maxInflightMsgs?: number;
  /** Max bytes of uncommitted entries a leader accepts before dropping proposals (default 1 GiB; 0 = unlimited). */
  maxUncommittedEntriesSize?: number;
  /** Max bytes of committed entries per Ready (default 16 MiB). Extension over the brief. */
  maxCommittedSizePerReady?: number;
  /** Raft thesis §9.6 PreVote (default true). */
  preVote?: boolean;
  /** Raft thesis §6.2 CheckQuorum (default true). */
  checkQuorum?: boolean;
  /** Seeded uniform random source in [0,1); the only source of randomness. */
  rand: () => number;
  logger?: RaftLogger;
}

/** Thrown by RawNode.propose/proposeBatch/readIndex when the request cannot be accepted (no leader, transfer...). */
export class ErrProposalDropped extends Error {
  constructor(reason = 'raft proposal dropped') {
    super(reason);
    this.name = 'ErrProposalDropped';
  }
}

/** Requested index is at or below the snapshot (etcd raft: ErrCompacted). */
export class ErrCompacted extends Error {
  constructor() {
    super('requested index is unavailable due to compaction');
    this.name = 'ErrCompacted';
  }
}

/** Requested index is beyond the last stored entry (etcd raft: ErrUnavailable). */
export class ErrUnavailable extends Error {
  constructor() {
    super('requested entry at index is unavailable');
    this.name = 'ErrUnavailable';
  }
}

/** Snapshot older than the storage's current one (etcd raft: ErrSnapOutOfDate). */
export class ErrSnapOutOfDate extends Error {
  constructor() {
    super('requested index is older than the existing snapshot');
    this.name = 'ErrSnapOutOfDate';
  }
}

/** Storage cannot produce a snapshot right now; the leader retries later (etcd raft). */
export class ErrSnapshotTemporarilyUnavailable extends Error {
  constructor() {
    super('snapshot is temporarily unavailable');
    this.name = 'ErrSnapshotTemporarilyUnavailable';
  }
}

/** A broken Raft invariant or API misuse (the equivalent of etcd raft's panics); an {@link InvariantError}. */
export class RaftInvariantError extends InvariantError {
  override readonly name = 'RaftInvariantError';
}

/** Throws RaftInvariantError(msg) unless cond holds (the shared src/invariant.ts, with the Raft core's error). */
export const invariant: (cond: unknown, msg: string | (() => string)) => asserts cond = (cond, msg) => sharedInvariant(cond, msg, RaftInvariantError);

/** "No node" / "no leader". */
export const NONE = 0;

/** Fixed per-entry overhead (bytes) counted on top of data length for size limits (~ protobuf framing). */
export const ENTRY_OVERHEAD_BYTES = 24;

/** Byte size of an entry for flow-control limits: data length + ENTRY_OVERHEAD_BYTES. */
export function entrySize(e: Entry): number {
  return e.data.length + ENTRY_OVERHEAD_BYTES;
}

/** Sum of payload sizes (data bytes only), as etcd's uncommitted-size accounting. */
export function payloadsSize(ents: Entry[]): number {
  let s = 0;
  for (const e of ents) s += e.data.length;
  return s;
}

/**
 * Returns the longest prefix of ents whose total entrySize does not exceed maxSize, but always at least one entry
 * (etcd raft: limitSize).
 */
export function limitSize(ents: Entry[], maxSize: number): Entry[] {
  if (ents.length === 0) return ents;
  let size = entrySize(ents[0]);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entrySize(ents[n]);
    if (size > maxSize) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}

/** Builds a Message with defaults for every field not given. */
export function makeMessage(p: Partial<Message> & { type: MessageType }): Message {
  const m: Message = {
    type: p.type,
    to: p.to ?? 0,
    from: p.from ?? 0,
    term: p.term ?? 0,
    logTerm: p.logTerm ?? 0,
    index: p.index ?? 0,
    entries: p.entries ?? [],
    commit: p.commit ?? 0,
    reject: p.reject ?? false,
    rejectHint: p.rejectHint ?? 0,
  };
  if (p.snapshot !== undefined) m.snapshot = p.snapshot;
  if (p.context !== undefined) m.context = p.context;
  return m;
}

/** True if hs equals the zero HardState. */
export function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === 0 && hs.commit === 0;
}

/** Field-wise HardState equality. */
export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/** True for the zero snapshot (index 0). */
export function isEmptySnapshot(s: Snapshot | undefined): boolean {
  return s === undefined || s.metadata.index === 0;
}

/** Byte string → map key (latin1 code units), used to index ReadIndex contexts. */
export function bytesKey(b: Uint8Array | undefined): string {
  if (b === undefined || b.length === 0) return '';
  let s = '';
  const CHUNK = 4096;
  for (let i = 0; i < b.length; i += CHUNK) {
    s += String.fromCharCode.apply(null, Array.from(b.subarray(i, Math.min(b.length, i + CHUNK))));
  }
  return s;
}

/** Messages that must wait until the Ready that produced them is durable (votes and append/vote responses). */
export function isAfterPersistMessage(t: MessageType): boolean {
  return t === MessageType.MsgAppResp || t === MessageType.MsgVote || t === MessageType.MsgVoteResp;
}

/** Response type matching a vote request type. */
export function voteRespType(t: MessageType): MessageType {
  if (t === MessageType.MsgVote) return MessageType.MsgVoteResp;
  if (t === MessageType.MsgPreVote) return MessageType.MsgPreVoteResp;
  throw new RaftInvariantError(`not a vote message: ${MessageType[t]}`);
}
