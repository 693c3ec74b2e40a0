/**
 * What the concurrency recipes (etcd clientv3/concurrency, served by etcd 3.4's v3lock and v3election) need of
 * the member, and the few KV/watch primitives they are built from:
 *  - writes: Txn / DeleteRange proposed through Raft as encoded requests (KvGateway.propose);
 *  - reads: linearizable ranges (KvGateway.range);
 *  - waits: watchers registered directly on the member's WatchHub (no gRPC watch to ourselves), starting at a
 *    given revision, so nothing between a read and the wait that follows it is missed;
 *  - a lease grant for requests that name lease 0 (etcd's session then grants a 60 s lease of its own).
 */
import { EntryKind, type Propose } from '../wire/entry';
import { EtcdError, Errors } from '../errors';
import { pb, type Compare, type KeyValue, type RangeRequest, type RequestOp, type ResponseHeader, type TxnResponse } from '../wire/codec';
import { checkTxnRequest } from '../wire/validate';
import { Watcher, type WatchHub, type WatchOutput } from '../watch/hub';
import { prefixEnd } from '../watch/watcher-index';

/** The member, as the concurrency services see it. */
export interface ConcurrencyHost {
  propose: Propose;
  range(req: RangeRequest): Promise<Uint8Array>;
  /** The member's watch hub (fed every applied batch, leader or follower). */
  readonly hub: WatchHub;
  /** Grants a lease with a server-chosen ID; resolves its ID. */
  grantLease(ttlSeconds: number): Promise<number>;
  /** etcd --max-txn-ops (validation of the txns built here). */
  readonly maxTxnOps: number;
}

/** etcd clientv3/concurrency defaultSessionTTL: the TTL of the lease a session grants when given lease 0. */
export const DEFAULT_SESSION_TTL = 60;

/** etcd's rpctypes errors reach a v3lock/v3election client as code Unknown with the message (grpc-go's default). */
export const UNKNOWN = 2;

/** A status as grpc-js sends it. */
export class ConcurrencyError extends Error {
  readonly code: number;
  readonly details: string;
  constructor(message: string, code = UNKNOWN) {
    super(message);
    this.name = 'ConcurrencyError';
    this.code = code;
    this.details = message;
  }
}

/** etcd clientv3/concurrency ErrElectionNotLeader. */
export const electionNotLeader = (): ConcurrencyError => new ConcurrencyError('election: not leader');
/** etcd clientv3/concurrency ErrElectionNoLeader. */
export const electionNoLeader = (): ConcurrencyError => new ConcurrencyError('election: no leader');
/** etcd v3election ErrMissingLeaderKey. */
export const missingLeaderKey = (): ConcurrencyError => new ConcurrencyError('"leader" field must be provided');
/** What a caller's cancellation turns into (grpc-go's text for context.Canceled; the client never sees it). */
export const canceled = (): ConcurrencyError => new ConcurrencyError('context canceled', 1);

/**
 * etcd's lock/election servers call the KV through an embedded clientv3, which turns every server status back into
 * an rpctypes.EtcdError; returned from the handler, grpc-go sends it as Unknown with the same message.
 */
export function asServiceStatus(err: unknown): { code: number; details: string } | unknown {
  if (err instanceof ConcurrencyError) return err;
  if (err instanceof EtcdError) return new ConcurrencyError(err.details);
  return err;
}

/** Go's %x of an int64 lease ID. */
export function leaseHex(lease: number): string {
  return lease < 0 ? `-${(-lease).toString(16)}` : lease.toString(16);
}

const EMPTY = Buffer.alloc(0);

/** A RangeRequest with every field defaulted. */
export function rangeRequest(r: Partial<RangeRequest> & { key: Uint8Array }): RangeRequest {
  return {
    rangeEnd: EMPTY, limit: 0, revision: 0, sortOrder: 0, sortTarget: 0, serializable: false, keysOnly: false,
    countOnly: false, minModRevision: 0, maxModRevision: 0, minCreateRevision: 0, maxCreateRevision: 0, ...r,
  };
}

/** etcd SortTarget / SortOrder values. */
export const SORT_CREATE = 2;
export const SORT_ASCEND = 1;
export const SORT_DESCEND = 2;

/** clientv3 OpGet(pfx, WithFirstCreate()...): the key under `pfx` created first. */
export function firstCreate(pfx: Buffer): RangeRequest {
  return rangeRequest({ key: pfx, rangeEnd: prefixEnd(pfx), sortTarget: SORT_CREATE, sortOrder: SORT_ASCEND, limit: 1 });
}

/** Decoded linearizable range. */
export async function range(host: ConcurrencyHost, req: RangeRequest): Promise<{ header: ResponseHeader; kvs: KeyValue[] }> {
  const res = pb.RangeResponse.decode(await host.range(req)) as unknown as { header: ResponseHeader; kvs: KeyValue[] };
  return { header: res.header, kvs: res.kvs ?? [] };
}

