/**
 * The auth store: users, roles, key-range permissions, the enabled flag and the auth revision (etcd auth:
 * store.go, range_perm_cache.go; etcd api: Auth service). Thread-agnostic and pure: it keeps its state in memory and
 * hands every change to a {@link AuthBackend} that the caller persists in the same transaction as the Raft entry
 * that caused it (the apply worker: the MVCC `meta` db). The main thread holds a read-only copy reloaded when the
 * apply worker publishes a new auth sequence number, and answers admission checks from it.
 *
 * Errors are etcd's (src/errors.ts): mutations throw EtcdError before changing anything.
 * Passwords arrive already bcrypt-hashed (the proposer hashes before proposing: the log never holds a password
 * and the apply worker never spends ~100 ms per hash).
 */
import { EtcdError, Errors } from '../errors';
import { IntervalSet, intervalOf, isSingleKey, type KeyInterval } from './ranges';

/** etcd's reserved names. */
export const ROOT_USER = 'root';
export const ROOT_ROLE = 'root';

/** authpb.Permission.Type. */
export enum PermType {
  Read = 0,
  Write = 1,
  ReadWrite = 2,
}

/** One permission of a role (etcd authpb.Permission); keys are bytes. */
export interface Permission { permType: PermType; key: Uint8Array; rangeEnd: Uint8Array }
/** A user; `password` is the bcrypt hash ('' with noPassword). Roles sorted in byte order. */
export interface User { name: string; password: string; roles: string[]; noPassword: boolean }
/** A role; permissions sorted by key. */
export interface Role { name: string; perms: Permission[] }

/** The persisted state (one record). */
export interface AuthRecord {
  enabled: boolean;
  /** etcd's auth revision: bumped by every change of users, roles, permissions and by AuthDisable. Starts at 1. */
  revision: number;
  users: User[];
  roles: Role[];
}

/** Where changes go (called with the whole new record after each change). */
export interface AuthBackend {
  save(record: AuthRecord): void;
}

/** Who a request acts as: the user name and the auth revision it was admitted under (0: nobody). */
export interface AuthInfo { username: string; revision: number }

/**
 * The identity of the member's own proposals made on nobody's behalf (lease expiry: etcd AuthStore.WithRoot):
 * root at any auth revision. Never derived from a client's credentials.
 */
export const INTERNAL_ROOT: AuthInfo = Object.freeze({ username: ROOT_USER, revision: Number.MAX_SAFE_INTEGER });

/** The identity of a request without credentials. */
export const NO_AUTH: AuthInfo = Object.freeze({ username: '', revision: 0 });

const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

interface MergedPerms { read: IntervalSet; write: IntervalSet }

/** A fresh, disabled store with no users or roles (etcd NewAuthStore commits revision 1 on an empty backend). */
export function emptyAuthRecord(): AuthRecord {
  return { enabled: false, revision: 1, users: [], roles: [] };
}

/** The auth store (see the module comment). */
export class AuthStore {
  private rec: AuthRecord;
  private readonly users = new Map<string, User>();
  private readonly roles = new Map<string, Role>();
  /** etcd's rangePermCache: merged read/write intervals per user. */
  private permCache = new Map<string, MergedPerms>();

  constructor(record: AuthRecord | undefined, private readonly backend: AuthBackend | null = null) {
    this.rec = record ?? emptyAuthRecord();
    this.reindex();
  }

  /** The state as persisted (shared, do not mutate). */
  record(): AuthRecord {
    return this.rec;
  }

  get enabled(): boolean {
    return this.rec.enabled;
  }

  get revision(): number {
    return this.rec.revision;
  }

  /** A user by name, or undefined. */
  user(name: string): User | undefined {
    return this.users.get(name);
  }

  /** True when `name` exists and has the root role (etcd hasRootRole). */
  isRoot(name: string): boolean {
    return this.users.get(name)?.roles.includes(ROOT_ROLE) ?? false;
  }

  /** etcd HasRole: the user exists and was granted `role`. */
  hasRole(name: string, role: string): boolean {
    return this.users.get(name)?.roles.includes(role) ?? false;
  }

  private reindex(): void {
    this.users.clear();
    this.roles.clear();
    for (const u of this.rec.users) this.users.set(u.name, u);
    for (const r of this.rec.roles) this.roles.set(r.name, r);
    this.permCache = new Map();
    for (const u of this.rec.users) {
      const read: KeyInterval[] = [];
      const write: KeyInterval[] = [];
      for (const roleName of u.roles) {
        const role = this.roles.get(roleName);
        if (role === undefined) continue;
        for (const p of role.perms) {
          const ivl = intervalOf(p.key, p.rangeEnd);
          if (p.permType === PermType.Read || p.permType === PermType.ReadWrite) read.push(ivl);
          if (p.permType === PermType.Write || p.permType === PermType.ReadWrite) write.push(ivl);
        }
      }
      this.permCache.set(u.name, { read: new IntervalSet(read), write: new IntervalSet(write) });
    }
  }

