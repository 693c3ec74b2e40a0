/**
 * etcd 3.4's v2 keys API (`--enable-v2`): `GET/HEAD/PUT/POST/DELETE /v2/keys/…` as an {@link HttpMount} of the
 * client port's uWebSockets.js app (etcd api: v2http keysHandler). Writes are proposed through Raft as
 * EntryKind.V2 entries and answered with the apply worker's result; reads and `wait=true` watches are served from
 * this member's copy of the v2 store (LMDB, read on the main thread), `quorum=true` reads after a ReadIndex round.
 *
 * Answers are etcd's: the event JSON with X-Etcd-Cluster-Id, X-Etcd-Index, X-Raft-Index (commit index) and
 * X-Raft-Term; 201 for a created node; errors as `{"errorCode","message","cause","index"}` with etcd's status and
 * only X-Etcd-Cluster-Id / X-Etcd-Index; other methods 405 with `Allow: HEAD,GET,PUT,POST,DELETE`.
 */
import type * as uWS from 'uWebSockets.js';
import { V2Error, V2ErrorCodes as C, v2HttpStatus } from '../../errors';
import { EntryKind, type Propose } from '../../wire/entry';
import type { HistoryEvent } from '../../v2store/nodes';
import { cleanPath as pathOf, type V2Event, type V2Store } from '../../v2store/store';
import { decodeV2Result, encodeV2Request, type V2Request } from '../../v2store/request';
import type { V2WatchHub, V2Watcher } from '../../v2store/watch-hub';
import { CORS_HEADERS, type HttpMount } from '../http/server';
import { parseKeyRequest, type KeyRequest } from './form';
import { isMembersPath, membersReply, type V2MembersHost, type V2Reply } from './members';
import { goHtmlEscape } from '../gateway/go-json';
import { authReply, isAuthPath, requesterRoles, type V2AuthReply } from './auth';
import { ROOT_ROLE, V2AuthView } from '../../v2store/auth';

const INSUFFICIENT_CREDENTIALS = '{"message":"Insufficient credentials"}';
import { metrics } from '../../metrics/registry';

/**
 * Bytes a `stream=true` watcher may have waiting for a slow client (written after the socket stopped taking them,
 * not yet drained). Past it the watcher is dropped, as etcd drops a watcher whose 100-event channel is full (its HTTP
 * writer blocked on the same slow client): it gets no further event, and, as in etcd 3.4 (which never closes that
 * channel), its answer stays open without ending until the client leaves; what was written still drains.
 */
export const MAX_V2_WATCH_BACKLOG_BYTES = 1024 * 1024;

/**
 * Answers of plain GETs kept for reuse while no batch was applied (V2KeysHost.storeGeneration). At the limit the
 * whole cache is dropped.
 */
export const MAX_V2_READ_CACHE_ENTRIES = 4096;

/** Longest request body read: Go's form parser limit (net/http maxFormSize, 10 MiB), bytes. */
export const MAX_V2_BODY_BYTES = 10 * 1024 * 1024;

/** What the v2 API needs of the member (the membership routes' needs included). */
export interface V2KeysHost extends V2MembersHost {
  /** Proposes a v2 write through Raft; resolves the apply result's bytes; rejects EtcdError. */
  propose: Propose;
  /** The v2 store as this member last applied it (a fresh read view). */
  store(): V2Store;
  /** ReadIndex round for `quorum=true` (etcd QGET); rejects EtcdError. */
  linearizableWait(): Promise<void>;
  /** Raft commit index and term (X-Raft-Index, X-Raft-Term). */
  raft(): { index: number; term: number };
  clusterId(): number;
  hub: V2WatchHub;
  /** etcd's /v2/stats/self JSON. */
  selfStats(): string;
  /** etcd's /v2/stats/leader JSON, null when this member does not lead. */
  leaderStats(): string | null;
  /** Whether v2 auth is enabled as of the last applied batch (asked on every keys request, so kept cheap). */
  v2AuthEnabled(): boolean;
  /**
   * A counter that moves once the main thread has seen an applied batch or a restore, before it handles any other
   * request: while it stays, the store this member answers from is unchanged.
   */
  storeGeneration(): number;
}