/** Compare create_revision(key) == rev. */
export function createRevIs(key: Buffer, rev: number): Compare {
  return { result: 0, target: 1, key, rangeEnd: EMPTY, createRevision: rev } as Compare;
}

// `request` names the oneof member, as a decoded op carries it (validate.ts dispatches on it).
export const opPut = (key: Buffer, value: Uint8Array, lease: number): RequestOp =>
  ({ request: 'requestPut', requestPut: { key, value, lease, prevKv: false, ignoreValue: false, ignoreLease: false } });
export const opGet = (req: RangeRequest): RequestOp => ({ request: 'requestRange', requestRange: req });
export const opDelete = (key: Buffer): RequestOp => ({ request: 'requestDeleteRange', requestDeleteRange: { key, rangeEnd: EMPTY, prevKv: false } });

/** Proposes a Txn built here (validated like a client's) and decodes the response. */
export async function txn(host: ConcurrencyHost, compare: Compare[], success: RequestOp[], failure: RequestOp[]): Promise<TxnResponse> {
  const req = { compare, success, failure };
  const bad = checkTxnRequest(req as never, host.maxTxnOps);
  if (bad !== null) throw new EtcdError(Errors[bad]);
  const res = await host.propose(EntryKind.Txn, pb.TxnRequest.encode(req).finish());
  const t = pb.TxnResponse.decode(res) as unknown as TxnResponse;
  t.responses ??= [];
  return t;
}

/** clientv3 Delete(key): resolves the response header. */
export async function deleteKey(host: ConcurrencyHost, key: Buffer): Promise<ResponseHeader> {
  if (key.length === 0) throw new EtcdError(Errors.EmptyKey);
  const res = await host.propose(EntryKind.DeleteRange, pb.DeleteRangeRequest.encode({ key }).finish());
  return (pb.DeleteRangeResponse.decode(res) as unknown as { header: ResponseHeader }).header;
}

/** A decoded WatchResponse as a hub watcher receives it. */
export interface WatchBatch {
  header: ResponseHeader;
  events: { type: number; kv: KeyValue }[];
  /** The watch was cancelled by the hub (its start revision was compacted). */
  canceled: boolean;
}

/** etcd mvccpb.Event types. */
export const PUT = 0;
export const DELETE = 1;

/**
 * Registers a hub watcher on `key` (or [key, end)) from revision `minRev`; `onBatch` gets every response until the
 * returned stop function is called. Removal is deferred to a microtask so a stop from inside `onBatch` never runs
 * in the middle of the hub's own bookkeeping.
 */
export function watch(hub: WatchHub, key: Buffer, end: Buffer | null, minRev: number, filter: { noPut?: boolean; noDelete?: boolean },
  onBatch: (b: WatchBatch) => void): () => void {
  let stopped = false;
  const out: WatchOutput = {
    send(buf: Buffer) {
      if (stopped) return;
      const r = pb.WatchResponse.decode(buf) as unknown as { header: ResponseHeader; events?: WatchBatch['events']; canceled?: boolean };
      onBatch({ header: r.header, events: r.events ?? [], canceled: !!r.canceled });
    },
    congested: () => false,
    canCatchUp: () => true,
    sentEvents: () => {},
  };
  const w = new Watcher(out, 0, key, end, Math.max(1, minRev), !!filter.noPut, !!filter.noDelete, false, false);
  hub.add(w);
  return () => {
    if (stopped) return;
    stopped = true;
    queueMicrotask(() => hub.remove(w));
  };
}

/**
 * etcd concurrency waitDelete: resolves once `key` is deleted at a revision ≥ `rev` (or the watch was cancelled
 * because `rev` was compacted: the caller re-reads). Rejects with {@link canceled} when `signal` aborts.
 */
export function waitDelete(hub: WatchHub, key: Buffer, rev: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(canceled());
    const onAbort = (): void => {
      stop();
      reject(canceled());
    };
    const stop = watch(hub, key, null, rev, { noPut: true }, (b) => {
      if (b.canceled || b.events.some((e) => e.type === DELETE)) {
        stop();
        signal.removeEventListener('abort', onAbort);
        resolve();
      }
    });
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * etcd concurrency waitDeletes: waits until no key under `pfx` has a create revision ≤ `maxCreateRev`, waiting on
 * the newest such key each round (each waiter watches only its immediate predecessor). Resolves the header of the
 * last (empty) read.
 */
export async function waitDeletes(host: ConcurrencyHost, pfx: Buffer, maxCreateRev: number, signal: AbortSignal): Promise<ResponseHeader> {
  const req = rangeRequest({ key: pfx, rangeEnd: prefixEnd(pfx), sortTarget: SORT_CREATE, sortOrder: SORT_DESCEND, limit: 1, maxCreateRevision: maxCreateRev });
  for (;;) {
    if (signal.aborted) throw canceled();
    const r = await range(host, req);
    if (r.kvs.length === 0) return r.header;
    await waitDelete(host.hub, Buffer.from(r.kvs[0]!.key), r.header.revision, signal);
  }
}
