/**
 * The apply side of etcd's auth (etcd etcdserver/apply_auth.go authApplierV3 + apply.go's Auth* appliers): runs
 * EntryKind.AuthMgmt entries against the auth store (persisted through the MvccStore in the batch's LMDB
 * transaction) and checks the permissions of KV and lease requests against the identity they were admitted under.
 */
import type { ResponseHeader } from '../wire/codec';
import { authOpTypes, type AuthMgmtRequest } from '../wire/auth-mgmt';
import { EtcdError, Errors } from '../errors';
import { AuthOp, needsAdmin } from '../auth/ops';
import { deleteError, leaseKeysError, rangeError, txnError, type DeleteLike, type PutLike, type TxnLike } from '../auth/request-perms';
import { AuthStore, PermType, type AuthInfo, type AuthRecord, type Permission } from '../auth/store';
import type { MvccStore } from '../mvcc/store';
import { EntryKind } from '../wire/entry';

const EMPTY = new Uint8Array(0);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const bytes = (v: unknown): Uint8Array => (v instanceof Uint8Array ? v : EMPTY);

/** Applies auth entries and checks request permissions for one Applier (single writer). */
export class AuthApplier {
  readonly auth: AuthStore;

  /** @param onChange called after every change of the auth store (the Applier bumps ApplyWord.AuthSeq). */
  constructor(private readonly store: MvccStore, private readonly onChange: () => void) {
    this.auth = new AuthStore(store.authRecord() as AuthRecord | undefined, { save: (r) => store.putAuthRecord(r) });
  }

  /**
   * Permission check of a KV / lease request at apply time (etcd authApplierV3.Put/DeleteRange/Txn/LeaseRevoke).
   * Throws the EtcdError; a no-op while auth is disabled.
   */
  check(kind: EntryKind, req: unknown, ai: AuthInfo): void {
    const as = this.auth;
    if (!as.enabled) return;
    let e: EtcdError | null = null;
    switch (kind) {
      case EntryKind.Put: {
        const p = req as PutLike;
        e = as.opError(ai, p.key ?? EMPTY, null, PermType.Write);
        // etcd checkLeasePuts: attaching to a lease whose keys the user could not write is refused.
        if (e === null && p.lease) e = leaseKeysError(as, ai, this.store.leaseKeys(p.lease));
        if (e === null && p.prevKv) e = rangeError(as, ai, { key: p.key });
        break;
      }
      case EntryKind.DeleteRange:
        e = deleteError(as, ai, req as DeleteLike);
        break;
      case EntryKind.Txn:
        e = txnError(as, ai, req as TxnLike);
        break;
      case EntryKind.LeaseRevoke:
        e = leaseKeysError(as, ai, this.store.leaseKeys((req as { ID?: number }).ID ?? 0));
        break;
      default:
        break;
    }
    if (e !== null) throw e;
  }

  /**
   * Applies one auth op as `ai` (etcd authApplierV3.Apply + applierV3backend.Auth*). `index` is the entry's Raft
   * index (simple tokens end with it). Returns the encoded response; throws EtcdError.
   */
  apply(m: AuthMgmtRequest, ai: AuthInfo, index: number, header: () => ResponseHeader): Uint8Array {
    const as = this.auth;
    const { op, req } = m;
    if (needsAdmin(op)) {
      const e = as.adminError(ai);
      if (e !== null) throw e;
    }
    const before = as.record();
    const extra: Record<string, unknown> = {};
    switch (op) {
      case AuthOp.Enable:
        as.authEnable();
        break;
      case AuthOp.Disable:
        as.authDisable();
        break;
      case AuthOp.Authenticate: {
        as.checkAuthenticate(str(req['name']));
        const prefix = str(req['simpleToken']);
        extra['token'] = prefix.length > 0 ? `${prefix}.${index}` : '';
        break;
      }
      case AuthOp.UserAdd: {
        const opts = req['options'] as { noPassword?: boolean } | undefined;
        as.userAdd(str(req['name']), str(req['password']), opts?.noPassword === true);
        break;
      }
      case AuthOp.UserGet: {
        // etcd: a user may read itself without root.
        const e = as.adminError(ai);
        if (e !== null && str(req['name']) !== ai.username) throw e;
        extra['roles'] = as.userGet(str(req['name']));
        break;
      }
      case AuthOp.UserList:
        extra['users'] = as.userList();
        break;
      case AuthOp.UserDelete:
        as.userDelete(str(req['name']));
        break;
      case AuthOp.UserChangePassword:
        as.userChangePassword(str(req['name']), str(req['password']));
        break;
      case AuthOp.UserGrantRole:
        as.userGrantRole(str(req['user']), str(req['role']));
        break;
      case AuthOp.UserRevokeRole:
        as.userRevokeRole(str(req['name']), str(req['role']));
        break;
      case AuthOp.RoleAdd:
        as.roleAdd(str(req['name']));
        break;
      case AuthOp.RoleGet: {
        // etcd: a user may read the roles it was granted without root.
        const e = as.adminError(ai);
        if (e !== null && !as.hasRole(ai.username, str(req['role']))) throw e;
        extra['perm'] = as.roleGet(str(req['role']));
        break;
      }
      case AuthOp.RoleList:
        extra['roles'] = as.roleList();
        break;
      case AuthOp.RoleDelete:
        as.roleDelete(str(req['role']));
        break;
      case AuthOp.RoleGrantPermission: {
        const p = (req['perm'] ?? {}) as { permType?: number; key?: Uint8Array; rangeEnd?: Uint8Array };
        const perm: Permission = { permType: (p.permType ?? 0) as PermType, key: bytes(p.key), rangeEnd: bytes(p.rangeEnd) };
        as.roleGrantPermission(str(req['name']), perm);
        break;
      }
      case AuthOp.RoleRevokePermission:
        as.roleRevokePermission(str(req['role']), bytes(req['key']), bytes(req['rangeEnd']));
        break;
      default:
        throw new EtcdError(Errors.InvalidAuthMgmt);
    }
    if (as.record() !== before) this.onChange();
    return authOpTypes(op).res.encode({ header: header(), ...extra }).finish();
  }
}
