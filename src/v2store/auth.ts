/**
 * etcd 3.4's v2 auth store (etcd api: v2auth, served under /v2/auth): users, roles with key-pattern read/write
 * permissions, and the enabled flag, kept apart from the v3 auth store as etcd keeps them (etcd stores them in its
 * v2 store under the hidden `/2/` directory; here they are `a…` keys of the same `v2` database, so they are as
 * durable as v2 keys and travel in snapshots).
 *
 * Writes are applied in the apply worker ({@link applyV2Auth}); every change takes one v2 store index with an event no
 * watcher can match (etcd's `/2/…` events are outside the keys API's `/1/` space), and the first change of a store
 * takes {@link AUTH_SETUP_INDEXES} more (etcd creates its `/2/` directories and flag then), so X-Etcd-Index moves as
 * etcd's does. Answers are etcd's status codes and messages, measured on etcd 3.4.23.
 */
import type { V2Nodes } from './nodes';
import type { V2Store } from './store';

/** Store indexes etcd's first v2 auth change takes before the change itself (its `/2/` setup writes). */
export const AUTH_SETUP_INDEXES = 4;

/** The built-in role every root user has (never stored, never changed). */
export const ROOT_ROLE = 'root';
/** The role of requests without credentials, created with full access when auth is enabled. */
export const GUEST_ROLE = 'guest';

/** A stored user: bcrypt password hash and role names. */
export interface V2User {
  user: string;
  password: string;
  roles: string[] | null;
}

/** A role's key patterns (`/a/*` is a prefix, anything else one key); null where etcd writes JSON null. */
export interface V2Perms {
  read: string[] | null;
  write: string[] | null;
}

export interface V2Role {
  role: string;
  permissions: { kv: V2Perms };
}

/** A v2 auth change as proposed (passwords already hashed by the member that took the request). */
export type V2AuthOp =
  | { op: 'putUser'; user: string; password?: string; roles?: string[]; grant?: string[]; revoke?: string[] }
  | { op: 'deleteUser'; user: string }
  | { op: 'putRole'; role: string; permissions?: Partial<V2Perms>; grant?: Partial<V2Perms>; revoke?: Partial<V2Perms> }
  | { op: 'deleteRole'; role: string }
  | { op: 'enable' }
  | { op: 'disable' };

/** An answer of /v2/auth: HTTP status and body (JSON text, or empty). */
export interface V2AuthAnswer {
  status: number;
  body: string;
}

const ROOT: V2Role = { role: ROOT_ROLE, permissions: { kv: { read: ['/*'], write: ['/*'] } } };
const GUEST_FULL: V2Role = { role: GUEST_ROLE, permissions: { kv: { read: ['/*'], write: ['/*'] } } };

const userKey = (n: string): string => `au/${n}`;
const roleKey = (n: string): string => `ar/${n}`;
const ENABLED = 'ae';
const SET_UP = 'ai';

const fail = (status: number, message: string): V2AuthAnswer => ({ status, body: JSON.stringify({ message }) });
const ok = (status: number, v: unknown): V2AuthAnswer => ({ status, body: `${JSON.stringify(v)}\n` });

/** Read access to the v2 auth state (main thread or apply worker). */
export class V2AuthView {
  constructor(protected readonly nodes: V2Nodes) {}

  enabled(): boolean {
    return this.nodes.aux(ENABLED) === true;
  }

  /** A user by name; the root user always has the root role (etcd 3.4 answers a revoke of it but keeps it). */
  user(name: string): V2User | undefined {
    const u = this.nodes.aux(userKey(name)) as V2User | undefined;
    if (u === undefined || name !== 'root' || (u.roles ?? []).includes(ROOT_ROLE)) return u;
    return { ...u, roles: sorted([...(u.roles ?? []), ROOT_ROLE]) };
  }

  /** A role by name; root is built in. */
  role(name: string): V2Role | undefined {
    if (name === ROOT_ROLE) return ROOT;
    return this.nodes.aux(roleKey(name)) as V2Role | undefined;
  }

  userNames(): string[] {
    return this.nodes.auxNames('au/');
  }

  roleNames(): string[] {
    const names = this.nodes.auxNames('ar/');
    if (!names.includes(ROOT_ROLE)) names.push(ROOT_ROLE);
    return names.sort();
  }

