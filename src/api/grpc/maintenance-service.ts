/**
 * etcd api: etcdserverpb.Maintenance handlers over the raw codec. Served: Status, Alarm (GET), Defragment,
 * HashKV, MoveLeader and Snapshot (when the gateway offers them). Everything else answers Unimplemented with grpc-go's
 * "method X not implemented". `etcdctl endpoint status` uses Status; `etcdctl alarm list` uses Alarm GET.
 */
import type { handleServerStreamingCall, handleUnaryCall, sendUnaryData, UntypedServiceImplementation } from '@grpc/grpc-js';
import { messageType } from '../../wire/codec';
import { ALARM_ACTION_GET } from '../../wire/alarm';
import type { MaintenanceGateway } from './gateway';
import { decodeOrReply, toStatus, unimplemented, type GrpcLogger } from './status';

type Handler = handleUnaryCall<Buffer, Uint8Array>;
type Reply = sendUnaryData<Uint8Array>;

const T = {
  StatusRequest: messageType('etcdserverpb.StatusRequest'),
  StatusResponse: messageType('etcdserverpb.StatusResponse'),
  AlarmRequest: messageType('etcdserverpb.AlarmRequest'),
  AlarmResponse: messageType('etcdserverpb.AlarmResponse'),
  DefragmentRequest: messageType('etcdserverpb.DefragmentRequest'),
  DefragmentResponse: messageType('etcdserverpb.DefragmentResponse'),
  HashRequest: messageType('etcdserverpb.HashRequest'),
  HashResponse: messageType('etcdserverpb.HashResponse'),
  HashKVRequest: messageType('etcdserverpb.HashKVRequest'),
  HashKVResponse: messageType('etcdserverpb.HashKVResponse'),
  MoveLeaderRequest: messageType('etcdserverpb.MoveLeaderRequest'),
  MoveLeaderResponse: messageType('etcdserverpb.MoveLeaderResponse'),
  SnapshotRequest: messageType('etcdserverpb.SnapshotRequest'),
  SnapshotResponse: messageType('etcdserverpb.SnapshotResponse'),
};

/**
 * A wait bounded by the client's deadline ends this much earlier, so that the client receives etcd's
 * leader-transfer timeout error rather than its own DeadlineExceeded (which grpc-js would send at the deadline).
 */
const ANSWER_BEFORE_DEADLINE_MS = 100;

/** How long a handler may wait (ms) before answering within the client's deadline; Infinity when it set none. */
function waitBudgetMs(deadline: Date | number): number {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) ? Math.max(0, at - Date.now() - ANSWER_BEFORE_DEADLINE_MS) : Infinity;
}

/** Runs `fn` (sync or async) and answers with its result encoded by `type`, or its error as a status. */
function answer(cb: Reply, type: { encode(m: object): { finish(): Uint8Array } }, fn: () => object | Promise<object>, logger?: GrpcLogger): void {
  let r: object | Promise<object>;
  try {
    r = fn();
  } catch (err) {
    cb(toStatus(err, logger));
    return;
  }
  if (r instanceof Promise) {
    r.then(
      (v) => cb(null, type.encode(v).finish()),
      (err: unknown) => cb(toStatus(err, logger)),
    );
  } else {
    cb(null, type.encode(r).finish());
  }
}

