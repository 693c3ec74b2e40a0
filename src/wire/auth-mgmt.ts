/**
 * The payload of an EntryKind.AuthMgmt entry (etcd InternalRaftRequest's auth_* fields): `[u8 AuthOp][protobuf
 * request]`. UserAdd and UserChangePassword carry the bcrypt hash in the request's password field (hashed by the
 * proposer, so the log never holds a password); Authenticate carries InternalAuthenticateRequest (name + simple-token
 * prefix).
 */
import { messageType } from './codec';

/** The auth-management requests that travel through Raft, one byte each at the head of the payload. */
export enum AuthOp {
  Enable = 1,
  Disable = 2,
  Authenticate = 3,
  UserAdd = 4,
  UserGet = 5,
  UserList = 6,
  UserDelete = 7,
  UserChangePassword = 8,
  UserGrantRole = 9,
  UserRevokeRole = 10,
  RoleAdd = 11,
  RoleGet = 12,
  RoleList = 13,
  RoleDelete = 14,
  RoleGrantPermission = 15,
  RoleRevokePermission = 16,
}

const T = (n: string) => messageType(`etcdserverpb.${n}`);
/** Request and response types per op (etcd api: etcdserverpb.Auth*). */
const TYPES: Record<AuthOp, { req: ReturnType<typeof T>; res: ReturnType<typeof T> }> = {
  [AuthOp.Enable]: { req: T('AuthEnableRequest'), res: T('AuthEnableResponse') },
  [AuthOp.Disable]: { req: T('AuthDisableRequest'), res: T('AuthDisableResponse') },
  [AuthOp.Authenticate]: { req: T('InternalAuthenticateRequest'), res: T('AuthenticateResponse') },
  [AuthOp.UserAdd]: { req: T('AuthUserAddRequest'), res: T('AuthUserAddResponse') },
  [AuthOp.UserGet]: { req: T('AuthUserGetRequest'), res: T('AuthUserGetResponse') },
  [AuthOp.UserList]: { req: T('AuthUserListRequest'), res: T('AuthUserListResponse') },
  [AuthOp.UserDelete]: { req: T('AuthUserDeleteRequest'), res: T('AuthUserDeleteResponse') },
  [AuthOp.UserChangePassword]: { req: T('AuthUserChangePasswordRequest'), res: T('AuthUserChangePasswordResponse') },
  [AuthOp.UserGrantRole]: { req: T('AuthUserGrantRoleRequest'), res: T('AuthUserGrantRoleResponse') },
  [AuthOp.UserRevokeRole]: { req: T('AuthUserRevokeRoleRequest'), res: T('AuthUserRevokeRoleResponse') },
  [AuthOp.RoleAdd]: { req: T('AuthRoleAddRequest'), res: T('AuthRoleAddResponse') },
  [AuthOp.RoleGet]: { req: T('AuthRoleGetRequest'), res: T('AuthRoleGetResponse') },
  [AuthOp.RoleList]: { req: T('AuthRoleListRequest'), res: T('AuthRoleListResponse') },
  [AuthOp.RoleDelete]: { req: T('AuthRoleDeleteRequest'), res: T('AuthRoleDeleteResponse') },
  [AuthOp.RoleGrantPermission]: { req: T('AuthRoleGrantPermissionRequest'), res: T('AuthRoleGrantPermissionResponse') },
  [AuthOp.RoleRevokePermission]: { req: T('AuthRoleRevokePermissionRequest'), res: T('AuthRoleRevokePermissionResponse') },
};

/** The protobuf types of an auth op (the API layer encodes requests with the same ones). */
export function authOpTypes(op: AuthOp): { req: ReturnType<typeof T>; res: ReturnType<typeof T> } {
  const t = TYPES[op];
  if (t === undefined) throw new RangeError(`unknown auth op ${op as number}`);
  return t;
}

/** Builds an AuthMgmt payload: `[u8 op][request bytes]`. */
export function encodeAuthMgmt(op: AuthOp, request: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + request.length);
  out[0] = op;
  out.set(request, 1);
  return out;
}

/** A decoded AuthMgmt payload. */
export interface AuthMgmtRequest { op: AuthOp; req: Record<string, unknown> }

/** Decodes an AuthMgmt payload. Throws on an unknown op or bad protobuf (a corrupt entry). */
export function decodeAuthMgmt(payload: Uint8Array): AuthMgmtRequest {
  if (payload.length < 1) throw new RangeError('empty auth payload');
  const op = payload[0] as AuthOp;
  return { op, req: authOpTypes(op).req.decode(payload.subarray(1)) as unknown as Record<string, unknown> };
}