  /** Stores a new record: sorted, re-indexed, handed to the backend. */
  private commit(next: AuthRecord, bumpRevision: boolean): void {
    if (bumpRevision) next.revision = this.rec.revision + 1;
    next.users.sort((a, b) => byBytes(a.name, b.name));
    next.roles.sort((a, b) => byBytes(a.name, b.name));
    this.rec = next;
    this.reindex();
    this.backend?.save(next);
  }

  private draft(): AuthRecord {
    return {
      enabled: this.rec.enabled,
      revision: this.rec.revision,
      users: this.rec.users.map((u) => ({ ...u, roles: [...u.roles] })),
      roles: this.rec.roles.map((r) => ({ ...r, perms: r.perms.map((p) => ({ ...p })) })),
    };
  }

  // ---- mutations (etcd auth/store.go; run by the apply worker in Raft order) ----

  /** etcd AuthEnable: needs user root with role root; enabling twice is a no-op. No revision bump (as etcd). */
  authEnable(): void {
    if (this.rec.enabled) return;
    const root = this.users.get(ROOT_USER);
    if (root === undefined) throw new EtcdError(Errors.RootUserNotExist);
    if (!root.roles.includes(ROOT_ROLE)) throw new EtcdError(Errors.RootRoleNotExist);
    const d = this.draft();
    d.enabled = true;
    this.commit(d, false);
  }

  /** etcd AuthDisable: disabling a disabled store is a no-op; otherwise bumps the revision. */
  authDisable(): void {
    if (!this.rec.enabled) return;
    const d = this.draft();
    d.enabled = false;
    this.commit(d, true);
  }

  /** etcd UserAdd: `hashedPassword` is the bcrypt hash ('' with noPassword). */
  userAdd(name: string, hashedPassword: string, noPassword: boolean): void {
    if (name.length === 0) throw new EtcdError(Errors.UserEmpty);
    if (this.users.has(name)) throw new EtcdError(Errors.UserAlreadyExist);
    const d = this.draft();
    d.users.push({ name, password: noPassword ? '' : hashedPassword, roles: [], noPassword });
    this.commit(d, true);
  }

  /** etcd UserDelete: root cannot be deleted while auth is enabled. */
  userDelete(name: string): void {
    if (this.rec.enabled && name === ROOT_USER) throw new EtcdError(Errors.InvalidAuthMgmt);
    if (!this.users.has(name)) throw new EtcdError(Errors.UserNotFound);
    const d = this.draft();
    d.users = d.users.filter((u) => u.name !== name);
    this.commit(d, true);
  }

  /** etcd UserChangePassword (`hashedPassword` already bcrypt-hashed). */
  userChangePassword(name: string, hashedPassword: string): void {
    if (!this.users.has(name)) throw new EtcdError(Errors.UserNotFound);
    const d = this.draft();
    const u = d.users.find((x) => x.name === name)!;
    u.password = hashedPassword;
    this.commit(d, true);
  }

  /** etcd UserGrantRole: the role must exist unless it is `root`; granting twice changes nothing (no bump). */
  userGrantRole(name: string, role: string): void {
    const user = this.users.get(name);
    if (user === undefined) throw new EtcdError(Errors.UserNotFound);
    if (role !== ROOT_ROLE && !this.roles.has(role)) throw new EtcdError(Errors.RoleNotFound);
    if (user.roles.includes(role)) return;
    const d = this.draft();
    const u = d.users.find((x) => x.name === name)!;
    u.roles.push(role);
    u.roles.sort(byBytes);
    this.commit(d, true);
  }

  /** etcd UserRevokeRole: root keeps role root while auth is enabled. */
  userRevokeRole(name: string, role: string): void {
    if (this.rec.enabled && name === ROOT_USER && role === ROOT_ROLE) throw new EtcdError(Errors.InvalidAuthMgmt);
    const user = this.users.get(name);
    if (user === undefined) throw new EtcdError(Errors.UserNotFound);
    if (!user.roles.includes(role)) throw new EtcdError(Errors.RoleNotGranted);
    const d = this.draft();
    const u = d.users.find((x) => x.name === name)!;
    u.roles = u.roles.filter((r) => r !== role);
    this.commit(d, true);
  }

  /** etcd UserGet: the user's roles. */
  userGet(name: string): string[] {
    const u = this.users.get(name);
    if (u === undefined) throw new EtcdError(Errors.UserNotFound);
    return [...u.roles];
  }

  /** etcd UserList: names in byte order. */
  userList(): string[] {
    return this.rec.users.map((u) => u.name);
  }

  /** etcd RoleAdd. */
  roleAdd(name: string): void {
    if (name.length === 0) throw new EtcdError(Errors.RoleEmpty);
    if (this.roles.has(name)) throw new EtcdError(Errors.RoleAlreadyExist);
    const d = this.draft();
    d.roles.push({ name, perms: [] });
    this.commit(d, true);
  }

