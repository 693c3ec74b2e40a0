/**
 * The data carried by a normal Raft entry: which request it is, who waits for its result, and the
 * client's protobuf bytes unchanged (docs/architecture.md "Raft entry data").
 *
 * Layout: `[u8 kind][u64 LE requestId][payload]`. An empty `data` is the leader's no-op entry.
 */

/** What a proposed request does when applied (etcd api: InternalRaftRequest's request kinds). */
export enum EntryKind {
  Put = 1,
  DeleteRange = 2,
  Txn = 3,
  Compaction = 4,
  LeaseGrant = 5,
  LeaseRevoke = 6,
  LeaseCheckpoint = 7,
  /** A member's published attributes (name, client URLs); handled on the main thread, a no-op for MVCC. */
  MemberAttributes = 8,
  /**
   * etcd AlarmRequest (ACTIVATE / DEACTIVATE) proposed through Raft so every member's alarm store agrees
   * (etcd: InternalRaftRequest.Alarm); applied by the apply worker, persisted in the MVCC store.
   */
  Alarm = 9,
  /** etcd's auth management (InternalRaftRequest auth_*): payload `[u8 AuthOp][protobuf request]` (src/auth/ops.ts). */
  AuthMgmt = 10,
  /**
   * A request carrying the identity it was admitted under (etcd RequestHeader username + auth_revision), proposed
   * while auth is enabled: payload `[u8 inner kind][f64 LE auth revision][u16 LE user name bytes][user name][inner
   * payload]`. The apply worker checks permissions against it (etcd authApplierV3).
   */
  Authed = 11,
  /**
   * A v2 keys API write or the leader's SYNC (etcd InternalRaftRequest.V2): payload is the JSON of
   * src/v2store/request.ts V2Request; applied to the v2 store in the same LMDB transaction as v3 writes.
   */
  V2 = 12,
}

/** Bytes before the payload: kind (1) + requestId (8). */
export const ENTRY_HEADER_BYTES = 9;

/** Largest request id; ids stay JS-safe integers (docs/architecture.md "Raft IDs"). */
export const MAX_REQUEST_ID = Number.MAX_SAFE_INTEGER;

/** A decoded entry payload; `payload` is a view into the entry's bytes (no copy). */
export interface EntryData {
  kind: EntryKind;
  requestId: number;
  payload: Uint8Array;
}

/**
 * Builds an entry's data. `requestId` is 0..2^53-1 (0: nobody waits for the result).
 * Throws RangeError on an out-of-range id or unknown kind.
 */
export function encodeEntryData(kind: EntryKind, requestId: number, payload: Uint8Array): Uint8Array {
  if (!(kind in EntryKind)) throw new RangeError(`unknown entry kind ${kind}`);
  if (!Number.isSafeInteger(requestId) || requestId < 0) throw new RangeError(`bad request id ${requestId}`);
  const out = new Uint8Array(ENTRY_HEADER_BYTES + payload.length);
  const view = new DataView(out.buffer);
  out[0] = kind;
  view.setUint32(1, requestId % 0x1_0000_0000, true);
  view.setUint32(5, Math.floor(requestId / 0x1_0000_0000), true);
  out.set(payload, ENTRY_HEADER_BYTES);
  return out;
}

/**
 * Parses an entry's data; returns null for the empty (no-op) entry.
 * Throws RangeError when the bytes are shorter than the header or the kind is unknown (a corrupt log).
 */
