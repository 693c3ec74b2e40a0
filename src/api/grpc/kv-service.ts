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
import type { KvGateway } from './gateway';
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
}

type Handler = handleUnaryCall<Buffer, Uint8Array>;
type Reply = sendUnaryData<Uint8Array>;

/**
 * Builds the KV handlers, keyed by proto method name ("Range", "Put", …) for grpc-js `addService` with
 * {@link KvService}. Every error reaches the client as a gRPC status with etcd's code and message.
 */
export function createKvHandlers(opts: KvServiceOptions): UntypedServiceImplementation & Record<'Range' | 'Put' | 'DeleteRange' | 'Txn' | 'Compact', Handler> {
  const { gateway, maxTxnOps, logger } = opts;

  const fail = (cb: Reply, name: ErrorName): void => cb(etcdError(name));

  /** Proposes `raw` and answers with the apply worker's encoded response. */
  const propose = (kind: EntryKind, raw: Buffer, req: unknown, cb: Reply): void => {
    let p: Promise<Uint8Array>;
    try {
      p = gateway.propose(kind, raw, req);
    } catch (err) {
      cb(toStatus(err, logger));
      return;
    }
    p.then(
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
    const bad = checkRangeRequest(req);
    if (bad !== null) return fail(cb, bad);
    let p: Promise<Uint8Array>;
    try {
      p = gateway.range(req);
    } catch (err) {
      cb(toStatus(err, logger));
      return;
    }
    p.then(
      (res) => cb(null, res),
      (err: unknown) => cb(toStatus(err, logger)),
    );
  };

  /**
   * A write handler: decode the client's bytes (only to validate them), run etcd's checks for that request,
   * then propose the bytes unchanged (the server's admission checks the size, once).
   */
  const write =
    <T>(kind: EntryKind, type: { decode(b: Uint8Array): unknown }, check: (req: T) => ErrorName | null): Handler =>
    (call, cb) => {
      const raw = call.request;
      let req: T;
      try {
        req = type.decode(raw) as T;
      } catch (err) {
        cb(unmarshalError(err));
        return;
      }
      const bad = check(req);
      if (bad !== null) return fail(cb, bad);
      propose(kind, raw, req, cb);
    };

  /** etcd api: KV.Put — key.go checkPutRequest, then the size limit, then Raft. */
  const Put = write<PutRequest>(EntryKind.Put, pb.PutRequest, checkPutRequest);

  /** etcd api: KV.DeleteRange — key.go checkDeleteRequest, then the size limit, then Raft. */
  const DeleteRange = write<DeleteRangeRequest>(EntryKind.DeleteRange, pb.DeleteRangeRequest, checkDeleteRequest);

  /**
   * etcd api: KV.Txn — key.go checkTxnRequest (TooManyOps, EmptyKey, KeyNotFound, per-op checks), then
   * checkIntervals on success and on failure (DuplicateKey), then the size limit, then Raft.
   */
  const Txn = write<TxnRequest>(
    EntryKind.Txn,
    pb.TxnRequest,
    (req) => checkTxnRequest(req, maxTxnOps) ?? checkIntervals(req.success) ?? checkIntervals(req.failure),
  );

  /** etcd api: KV.Compact — no v3rpc checks (revision errors come from apply); size limit, then Raft. */
  const Compact = write<unknown>(EntryKind.Compaction, pb.CompactionRequest, () => null);

  return { Range, Put, DeleteRange, Txn, Compact };
}
