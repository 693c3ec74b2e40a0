/**
 * Differential test of the client port's HTTP/1 framing and headers against etcd 3.4 (Go net/http): the same raw
 * requests (written on a socket, so nothing of a client library's own headers gets in) to etcd and etcetera, both
 * with --enable-v2, comparing per answer the status code, the full header set (names and values; Date checked for
 * Go's format, cluster IDs, indexes and terms blanked, Content-Length blanked only where the body carries IDs),
 * whether the body was sent with a length or chunked, and whether the connection stays open after the answer.
 * Covers /version, /health, /metrics, unknown paths, the v3 gateway (small and > 2 KiB answers, errors, 405, a
 * watch stream's head), v2 keys (set, get, HEAD, errors, 405, > 2 KiB values), /v2/members, /v2/stats/self,
 * the --listen-metrics-urls listener (only /metrics and /health, as etcd), `Connection: close`, HTTP/1.0 with and without keep-alive, an HTTP/1.1 request without Host, `Expect: 100-continue`.
 * Then malformed requests (garbage, request lines etcd's cmux does not take for HTTP/1, bad headers, oversized
 * heads) and a request that stops mid-head.
 */
import { test, after, before } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { startEtcd, startEtcetera, hasEtcd, NO_ETCD, type ServerHandle } from '../helpers/servers';
import { killAllChildren } from '../helpers/procs';

after(killAllChildren);

const skip = hasEtcd() ? false : NO_ETCD;
let servers: ServerHandle[] = [];

before(async () => {
  if (!hasEtcd()) return;
  servers = await Promise.all([startEtcd({ extraArgs: ['--enable-v2=true'] }), startEtcetera({ extraArgs: ['--enable-v2=true'] })]);
});

after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

/** One answer as read off the socket. */
interface RawAnswer {
  statusLine: string;
  headers: Array<[string, string]>;
  body: Buffer;
  /** Whether the connection was still open after the answer (a second request on it was answered). */
  open: boolean;
  /** Status lines of interim (1xx) answers before it. */
  interim: string[];
}

const HEAD_END = Buffer.from('\r\n\r\n');

/**
 * Writes `raw` on a new connection to `url` and reads one answer (framed by Content-Length, chunked, or the close);
 * `headOnly` stops after the head (streams). Then checks the connection with a second request unless it closed.
 */
function rawRequest(url: string, raw: string, method: string, headOnly = false): Promise<RawAnswer> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(u.port), u.hostname);
    let buf = Buffer.alloc(0);
    let closed = false;
    let answer: RawAnswer | undefined;
    let probing = false;
    const interim: string[] = [];
    const timer = setTimeout(() => finish(new Error(`no complete answer in 30 s to ${JSON.stringify(raw.slice(0, 60))}: ${JSON.stringify(buf.toString('latin1').slice(0, 300))}`)), 30_000);
    const finish = (err?: Error): void => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(answer!);
    };
    const parse = (): void => {
      if (answer === undefined) {
        const h = buf.indexOf(HEAD_END);
        if (h < 0) return;
        const lines = buf.subarray(0, h).toString('latin1').split('\r\n');
        const headers = lines.slice(1).map((l): [string, string] => {
          const c = l.indexOf(':');
          return [l.slice(0, c).toLowerCase(), l.slice(c + 1).trim()];
        });
        const rest = buf.subarray(h + 4);
        if (/^HTTP\/1\.[01] 1\d\d /.test(lines[0]!)) {
          // An interim answer (100 Continue): noted, then the final one is read.
          interim.push(lines[0]!);
          buf = rest;
          return parse();
        }
        const get = (n: string): string | undefined => headers.find(([k]) => k === n)?.[1];
        const status = Number(lines[0]!.split(' ')[1]);
        let body: Buffer | undefined;
        let used = 0;
        if (headOnly || method === 'HEAD' || status === 204 || status === 304) body = Buffer.alloc(0);
        else if (get('content-length') !== undefined) {
          const n = Number(get('content-length'));
          if (rest.length >= n) [body, used] = [rest.subarray(0, n), n];
        } else if (get('transfer-encoding') === 'chunked') {
          const parts: Buffer[] = [];
          let at = 0;
          for (;;) {
            const e = rest.indexOf('\r\n', at);
            if (e < 0) break;
            const size = parseInt(rest.subarray(at, e).toString('latin1'), 16);
            if (size === 0) {
              if (rest.length >= e + 4) [body, used] = [Buffer.concat(parts), e + 4];
              break;
            }
            if (rest.length < e + 2 + size + 2) break;
            parts.push(rest.subarray(e + 2, e + 2 + size));
            at = e + 2 + size + 2;
          }
        } else if (closed) [body, used] = [rest, rest.length];
        if (body === undefined) return;
        answer = { statusLine: lines[0]!, headers, body, open: false, interim };
        buf = rest.subarray(used);
        if (headOnly) return finish();
        if (closed) return finish();
        probing = true;
        sock.write('GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      }
      if (probing && buf.indexOf(HEAD_END) >= 0) {
        answer.open = true;
        finish();
      }
    };
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      parse();
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      closed = true;
      parse();
      if (answer !== undefined) finish();
      else if (buf.length === 0) {
        // Closed without a byte: what etcd's cmux does with a first line it does not take for HTTP/1.
        answer = { statusLine: '(closed without an answer)', headers: [], body: Buffer.alloc(0), open: false, interim };
        finish();
      } else finish(new Error(`closed without an answer to ${JSON.stringify(raw.slice(0, 60))}: ${JSON.stringify(buf.toString('latin1'))}`));
    });
    sock.write(raw);
  });
}