export function decodeEntryData(data: Uint8Array): EntryData | null {
  if (data.length === 0) return null;
  if (data.length < ENTRY_HEADER_BYTES) throw new RangeError(`entry data too short: ${data.length} bytes`);
  const kind = data[0] as EntryKind;
  if (!(kind in EntryKind)) throw new RangeError(`unknown entry kind ${kind}`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const requestId = view.getUint32(1, true) + view.getUint32(5, true) * 0x1_0000_0000;
  return { kind, requestId, payload: data.subarray(ENTRY_HEADER_BYTES) };
}

/** The identity a request is proposed under (etcd RequestHeader username + auth_revision; src/auth AuthInfo). */
export interface ProposerIdentity { readonly username: string; readonly revision: number }

/** Bytes of an Authed payload before the user name: inner kind (1) + auth revision (8) + name length (2). */
export const AUTHED_HEADER_BYTES = 11;
/** Longest user name an Authed payload carries (bytes). */
export const MAX_AUTHED_USER_BYTES = 0xffff;

/** An Authed payload taken apart (views into the entry's bytes). */
export interface AuthedPayload { kind: EntryKind; username: string; authRevision: number; payload: Uint8Array }

/**
 * Wraps `payload` of `kind` with the identity it was admitted under (EntryKind.Authed's layout).
 * Throws RangeError on a nested Authed kind, an unsafe revision or a name longer than MAX_AUTHED_USER_BYTES.
 */
export function encodeAuthedPayload(kind: EntryKind, username: string, authRevision: number, payload: Uint8Array): Uint8Array {
  if (kind === EntryKind.Authed || !(kind in EntryKind)) throw new RangeError(`bad inner entry kind ${kind}`);
  if (!Number.isSafeInteger(authRevision) || authRevision < 0) throw new RangeError(`bad auth revision ${authRevision}`);
  const name = Buffer.from(username, 'utf8');
  if (name.length > MAX_AUTHED_USER_BYTES) throw new RangeError('user name too long');
  const out = new Uint8Array(AUTHED_HEADER_BYTES + name.length + payload.length);
  const view = new DataView(out.buffer);
  out[0] = kind;
  view.setFloat64(1, authRevision, true);
  view.setUint16(9, name.length, true);
  out.set(name, AUTHED_HEADER_BYTES);
  out.set(payload, AUTHED_HEADER_BYTES + name.length);
  return out;
}

/** Reads an Authed payload. Throws RangeError when it is truncated or its inner kind is unknown or Authed. */
export function decodeAuthedPayload(p: Uint8Array): AuthedPayload {
  if (p.length < AUTHED_HEADER_BYTES) throw new RangeError(`authed payload too short: ${p.length} bytes`);
  const kind = p[0] as EntryKind;
  if (kind === EntryKind.Authed || !(kind in EntryKind)) throw new RangeError(`bad inner entry kind ${kind}`);
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const authRevision = view.getFloat64(1, true);
  const n = view.getUint16(9, true);
  if (p.length < AUTHED_HEADER_BYTES + n) throw new RangeError('authed payload truncated');
  const username = Buffer.from(p.buffer, p.byteOffset + AUTHED_HEADER_BYTES, n).toString('utf8');
  return { kind, username, authRevision, payload: p.subarray(AUTHED_HEADER_BYTES + n) };
}

/**
 * The one signature of "propose a request through Raft" every layer uses (KV, lease, concurrency, alarms):
 * `request` is the request's protobuf bytes for `kind`, `decoded` optionally the same request already decoded by
 * the caller (so admission does not decode it again). Resolves with the encoded response the apply worker produced;
 * rejects with an EtcdError (src/errors.ts). `identity`: who the request acts as when auth is on (an Authed entry).
 */
export type Propose = (kind: EntryKind, request: Uint8Array, decoded?: unknown, identity?: ProposerIdentity | null) => Promise<Uint8Array>;

/** How a {@link ProposeWith} answers: the error (an EtcdError, src/errors.ts) or null and the encoded response. */
export type ProposeDone = (err: Error | null, response?: Uint8Array) => void;

/**
 * {@link Propose} with a callback instead of a promise, for the hot write path (one closure per request instead of
 * a promise and its continuations): `done` is called exactly once, possibly synchronously (admission refusals).
 */
export type ProposeWith = (kind: EntryKind, request: Uint8Array, decoded: unknown, identity: ProposerIdentity | null, done: ProposeDone) => void;

/** `propose` acting as `identity` whatever the caller passes (the member's own requests: expiry revokes, compaction). */
export function proposeAs(propose: Propose, identity: ProposerIdentity): Propose {
  return (kind, request, decoded) => propose(kind, request, decoded, identity);
}
