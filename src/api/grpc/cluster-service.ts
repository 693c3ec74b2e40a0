/**
 * etcd api: etcdserverpb.Cluster handlers over the raw codec. Served: MemberList (`etcdctl member list`).
 * Membership changes (MemberAdd/Remove/Update/Promote) answer Unimplemented ("method X not implemented").
 */
import type { handleUnaryCall, UntypedServiceImplementation } from '@grpc/grpc-js';
import { pb } from '../proto/codec';
import type { MaintenanceGateway } from './gateway';
import { decodeOrReply, toStatus, unimplemented, type GrpcLogger } from './status';

type Handler = handleUnaryCall<Buffer, Uint8Array>;

/** Builds the Cluster handlers, keyed by proto method name, for grpc-js `addService` with ClusterService. */
export function createClusterHandlers(gateway: MaintenanceGateway, logger?: GrpcLogger): UntypedServiceImplementation {
  /** etcd api: Cluster.MemberList — the members as the gateway knows them. */
  const MemberList: Handler = (call, cb) => {
    if (decodeOrReply(pb.MemberListRequest, call.request, cb) === null) return;
    let bytes: Uint8Array;
    try {
      bytes = pb.MemberListResponse.encode(gateway.members()).finish();
    } catch (err) {
      cb(toStatus(err, logger));
      return;
    }
    cb(null, bytes);
  };
  const notImplemented = (name: string): Handler => (_call, cb) => cb(unimplemented(name));
  return {
    MemberAdd: notImplemented('MemberAdd'),
    MemberRemove: notImplemented('MemberRemove'),
    MemberUpdate: notImplemented('MemberUpdate'),
    MemberList,
    MemberPromote: notImplemented('MemberPromote'),
  };
}
