/**
 * HTTP helpers for the JSON gateway tests: one request with node's http module (raw status, headers, body),
 * a streamed request whose `{"result":…}` lines are collected as they arrive, and the normaliser that makes two
 * servers' answers comparable (IDs by order of first appearance, terms and sizes blanked).
 */
import * as http from 'node:http';

/** One complete answer. */
export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Sends `method path` with `body` to `base` (http://host:port) and reads the whole answer. */
export function request(base: string, method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const u = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, path: u.pathname + u.search, method, agent: false, headers: { ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path}: no answer in 30 s`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** A streamed answer being read: complete JSON lines so far, whether it ended, and a way to close it. */
export interface HttpStream {
  status: Promise<number>;
  headers: Promise<http.IncomingHttpHeaders>;
  lines: string[];
  ended: Promise<void>;
  /** Resolves once at least `n` lines arrived (rejects after `timeoutMs`). */
  waitLines(n: number, timeoutMs?: number): Promise<string[]>;
  /** Writes more of the request body (the body stays open until `endBody`). */
  write(s: string): void;
  endBody(): void;
  close(): void;
}

/** Opens a POST (with `extraHeaders`) whose body is written by the caller and whose answer is read line by line. */
export function stream(base: string, path: string, first: string, extraHeaders: Record<string, string> = {}): HttpStream {
  const u = new URL(path, base);
  const lines: string[] = [];
  let partial = '';
  let waiters: Array<() => void> = [];
  let resolveStatus!: (n: number) => void;
  let resolveHeaders!: (h: http.IncomingHttpHeaders) => void;
  let resolveEnded!: () => void;
  const status = new Promise<number>((r) => (resolveStatus = r));
  const headers = new Promise<http.IncomingHttpHeaders>((r) => (resolveHeaders = r));
  const ended = new Promise<void>((r) => (resolveEnded = r));
  const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent: false, headers: { ...extraHeaders, 'transfer-encoding': 'chunked' } }, (res) => {
    resolveStatus(res.statusCode ?? 0);
    resolveHeaders(res.headers);
    res.setEncoding('utf8');
    res.on('data', (c: string) => {
      partial += c;
      let i: number;
      while ((i = partial.indexOf('\n')) >= 0) {
        lines.push(partial.slice(0, i));
        partial = partial.slice(i + 1);
      }
      const w = waiters;
      waiters = [];
      for (const f of w) f();
    });
    const done = (): void => {
      if (partial !== '') lines.push(partial);
      partial = '';
      resolveEnded();
      const w = waiters;
      waiters = [];
      for (const f of w) f();
    };
    res.on('end', done);
    res.on('close', done);
  });
  req.on('error', () => resolveEnded());
  req.flushHeaders();
  req.write(first);
  let isEnded = false;
  void ended.then(() => (isEnded = true));
  return {
    status,
    headers,
    lines,
    ended,
    waitLines(n, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const deadline = setTimeout(() => reject(new Error(`stream ${path}: ${lines.length} of ${n} lines after ${timeoutMs} ms: ${lines.join('\n')}`)), timeoutMs);
        const check = (): void => {
          if (lines.length >= n) {
            clearTimeout(deadline);
            resolve(lines.slice());
          } else if (isEnded) {
            clearTimeout(deadline);
            reject(new Error(`stream ${path} ended with ${lines.length} of ${n} lines: ${lines.join('\n')}`));
          } else waiters.push(check);
        };
        check();
      });
    },
    write: (s) => req.write(s),
    endBody: () => req.end(),
    close: () => req.destroy(),
  };
}

/** Fields whose values are member/cluster/lease IDs: mapped to "#n" by order of first appearance. */
const ID_FIELDS = new Set(['cluster_id', 'member_id', 'ID', 'lease', 'leader', 'memberID']);
/** Fields that legitimately differ between two servers (terms, Raft indexes, file sizes, hashes). */
const BLANK_FIELDS = new Set(['raft_term', 'raftTerm', 'raftIndex', 'raftAppliedIndex', 'dbSize', 'dbSizeInUse', 'hash']);

/** Per-server normaliser: IDs are numbered in the order this server first showed them. */
export class Normaliser {
  private readonly ids = new Map<string, string>();

  id(v: string): string {
    let n = this.ids.get(v);
    if (n === undefined) {
      n = `#${this.ids.size + 1}`;
      this.ids.set(v, n);
    }
    return n;
  }

  /** Lock and election keys end in the session lease's ID in hex: that part is numbered too. */
  private key(b64: string): string {
    const s = Buffer.from(b64, 'base64').toString('latin1');
    const m = /^(.*\/)([0-9a-f]{1,16})$/.exec(s);
    if (!m) return b64;
    return Buffer.from(`${m[1]}${this.id(BigInt('0x' + m[2]).toString())}`, 'latin1').toString('base64');
  }

  value(v: unknown, field = ''): unknown {
    if (Array.isArray(v)) {
      const a = v.map((x) => this.value(x, field));
      // etcd lists members in Go map order: compared as a set.
      return field === 'members' ? a.sort((x, y) => (JSON.stringify(x) < JSON.stringify(y) ? -1 : 1)) : a;
    }
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = this.value(x, k);
      return out;
    }
    if (typeof v === 'string' && ID_FIELDS.has(field)) return this.id(v);
    if (BLANK_FIELDS.has(field)) return '<blank>';
    if (typeof v === 'string' && field === 'key') return this.key(v);
    // Each server's own peer and client URLs (free ports); the test's made-up ones (ports 1 and 2) stay.
    if (typeof v === 'string' && /^http:\/\/127\.0\.0\.1:\d{3,}$/.test(v)) return 'http://127.0.0.1:<port>';
    return v;
  }

  /** A body: JSON values (one per line for streams) normalised, anything else as is. */
  body(text: string): unknown {
    const parts = text.split('\n').filter((l) => l !== '');
    const one = (t: string): unknown => {
      try {
        return this.value(JSON.parse(t));
      } catch {
        return t;
      }
    };
    return parts.length === 1 ? one(parts[0]!) : parts.map(one);
  }
}
