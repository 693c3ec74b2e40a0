/**
 * Helpers of the v2 keys API tests: one v2 request (form body, raw answer), a long poll whose headers and body are
 * observed separately, and the normalisation that makes etcd 3.4's and etcetera's answers comparable. etcd's v2
 * store also holds its membership (`/0/…`), so its indexes start higher: every index is shown relative to the
 * store index the side had when the test began (`base`), POST-created key names included.
 */
import * as http from 'node:http';
import { after, before } from 'node:test';
import { startEtcd, startEtcetera, hasEtcd, type ServerHandle } from '../helpers/servers';
import { killAllChildren } from '../helpers/procs';
import { request, type HttpAnswer } from '../gateway/http';

export type { HttpAnswer };

/** Sends `method path` (path under /v2/keys, with its query) with an urlencoded `form` body. */
export function v2(base: string, method: string, path: string, form?: string): Promise<HttpAnswer> {
  const headers: Record<string, string> = form !== undefined ? { 'content-type': 'application/x-www-form-urlencoded' } : {};
  return request(base, method, path, form, headers);
}

/** A `wait=true` GET: `headers` resolves when the answer started (the watcher is registered), `done` at its end. */
export function longPoll(base: string, path: string): { headers: Promise<http.IncomingHttpHeaders>; done: Promise<HttpAnswer>; close(): void } {
  const u = new URL(path, base);
  let resolveHeaders!: (h: http.IncomingHttpHeaders) => void;
  const headers = new Promise<http.IncomingHttpHeaders>((r) => (resolveHeaders = r));
  let req!: http.ClientRequest;
  const done = new Promise<HttpAnswer>((resolve, reject) => {
    req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'GET', agent: false }, (res) => {
      resolveHeaders(res.headers);
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(60_000, () => req.destroy(new Error(`GET ${path}: no answer in 60 s`)));
    req.on('error', reject);
    req.end();
  });
  return { headers, done, close: () => req.destroy() };
}

/** The store index a side reports now (X-Etcd-Index of a GET of the root). */
export async function storeIndex(base: string): Promise<number> {
  const a = await v2(base, 'GET', '/v2/keys/');
  return Number(a.headers['x-etcd-index']);
}

const INDEX_FIELDS = new Set(['modifiedIndex', 'createdIndex']);

/**
 * A side's answers made comparable: indexes relative to `base`, times blanked (`ttl` kept as "present"), key names
 * of in-order keys renumbered, nodes of an unsorted listing sorted (etcd lists in Go map order).
 */
export class V2Normaliser {
  constructor(readonly base: number) {}

  rel(n: number): number {
    return n === 0 ? 0 : n - this.base;
  }

  private key(k: string): string {
    return k.replace(/\/(\d{20})(?=\/|$)/g, (_, d: string) => `/<${this.rel(Number(d))}>`);
  }

  private cause(c: string): string {
    return c
      .replace(/\[(\d+) != (\d+)\]/g, (_, a: string, b: string) => `[${this.rel(Number(a))} != ${this.rel(Number(b))}]`)
      .replace(/\[(\d+)\/(\d+)\]/g, (_, a: string, b: string) => `[${this.rel(Number(a))}/${this.rel(Number(b))}]`)
      .replace(/\/(\d{20})(?=\/|$)/g, (_, d: string) => `/<${this.rel(Number(d))}>`);
  }

  value(v: unknown, field = ''): unknown {
    if (Array.isArray(v)) {
      const a = v.map((x) => this.value(x, field));
      return field === 'nodes' ? a.sort((x, y) => (JSON.stringify(x) < JSON.stringify(y) ? -1 : 1)) : a;
    }
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = this.value(x, k);
      return out;
    }
    if (typeof v === 'number' && (INDEX_FIELDS.has(field) || field === 'index')) return this.rel(v);
    if (field === 'expiration') return typeof v === 'string' && !Number.isNaN(Date.parse(v)) ? '<time>' : v;
    if (field === 'ttl') return typeof v === 'number' ? '<ttl>' : v;
    if (typeof v === 'string' && field === 'key') return this.key(v);
    if (typeof v === 'string' && field === 'cause') return this.cause(v);
    return v;
  }

  /** What is compared of one answer. */
  view(a: HttpAnswer, sortedListing: boolean): unknown {
    let body: unknown = a.body;
    try {
      body = a.body.trim() === '' ? '' : this.value(JSON.parse(a.body));
    } catch {
      // text answers (405) compared as they are
    }
    if (sortedListing) body = { sortedOrder: keysInOrder(a.body), body };
    const h = a.headers;
    return {
      status: a.status,
      contentType: h['content-type'],
      allow: h['allow'],
      location: h['location'],
      clusterId: h['x-etcd-cluster-id'] !== undefined,
      etcdIndex: h['x-etcd-index'] === undefined ? undefined : this.rel(Number(h['x-etcd-index'])),
      raftIndex: h['x-raft-index'] !== undefined,
      raftTerm: h['x-raft-term'] !== undefined,
      // Go's encoder writes <, >, &, U+2028 and U+2029 as \u escapes; parsing the JSON would hide the difference.
      htmlUnsafeChars: (a.body.match(/[<>&\u2028\u2029]/g) ?? []).length,
      body,
    };
  }
}

/** Keys of a listing in the order the server wrote them (to check `sorted=true`). */
function keysInOrder(text: string): string[] {
  return [...text.matchAll(/"key":"([^"]*)"/g)].map((m) => m[1]!.replace(/\d{20}/g, '<n>'));
}

/** A `stream=true` watch: resolves with the first `n` JSON lines of the answer, then closes the connection. */
export function streamLines(base: string, path: string, n: number): { started: Promise<void>; lines: Promise<string[]> } {
  const u = new URL(path, base);
  let started!: () => void;
  const startedP = new Promise<void>((r) => (started = r));
  const lines = new Promise<string[]>((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'GET', agent: false }, (res) => {
      started();
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
        const got = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
        if (got.length >= n && text.endsWith('\n')) {
          resolve(got.slice(0, n));
          req.destroy();
        }
      });
      res.on('error', () => undefined);
    });
    req.setTimeout(60_000, () => req.destroy(new Error(`GET ${path}: fewer than ${n} lines in 60 s`)));
    req.on('error', reject);
    req.end();
  });
  return { started: startedP, lines };
}

/** The two servers of a differential test, started with `--enable-v2=true` by {@link v2Pair}'s hooks. */
export interface V2Pair {
  etcd: ServerHandle;
  etc: ServerHandle;
}

/**
 * Registers the file's hooks starting etcd 3.4 and an etcetera member with `--enable-v2=true` before its tests and
 * stopping both after (when etcd is installed); the returned object holds them once started.
 */
export function v2Pair(): V2Pair {
  const pair = {} as V2Pair;
  after(killAllChildren);
  before(async () => {
    if (!hasEtcd()) return;
    [pair.etcd, pair.etc] = await Promise.all([startEtcd({ extraArgs: ['--enable-v2=true'] }), startEtcetera({ extraArgs: ['--enable-v2=true'] })]);
  });
  after(async () => {
    await pair.etcd?.stop();
    await pair.etc?.stop();
  });
  return pair;
}
