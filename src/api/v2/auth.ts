/**
 * etcd 3.4's v2 auth API (etcd api: v2http authHandler): `/v2/auth/enable` (GET, PUT, DELETE), `/v2/auth/users`
 * and `/v2/auth/roles` (GET), `/v2/auth/users/<name>` and `/v2/auth/roles/<name>` (GET, PUT, DELETE), and the
 * credential check the keys API runs while v2 auth is enabled (HTTP basic auth, bcrypt; no credentials means the
 * guest role). Changes go through Raft as EntryKind.V2 `AUTH` requests, passwords hashed here first (bcrypt salts
 * are random, so every member must apply the same hash). Reads come from this member's copy of the store.
 *
 * While auth is enabled, every route but `GET /v2/auth/enable` needs a user with the root role: others get 401
 * `{"message":"Insufficient credentials"}`.
 */
import { checkPassword, DEFAULT_BCRYPT_COST, hashPassword } from '../../auth/password';
import { V2AuthView, GUEST_ROLE, type V2AuthAnswer, type V2AuthOp, type V2Perms } from '../../v2store/auth';
import { decodeV2Result, encodeV2Request } from '../../v2store/request';
import type { V2Store } from '../../v2store/store';
import { EntryKind, type Propose } from '../../wire/entry';

/** What the auth routes need of the member. */
export interface V2AuthHost {
  propose: Propose;
  store(): V2Store;
}

const PREFIX = '/v2/auth/';

/** True for the paths the auth routes answer (anything else under /v2/auth is Go's 404). */
export function isAuthPath(path: string): boolean {
  return path === '/v2/auth/enable' || /^\/v2\/auth\/(users|roles)(\/[^/]*)?$/.test(path);
}

/** An auth route's answer, a 405 carrying the methods it allows. */
export type V2AuthReply = V2AuthAnswer | { status: 405; allow: string };

const fail = (status: number, message: string): V2AuthAnswer => ({ status, body: JSON.stringify({ message }) });
const INSUFFICIENT = fail(401, 'Insufficient credentials');

/**
 * The roles of the requester given its `Authorization` header: the user's roles, the guest role without
 * credentials, null for bad credentials or an unknown user.
 */
export async function requesterRoles(view: V2AuthView, authorization: string): Promise<string[] | null> {
  if (authorization === '') return view.role(GUEST_ROLE) === undefined ? null : [GUEST_ROLE];
  const m = /^Basic\s+(\S+)$/i.exec(authorization);
  if (m === null) return null;
  const plain = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = plain.indexOf(':');
  if (colon < 0) return null;
  const u = view.user(plain.slice(0, colon));
  if (u === undefined || !(await checkPassword(plain.slice(colon + 1), u.password))) return null;
  return u.roles ?? [];
}

function parseJson(body: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(body) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

const strings = (v: unknown): string[] | undefined => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined);

function perms(v: unknown): Partial<V2Perms> | undefined {
  const kv = v !== null && typeof v === 'object' ? (v as { kv?: { read?: unknown; write?: unknown } }).kv : undefined;
  if (kv === undefined || kv === null) return v === undefined ? undefined : {};
  const out: Partial<V2Perms> = {};
  const read = strings(kv.read);
  const write = strings(kv.write);
  if (read !== undefined) out.read = read;
  if (write !== undefined) out.write = write;
  return out;
}

async function propose(host: V2AuthHost, auth: V2AuthOp): Promise<V2AuthAnswer> {
  const res = decodeV2Result(await host.propose(EntryKind.V2, encodeV2Request({ method: 'AUTH', path: '/', auth })));
  if ('auth' in res) return res.auth;
  return fail(500, 'cause' in res ? res.cause : 'unexpected v2 result');
}

/** Answers one /v2/auth request (`path` passed {@link isAuthPath}); rejects EtcdError of a failed proposal. */
export async function authReply(host: V2AuthHost, method: string, path: string, authorization: string, body: string): Promise<V2AuthReply> {
  const view = new V2AuthView(host.store().nodes);
  const rest = path.slice(PREFIX.length);
  const [kind, name] = rest.split('/') as [string, string | undefined];
  const list = rest === 'users' || rest === 'roles' || name === '';
  const allow = list ? 'GET' : 'GET,PUT,DELETE';
  if (!allow.split(',').includes(method)) return { status: 405, allow };
  if (kind === 'enable' && method === 'GET') return { status: 200, body: `${JSON.stringify({ enabled: view.enabled() })}\n` };
  if (view.enabled()) {
    const roles = await requesterRoles(view, authorization);
    if (roles === null || !roles.includes('root')) return INSUFFICIENT;
  }
  if (kind === 'enable') return propose(host, { op: method === 'PUT' ? 'enable' : 'disable' });
  const users = kind === 'users';
  if (list) return users ? view.listUsers() : view.listRoles();
  if (method === 'GET') return users ? view.getUser(name!) : view.getRole(name!);
  if (method === 'DELETE') return propose(host, users ? { op: 'deleteUser', user: name! } : { op: 'deleteRole', role: name! });
  const j = parseJson(body);
  if (j === null) return fail(400, 'Invalid JSON in request body.');
  if (users) {
    if (j.user !== name) return fail(400, 'User JSON name does not match the name in the URL');
    const op: Extract<V2AuthOp, { op: 'putUser' }> = { op: 'putUser', user: name! };
    const roles = strings(j.roles);
    const grant = strings(j.grant);
    const revoke = strings(j.revoke);
    if ((grant?.length ?? 0) + (revoke?.length ?? 0) > 0 && (roles?.length ?? 0) > 0) {
      return fail(400, 'User JSON contains both roles and grant/revoke');
    }
    if (roles !== undefined) op.roles = roles;
    if (grant !== undefined) op.grant = grant;
    if (revoke !== undefined) op.revoke = revoke;
    if (typeof j.password === 'string' && j.password !== '') op.password = await hashPassword(j.password, DEFAULT_BCRYPT_COST);
    return propose(host, op);
  }
  if (j.role !== name) return fail(400, 'Role JSON name does not match the name in the URL');
  const op: Extract<V2AuthOp, { op: 'putRole' }> = { op: 'putRole', role: name! };
  const p = perms(j.permissions);
  const grant = perms(j.grant);
  const revoke = perms(j.revoke);
  if ((grant !== undefined || revoke !== undefined) && p !== undefined) return fail(400, 'Role JSON contains both permissions and grant/revoke');
  if (p !== undefined) op.permissions = p;
  if (grant !== undefined) op.grant = grant;
  if (revoke !== undefined) op.revoke = revoke;
  return propose(host, op);
}