  /** GET /v2/auth/users/<name>: the user with its roles expanded. */
  getUser(name: string): V2AuthAnswer {
    const u = this.user(name);
    if (u === undefined) return fail(404, `auth: User ${name} does not exist.`);
    const roles: V2Role[] = [];
    for (const r of u.roles ?? []) {
      const role = this.role(r);
      if (role === undefined) return fail(404, `auth: Role ${r} does not exist.`);
      roles.push(role);
    }
    return ok(200, { user: name, roles });
  }

  /** GET /v2/auth/users: every user, roles expanded; a user with a role gone is listed without roles (as etcd). */
  listUsers(): V2AuthAnswer {
    const names = this.userNames();
    if (names.length === 0) return ok(200, { users: null });
    const users = names.map((n) => {
      const roles = (this.user(n)?.roles ?? []).map((r) => this.role(r));
      return roles.length === 0 || roles.some((r) => r === undefined) ? { user: n } : { user: n, roles };
    });
    return ok(200, { users });
  }

  getRole(name: string): V2AuthAnswer {
    const r = this.role(name);
    return r === undefined ? fail(404, `auth: Role ${name} does not exist.`) : ok(200, r);
  }

  listRoles(): V2AuthAnswer {
    return ok(200, { roles: this.roleNames().map((n) => this.role(n)) });
  }

  /**
   * Whether `roles` may read (or write) `key` (a clean v2 path); `recursive` asks for the whole subtree, which
   * only a prefix pattern covering it grants. Root may do anything.
   */
  allowed(roles: readonly string[], key: string, write: boolean, recursive: boolean): boolean {
    for (const name of roles) {
      if (name === ROOT_ROLE) return true;
      const r = this.role(name);
      if (r === undefined) continue;
      for (const pat of (write ? r.permissions.kv.write : r.permissions.kv.read) ?? []) {
        if (matches(pat, key, recursive)) return true;
      }
    }
    return false;
  }
}

function matches(pattern: string, key: string, recursive: boolean): boolean {
  if (pattern.endsWith('*')) {
    const prefix = pattern.slice(0, -1);
    return key.startsWith(prefix) || `${key}/`.startsWith(prefix);
  }
  return !recursive && pattern === key;
}

function sorted(a: readonly string[]): string[] {
  return [...a].sort();
}

/** Applies one v2 auth change inside the apply worker's write transaction; answers etcd's status and JSON. */
export function applyV2Auth(store: V2Store, op: V2AuthOp): V2AuthAnswer {
  return new V2AuthWriter(store).apply(op);
}

class V2AuthWriter extends V2AuthView {
  constructor(private readonly store: V2Store) {
    super(store.nodes);
  }

  /** One store index per change (and etcd's setup indexes before the first). */
  private changed(what: string): void {
    if (this.nodes.aux(SET_UP) === undefined) {
      for (let i = 0; i < AUTH_SETUP_INDEXES; i++) this.store.recordHidden(`auth:setup/${i}`);
      this.nodes.putAux(SET_UP, true);
    }
    this.store.recordHidden(`auth:${what}`);
  }

  apply(op: V2AuthOp): V2AuthAnswer {
    switch (op.op) {
      case 'putUser':
        return this.putUser(op);
      case 'deleteUser': {
        if (this.user(op.user) === undefined) return fail(404, `auth: User ${op.user} does not exist`);
        if (op.user === 'root' && this.enabled()) return fail(403, 'auth: Cannot delete root user while auth is enabled.');
        this.nodes.removeAux(userKey(op.user));
        this.changed(`users/${op.user}`);
        return { status: 200, body: '' };
      }
      case 'putRole':
        return this.putRole(op);
      case 'deleteRole': {
        if (op.role === ROOT_ROLE) return fail(403, 'auth: Cannot modify role root: is root role.');
        if (this.role(op.role) === undefined) return fail(404, `auth: Role ${op.role} doesn't exist.`);
        this.nodes.removeAux(roleKey(op.role));
        this.changed(`roles/${op.role}`);
        return { status: 200, body: '' };
      }
      case 'enable': {
        if (this.enabled()) return fail(409, 'auth: already enabled');
        if (this.user('root') === undefined) return fail(409, 'auth: No root user available, please create one');
        if (this.role(GUEST_ROLE) === undefined) {
          this.nodes.putAux(roleKey(GUEST_ROLE), GUEST_FULL);
          this.changed(`roles/${GUEST_ROLE}`);
        }
        this.nodes.putAux(ENABLED, true);
        this.changed('enabled');
        return { status: 200, body: '' };
      }
      case 'disable': {
        if (!this.enabled()) return fail(409, 'auth: already disabled');
        this.nodes.putAux(ENABLED, false);
        this.changed('enabled');
        return { status: 200, body: '' };
      }
    }
  }

