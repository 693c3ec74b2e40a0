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

/**
 * The one signature of "propose a request through Raft" every layer uses (KV, lease, concurrency, alarms):
 * `request` is the request's protobuf bytes for `kind`, `decoded` optionally the same request already decoded by
 * the caller (so admission does not decode it again). Resolves with the encoded response the apply worker produced;
 * rejects with an EtcdError (src/errors.ts).
 */
export type Propose = (kind: EntryKind, request: Uint8Array, decoded?: unknown) => Promise<Uint8Array>;
