/**
 * etcd 3.4's v2 membership API (etcd api: v2http membersHandler / machinesHandler): `GET /v2/members`
 * (`{"members":[…]}` sorted by ID, IDs in unpadded hex), `GET /v2/members/leader` (503 "During election" without a
 * leader), `POST /v2/members` (add a voter: 201 with the new member), `PUT /v2/members/<id>` (peer URLs: 204),
 * `DELETE /v2/members/<id>` (204), and `GET /v2/machines` (the client URLs, sorted, comma-separated, text).
 *
 * Answers as etcd 3.4 gives them (measured): JSON bodies `{"message": …}` with X-Etcd-Cluster-Id; a body that is not
 * `application/json` 415; Go's JSON and URL errors 400; an unknown or unparsable ID 404 "No such member: …"; a
 * removed one 410; an existing peer URL or ID 409; anything else (an unhealthy cluster, a timeout) 500 "Internal
 * Server Error"; other methods 405 with `Allow: GET,POST,DELETE,PUT`.
 */
import { Errors } from '../../errors';
import { checkValidText } from '../gateway/go-json';

/** A member as the v2 API shows it. */
export interface V2Member {
  id: number;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
}

/** An answer of the v2 membership routes (status line, headers, body). */
export interface V2Reply {
  status: string;
  headers: Array<readonly [string, string]>;
  body: string;
}

/** What the membership routes need of the member. */
export interface V2MembersHost {
  members(): V2Member[];
  leaderId(): number;
  /** IDs removed from the cluster (never to come back). */
  isRemoved(id: number): boolean;
  /** etcd api: Cluster.MemberAdd of a voter; rejects EtcdError. */
  addMember(peerUrls: string[]): Promise<V2Member>;
  /** etcd api: Cluster.MemberRemove; rejects EtcdError. */
  removeMember(id: number): Promise<void>;
  /** etcd api: Cluster.MemberUpdate; rejects EtcdError. */
  updateMember(id: number, peerUrls: string[]): Promise<void>;
}

const MEMBERS = '/v2/members';
const ALLOWED = ['GET', 'POST', 'DELETE', 'PUT'];
/** Go's name of the request body's type, in etcd's decode errors. */
const BODY_TYPE = 'struct { PeerURLs []string "json:\\"peerURLs\\"" }';

const memberJson = (m: V2Member): Record<string, unknown> => ({ id: m.id.toString(16), name: m.name, peerURLs: m.peerURLs, clientURLs: m.clientURLs });

const notAllowed = (allow: string | null, extra: Array<readonly [string, string]> = []): V2Reply => ({
  status: '405 Method Not Allowed',
  headers: [...(allow === null ? [] : [['Allow', allow] as const]), ['Content-Type', 'text/plain; charset=utf-8'], ['X-Content-Type-Options', 'nosniff'], ...extra],
  body: 'Method Not Allowed\n',
});

/** True when `path` is one of the membership routes ({@link membersReply} answers it). */
export function isMembersPath(path: string): boolean {
  return path === '/v2/machines' || path === MEMBERS || path.startsWith(`${MEMBERS}/`);
}

/** Go's JSON type name of a decoded value (for "cannot unmarshal X into …"). */
function goKind(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return 'number';
  if (typeof v === 'boolean') return 'bool';
  return 'object';
}

/** Decodes `{"peerURLs": [...]}` as Go's json.Unmarshal would; throws Error with Go's message. */
function decodePeerUrls(body: string): string[] {
  const invalid = checkValidText(body);
  if (invalid !== null) throw new Error(invalid);
  const v = JSON.parse(body) as unknown;
  if (v === null) return [];
  if (typeof v !== 'object' || Array.isArray(v)) throw new Error(`json: cannot unmarshal ${goKind(v)} into Go value of type ${BODY_TYPE}`);
  // Go matches field names case-insensitively; the last match wins.
  let urls: unknown = null;
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (k.toLowerCase() === 'peerurls') urls = x;
  if (urls === null) return [];
  if (!Array.isArray(urls)) throw new Error(`json: cannot unmarshal ${goKind(urls)} into Go struct field .peerURLs of type []string`);
  for (const u of urls) if (typeof u !== 'string' && u !== null) throw new Error(`json: cannot unmarshal ${goKind(u)} into Go struct field .peerURLs of type string`);
  return urls.map((u) => (u === null ? '' : (u as string)));
}

