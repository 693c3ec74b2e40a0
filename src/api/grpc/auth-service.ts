/**
 * etcd api: etcdserverpb.Auth handlers over the raw codec (etcd v3rpc/auth.go): Authenticate checks the password
 * and proposes a token; every other method proposes the client's request through Raft as the caller (the apply
 * worker enforces root-only operations again at apply time). Errors are etcd's (src/errors.ts).
 */
import type { handleUnaryCall, UntypedServiceImplementation } from '@grpc/grpc-js';
import { AuthOp } from '../../auth/ops';
import { messageType } from '../../wire/codec';
import type { AuthGateway } from './gateway';
import { withIdentity } from './auth-gate';
import { decodeOrReply, toStatus, type GrpcLogger } from './status';

type Handler = handleUnaryCall<Buffer, Uint8Array>;

const AuthenticateRequest = messageType('etcdserverpb.AuthenticateRequest');

/** Proto method name → auth op, for every method but Authenticate. */
const OPS: Record<string, [AuthOp, string]> = {
  AuthEnable: [AuthOp.Enable, 'AuthEnableRequest'],
  AuthDisable: [AuthOp.Disable, 'AuthDisableRequest'],
  UserAdd: [AuthOp.UserAdd, 'AuthUserAddRequest'],
  UserGet: [AuthOp.UserGet, 'AuthUserGetRequest'],
  UserList: [AuthOp.UserList, 'AuthUserListRequest'],
  UserDelete: [AuthOp.UserDelete, 'AuthUserDeleteRequest'],
  UserChangePassword: [AuthOp.UserChangePassword, 'AuthUserChangePasswordRequest'],
  UserGrantRole: [AuthOp.UserGrantRole, 'AuthUserGrantRoleRequest'],
  UserRevokeRole: [AuthOp.UserRevokeRole, 'AuthUserRevokeRoleRequest'],
  RoleAdd: [AuthOp.RoleAdd, 'AuthRoleAddRequest'],
  RoleGet: [AuthOp.RoleGet, 'AuthRoleGetRequest'],
  RoleList: [AuthOp.RoleList, 'AuthRoleListRequest'],
  RoleDelete: [AuthOp.RoleDelete, 'AuthRoleDeleteRequest'],
  RoleGrantPermission: [AuthOp.RoleGrantPermission, 'AuthRoleGrantPermissionRequest'],
  RoleRevokePermission: [AuthOp.RoleRevokePermission, 'AuthRoleRevokePermissionRequest'],
};

/** Builds the Auth handlers keyed by proto method name (for grpc-js addService with AuthService). */
export function createAuthHandlers(auth: AuthGateway, logger?: GrpcLogger): UntypedServiceImplementation {
  const impl: Record<string, Handler> = {};

  /** etcd api: Auth.Authenticate — no identity needed; the password is checked off the reactor. */
  impl['Authenticate'] = (call, cb) => {
    const r = decodeOrReply<{ name: string; password: string }>(AuthenticateRequest, call.request, cb);
    if (r === null) return;
    auth.authenticate(r.name, r.password).then(
      (res) => cb(null, res),
      (e: unknown) => cb(toStatus(e, logger)),
    );
  };

  for (const [method, [op, type]] of Object.entries(OPS)) {
    const reqType = messageType(`etcdserverpb.${type}`);
    impl[method] = (call, cb) => {
      if (decodeOrReply(reqType, call.request, cb) === null) return;
      const fail = (e: unknown): void => cb(toStatus(e, logger));
      withIdentity(auth, call, fail, (ai) => {
        auth.manage(op, call.request, ai).then((res) => cb(null, res), fail);
      });
    };
  }
  return impl;
}
