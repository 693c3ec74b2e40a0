/**
 * The auth-management requests that travel through Raft (etcd InternalRaftRequest's auth_* fields), one byte each
 * at the head of an EntryKind.AuthMgmt payload (src/apply/entry.ts). UserAdd and UserChangePassword carry the
 * bcrypt hash in the request's password field (hashed by the proposer); Authenticate carries
 * InternalAuthenticateRequest (name + simple-token prefix, no password).
 */
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

/**
 * etcd needAdminPermission: the operations only a root user may do once auth is enabled (checked at apply time).
 * UserGet (own user) and RoleGet (own roles) are checked apart; Authenticate needs nobody.
 */
export function needsAdmin(op: AuthOp): boolean {
  return op !== AuthOp.Authenticate && op !== AuthOp.UserGet && op !== AuthOp.RoleGet;
}