const JSON_TYPE = 'application/json';
const KEYS = '/v2/keys';

type Headers = Array<readonly [string, string]>;

/** An event's JSON as etcd writes it (Go's encoder: `<`, `>`, `&` escaped). */
function eventJson(e: HistoryEvent, noValue: boolean): string {
  if (noValue && ['set', 'compareAndSwap', 'create', 'update'].includes(e.action)) return `{"action":${JSON.stringify(e.action)}}`;
  const out: Record<string, unknown> = { action: e.action, node: e.node };
  if (e.prevNode !== undefined) out.prevNode = e.prevNode;
  return goHtmlEscape(JSON.stringify(out));
}

const TEXT_405: Headers = [['Content-Type', 'text/plain; charset=utf-8'], ['X-Content-Type-Options', 'nosniff']];

/** One request being answered; `aborted` once the client left (no uWS call may follow). */
class V2Exchange {
  aborted = false;
  done = false;
  onAbort: (() => void) | null = null;
  /** Bytes written since the socket last refused a write and had not drained yet. */
  backlogBytes = 0;
  private drainArmed = false;

  constructor(readonly res: uWS.HttpResponse, readonly head: boolean) {
    res.onAborted(() => {
      this.aborted = true;
      this.onAbort?.();
    });
  }

  private writeHead(status: string, headers: Headers): void {
    this.res.writeStatus(status);
    for (const [k, v] of CORS_HEADERS) this.res.writeHeader(k, v);
    for (const [k, v] of headers) this.res.writeHeader(k, v);
  }

  reply(status: string, headers: Headers, body: string): void {
    if (this.aborted || this.done) return;
    this.done = true;
    this.res.cork(() => {
      this.writeHead(status, headers);
      // HEAD: etcd writes the body and Go drops it, reporting its length.
      if (this.head) this.res.endWithoutBody(Buffer.byteLength(body));
      else this.res.end(body);
    });
  }

  /** Starts a streamed answer (the headers go out now, as etcd flushes them before waiting). */
  start(headers: Headers): void {
    if (this.aborted || this.done) return;
    this.res.cork(() => {
      this.writeHead('200 OK', headers);
      // uWS sends the headers only with a non-empty chunk (an empty one would end a chunked body), so one space
      // (JSON whitespace, skipped by every decoder) goes out where etcd flushes headers alone.
      this.res.write(' ');
    });
  }

  write(chunk: string, end: boolean): void {
    if (this.aborted || this.done) return;
    if (end) this.done = true;
    this.res.cork(() => {
      if (end) this.res.end(this.head ? '' : chunk);
      else if (!this.res.write(chunk) || this.backlogBytes > 0) this.growBacklog(chunk);
    });
  }

  private growBacklog(chunk: string): void {
    this.backlogBytes += Buffer.byteLength(chunk);
    if (this.drainArmed) return;
    this.drainArmed = true;
    this.res.onWritable(() => {
      this.backlogBytes = 0;
      return true;
    });
  }
}

/** Status lines of the v2 auth answers. */
const HTTP_STATUS: Record<number, string> = {
  200: '200 OK', 201: '201 Created', 400: '400 Bad Request', 401: '401 Unauthorized', 403: '403 Forbidden', 404: '404 Not Found',
  409: '409 Conflict', 500: '500 Internal Server Error',
};

/** The statistics routes (etcd api: v2http statsHandler). */
const STATS: Record<string, 'store' | 'self' | 'leader' | undefined> = { '/v2/stats/store': 'store', '/v2/stats/self': 'self', '/v2/stats/leader': 'leader' };

