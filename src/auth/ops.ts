/**
 * Which auth-management operations (src/wire/auth-mgmt.ts AuthOp) need root (etcd apply_auth.go).
 */
import { AuthOp } from '../wire/auth-mgmt';

export { AuthOp };

/**
 * etcd needAdminPermission: the operations only a root user may do once auth is enabled (checked at apply time).
 * UserGet (own user) and RoleGet (own roles) are checked apart; Authenticate needs nobody.
 */
export function needsAdmin(op: AuthOp): boolean {
  return op !== AuthOp.Authenticate && op !== AuthOp.UserGet && op !== AuthOp.RoleGet;
}
