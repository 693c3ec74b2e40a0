/**
 * etcd api: etcdserverpb.Cluster handlers over the raw codec: MemberList (`etcdctl member list`), MemberAdd
 * (`etcdctl member add NAME --peer-urls=URL [--learner]`), MemberRemove, MemberPromote and MemberUpdate (runtime
 * reconfiguration through Raft ConfChange entries, src/server/conf-change.ts). The membership changes answer
 * Unimplemented when the gateway does not offer them. A learner answers every Cluster call with etcd's
 * "etcdserver: rpc not supported for learner", as etcd 3.4's unary interceptor does.
 */
import type { handleUnaryCall, sendUnaryData, ServerUnaryCall, UntypedServiceImplementation } from '@grpc/grpc-js';
import { messageType, pb } from '../../wire/codec';
import { etcdError, EtcdError } from '../../errors';
import type { MaintenanceGateway, MemberInfo } from './gateway';
import { callLeader, forwardUnary, forwardedMetadata, isForwarded } from './forward';
import { decodeOrReply, toStatus, unimplemented, type GrpcLogger } from './status';

type Handler = handleUnaryCall<Buffer, Uint8Array>;
type Reply = sendUnaryData<Uint8Array>;
type Codec = { decode(b: Uint8Array): unknown; encode(m: object): { finish(): Uint8Array } };

const T = {
  MemberAddRequest: messageType('etcdserverpb.MemberAddRequest'),
  MemberAddResponse: messageType('etcdserverpb.MemberAddResponse'),
  MemberRemoveRequest: messageType('etcdserverpb.MemberRemoveRequest'),
  MemberRemoveResponse: messageType('etcdserverpb.MemberRemoveResponse'),
  MemberUpdateRequest: messageType('etcdserverpb.MemberUpdateRequest'),
  MemberUpdateResponse: messageType('etcdserverpb.MemberUpdateResponse'),
  MemberPromoteRequest: messageType('etcdserverpb.MemberPromoteRequest'),
  MemberPromoteResponse: messageType('etcdserverpb.MemberPromoteResponse'),
};

/** How long a follower keeps trying to forward a MemberPromote to the leader (ms; etcd: the request timeout). */
const FORWARD_BUDGET_MS = 7000;
/** Pause between attempts to reach the leader (ms). */
const PROMOTE_RETRY_MS = 200;
const PROMOTE_PATH = '/etcdserverpb.Cluster/MemberPromote';

/** Builds the Cluster handlers, keyed by proto method name, for grpc-js `addService` with ClusterService. */
export function createClusterHandlers(gateway: MaintenanceGateway, logger?: GrpcLogger): UntypedServiceImplementation {
  const learnerRefusal = (): EtcdError | null => (gateway.isLearner?.() ? etcdError('NotSupportedForLearner') : null);

  /** Decodes, refuses on a learner, runs `fn` and answers with its result encoded by `out`. */
  const serve = <Req>(reqType: Codec, out: Codec, fn: (req: Req, call: ServerUnaryCall<Buffer, Uint8Array>) => Promise<object> | object): Handler =>
    (call, cb: Reply) => {
      const req = decodeOrReply(reqType as never, call.request, cb) as Req | null;
      if (req === null) return;
      const refused = learnerRefusal();
      if (refused) return cb(toStatus(refused, logger));
      let r: Promise<object> | object;
      try {
        r = fn(req, call);
      } catch (err) {
        cb(toStatus(err, logger));
        return;
      }
      Promise.resolve(r).then(
        (v) => cb(null, out.encode(v).finish()),
        (err: unknown) => cb(toStatus(err, logger)),
      );
    };

  const header = () => gateway.members().header;
  const ids = (v: unknown): number => Number(v ?? 0);

  /** etcd api: Cluster.MemberList — the members as the gateway knows them. */
  const MemberList = serve(pb.MemberListRequest, pb.MemberListResponse, () => gateway.members());

  /** etcd api: Cluster.MemberAdd — the new member (no name until it starts) and the member list after the change. */
  const MemberAdd = serve<{ peerURLs?: string[]; isLearner?: boolean }>(T.MemberAddRequest, T.MemberAddResponse, async (req) => {
    const r = await gateway.addMember!(req.peerURLs ?? [], req.isLearner === true);
    return { header: header(), member: r.member, members: r.members };
  });

  /** etcd api: Cluster.MemberRemove. */
  const MemberRemove = serve<{ ID?: unknown }>(T.MemberRemoveRequest, T.MemberRemoveResponse, async (req) => ({
    header: header(),
    members: await gateway.removeMember!(ids(req.ID)),
  }));

  /** etcd api: Cluster.MemberUpdate (peer URLs). */
  const MemberUpdate = serve<{ ID?: unknown; peerURLs?: string[] }>(T.MemberUpdateRequest, T.MemberUpdateResponse, async (req) => ({
    header: header(),
    members: await gateway.updateMember!(ids(req.ID), req.peerURLs ?? []),
  }));

  /**
   * etcd api: Cluster.MemberPromote — decided by the leader; a follower forwards the request bytes to the leader's
   * client URLs and passes its answer (or error) through.
   */
  const MemberPromote: Handler = (call, cb) => {
    const req = decodeOrReply(T.MemberPromoteRequest, call.request, cb) as { ID?: unknown } | null;
    if (req === null) return;
    const refused = learnerRefusal();
    if (refused) return cb(toStatus(refused, logger));
    const local = async (): Promise<Uint8Array> => {
      const members: MemberInfo[] = await gateway.promoteMember!(ids(req.ID));
      return T.MemberPromoteResponse.encode({ header: header(), members }).finish();
    };
    // The leader's verdict is final; a transport failure or a leader change is retried until the budget runs out.
    const run = (): Promise<Uint8Array> => callLeader({
      timeoutMs: FORWARD_BUDGET_MS,
      forwarded: isForwarded(call.metadata),
      local,
      leaderUrls: () => gateway.leaderClientUrls?.() ?? [],
      remote: (url, deadline) => forwardUnary(url, PROMOTE_PATH, call.request, Math.max(1000, deadline - Date.now()), forwardedMetadata()),
      retryMs: PROMOTE_RETRY_MS,
    });
    run().then((b) => cb(null, b), (err: unknown) => cb(toStatus(err, logger)));
  };

  const notImplemented = (name: string): Handler => (_call, cb) => cb(unimplemented(name));
  return {
    MemberAdd: gateway.addMember ? MemberAdd : notImplemented('MemberAdd'),
    MemberRemove: gateway.removeMember ? MemberRemove : notImplemented('MemberRemove'),
    MemberUpdate: gateway.updateMember ? MemberUpdate : notImplemented('MemberUpdate'),
    MemberList,
    MemberPromote: gateway.promoteMember ? MemberPromote : notImplemented('MemberPromote'),
  };
}