/** Builds the Maintenance handlers, keyed by proto method name, for grpc-js `addService` with MaintenanceService. */
export function createMaintenanceHandlers(gateway: MaintenanceGateway, logger?: GrpcLogger): UntypedServiceImplementation {
  /** etcd api: Maintenance.Status — the member's status as the gateway reports it. */
  const Status: Handler = (call, cb) => {
    if (decodeOrReply(T.StatusRequest, call.request, cb) === null) return;
    answer(cb, T.StatusResponse, () => gateway.status(), logger);
  };

  /**
   * etcd api: Maintenance.Alarm — GET lists the raised alarms (only those of `alarm` when it is not NONE, as
   * etcd's alarm store Get), read locally. ACTIVATE/DEACTIVATE are proposed through Raft (gateway.alarmChange).
   */
  const Alarm: Handler = (call, cb) => {
    const req = decodeOrReply<{ action: number; memberID: number; alarm: number }>(T.AlarmRequest, call.request, cb);
    if (req === null) return;
    if (req.action !== ALARM_ACTION_GET) {
      // etcd: ACTIVATE / DEACTIVATE go through Raft (EtcdServer.Alarm → raftRequest); every member applies them.
      const change = gateway.alarmChange;
      if (!change) {
        cb({ code: 12, details: 'etcetera: alarm activate/deactivate not implemented' });
        return;
      }
      change.call(gateway, call.request).then(
        (res) => cb(null, res),
        (err: unknown) => cb(toStatus(err, logger)),
      );
      return;
    }
    answer(
      cb,
      T.AlarmResponse,
      () => {
        // etcd 3.4 answers Alarm without a header (its applier builds a bare AlarmResponse; the server never fills it).
        const a = gateway.alarms().alarms;
        return { alarms: req.alarm === 0 ? a : a.filter((x) => x.alarm === req.alarm) };
      },
      logger,
    );
  };

  /** etcd api: Maintenance.Defragment — the gateway's defragment, or an immediate empty success (etcd's reply has no header). */
  const Defragment: Handler = (call, cb) => {
    if (decodeOrReply(T.DefragmentRequest, call.request, cb) === null) return;
    const d = gateway.defragment;
    answer(cb, T.DefragmentResponse, () => (d ? d.call(gateway) : {}), logger);
  };

  /**
   * A handler for an optional gateway method: decodes the request with `reqType`, answers Unimplemented when the
   * gateway lacks the method (`serve` returns undefined), else encodes what it resolves with as `resType`.
   */
  const optional = <Req>(name: string, reqType: (typeof T)[keyof typeof T], resType: (typeof T)[keyof typeof T],
    serve: (req: Req, call: Parameters<Handler>[0]) => Promise<object> | undefined): Handler => (call, cb) => {
    const req = decodeOrReply<Req>(reqType, call.request, cb);
    if (req === null) return;
    let pending: Promise<object> | undefined;
    try {
      pending = serve(req, call);
    } catch (err) {
      cb(toStatus(err, logger));
      return;
    }
    if (pending === undefined) {
      cb(unimplemented(name));
      return;
    }
    answer(cb, resType, () => pending as Promise<object>, logger);
  };

  /** etcd api: Maintenance.HashKV — served when the gateway implements hashKV, else Unimplemented. */
  const HashKV = optional<{ revision: number }>('HashKV', T.HashKVRequest, T.HashKVResponse,
    (req) => gateway.hashKV?.call(gateway, req.revision));

  /**
   * etcd api: Maintenance.MoveLeader — served when the gateway implements moveLeader, else Unimplemented. The
   * answer is an empty MoveLeaderResponse, as etcd 3.4 sends it (no header).
   */
  const MoveLeader = optional<{ targetID: number }>('MoveLeader', T.MoveLeaderRequest, T.MoveLeaderResponse,
    (req, call) => gateway.moveLeader?.call(gateway, req.targetID, waitBudgetMs(call.getDeadline())).then(() => ({})));

  /** etcd api: Maintenance.Hash — served when the gateway implements hash, else Unimplemented. */
  const Hash = optional<object>('Hash', T.HashRequest, T.HashResponse, () => gateway.hash?.call(gateway));

  /**
   * etcd api: Maintenance.Snapshot (server stream) — the gateway's chunks (bbolt database in 32 KiB pieces, then its
   * SHA-256; src/snapshot/save.ts), written with the stream's backpressure: the next chunk is produced only once
   * the previous one left grpc-js's buffer, so memory does not grow with the store. Unimplemented without it.
   */
  const Snapshot: handleServerStreamingCall<Buffer, Uint8Array> = (call) => {
    const serve = gateway.snapshot;
    if (!serve) {
      call.emit('error', unimplemented('Snapshot'));
      return;
    }
    try {
      T.SnapshotRequest.decode(call.request);
    } catch (err) {
      call.emit('error', toStatus(err, logger));
      return;
    }
    let cancelled = call.cancelled;
    let wake: (() => void) | null = null;
    call.on('cancelled', () => {
      cancelled = true;
      wake?.();
    });
    const run = async (): Promise<void> => {
      const chunks = await serve.call(gateway);
      for await (const c of chunks) {
        if (cancelled) break;
        if (!call.write(T.SnapshotResponse.encode(c).finish())) {
          await new Promise<void>((resolve) => {
            wake = resolve;
            call.once('drain', resolve);
          });
          wake = null;
        }
      }
      if (!cancelled) call.end();
    };
    run().catch((err: unknown) => {
      if (!cancelled) call.emit('error', toStatus(err, logger));
    });
  };

  return {
    Alarm,
    Status,
    Defragment,
    Hash,
    HashKV,
    Snapshot,
    MoveLeader,
  };
}