  private saveUser(u: V2User, status: number): V2AuthAnswer {
    this.nodes.putAux(userKey(u.user), u);
    this.changed(`users/${u.user}`);
    return ok(status, { user: u.user, roles: u.roles });
  }

  private putUser(op: Extract<V2AuthOp, { op: 'putUser' }>): V2AuthAnswer {
    const old = this.user(op.user);
    const grant = op.grant ?? [];
    const revoke = op.revoke ?? [];
    if (grant.length === 0 && revoke.length === 0) {
      const roles = op.roles ?? [];
      if (roles.length > 0 || old === undefined) {
        // etcd answers 200 even for a user it creates with roles given.
        if (old !== undefined) return fail(409, `auth: User ${op.user} already exists.`);
        if ((op.password ?? '') === '') return fail(400, `auth: Cannot create user ${op.user} with an empty password`);
        const initial = op.user === 'root' ? sorted([...new Set([...roles, ROOT_ROLE])]) : roles.length > 0 ? sorted(roles) : null;
        return this.saveUser({ user: op.user, password: op.password!, roles: initial }, roles.length > 0 ? 200 : 201);
      }
      // etcd merges the change into the user and refuses an update that changes nothing; a user stored without
      // roles (JSON null) comes out with an empty list, which counts as a change.
      const password = (op.password ?? '') === '' ? old.password : op.password!;
      if (password === old.password && old.roles !== null) return fail(400, 'auth: User not updated. Use grant/revoke/password to update the user.');
      return this.saveUser({ user: op.user, password, roles: old.roles ?? [] }, 200);
    }
    if (old === undefined) return fail(404, `auth: User ${op.user} does not exist.`);
    const roles = new Set(old.roles ?? []);
    for (const g of grant) {
      if (roles.has(g)) return fail(409, `auth: Granting duplicate role ${g} for user ${op.user}`);
      roles.add(g);
    }
    for (const r of revoke) {
      if (!roles.has(r)) return fail(409, `auth: Revoking ungranted role ${r} for user ${op.user}`);
      roles.delete(r);
    }
    const password = op.password !== undefined && op.password !== '' ? op.password : old.password;
    return this.saveUser({ user: op.user, password, roles: sorted([...roles]) }, 200);
  }

  private putRole(op: Extract<V2AuthOp, { op: 'putRole' }>): V2AuthAnswer {
    if (op.role === ROOT_ROLE) return fail(403, 'auth: Cannot modify role root: is root role.');
    const old = this.role(op.role);
    if (op.grant === undefined && op.revoke === undefined) {
      if (old !== undefined) return fail(409, `auth: Role ${op.role} already exists.`);
      const kv: V2Perms = { read: op.permissions?.read ?? null, write: op.permissions?.write ?? null };
      const role: V2Role = { role: op.role, permissions: { kv } };
      this.nodes.putAux(roleKey(op.role), role);
      this.changed(`roles/${op.role}`);
      return ok(201, role);
    }
    if (old === undefined) return fail(404, `auth: Role ${op.role} does not exist.`);
    const read = [...(old.permissions.kv.read ?? [])];
    const write = [...(old.permissions.kv.write ?? [])];
    for (const [list, add, kind] of [[read, op.grant?.read, 'read'], [write, op.grant?.write, 'write']] as const) {
      for (const p of add ?? []) {
        if (list.includes(p)) return fail(409, `auth: Granting duplicate ${kind} permission ${p}`);
        list.push(p);
      }
    }
    let revoked = false;
    for (const [list, drop] of [[read, op.revoke?.read], [write, op.revoke?.write]] as const) {
      for (const p of drop ?? []) {
        const i = list.indexOf(p);
        if (i >= 0) {
          list.splice(i, 1);
          revoked = true;
        }
      }
    }
    const granted = (op.grant?.read?.length ?? 0) + (op.grant?.write?.length ?? 0) > 0;
    if (!granted && !revoked) return fail(400, 'auth: Role not updated. Use grant/revoke to update the role.');
    const role: V2Role = { role: op.role, permissions: { kv: { read, write } } };
    this.nodes.putAux(roleKey(op.role), role);
    this.changed(`roles/${op.role}`);
    return ok(200, role);
  }
}
