/**
 * The v3 JSON gateway's routes as etcd 3.4 serves them (its grpc-gateway registrations, checked against etcd
 * 3.4.23): every route is a POST under each of {@link V3_PREFIXES}, mapped to one gRPC method. A route whose
 * method is not in our .proto files yet (the Auth user/role calls until auth lands) is left out, so it answers
 * 404 like any unknown path; adding an API is adding its line here (plus its handler on the gRPC side).
 * Maintenance.HashKV has no route in etcd 3.4 (404 there), so none here.
 */
import type protobuf from 'protobufjs';
import { root } from '../../wire/codec';
import { planOf, type TypePlan } from './json-codec';

/** Path prefixes of the v3 gateway in etcd 3.4 (`/v3alpha/` is gone: plain 404 there). */
export const V3_PREFIXES = ['/v3/', '/v3beta/'] as const;

/** [path below the prefix, gRPC service, method]. */
export const V3_ROUTE_TABLE: ReadonlyArray<readonly [string, string, string]> = [
  ['kv/range', 'etcdserverpb.KV', 'Range'],
  ['kv/put', 'etcdserverpb.KV', 'Put'],
  ['kv/deleterange', 'etcdserverpb.KV', 'DeleteRange'],
  ['kv/txn', 'etcdserverpb.KV', 'Txn'],
  ['kv/compaction', 'etcdserverpb.KV', 'Compact'],
  ['watch', 'etcdserverpb.Watch', 'Watch'],
  ['lease/grant', 'etcdserverpb.Lease', 'LeaseGrant'],
  ['lease/revoke', 'etcdserverpb.Lease', 'LeaseRevoke'],
  ['kv/lease/revoke', 'etcdserverpb.Lease', 'LeaseRevoke'],
  ['lease/keepalive', 'etcdserverpb.Lease', 'LeaseKeepAlive'],
  ['lease/timetolive', 'etcdserverpb.Lease', 'LeaseTimeToLive'],
  ['kv/lease/timetolive', 'etcdserverpb.Lease', 'LeaseTimeToLive'],
  ['lease/leases', 'etcdserverpb.Lease', 'LeaseLeases'],
  ['kv/lease/leases', 'etcdserverpb.Lease', 'LeaseLeases'],
  ['cluster/member/add', 'etcdserverpb.Cluster', 'MemberAdd'],
  ['cluster/member/remove', 'etcdserverpb.Cluster', 'MemberRemove'],
  ['cluster/member/update', 'etcdserverpb.Cluster', 'MemberUpdate'],
  ['cluster/member/list', 'etcdserverpb.Cluster', 'MemberList'],
  ['cluster/member/promote', 'etcdserverpb.Cluster', 'MemberPromote'],
  ['maintenance/alarm', 'etcdserverpb.Maintenance', 'Alarm'],
  ['maintenance/status', 'etcdserverpb.Maintenance', 'Status'],
  ['maintenance/defragment', 'etcdserverpb.Maintenance', 'Defragment'],
  ['maintenance/hash', 'etcdserverpb.Maintenance', 'Hash'],
  ['maintenance/snapshot', 'etcdserverpb.Maintenance', 'Snapshot'],
  ['maintenance/transfer-leadership', 'etcdserverpb.Maintenance', 'MoveLeader'],
  ['lock/lock', 'v3lockpb.Lock', 'Lock'],
  ['lock/unlock', 'v3lockpb.Lock', 'Unlock'],
  ['election/campaign', 'v3electionpb.Election', 'Campaign'],
  ['election/proclaim', 'v3electionpb.Election', 'Proclaim'],
  ['election/leader', 'v3electionpb.Election', 'Leader'],
  ['election/observe', 'v3electionpb.Election', 'Observe'],
  ['election/resign', 'v3electionpb.Election', 'Resign'],
  ['auth/enable', 'etcdserverpb.Auth', 'AuthEnable'],
  ['auth/disable', 'etcdserverpb.Auth', 'AuthDisable'],
  ['auth/authenticate', 'etcdserverpb.Auth', 'Authenticate'],
  ['auth/user/add', 'etcdserverpb.Auth', 'UserAdd'],
  ['auth/user/get', 'etcdserverpb.Auth', 'UserGet'],
  ['auth/user/list', 'etcdserverpb.Auth', 'UserList'],
  ['auth/user/delete', 'etcdserverpb.Auth', 'UserDelete'],
  ['auth/user/changepw', 'etcdserverpb.Auth', 'UserChangePassword'],
  ['auth/user/grant', 'etcdserverpb.Auth', 'UserGrantRole'],
  ['auth/user/revoke', 'etcdserverpb.Auth', 'UserRevokeRole'],
  ['auth/role/add', 'etcdserverpb.Auth', 'RoleAdd'],
  ['auth/role/get', 'etcdserverpb.Auth', 'RoleGet'],
  ['auth/role/list', 'etcdserverpb.Auth', 'RoleList'],
  ['auth/role/delete', 'etcdserverpb.Auth', 'RoleDelete'],
  ['auth/role/grant', 'etcdserverpb.Auth', 'RoleGrantPermission'],
  ['auth/role/revoke', 'etcdserverpb.Auth', 'RoleRevokePermission'],
];

/** How a route's gRPC method streams (grpc-gateway: unary, server-streamed, or bidi read from the body). */
export type RouteKind = 'unary' | 'server_stream' | 'bidi_stream';

/** One resolved route. */
export interface V3Route {
  /** gRPC path, e.g. "/etcdserverpb.KV/Range" (the key of the server's handler table). */
  grpcPath: string;
  method: string;
  kind: RouteKind;
  request: TypePlan;
  response: TypePlan;
}

/**
 * Resolves the table against the protobuf root: full path ("/v3/kv/range", "/v3beta/kv/range") → route.
 * Rows whose service or method is not defined are skipped.
 */
export function buildV3Routes(table: ReadonlyArray<readonly [string, string, string]> = V3_ROUTE_TABLE): Map<string, V3Route> {
  const out = new Map<string, V3Route>();
  for (const [rel, svcName, methodName] of table) {
    let m: protobuf.Method | undefined;
    try {
      m = root.lookupService(svcName).methods[methodName];
    } catch {
      m = undefined;
    }
    if (!m) continue;
    m.resolve();
    const route: V3Route = {
      grpcPath: `/${svcName}/${methodName}`,
      method: methodName,
      kind: m.requestStream ? 'bidi_stream' : m.responseStream ? 'server_stream' : 'unary',
      request: planOf(m.resolvedRequestType as protobuf.Type),
      response: planOf(m.resolvedResponseType as protobuf.Type),
    };
    for (const prefix of V3_PREFIXES) out.set(prefix + rel, route);
  }
  return out;
}
