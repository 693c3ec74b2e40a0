/**
 * Byte-level encoding of watch events and WatchResponses (etcd api: etcdserverpb.WatchResponse, mvccpb.Event).
 *
 * An event is encoded once (without prev_kv, and once more with it when a watcher asks for prev_kv) and the
 * encoded bytes are spliced into every WatchResponse that carries it, so 10,000 watchers of one key cost one
 * protobuf encode per event, not 10,000. Responses are written field by field with protobufjs's Writer.
 */
import protobuf from 'protobufjs';
import { pb, type KeyValue } from '../wire/codec';
import { decodeRecord, recordIsTombstone } from '../mvcc/encoding';

/** etcd mvccpb.Event_EventType. */
export const EVENT_PUT = 0;
export const EVENT_DELETE = 1;

/** One MVCC change as the hub carries it. */
export class WatchEvent {
  /** Main revision (the kv's mod_revision). */
  readonly rev: number;
  readonly key: Buffer;
  readonly type: number;
  readonly kv: KeyValue;
  private bytes: Uint8Array | null = null;
  private bytesPrev: Uint8Array | null = null;
  /** undefined = not looked up yet; null = none. */
  prevKv: KeyValue | null | undefined = undefined;

  constructor(record: Buffer) {
    const kv = decodeRecord(record);
    this.rev = kv.modRevision;
    this.key = kv.key as Buffer;
    if (recordIsTombstone(record)) {
      this.type = EVENT_DELETE;
      this.kv = { key: kv.key, modRevision: kv.modRevision } as KeyValue;
    } else {
      this.type = EVENT_PUT;
      this.kv = kv;
    }
  }

  /** etcd's isCreateEvent: a PUT that started a generation (no previous kv to look up). */
  isCreate(): boolean {
    return this.type === EVENT_PUT && this.kv.createRevision === this.kv.modRevision;
  }

  /** The encoded mvccpb.Event (with prev_kv when `withPrev` and one was found). */
  encoded(withPrev: boolean, lookupPrev: (ev: WatchEvent) => KeyValue | null): Uint8Array {
    if (!withPrev || this.isCreate()) {
      if (this.bytes === null) this.bytes = pb.Event.encode({ type: this.type, kv: this.kv }).finish();
      return this.bytes;
    }
    if (this.bytesPrev === null) {
      if (this.prevKv === undefined) this.prevKv = lookupPrev(this);
      this.bytesPrev = this.prevKv
        ? pb.Event.encode({ type: this.type, kv: this.kv, prevKv: this.prevKv }).finish()
        : this.encoded(false, lookupPrev);
    }
    return this.bytesPrev;
  }
}

/** Non-event fields of a WatchResponse. */
export interface ResponseFields {
  watchId: number;
  created?: boolean;
  canceled?: boolean;
  compactRevision?: number;
  cancelReason?: string;
  fragment?: boolean;
}

function varintLen(n: number): number {
  let l = 1;
  while (n >= 128) { n = Math.floor(n / 128); l++; }
  return l;
}

/** Encoded size of the events field (11) for these event bytes. */
export function eventsFieldBytes(events: readonly Uint8Array[], from = 0, to = events.length): number {
  let n = 0;
  for (let i = from; i < to; i++) n += 1 + varintLen(events[i]!.length) + events[i]!.length;
  return n;
}

/** Encodes a WatchResponse from an encoded header, its fields and encoded events. */
export function encodeWatchResponse(header: Uint8Array, f: ResponseFields, events: readonly Uint8Array[] = [], from = 0, to = events.length): Buffer {
  const w = protobuf.Writer.create();
  w.uint32(10).bytes(header);
  if (f.watchId !== 0) w.uint32(16).int64(f.watchId);
  if (f.created) w.uint32(24).bool(true);
  if (f.canceled) w.uint32(32).bool(true);
  if (f.compactRevision) w.uint32(40).int64(f.compactRevision);
  if (f.cancelReason) w.uint32(50).string(f.cancelReason);
  if (f.fragment) w.uint32(56).bool(true);
  for (let i = from; i < to; i++) w.uint32(90).bytes(events[i]!);
  const u = w.finish();
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/**
 * etcd v3rpc sendFragments: one response when it is smaller than maxRequestBytes or has fewer than 2 events;
 * otherwise consecutive responses with fragment=true except the last, each holding events while its size stays
 * below maxRequestBytes (at least one event each).
 */
export function encodeFragmented(header: Uint8Array, f: ResponseFields, events: readonly Uint8Array[], maxRequestBytes: number): Buffer[] {
  const base = encodeWatchResponse(header, { ...f, fragment: true }).length;
  const total = base - 2 + eventsFieldBytes(events); // fragment flag is absent in the unsplit response
  if (total < maxRequestBytes || events.length < 2) return [encodeWatchResponse(header, f, events)];
  const out: Buffer[] = [];
  let idx = 0;
  while (idx < events.length) {
    const start = idx;
    let size = base;
    while (idx < events.length) {
      const add = 1 + varintLen(events[idx]!.length) + events[idx]!.length;
      if (idx - start >= 1 && size + add >= maxRequestBytes) break;
      size += add;
      idx++;
    }
    out.push(encodeWatchResponse(header, { ...f, fragment: idx < events.length }, events, start, idx));
  }
  return out;
}