/** etcd's URL list check (types.NewURLs): trimmed, parsed, scheme, host:port, no path; sorted. Throws Error. */
function checkUrls(raw: string[]): string[] {
  if (raw.length === 0) throw new Error('no valid URLs given');
  const out: string[] = [];
  for (const r of raw) {
    const s = r.trim();
    // Go's url.Parse takes a string without a scheme as a relative URL: the scheme check refuses it.
    const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(s)?.[1]?.toLowerCase() ?? '';
    if (!['http', 'https', 'unix', 'unixs'].includes(scheme)) throw new Error(`URL scheme must be http, https, unix, or unixs: ${s}`);
    try {
      new URL(s);
    } catch {
      throw new Error(`parse ${JSON.stringify(s)}: invalid URL`);
    }
    const authority = s.replace(/^[^:]+:\/\//, '').split(/[/?#]/)[0]!;
    if (!/:[^:\]]*$/.test(authority)) throw new Error(`URL address does not have the form "host:port": ${s}`);
    if (s.slice(s.indexOf(authority) + authority.length).split(/[?#]/)[0] !== '') throw new Error(`URL must not contain a path: ${s}`);
    out.push(s);
  }
  return out.sort();
}

/**
 * Answers `method path` of the membership routes (`body`: the request body, `contentType` its header), or null when
 * `path` is not one of them. `clusterHeader` is the X-Etcd-Cluster-Id header etcd puts on member answers.
 */
export function membersReply(
  method: string,
  path: string,
  contentType: string,
  body: string,
  host: V2MembersHost,
  clusterHeader: readonly [string, string],
): V2Reply | Promise<V2Reply> | null {
  const json = (status: string, v: unknown): V2Reply => ({ status, headers: [['Content-Type', 'application/json'], clusterHeader], body: `${JSON.stringify(v)}\n` });
  // etcd writes its error objects without the newline its JSON answers end with.
  const message = (status: string, m: string): V2Reply => ({ status, headers: [['Content-Type', 'application/json'], clusterHeader], body: JSON.stringify({ message: m }) });
  const sorted = (): V2Member[] => [...host.members()].sort((a, b) => a.id - b.id);
  if (path === '/v2/machines') {
    if (method !== 'GET' && method !== 'HEAD') return notAllowed('GET,HEAD');
    const urls = sorted().flatMap((m) => m.clientURLs).sort();
    return { status: '200 OK', headers: [['Content-Type', 'text/plain; charset=utf-8']], body: urls.join(', ') };
  }
  if (!isMembersPath(path)) return null;
  if (!ALLOWED.includes(method)) return notAllowed(ALLOWED.join(','));
  const rest = path.slice(MEMBERS.length);
  if (method === 'GET') {
    if (rest === '' || rest === '/') return json('200 OK', { members: sorted().map(memberJson) });
    if (rest !== '/leader') return message('404 Not Found', 'Not found');
    const lead = sorted().find((m) => m.id === host.leaderId());
    return lead === undefined ? message('503 Service Unavailable', 'During election') : json('200 OK', memberJson(lead));
  }
  let id = 0;
  if (method !== 'POST') {
    if (rest === '' || rest === '/') return notAllowed(null, [clusterHeader]);
    const raw = rest.slice(1);
    const n = /^[0-9a-fA-F]{1,16}$/.test(raw) ? BigInt(`0x${raw}`) : -1n;
    if (n < 0n) return message('404 Not Found', `No such member: ${raw}`);
    if (n > BigInt(Number.MAX_SAFE_INTEGER)) return message('404 Not Found', `No such member: ${n.toString(16)}`);
    id = Number(n);
    if (method === 'DELETE') {
      // etcd answers 410 only to the removal of a removed member; an update of one is its 500 (measured).
      if (host.isRemoved(id)) return message('410 Gone', `Member permanently removed: ${id.toString(16)}`);
      return settle(host.removeMember(id).then(() => noContent(clusterHeader)), id, message);
    }
    if (host.isRemoved(id)) return message('500 Internal Server Error', 'Internal Server Error');
  }
  const media = contentType.split(';')[0]!.trim().toLowerCase();
  if (media !== 'application/json') return message('415 Unsupported Media Type', `Bad Content-Type ${contentType}, accept application/json`);
  let urls: string[];
  try {
    urls = checkUrls(decodePeerUrls(body));
  } catch (e) {
    return message('400 Bad Request', (e as Error).message);
  }
  if (method === 'PUT') return settle(host.updateMember(id, urls).then(() => noContent(clusterHeader)), id, message);
  return settle(host.addMember(urls).then((m) => json('201 Created', memberJson(m))), 0, message);
}

const noContent = (clusterHeader: readonly [string, string]): V2Reply => ({ status: '204 No Content', headers: [clusterHeader], body: '' });

/** Maps a membership change's failure to etcd's v2 answer. */
function settle(p: Promise<V2Reply>, id: number, message: (status: string, m: string) => V2Reply): Promise<V2Reply> {
  return p.catch((e: unknown) => {
    const errId = (e as { id?: number }).id;
    if (errId === Errors.MemberNotFound.id) return message('404 Not Found', `No such member: ${id.toString(16)}`);
    if (errId === Errors.PeerURLExist.id) return message('409 Conflict', 'membership: peerURL exists');
    if (errId === Errors.MemberExist.id) return message('409 Conflict', 'membership: ID exists');
    return message('500 Internal Server Error', 'Internal Server Error');
  });
}