/** Values that differ between two servers by nature. */
const BLANKED = new Set(['x-etcd-cluster-id', 'x-etcd-index', 'x-raft-index', 'x-raft-term']);
/** Go's http.TimeFormat. */
const GO_DATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/** What is compared: status code, header set (sorted, normalised), the body when asked, and the connection. */
function view(a: RawAnswer, opts: { lengthVaries?: boolean; body?: boolean }): unknown {
  const headers = a.headers
    .map(([k, v]): string => {
      if (k === 'date') return `date: ${GO_DATE.test(v) ? '<go date>' : v}`;
      if (BLANKED.has(k)) return `${k}: <blank>`;
      if (k === 'content-length' && opts.lengthVaries) return `${k}: <n>`;
      return `${k}: ${v}`;
    })
    .sort();
  return { status: a.statusLine, headers, open: a.open, interim: a.interim, ...(opts.body ? { body: a.body.toString('latin1') } : {}) };
}

interface Case {
  method: string;
  path: string;
  body?: string;
  contentType?: string;
  extra?: string;
  version?: string;
  lengthVaries?: boolean;
  compareBody?: boolean;
  headOnly?: boolean;
  /** The request written as is (no request line built). */
  raw?: string;
  /** Sent to the --listen-metrics-urls listener instead of the client URL. */
  metrics?: boolean;
}

function build(c: Case): string {
  if (c.raw !== undefined) return c.raw;
  let r = `${c.method} ${c.path} HTTP/${c.version ?? '1.1'}\r\nHost: 127.0.0.1\r\n${c.extra ?? ''}`;
  if (c.body !== undefined) r += `Content-Type: ${c.contentType ?? 'application/json'}\r\nContent-Length: ${Buffer.byteLength(c.body)}\r\n`;
  return `${r}\r\n${c.body ?? ''}`;
}