/** Builds the `/v2/` mount over `host`. */
export function createV2Keys(host: V2KeysHost): HttpMount {
  // The cluster ID's hex text, rebuilt only when the ID changes (every answer carries it).
  let clusterHeaderOf: [number, readonly [string, string]] = [-1, ['', '']];
  const clusterHeader = (): readonly [string, string] => {
    const id = host.clusterId();
    if (clusterHeaderOf[0] !== id) clusterHeaderOf = [id, ['X-Etcd-Cluster-Id', id.toString(16)]];
    return clusterHeaderOf[1];
  };
  // etcd_debugging_store_reads_total{action} children, resolved once (prom-client hashes labels on every inc).
  const readsOk = { get: metrics.etcd_debugging_store_reads_total.labels({ action: 'get' }), getRecursive: metrics.etcd_debugging_store_reads_total.labels({ action: 'getRecursive' }) };

  function replyError(ex: V2Exchange, e: V2Error): void {
    ex.reply(v2HttpStatus(e.errorCode), [clusterHeader(), ['Content-Type', JSON_TYPE], ['X-Etcd-Index', String(e.index)]], `${goHtmlEscape(e.toJson())}\n`);
  }

  function replyFailure(ex: V2Exchange, err: unknown): void {
    if (err instanceof V2Error) return replyError(ex, err);
    // etcd writeKeyError: any other failure (timeouts, no leader) is Raft Internal Error with its text.
    const msg = err instanceof Error ? ((err as { details?: string }).details ?? err.message) : String(err);
    replyError(ex, new V2Error(C.RaftInternal, msg, 0));
  }

  function eventHeaders(etcdIndex: number): Headers {
    const r = host.raft();
    return [clusterHeader(), ['Content-Type', JSON_TYPE], ['X-Etcd-Index', String(etcdIndex)], ['X-Raft-Index', String(r.index)], ['X-Raft-Term', String(r.term)]];
  }

  function replyEvent(ex: V2Exchange, e: HistoryEvent, etcdIndex: number, noValue: boolean): void {
    const created = e.action === 'create' || (e.action === 'set' && e.prevNode === undefined);
    ex.reply(created ? '201 Created' : '200 OK', eventHeaders(etcdIndex), `${eventJson(e, noValue)}\n`);
  }

  /** etcd's read counters of stats/store (this member's reads since it started). */
  const gets = { success: 0, fail: 0 };

  // Answers of non-quorum GETs of files without a TTL (whose JSON only an applied change can alter), by request: the
  // read view, the lookup (LMDB reads, record decode) and the JSON encoding are skipped until the next applied batch.
  // Quorum GETs read the store: their ReadIndex wait may end inside the applied batch, before the generation moves.
  const readCache = new Map<string, { generation: number; etcdIndex: number; body: string }>();

  function read(ex: V2Exchange, r: KeyRequest): void {
    // etcd_debugging_store_reads_total{action}: etcd's store names a recursive get "getRecursive".
    const action = r.recursive ? 'getRecursive' : 'get';
    const cacheKey = `${r.recursive ? 'r' : '-'}${r.sorted ? 's' : '-'}${r.path}`;
    const generation = host.storeGeneration();
    const hit = r.quorum ? undefined : readCache.get(cacheKey);
    if (hit !== undefined && hit.generation === generation) {
      gets.success++;
      readsOk[action].inc();
      ex.reply('200 OK', eventHeaders(hit.etcdIndex), hit.body);
      return;
    }
    const s = host.store();
    let e: V2Event;
    try {
      e = s.get(r.path, r.recursive, r.sorted);
    } catch (err) {
      gets.fail++;
      metrics.etcd_debugging_store_reads_failed_total.inc({ action });
      throw err;
    }
    gets.success++;
    readsOk[action].inc();
    const body = `${eventJson(e, false)}\n`;
    if (e.node.dir !== true && e.node.expiration === undefined) {
      if (readCache.size >= MAX_V2_READ_CACHE_ENTRIES) readCache.clear();
      readCache.set(cacheKey, { generation, etcdIndex: e.etcdIndex, body });
    }
    ex.reply('200 OK', eventHeaders(e.etcdIndex), body);
  }

  /** etcd's /v2/stats/store: the read counters here, the write counters kept with the store, the watchers. */
  function storeStats(): string {
    const w = host.store().nodes.stats();
    const n = (k: keyof typeof w): number => w[k] ?? 0;
    return JSON.stringify({
      getsSuccess: gets.success, getsFail: gets.fail,
      setsSuccess: n('setsSuccess'), setsFail: n('setsFail'), deleteSuccess: n('deleteSuccess'), deleteFail: n('deleteFail'),
      updateSuccess: n('updateSuccess'), updateFail: n('updateFail'), createSuccess: n('createSuccess'), createFail: n('createFail'),
      compareAndSwapSuccess: n('compareAndSwapSuccess'), compareAndSwapFail: n('compareAndSwapFail'),
      compareAndDeleteSuccess: n('compareAndDeleteSuccess'), compareAndDeleteFail: n('compareAndDeleteFail'),
      expireCount: n('expireCount'), watchers: host.hub.size,
    });
  }

  function watch(ex: V2Exchange, r: KeyRequest): void {
    metrics.etcd_debugging_store_watch_requests_total.inc();
    let w: V2Watcher | null = null;
    const got = host.hub.watch((since, startIndex) => {
      w = {
        key: pathOf(r.path),
        recursive: r.recursive,
        stream: r.stream,
        since,
        startIndex,
        onEvent: (e) => {
          ex.write(`${eventJson(e, false)}\n`, !r.stream);
          if (ex.backlogBytes > MAX_V2_WATCH_BACKLOG_BYTES && w !== null) {
            host.hub.remove(w);
            metrics.etcd_debugging_store_watchers.set(host.hub.size);
          }
        },
        onCleared: () => ex.write('', true),
      };
      return w;
    }, pathOf(r.path), r.recursive, r.since);
    if ('event' in got) {
      ex.reply('200 OK', eventHeaders(got.startIndex), `${eventJson(got.event, false)}\n`);
      return;
    }
    ex.onAbort = () => {
      host.hub.remove(got);
      metrics.etcd_debugging_store_watchers.set(host.hub.size);
    };
    metrics.etcd_debugging_store_watchers.set(host.hub.size);
    ex.start(eventHeaders(got.startIndex));
  }

  function write(ex: V2Exchange, r: KeyRequest): void {
    const req: V2Request = { method: r.method as 'PUT' | 'POST' | 'DELETE', path: r.path };
    if (r.val !== '') req.val = r.val;
    if (r.dir) req.dir = true;
    if (r.prevValue !== '') req.prevValue = r.prevValue;
    if (r.prevIndex !== 0) req.prevIndex = r.prevIndex;
    if (r.prevExist !== undefined) req.prevExist = r.prevExist;
    if (r.recursive) req.recursive = true;
    if (r.refresh) req.refresh = true;
    if (r.ttl !== undefined) req.expiryMs = Date.now() + r.ttl * 1000;
    host.propose(EntryKind.V2, encodeV2Request(req)).then(
      (bytes) => {
        const res = decodeV2Result(bytes, req.val);
        if ('errorCode' in res) replyError(ex, new V2Error(res.errorCode, res.cause, res.index));
        else if ('event' in res) replyEvent(ex, res.event, res.etcdIndex, r.noValueOnSuccess);
      },
      (err: unknown) => replyFailure(ex, err),
    );
  }

  function serveKeys(ex: V2Exchange, method: string, key: string, query: string, body: string | null, authorization: string): void {
    let r: KeyRequest;
    try {
      r = parseKeyRequest(method === 'HEAD' ? 'GET' : method, key, query, body);
    } catch (e) {
      return replyFailure(ex, e);
    }
    if (host.v2AuthEnabled()) {
      const auth = new V2AuthView(host.store().nodes);
      // etcd's v2 auth: the requester's roles (guest without credentials) must grant the key, else 401 code 110.
      const write = r.method !== 'GET';
      requesterRoles(auth, authorization).then(
        (roles) => {
          if (roles === null || !auth.allowed(roles, pathOf(r.path), write, r.recursive)) {
            return replyError(ex, new V2Error(C.Unauthorized, 'Insufficient credentials', 0));
          }
          serveAllowed(ex, r);
        },
        (e: unknown) => replyFailure(ex, e),
      );
      return;
    }
    serveAllowed(ex, r);
  }

  function serveAllowed(ex: V2Exchange, r: KeyRequest): void {
    try {
      if (r.method === 'GET') {
        if (r.wait) return watch(ex, r);
        if (r.quorum) {
          host.linearizableWait().then(
            () => {
              try {
                read(ex, r);
              } catch (e) {
                replyFailure(ex, e);
              }
            },
            (e: unknown) => replyFailure(ex, e),
          );
          return;
        }
        return read(ex, r);
      }
      write(ex, r);
    } catch (e) {
      replyFailure(ex, e);
    }
  }

  function handle(res: uWS.HttpResponse, req: uWS.HttpRequest, method: string, path: string): void {
    if (path !== KEYS && !path.startsWith(`${KEYS}/`)) {
      const stats = STATS[path];
      if (stats !== undefined) {
        const ex = new V2Exchange(res, method === 'HEAD');
        if (method !== 'GET') return ex.reply('405 Method Not Allowed', [['Allow', 'GET'], ...TEXT_405], 'Method Not Allowed\n');
        const body = stats === 'store' ? storeStats() : stats === 'self' ? host.selfStats() : host.leaderStats();
        // etcd 3.4: a member that does not lead answers /v2/stats/leader 403 "not current leader".
        if (body === null) return ex.reply('403 Forbidden', [['Content-Type', JSON_TYPE]], '{"message":"not current leader"}');
        return ex.reply('200 OK', [['Content-Type', JSON_TYPE]], body);
      }
      if (isAuthPath(path)) {
        const ex = new V2Exchange(res, method === 'HEAD');
        // etcd's CORS wrapper answers a preflight itself: 200, CORS headers, no body.
        if (method === 'OPTIONS') return ex.reply('200 OK', [], '');
        const authorization = req.getHeader('authorization');
        const answer = (a: V2AuthReply): void => {
          if ('allow' in a) return ex.reply('405 Method Not Allowed', [['Allow', a.allow], ...TEXT_405], 'Method Not Allowed\n');
          // etcd refuses credentials before its handler adds the cluster ID header.
          const headers: Headers = a.status === 401 ? [['Content-Type', JSON_TYPE]] : [clusterHeader(), ['Content-Type', JSON_TYPE]];
          ex.reply(HTTP_STATUS[a.status] ?? String(a.status), headers, a.body);
        };
        serveAfterBody(res, ex, (body) => {
          authReply(host, method, path, authorization, body.toString('utf8')).then(answer, (e: unknown) => replyFailure(ex, e));
        });
        return;
      }
      if (isMembersPath(path)) {
        const ex = new V2Exchange(res, method === 'HEAD');
        const contentType = req.getHeader('content-type');
        const answer = (m: V2Reply): void => ex.reply(m.status, m.headers, m.status.startsWith('204') ? '' : goHtmlEscape(m.body));
        const authorization = req.getHeader('authorization');
        serveAfterBody(res, ex, (body) => {
          const serve = (): void => {
            const m = membersReply(method, path, contentType, body.toString('utf8'), host, clusterHeader());
            if (m === null) return;
            if (m instanceof Promise) void m.then(answer);
            else answer(m);
          };
          // While v2 auth is on, membership changes need a user with the root role (etcd: hasWriteRootAccess).
          if (!['POST', 'PUT', 'DELETE'].includes(method) || !host.v2AuthEnabled()) return serve();
          requesterRoles(new V2AuthView(host.store().nodes), authorization).then(
            (roles) => (roles !== null && roles.includes(ROOT_ROLE) ? serve() : ex.reply('401 Unauthorized', [['Content-Type', JSON_TYPE]], INSUFFICIENT_CREDENTIALS)),
            (e: unknown) => replyFailure(ex, e),
          );
        });
        return;
      }
      res.cork(() => {
        res.writeStatus('404 Not Found');
        for (const [k, v] of CORS_HEADERS) res.writeHeader(k, v);
        res.writeHeader('Content-Type', 'text/plain; charset=utf-8');
        res.writeHeader('X-Content-Type-Options', 'nosniff');
        res.end('404 page not found\n');
      });
      return;
    }
    const query = req.getQuery() ?? '';
    const clean = muxClean(path);
    if (clean !== path) {
      // Go's ServeMux answers an unclean path with a redirect to the clean one (its HTML body only for GET).
      const location = query === '' ? clean : `${clean}?${query}`;
      res.cork(() => {
        res.writeStatus('301 Moved Permanently');
        for (const [k, v] of CORS_HEADERS) res.writeHeader(k, v);
        if (method === 'GET' || method === 'HEAD') res.writeHeader('Content-Type', 'text/html; charset=utf-8');
        res.writeHeader('Location', location);
        res.end(method === 'GET' ? `<a href="${location.replace(/&/g, '&amp;').replace(/"/g, '&#34;')}">Moved Permanently</a>.\n\n` : '');
      });
      return;
    }
    const authorization = req.getHeader('authorization');
    const form = req.getHeader('content-type').split(';')[0]!.trim().toLowerCase() === 'application/x-www-form-urlencoded';
    const ex = new V2Exchange(res, method === 'HEAD');
    if (method === 'OPTIONS') {
      // etcd's CORS wrapper answers a preflight itself: 200, CORS headers, no body.
      ex.reply('200 OK', [], '');
      return;
    }
    if (!['HEAD', 'GET', 'PUT', 'POST', 'DELETE'].includes(method)) {
      ex.reply('405 Method Not Allowed', [['Allow', 'HEAD,GET,PUT,POST,DELETE'], ['Content-Type', 'text/plain; charset=utf-8'], ['X-Content-Type-Options', 'nosniff']], 'Method Not Allowed\n');
      return;
    }
    let key: string;
    try {
      key = decodeURIComponent(path.slice(KEYS.length));
    } catch {
      key = path.slice(KEYS.length);
    }
    if (method !== 'PUT' && method !== 'POST') {
      // Go parses a body as form values only for PUT, POST and PATCH; a body is still read (and dropped). Without
      // one (the usual GET) the answer starts at once, saving uWS's end-of-body callback.
      const cl = req.getHeader('content-length');
      if ((cl === '' || cl === '0') && req.getHeader('transfer-encoding') === '') serveKeys(ex, method, key, query, null, authorization);
      else serveAfterBody(res, ex, () => serveKeys(ex, method, key, query, null, authorization));
      return;
    }
    serveAfterBody(res, ex, (body) => serveKeys(ex, method, key, query, form ? body.toString('utf8') : null, authorization));
  }

  function serveAfterBody(res: uWS.HttpResponse, ex: V2Exchange, then: (body: Buffer) => void): void {
    const chunks: Buffer[] = [];
    let size = 0;
    res.onData((chunk, isLast) => {
      if (ex.done || ex.aborted) return;
      size += chunk.byteLength;
      if (size > MAX_V2_BODY_BYTES) {
        replyError(ex, new V2Error(C.InvalidForm, 'http: POST too large', 0));
        return;
      }
      chunks.push(Buffer.from(chunk.slice(0)));
      if (isLast) then(Buffer.concat(chunks));
    });
  }

  return { prefixes: ['/v2/'], handle };
}

/** Go's path.Clean as net/http's ServeMux applies it to request paths (a trailing slash kept). */
function muxClean(p: string): string {
  if (!p.includes('//') && !p.includes('/.')) return p;
  const out = pathOf(p);
  return p.endsWith('/') && out !== '/' ? `${out}/` : out;
}
