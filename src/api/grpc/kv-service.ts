/**
 * etcd api: etcdserverpb.KV handlers (Range, Put, DeleteRange, Txn, Compact) over the raw codec
 * (src/api/grpc/services.ts): each handler decodes the request bytes only to validate them exactly as etcd's
 * v3rpc kvServer does (src/wire/validate.ts), then
 *  - writes propose the client's bytes unchanged and answer with the apply worker's encoded response;
 *  - Range hands the decoded request to the gateway and answers with its encoded RangeResponse.
 * A request that does not decode gets grpc-go's Internal "grpc: error unmarshalling request: …".
 */
import type { handleUnaryCall, sendUnaryData, UntypedServiceImplementation } from '@grpc/grpc-js';
import { EntryKind } from '../../wire/entry';
import { etcdError, type ErrorName } from '../../errors';
import { pb, type DeleteRangeRequest, type PutRequest, type RangeRequest, type TxnRequest } from '../../wire/codec';
import type { AuthGateway, KvGateway } from './gateway';
import { actsAsNoUser, withIdentity } from './auth-gate';
import type { AuthInfo } from '../../auth/store';
import { toStatus, unmarshalError, type GrpcLogger } from './status';
import {
  checkDeleteRequest,
  checkIntervals,
  checkPutRequest,
  checkRangeRequest,
  checkTxnRequest,
} from '../../wire/validate';

/** Settings of the KV service (etcd flag --max-txn-ops; --max-request-bytes is the server's admission check). */
export interface KvServiceOptions {
  gateway: KvGateway;
  /** etcd --max-txn-ops: most operations per txn branch (default in etcd: 128). */
  maxTxnOps: number;
  logger?: GrpcLogger;
  /** etcd's auth: permission checks at admission (none without it). */
  auth?: AuthGateway;
}

type Handler = handleUnaryCall<Buffer, Uint8Array>;
type Reply = sendUnaryData<Uint8Array>;

/** The KV operations below the wire format, shared by the gRPC handlers and the JSON gateway (src/api/gateway). */
export interface KvCore {
  /** etcd api: KV.Range on a decoded request: etcd's checks, then the gateway. Rejects with an EtcdError. */
  range(req: RangeRequest, ai?: AuthInfo | null): Promise<Uint8Array>;
  /**
   * etcd api: KV.Put/DeleteRange/Txn/Compact: etcd's checks of the decoded `req`, then Raft with its encoded
   * bytes `raw` (the server's admission checks the size). Resolves with the apply worker's encoded response;
   * rejects with an EtcdError. `ai`: the caller's identity (permissions checked here and again at apply time).
   */
  write(kind: KvWriteKind, req: unknown, raw: Uint8Array, ai?: AuthInfo | null): Promise<Uint8Array>;
}

/** The entry kinds of the KV writes. */
export type KvWriteKind = EntryKind.Put | EntryKind.DeleteRange | EntryKind.Txn | EntryKind.Compaction;

/** etcd v3rpc's checks of each KV write kind (key.go), by entry kind; null when the request passes. */
function writeChecks(maxTxnOps: number): Record<KvWriteKind, (req: never) => ErrorName | null> {
  return {
    [EntryKind.Put]: (req: PutRequest) => checkPutRequest(req),
    [EntryKind.DeleteRange]: (req: DeleteRangeRequest) => checkDeleteRequest(req),
    // key.go checkTxnRequest (TooManyOps, EmptyKey, KeyNotFound, per-op checks), then checkIntervals on both branches.
    [EntryKind.Txn]: (req: TxnRequest) => checkTxnRequest(req, maxTxnOps) ?? checkIntervals(req.success) ?? checkIntervals(req.failure),
    // No v3rpc checks for Compact (revision errors come from apply).
    [EntryKind.Compaction]: () => null,
  };
}

