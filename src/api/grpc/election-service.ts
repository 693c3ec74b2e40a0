/**
 * etcd api: v3electionpb.Election handlers over the raw codec (src/api/grpc/services.ts), etcd 3.4 semantics: see
 * src/concurrency/election.ts. A Campaign the client cancels while it waits resigns; Observe streams until the
 * client cancels. Errors reach the client as etcd's do: code Unknown with the message ("election: not leader",
 * "election: no leader", "\"leader\" field must be provided", relayed etcdserver errors).
 */
import type { handleUnaryCall, ServerWritableStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import { messageType } from '../../wire/codec';
import { asServiceStatus, missingLeaderKey, type ConcurrencyHost } from '../../concurrency/host';
import { campaign, leader, observe, proclaim, resign, type LeaderKey } from '../../concurrency/election';
import { ElectionService } from './services';
import { toStatus, unmarshalError, type GrpcLogger } from './status';
import type { ExtraService } from './server';
import { callSignal } from './lock-service';

type Unary = handleUnaryCall<Buffer, Uint8Array>;
type ServerStream = (call: ServerWritableStream<Buffer, Uint8Array>) => void;

const T = {
  CampaignRequest: messageType('v3electionpb.CampaignRequest'),
  CampaignResponse: messageType('v3electionpb.CampaignResponse'),
  ProclaimRequest: messageType('v3electionpb.ProclaimRequest'),
  ProclaimResponse: messageType('v3electionpb.ProclaimResponse'),
  LeaderRequest: messageType('v3electionpb.LeaderRequest'),
  LeaderResponse: messageType('v3electionpb.LeaderResponse'),
  ResignRequest: messageType('v3electionpb.ResignRequest'),
  ResignResponse: messageType('v3electionpb.ResignResponse'),
};

const EMPTY = Buffer.alloc(0);

/** Builds the Election service handlers, keyed by proto method name. */
export function createElectionHandlers(host: ConcurrencyHost, logger?: GrpcLogger): UntypedServiceImplementation {
  const fail = (err: unknown): ReturnType<typeof toStatus> => toStatus(asServiceStatus(err), logger);

  const decode = <R>(type: { decode(b: Uint8Array): unknown }, raw: Buffer): { ok: true; v: R } | { ok: false; err: ReturnType<typeof unmarshalError> } => {
    try {
      return { ok: true, v: type.decode(raw) as R };
    } catch (e) {
      return { ok: false, err: unmarshalError(e) };
    }
  };

  const Campaign: Unary = (call, cb) => {
    const d = decode<{ name: Uint8Array; lease: number; value: Uint8Array }>(T.CampaignRequest, call.request);
    if (!d.ok) return cb(d.err);
    campaign(host, d.v.name ?? EMPTY, d.v.lease, d.v.value ?? EMPTY, callSignal(call)).then(
      (r) => cb(null, T.CampaignResponse.encode({ header: r.header, leader: r.leader }).finish()),
      (err: unknown) => cb(fail(err)),
    );
  };

  const Proclaim: Unary = (call, cb) => {
    const d = decode<{ leader?: LeaderKey | null; value: Uint8Array }>(T.ProclaimRequest, call.request);
    if (!d.ok) return cb(d.err);
    if (!d.v.leader) return cb(missingLeaderKey());
    proclaim(host, d.v.leader, d.v.value ?? EMPTY).then(
      (header) => cb(null, T.ProclaimResponse.encode({ header }).finish()),
      (err: unknown) => cb(fail(err)),
    );
  };

  const Resign: Unary = (call, cb) => {
    const d = decode<{ leader?: LeaderKey | null }>(T.ResignRequest, call.request);
    if (!d.ok) return cb(d.err);
    if (!d.v.leader) return cb(missingLeaderKey());
    resign(host, d.v.leader).then(
      (header) => cb(null, T.ResignResponse.encode({ header }).finish()),
      (err: unknown) => cb(fail(err)),
    );
  };

  const Leader: Unary = (call, cb) => {
    const d = decode<{ name: Uint8Array }>(T.LeaderRequest, call.request);
    if (!d.ok) return cb(d.err);
    leader(host, d.v.name ?? EMPTY).then(
      (r) => cb(null, T.LeaderResponse.encode({ header: r.header, kv: r.kv }).finish()),
      (err: unknown) => cb(fail(err)),
    );
  };

  const Observe: ServerStream = (call) => {
    const d = decode<{ name: Uint8Array }>(T.LeaderRequest, call.request);
    if (!d.ok) {
      call.emit('error', d.err);
      return;
    }
    const signal = callSignal(call);
    observe(host, d.v.name ?? EMPTY, signal, (header, kv) => {
      if (!signal.aborted) call.write(T.LeaderResponse.encode({ header, kv }).finish());
    }).then(
      () => {
        if (!signal.aborted) call.end();
      },
      (err: unknown) => {
        if (!signal.aborted) call.emit('error', fail(err));
      },
    );
  };

  return { Campaign, Proclaim, Leader, Observe, Resign };
}

/** The Election service entry for createGrpcServer's `extraServices`. */
export function electionServiceEntry(host: ConcurrencyHost, logger?: GrpcLogger): ExtraService {
  return { definition: ElectionService, implementation: createElectionHandlers(host, logger) };
}
