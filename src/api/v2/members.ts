/**
 * etcd 3.4's v2 membership reads: `GET /v2/members` (`{"members":[…]}` sorted by ID, IDs in unpadded hex),
 * `GET /v2/members/leader` (503 "During election" without a leader) and `GET /v2/machines` (the client URLs,
 * sorted, comma-separated, text). etcd api: v2http membersHandler / machinesHandler. Changing the membership through
 * v2 (POST/PUT/DELETE /v2/members) is not served: use the v3 Cluster API.
 */

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

const memberJson = (m: V2Member): Record<string, unknown> => ({ id: m.id.toString(16), name: m.name, peerURLs: m.peerURLs, clientURLs: m.clientURLs });

/**
 * Answers `path` (`/v2/members…` or `/v2/machines`) for `method`, or null when it is not one of these routes.
 * `clusterHeader` is the X-Etcd-Cluster-Id header etcd puts on member answers.
 */
export function membersReply(method: string, path: string, members: V2Member[], leaderId: number, clusterHeader: readonly [string, string]): V2Reply | null {
  const sorted = [...members].sort((a, b) => a.id - b.id);
  const json = (status: string, body: unknown): V2Reply => ({ status, headers: [['Content-Type', 'application/json'], clusterHeader], body: `${JSON.stringify(body)}\n` });
  const notAllowed = (allow: string): V2Reply => ({
    status: '405 Method Not Allowed',
    headers: [['Allow', allow], ['Content-Type', 'text/plain; charset=utf-8'], ['X-Content-Type-Options', 'nosniff']],
    body: 'Method Not Allowed\n',
  });
  if (path === '/v2/machines') {
    if (method !== 'GET' && method !== 'HEAD') return notAllowed('GET,HEAD');
    const urls = sorted.flatMap((m) => m.clientURLs).sort();
    return { status: '200 OK', headers: [['Content-Type', 'text/plain; charset=utf-8']], body: urls.join(', ') };
  }
  if (path !== '/v2/members' && path !== '/v2/members/' && path !== '/v2/members/leader') return null;
  if (method !== 'GET') return notAllowed('GET');
  if (path === '/v2/members/leader') {
    const lead = sorted.find((m) => m.id === leaderId);
    if (lead === undefined) return json('503 Service Unavailable', { message: 'During election' });
    return json('200 OK', memberJson(lead));
  }
  return json('200 OK', { members: sorted.map(memberJson) });
}