/** Builds the {@link KvCore} over the server's KvGateway with etcd's limits. */
export function createKvCore(opts: Omit<KvServiceOptions, 'logger'>): KvCore {
  const { gateway, maxTxnOps, auth } = opts;
  const checks = writeChecks(maxTxnOps);
  return {
    range(req, ai = null) {
      const bad = checkRangeRequest(req);
      if (bad !== null) return Promise.reject(etcdError(bad));
      if (auth === undefined) return gateway.range(req);
      // etcd doSerialize: read permission, the read, then a check that the auth revision did not move meanwhile.
      const denied = auth.rangeError(ai, req);
      if (denied !== null) return Promise.reject(denied);
      return gateway.range(req).then((res) => {
        const stale = auth.staleError(ai);
        if (stale !== null) throw stale;
        return res;
      });
    },
    write(kind, req, raw, ai = null) {
      const bad = checks[kind](req as never);
      if (bad !== null) return Promise.reject(etcdError(bad));
      if (auth === undefined) return gateway.propose(kind, raw, req);
      // Checked here and again by the apply worker against the auth revision the request was admitted under.
      // etcd checks write permissions only when applying, after its capped and corrupt appliers: while such an alarm
      // is raised a denied write goes through Raft so the apply worker answers NoSpace / Corrupt first, as etcd does.
      const denied = auth.writeError(kind, ai, req);
      if (denied !== null && gateway.writesRefusedByAlarm?.() !== true) return Promise.reject(denied);
      return gateway.propose(kind, raw, req, ai);
    },
  };
}

/**
 * Builds the KV handlers, keyed by proto method name ("Range", "Put", …) for grpc-js `addService` with
 * {@link KvService}. Every error reaches the client as a gRPC status with etcd's code and message.
 */
export function createKvHandlers(opts: KvServiceOptions): UntypedServiceImplementation & Record<'Range' | 'Put' | 'DeleteRange' | 'Txn' | 'Compact', Handler> {
  const { logger, auth, gateway } = opts;
  const core = createKvCore(opts);
  const checkWrite = writeChecks(opts.maxTxnOps);
  // A call acting as no user (auth off, no token, no certificate CN) is answered straight from the pending-proposal
  // table (one closure per call, no promise chain); others go through the identity lookup and the core.
  const proposeWith = gateway.proposeWith;

  const settle = (p: () => Promise<Uint8Array>, cb: Reply): void => {
    let r: Promise<Uint8Array>;
    try {
      r = p();
    } catch (err) {
      cb(toStatus(err, logger));
      return;
    }
    r.then(
      (res) => cb(null, res),
      (err: unknown) => cb(toStatus(err, logger)),
    );
  };

  /** etcd api: KV.Range — etcd v3rpc key.go checkRangeRequest, then the gateway (ReadIndex unless serializable). */
  const Range: Handler = (call, cb) => {
    let req: RangeRequest;
    try {
      req = pb.RangeRequest.decode(call.request) as unknown as RangeRequest;
    } catch (err) {
      cb(unmarshalError(err));
      return;
    }
    if (actsAsNoUser(auth, call)) settle(() => core.range(req, null), cb);
    else withIdentity(auth, call, (err) => cb(toStatus(err, logger)), (ai) => settle(() => core.range(req, ai), cb));
  };

  /** A write handler: decode the client's bytes (only to validate them), then the core proposes them unchanged. */
  const write =
    (kind: KvWriteKind, type: { decode(b: Uint8Array): unknown }): Handler =>
    (call, cb) => {
      const raw = call.request;
      let req: unknown;
      try {
        req = type.decode(raw);
      } catch (err) {
        cb(unmarshalError(err));
        return;
      }
      if (proposeWith === undefined || !actsAsNoUser(auth, call)) {
        withIdentity(auth, call, (err) => cb(toStatus(err, logger)), (ai) => settle(() => core.write(kind, req, raw, ai), cb));
        return;
      }
      const bad = checkWrite[kind](req as never);
      if (bad !== null) {
        cb(toStatus(etcdError(bad), logger));
        return;
      }
      proposeWith(kind, raw, req, null, (err, res) => {
        if (err === null) cb(null, res);
        else cb(toStatus(err, logger));
      });
    };

  return {
    /** etcd api: KV.Put — key.go checkPutRequest, then Raft (the server's admission checks the size). */
    Put: write(EntryKind.Put, pb.PutRequest),
    /** etcd api: KV.DeleteRange — key.go checkDeleteRequest, then Raft. */
    DeleteRange: write(EntryKind.DeleteRange, pb.DeleteRangeRequest),
    /** etcd api: KV.Txn — checkTxnRequest, checkIntervals on both branches (DuplicateKey), then Raft. */
    Txn: write(EntryKind.Txn, pb.TxnRequest),
    /** etcd api: KV.Compact — no v3rpc checks; Raft. */
    Compact: write(EntryKind.Compaction, pb.CompactionRequest),
    Range,
  };
}