  /** etcd RoleGet: the role's permissions, sorted by key. */
  roleGet(name: string): Permission[] {
    const r = this.roles.get(name);
    if (r === undefined) throw new EtcdError(Errors.RoleNotFound);
    return r.perms.map((p) => ({ ...p }));
  }

  /** etcd RoleList: names in byte order. */
  roleList(): string[] {
    return this.rec.roles.map((r) => r.name);
  }

  /** etcd RoleDelete: also revokes the role from every user; role root cannot go while auth is enabled. */
  roleDelete(name: string): void {
    if (this.rec.enabled && name === ROOT_ROLE) throw new EtcdError(Errors.InvalidAuthMgmt);
    if (!this.roles.has(name)) throw new EtcdError(Errors.RoleNotFound);
    const d = this.draft();
    d.roles = d.roles.filter((r) => r.name !== name);
    for (const u of d.users) u.roles = u.roles.filter((r) => r !== name);
    this.commit(d, true);
  }

  /**
   * etcd RoleGrantPermission: a permission on the same [key, rangeEnd) replaces the type of the existing one,
   * otherwise it is added and the list re-sorted by key.
   */
  roleGrantPermission(name: string, perm: Permission): void {
    if (!this.roles.has(name)) throw new EtcdError(Errors.RoleNotFound);
    const d = this.draft();
    const role = d.roles.find((r) => r.name === name)!;
    const same = role.perms.find((p) => Buffer.compare(p.key, perm.key) === 0 && Buffer.compare(p.rangeEnd, perm.rangeEnd) === 0);
    if (same !== undefined) same.permType = perm.permType;
    else {
      role.perms.push({ permType: perm.permType, key: Uint8Array.from(perm.key), rangeEnd: Uint8Array.from(perm.rangeEnd) });
      // Go's sort.Sort is not stable; equal keys (different range ends) keep insertion order here.
      role.perms.sort((a, b) => Buffer.compare(a.key, b.key));
    }
    this.commit(d, true);
  }

  /** etcd RoleRevokePermission: removes the permission with exactly this key and range end. */
  roleRevokePermission(name: string, key: Uint8Array, rangeEnd: Uint8Array): void {
    if (!this.roles.has(name)) throw new EtcdError(Errors.RoleNotFound);
    const d = this.draft();
    const role = d.roles.find((r) => r.name === name)!;
    const kept = role.perms.filter((p) => Buffer.compare(p.key, key) !== 0 || Buffer.compare(p.rangeEnd, rangeEnd) !== 0);
    if (kept.length === role.perms.length) throw new EtcdError(Errors.PermissionNotGranted);
    role.perms = kept;
    this.commit(d, true);
  }

  /**
   * etcd Authenticate at apply time: auth must be enabled and the user exist with a password (the password itself
   * was checked by the proposer). Throws AuthNotEnabled / AuthFailed.
   */
  checkAuthenticate(name: string): void {
    if (!this.rec.enabled) throw new EtcdError(Errors.AuthNotEnabled);
    const u = this.users.get(name);
    if (u === undefined || u.noPassword) throw new EtcdError(Errors.AuthFailed);
  }

  // ---- permission checks (etcd isOpPermitted / IsAdminPermitted) ----

  /**
   * etcd isOpPermitted: null when `ai` may do `type` on [key, rangeEnd) (rangeEnd empty: the single key),
   * otherwise the error: UserEmpty (no identity), AuthOldRevision (admitted under an older auth revision),
   * PermissionDenied.
   */
  opError(ai: AuthInfo, key: Uint8Array, rangeEnd: Uint8Array | null | undefined, type: PermType.Read | PermType.Write): EtcdError | null {
    if (!this.rec.enabled) return null;
    if (ai.revision === 0) return new EtcdError(Errors.UserEmpty);
    if (ai.revision < this.rec.revision) return new EtcdError(Errors.AuthOldRevision);
    const u = this.users.get(ai.username);
    if (u === undefined) return new EtcdError(Errors.PermissionDenied);
    if (u.roles.includes(ROOT_ROLE)) return null;
    const perms = this.permCache.get(ai.username);
    if (perms === undefined) return new EtcdError(Errors.PermissionDenied);
    const set = type === PermType.Read ? perms.read : perms.write;
    const ok = isSingleKey(rangeEnd) ? set.containsKey(key) : set.covers(intervalOf(key, rangeEnd));
    return ok ? null : new EtcdError(Errors.PermissionDenied);
  }

  /** etcd IsAdminPermitted: null when auth is off or `ai` has role root; else UserEmpty / UserNotFound / PermissionDenied. */
  adminError(ai: AuthInfo | null): EtcdError | null {
    if (!this.rec.enabled) return null;
    if (ai === null || ai.username === '') return new EtcdError(Errors.UserEmpty);
    const u = this.users.get(ai.username);
    if (u === undefined) return new EtcdError(Errors.UserNotFound);
    if (!u.roles.includes(ROOT_ROLE)) return new EtcdError(Errors.PermissionDenied);
    return null;
  }
}
