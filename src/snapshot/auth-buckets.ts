/**
 * The auth store in etcd 3.4's backend buckets (etcd auth/store.go): `auth` holds `authEnabled` (one byte, 1 or 0)
 * and `authRevision` (u64 BE); `authUsers` maps a user name to a marshaled authpb.User (bcrypt hash, roles, options);
 * `authRoles` maps a role name to a marshaled authpb.Role (its key permissions). etcetera keeps the same state as one
 * record in the MVCC `meta` db (src/auth/store.ts AuthRecord); this file converts between the two.
 */
import type { AuthRecord, Permission, Role, User } from '../auth/store';
import { messageType } from '../wire/codec';
import { readU64be, u64be } from './etcd-schema';

const UserPb = messageType('authpb.User');
const RolePb = messageType('authpb.Role');

/** Key/value pairs of the three buckets, each in ascending key order. */
export interface AuthBuckets { auth: Array<[Buffer, Buffer]>; authUsers: Array<[Buffer, Buffer]>; authRoles: Array<[Buffer, Buffer]> }

const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');
const byKey = (a: [Buffer, Buffer], b: [Buffer, Buffer]): number => Buffer.compare(a[0], b[0]);

/**
 * The buckets etcd would hold for `record`; undefined (auth never used) gives etcd's fresh store: authRevision 1 only.
 * `authEnabled` is written when auth is on (etcd writes it on AuthEnable and AuthDisable; a disabled record does not
 * say whether it was ever enabled, and etcd reads a missing key as disabled).
 */
export function authBucketsOf(record: AuthRecord | undefined): AuthBuckets {
  const auth: Array<[Buffer, Buffer]> = [];
  if (record?.enabled === true) auth.push([utf8('authEnabled'), Buffer.from([1])]);
  auth.push([utf8('authRevision'), u64be(record?.revision ?? 1)]);
  const authUsers = (record?.users ?? []).map((u): [Buffer, Buffer] => [utf8(u.name), Buffer.from(UserPb.encode({
    name: utf8(u.name), password: utf8(u.password), roles: u.roles, options: u.noPassword ? { noPassword: true } : undefined,
  }).finish())]).sort(byKey);
  const authRoles = (record?.roles ?? []).map((r): [Buffer, Buffer] => [utf8(r.name), Buffer.from(RolePb.encode({
    name: utf8(r.name), keyPermission: r.perms.map((p) => ({ permType: p.permType, key: p.key, rangeEnd: p.rangeEnd })),
  }).finish())]).sort(byKey);
  return { auth: auth.sort(byKey), authUsers, authRoles };
}

type PbUser = { name?: Uint8Array; password?: Uint8Array; roles?: string[]; options?: { noPassword?: boolean } };
type PbRole = { name?: Uint8Array; keyPermission?: Array<{ permType?: number; key?: Uint8Array; rangeEnd?: Uint8Array }> };

/**
 * The auth record for etcd's buckets (entries as read from the file; an absent bucket is empty). Users' roles and
 * roles' permissions are kept in etcd's order (it stores them sorted). @throws RangeError on a malformed value.
 */
export function authRecordOf(auth: Iterable<{ key: Buffer; value: Buffer }>, users: Iterable<{ key: Buffer; value: Buffer }>,
  roles: Iterable<{ key: Buffer; value: Buffer }>): AuthRecord {
  let enabled = false;
  let revision = 1;
  for (const e of auth) {
    const name = e.key.toString('latin1');
    if (name === 'authEnabled') enabled = e.value.length === 1 && e.value[0] === 1;
    else if (name === 'authRevision') {
      const r = e.value.length === 8 ? readU64be(e.value, 0) : null;
      if (r === null) throw new RangeError('auth bucket: malformed authRevision');
      revision = r;
    }
  }
  const outUsers: User[] = [];
  for (const e of users) {
    const u = UserPb.decode(e.value) as unknown as PbUser;
    outUsers.push({
      name: Buffer.from(u.name ?? e.key).toString('utf8'), password: Buffer.from(u.password ?? []).toString('utf8'),
      roles: [...(u.roles ?? [])], noPassword: u.options?.noPassword === true,
    });
  }
  const outRoles: Role[] = [];
  for (const e of roles) {
    const r = RolePb.decode(e.value) as unknown as PbRole;
    const perms: Permission[] = (r.keyPermission ?? []).map((p) => ({
      permType: p.permType ?? 0, key: Uint8Array.from(p.key ?? []), rangeEnd: Uint8Array.from(p.rangeEnd ?? []),
    }));
    outRoles.push({ name: Buffer.from(r.name ?? e.key).toString('utf8'), perms });
  }
  return { enabled, revision, users: outUsers, roles: outRoles };
}