async function compare(cases: Case[]): Promise<void> {
  for (const [i, c] of cases.entries()) {
    const views: unknown[] = [];
    for (const s of servers) views.push(view(await rawRequest(c.metrics ? s.metricsUrl : s.clientUrl, build(c), c.method, c.headOnly), { lengthVaries: c.lengthVaries, body: c.compareBody }));
    assert.deepEqual(views[1], views[0], `case ${i}: ${c.metrics ? 'metrics port ' : ''}${c.method} ${c.path} ${c.extra ?? ''}\netcd:     ${JSON.stringify(views[0])}\netcetera: ${JSON.stringify(views[1])}`);
  }
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const big = 'x'.repeat(3000);
const form = 'application/x-www-form-urlencoded';

test('HTTP/1 answers carry Go net/http headers and framing', { skip }, async () => {
  await compare([
    // The same on every handler: no Connection/Keep-Alive on a kept connection, Go's Date, lengths up to 2 KiB.
    { method: 'GET', path: '/version', compareBody: true },
    { method: 'GET', path: '/health', compareBody: true },
    { method: 'GET', path: '/metrics' },
    { method: 'GET', path: '/nope', compareBody: true },
    { method: 'POST', path: '/v3/kv/put', body: JSON.stringify({ key: b64('foo'), value: b64('bar') }), lengthVaries: true },
    { method: 'POST', path: '/v3/kv/range', body: JSON.stringify({ key: b64('foo') }), lengthVaries: true },
    { method: 'POST', path: '/v3/kv/put', body: JSON.stringify({ key: b64('big'), value: b64(big) }), lengthVaries: true },
    // A gateway answer over Go's 2 KiB buffer goes out chunked.
    { method: 'POST', path: '/v3/kv/range', body: JSON.stringify({ key: b64('big') }) },
    { method: 'POST', path: '/v3/kv/range', body: '{bad', compareBody: true },
    { method: 'GET', path: '/v3/kv/range', compareBody: true },
    { method: 'POST', path: '/v3/nope', body: '{}', compareBody: true },
    { method: 'POST', path: '/v3/watch', body: JSON.stringify({ create_request: { key: b64('foo') } }), headOnly: true },
    // v2 keys.
    { method: 'PUT', path: '/v2/keys/foo', body: 'value=bar', contentType: form },
    { method: 'GET', path: '/v2/keys/foo' },
    { method: 'HEAD', path: '/v2/keys/foo' },
    { method: 'GET', path: '/v2/keys/missing' },
    { method: 'PATCH', path: '/v2/keys/foo', compareBody: true },
    { method: 'PUT', path: '/v2/keys/big', body: `value=${big}`, contentType: form },
    { method: 'GET', path: '/v2/keys/big' },
    { method: 'HEAD', path: '/v2/keys/big' },
    { method: 'GET', path: '/v2/members', lengthVaries: true },
    { method: 'GET', path: '/v2/stats/self', lengthVaries: true },
    { method: 'GET', path: '/v2/machines' },
    // Connection handling.
    { method: 'GET', path: '/version', extra: 'Connection: close\r\n' },
    { method: 'GET', path: '/v2/keys/foo', extra: 'Connection: close\r\n' },
    { method: 'GET', path: '/version', version: '1.0' },
    { method: 'GET', path: '/version', version: '1.0', extra: 'Connection: keep-alive\r\n' },
    { method: 'GET', path: '/v2/keys/foo', version: '1.0', extra: 'Connection: keep-alive\r\n' },
    { method: 'GET', path: '/version', raw: 'GET /version HTTP/1.1\r\n\r\n', compareBody: true },
    // The --listen-metrics-urls listener: only /metrics and /health (and etcetera's /livez, /readyz), no CORS headers.
    { method: 'GET', path: '/metrics', metrics: true },
    { method: 'GET', path: '/health', metrics: true, compareBody: true },
    { method: 'GET', path: '/version', metrics: true, compareBody: true },
    { method: 'GET', path: '/v2/keys/foo', metrics: true, compareBody: true },
    { method: 'POST', path: '/v3/kv/range', body: JSON.stringify({ key: b64('foo') }), metrics: true, compareBody: true },
    // curl asks before sending a body over 1 KiB.
    { method: 'PUT', path: '/v2/keys/foo', body: `value=${big}`, contentType: form, extra: 'Expect: 100-continue\r\n' },
    { method: 'POST', path: '/v3/kv/put', body: JSON.stringify({ key: b64('e'), value: b64(big) }), extra: 'Expect: 100-continue\r\n', lengthVaries: true },
  ]);
});

const MIB = 1 << 20;

test('malformed HTTP/1 requests get what etcd answers: its cmux closing, or Go net/http\'s raw 4xx/5xx', { skip }, async () => {
  const req = (head: string, body = ''): Case => ({ method: 'GET', path: head.split(' ')[1] ?? '', raw: `${head}${body}`, compareBody: true });
  await compare([
    // Not an HTTP/1 request line (cmux): closed without an answer.
    req('GARBAGE\r\n\r\n'),
    req('\x00\x01\x02\xff garbage\r\n\r\n'),
    req('GET /version\r\n\r\n'),
    req('GET /version HTTP/9.9\r\nHost: a\r\n\r\n'),
    req('GET /a b HTTP/1.1\r\nHost: a\r\n\r\n'),
    req(`GET /${'a'.repeat(5000)} HTTP/1.1\r\nHost: a\r\n\r\n`),
    // HTTP/1 heads Go's server refuses.
    req('GET /version HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n'),
    req('GET /version HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n'),
    req('GET /version HTTP/1.1\r\nHost: a\r\nX-A: a\x01b\r\n\r\n'),
    req('GET /version HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'),
    req('GET version HTTP/1.1\r\nHost: a\r\n\r\n'),
    req('G@T /version HTTP/1.1\r\nHost: a\r\n\r\n'),
    req('POST /v3/kv/range HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n', '{}'),
    req('POST /v3/kv/range HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n', '{}'),
    req('POST /v3/kv/range HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo\r\n\r\n', '{}'),
    // Heads up to Go's 1 MiB (+4 KiB) are read; larger ones get 431.
    { ...req(`GET /version HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`) },
    req(`GET /version HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(MIB + 8192)}\r\n\r\n`),
    // HTTP/1.0: a 1.0 status line; an answer over 2 KiB ends with the connection, without Connection: keep-alive.
    { method: 'GET', path: '/v2/keys/big', version: '1.0', extra: 'Connection: keep-alive\r\n' },
    { method: 'GET', path: '/v3/kv/range', version: '1.0', compareBody: true },
  ]);
});

test('a request that stops mid-head is waited for, as etcd does, and answered once complete', { skip }, async () => {
  const seen = await Promise.all(servers.map(async (s) => {
    const sock = net.connect(Number(new URL(s.clientUrl).port), '127.0.0.1');
    let got = '';
    let closed = false;
    sock.on('data', (d: Buffer) => { got += d.toString('latin1'); });
    sock.on('close', () => { closed = true; });
    sock.on('error', () => {});
    sock.write('GET /version HTTP/1.1\r\nHost: a\r\nX-A: b\r\n');
    await new Promise((r) => setTimeout(r, 1500));
    const before = { got, closed };
    sock.write('\r\n');
    for (let i = 0; i < 200 && !got.includes('"etcdserver"'); i++) await new Promise((r) => setTimeout(r, 50));
    sock.destroy();
    return { before, after: got.split('\r\n')[0] };
  }));
  assert.deepEqual(seen[0], { before: { got: '', closed: false }, after: 'HTTP/1.1 200 OK' }, 'etcd');
  assert.deepEqual(seen[1], seen[0], 'etcetera');
});
