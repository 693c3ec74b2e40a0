/**
 * Pipelined HTTP/1.1 requests on one connection (differential against etcd 3.4 with `--enable-v2=true`): Go's
 * net/http reads a connection's next request only after answering the previous one, so a GET pipelined behind a PUT
 * sees the PUT. Each side gets the same bytes in one write — PUT/GET pairs on a v2 key and on the v3 gateway, then
 * more GETs than the in-process server queues per connection (MAX_PIPELINED_REQUESTS) — and the answers are compared
 * in order: status and the value read back.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { hasEtcd, NO_ETCD } from '../helpers/servers';
import { MAX_PIPELINED_REQUESTS } from '../../src/api/http/node-http1';
import { v2Pair } from '../v2/v2-http';

const pair = v2Pair();

interface Answer {
  status: number;
  body: string;
}

/** Writes `raw` in one go and reads `n` Content-Length framed answers back, in order. */
function pipeline(base: string, raw: string, n: number): Promise<Answer[]> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(u.port), u.hostname, () => sock.write(raw));
    let buf = Buffer.alloc(0);
    const out: Answer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`${base}: ${out.length} of ${n} answers in 60 s`));
    }, 60_000);
    sock.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) break;
        const head = buf.subarray(0, end).toString('latin1');
        const len = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? '0');
        if (buf.length < end + 4 + len) break;
        out.push({ status: Number(head.slice(9, 12)), body: buf.subarray(end + 4, end + 4 + len).toString('utf8') });
        buf = buf.subarray(end + 4 + len);
      }
      if (out.length >= n) {
        clearTimeout(timer);
        sock.destroy();
        resolve(out);
      }
    });
    sock.on('error', reject);
  });
}

const req = (method: string, path: string, body = '', type = 'application/x-www-form-urlencoded'): string =>
  `${method} ${path} HTTP/1.1\r\nHost: x\r\n${body === '' ? '' : `Content-Type: ${type}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`}\r\n${body}`;

/** What is compared of an answer: status and the value it carries (v2 node value or v3 kv value). */
function seen(a: Answer): unknown {
  const j = JSON.parse(a.body) as { node?: { value?: string }; kvs?: Array<{ value: string }> };
  return { status: a.status, value: j.node?.value ?? (j.kvs?.[0] !== undefined ? Buffer.from(j.kvs[0].value, 'base64').toString() : null) };
}

test('pipelined requests are answered in order, each after the previous one (a GET sees the PUT before it)', { skip: !hasEtcd() && NO_ETCD }, async () => {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  let raw = '';
  const expect: unknown[] = [];
  for (let i = 0; i < 20; i++) {
    raw += req('PUT', '/v2/keys/pipe', `value=v${i}`) + req('GET', '/v2/keys/pipe');
    raw += req('POST', '/v3/kv/put', JSON.stringify({ key: b64('pipe'), value: b64(`g${i}`) }), 'application/json');
    raw += req('POST', '/v3/kv/range', JSON.stringify({ key: b64('pipe') }), 'application/json');
    expect.push({ status: i === 0 ? 201 : 200, value: `v${i}` }, { status: 200, value: `v${i}` }, { status: 200, value: null }, { status: 200, value: `g${i}` });
  }
  const [a, b] = await Promise.all([pipeline(pair.etcd.clientUrl, raw, 80), pipeline(pair.etc.clientUrl, raw, 80)]);
  assert.deepEqual(a.map(seen), expect, 'etcd');
  assert.deepEqual(b.map(seen), expect, 'etcetera');
});

test('more pipelined requests than the per-connection queue holds are all answered', { skip: !hasEtcd() && NO_ETCD }, async () => {
  const n = MAX_PIPELINED_REQUESTS * 3;
  const raw = req('PUT', '/v2/keys/many', 'value=m') + req('GET', '/v2/keys/many').repeat(n);
  const [a, b] = await Promise.all([pipeline(pair.etcd.clientUrl, raw, n + 1), pipeline(pair.etc.clientUrl, raw, n + 1)]);
  assert.deepEqual(b.map(seen), a.map(seen));
  assert.equal(b.length, n + 1);
  assert.ok(b.slice(1).every((x) => seen(x) !== null && (seen(x) as { value: string }).value === 'm'));
});
