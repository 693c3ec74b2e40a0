/**
 * Differential test of the v3 JSON gateway: the same HTTP request sequences against a fresh etcd 3.4 and a fresh
 * etcetera, answers compared after normalising IDs (by order of first appearance), terms, Raft indexes and sizes:
 * status, Content-Type, Grpc-Metadata-Content-Type, CORS headers and the JSON body. Covers KV, Lease (keep-alive
 * stream), Cluster, Maintenance, Lock, Election (observe stream), Watch (stream) and bad input (malformed JSON,
 * bad base64, wrong types, unknown enums, oversized bodies, unknown paths, wrong methods).
 * Maintenance.Snapshot: the streamed lines' shape and the file their blobs make (`etcdctl snapshot status`).
 */
import { test, after, before, beforeEach } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startEtcd, startEtcetera, hasEtcd, NO_ETCD, type ServerHandle } from '../helpers/servers';
import { killAllChildren } from '../helpers/procs';
import { Normaliser, request, stream, type HttpAnswer } from './http';

after(killAllChildren);

const b64 = (s: string): string => Buffer.from(s, 'latin1').toString('base64');

interface Side {
  name: string;
  srv: ServerHandle;
  norm: Normaliser;
  /** Values captured from this server's own answers (lease IDs, leader keys), used by later requests. */
  ctx: Record<string, unknown>;
}

let etcd: Side;
let etc: Side;

before(async () => {
  if (!hasEtcd()) return;
  // etcetera with etcd's test timings (the helper starts etcd with them): the minimum lease TTL derives from them.
  const [a, b] = await Promise.all([startEtcd(), startEtcetera({ extraArgs: ['--heartbeat-interval=20', '--election-timeout=200'] })]);
  etcd = { name: 'etcd', srv: a, norm: new Normaliser(), ctx: {} };
  etc = { name: 'etcetera', srv: b, norm: new Normaliser(), ctx: {} };
});

// IDs are numbered per test, so a difference stays in the test that shows it.
beforeEach(() => {
  if (etcd) etcd.norm = new Normaliser();
  if (etc) etc.norm = new Normaliser();
});

after(async () => {
  await etcd?.srv.stop();
  await etc?.srv.stop();
});

/** What is compared of an answer. */
function view(side: Side, a: HttpAnswer): unknown {
  const cors = ['access-control-allow-origin', 'access-control-allow-methods', 'access-control-allow-headers'].map((h) => a.headers[h]);
  return {
    status: a.status,
    contentType: a.headers['content-type'],
    grpcMetadata: a.headers['grpc-metadata-content-type'],
    location: a.headers['location'],
    cors,
    body: side.norm.body(a.body),
  };
}

type Body = string | ((ctx: Record<string, unknown>) => string);
interface Step {
  path: string;
  body?: Body;
  method?: string;
  /** Save something of this server's answer for later steps. */
  keep?: (json: any, ctx: Record<string, unknown>) => void;
  /** Compare only status and gRPC code (texts that legitimately differ). */
  codeOnly?: boolean;
}

/** Runs `steps` against both servers in lock-step and compares each answer. */
async function run(steps: Step[]): Promise<void> {
  for (const [i, s] of steps.entries()) {
    const answers: unknown[] = [];
    for (const side of [etcd, etc]) {
      const body = typeof s.body === 'function' ? s.body(side.ctx) : s.body;
      const a = await request(side.srv.clientUrl, s.method ?? 'POST', s.path, body);
      if (s.keep && a.status === 200) s.keep(JSON.parse(a.body), side.ctx);
      if (s.codeOnly) {
        let code: unknown;
        try {
          code = JSON.parse(a.body).code;
        } catch {
          code = a.body;
        }
        answers.push({ status: a.status, code });
      } else answers.push(view(side, a));
    }
    const label = `step ${i}: ${s.method ?? 'POST'} ${s.path} ${typeof s.body === 'function' ? s.body(etcd.ctx) : (s.body ?? '').slice(0, 200)}`;
    assert.deepEqual(answers[1], answers[0], `${label}\netcd:     ${JSON.stringify(answers[0])}\netcetera: ${JSON.stringify(answers[1])}`);
  }
}

const skip = hasEtcd() ? false : NO_ETCD;

test('KV: put, range, deleterange, txn, compaction and their errors', { skip }, async () => {
  await run([
    { path: '/v3/kv/put', body: JSON.stringify({ key: b64('foo'), value: b64('bar') }) },
    { path: '/v3/kv/put', body: JSON.stringify({ key: b64('foo'), value: b64('baz'), prev_kv: true }) },
    { path: '/v3beta/kv/put', body: JSON.stringify({ key: b64('a/1'), value: b64('<&>') }) },
    { path: '/v3/kv/put', body: JSON.stringify({ key: b64('a/2'), value: '' }) },
    { path: '/v3/kv/range', body: JSON.stringify({ key: b64('foo') }) },
    { path: '/v3/kv/range', body: JSON.stringify({ key: b64('a/'), range_end: b64('a0'), sort_order: 'DESCEND', sort_target: 'KEY' }) },
    { path: '/v3/kv/range', body: JSON.stringify({ key: b64('a/'), rangeEnd: b64('a0'), sortOrder: 1, limit: '1' }) },
    { path: '/v3/kv/range', body: JSON.stringify({ key: b64('\0'), range_end: b64('\0'), count_only: true }) },
    { path: '/v3/kv/range', body: JSON.stringify({ key: b64('a/'), range_end: b64('a0'), keys_only: true, limit: 5, unknown_field: [1, 2] }) },
    { path: '/v3/kv/range', body: JSON.stringify({ key: b64('nothing') }) },
    { path: '/v3/kv/range', body: JSON.stringify({ key: b64('foo'), revision: '2' }) },
    { path: '/v3/kv/range', body: '' },
    { path: '/v3/kv/range', body: 'null' },
    {
      path: '/v3/kv/txn',
      body: JSON.stringify({
        compare: [{ key: b64('foo'), target: 'VALUE', result: 'EQUAL', value: b64('baz') }],
        success: [{ request_range: { key: b64('foo') } }, { request_put: { key: b64('foo'), value: b64('qux'), prev_kv: true } }],
        failure: [{ requestDeleteRange: { key: b64('foo') } }],
      }),
    },
    {
      path: '/v3/kv/txn',
      body: JSON.stringify({
        compare: [{ key: b64('foo'), target: 'VERSION', result: 'GREATER', version: '100' }, { key: b64('foo'), target: 2, result: 'LESS', mod_revision: 0 }],
        success: [{ request_put: { key: b64('x'), value: b64('1') } }],
        failure: [{ request_put: { key: b64('y'), value: b64('2') } }, { request_txn: { success: [{ request_range: { key: b64('y') } }] } }],
      }),
    },
    { path: '/v3/kv/txn', body: JSON.stringify({ success: [{ request_put: { key: b64('d') } }, { request_put: { key: b64('d') } }] }) },
    { path: '/v3/kv/deleterange', body: JSON.stringify({ key: b64('a/'), range_end: b64('a0'), prev_kv: true }) },
    { path: '/v3/kv/deleterange', body: JSON.stringify({ key: b64('nothing') }) },
    { path: '/v3/kv/put', body: JSON.stringify({ key: b64('leased'), value: b64('v'), lease: '12345' }) },
    { path: '/v3/kv/put', body: JSON.stringify({ key: '', value: b64('v') }) },
    { path: '/v3/kv/compaction', body: JSON.stringify({ revision: '3', physical: true }) },
    { path: '/v3/kv/compaction', body: JSON.stringify({ revision: 3 }) },
    { path: '/v3/kv/compaction', body: JSON.stringify({ revision: '3000' }) },
    { path: '/v3/kv/range', body: JSON.stringify({ key: b64('foo'), revision: 2 }) },
    { path: '/v3/kv/range', body: JSON.stringify({ key: b64('foo'), revision: '4' }) },
  ]);
});

test('Lease: grant, timetolive, leases, revoke (also under kv/lease/) and a keep-alive stream', { skip }, async () => {
  await run([
    { path: '/v3/lease/grant', body: JSON.stringify({ TTL: 60 }), keep: (j, c) => (c.lease = j.ID) },
    { path: '/v3/kv/put', body: (c) => JSON.stringify({ key: b64('lk'), value: b64('v'), lease: c.lease }) },
    { path: '/v3/lease/timetolive', body: (c) => JSON.stringify({ ID: c.lease, keys: true }) },
    // The ID as a JSON number literal (etcd's IDs exceed 2^53: written as digits, not through a JS number).
    { path: '/v3/kv/lease/timetolive', body: (c) => `{"ID":${String(c.lease)}}` },
    { path: '/v3/lease/leases', body: '{}' },
    { path: '/v3/kv/lease/leases' },
    { path: '/v3/lease/timetolive', body: JSON.stringify({ ID: '999' }) },
    { path: '/v3/lease/grant', body: JSON.stringify({ TTL: '9000000001' }) },
    { path: '/v3/lease/grant', body: JSON.stringify({ TTL: 30 }), keep: (j, c) => (c.lease2 = j.ID) },
  ]);
  // Keep-alive: two requests in one body; the stream ends with the body.
  const ka: unknown[] = [];
  for (const side of [etcd, etc]) {
    const s = stream(side.srv.clientUrl, '/v3/lease/keepalive', `${JSON.stringify({ ID: side.ctx.lease2 })}\n{"ID":"12345"}`);
    s.endBody();
    await s.waitLines(2);
    await s.ended;
    ka.push({ status: await s.status, ct: (await s.headers)['content-type'], lines: s.lines.map((l) => side.norm.body(l)) });
  }
  assert.deepEqual(ka[1], ka[0]);
  await run([
    { path: '/v3/kv/lease/revoke', body: (c) => JSON.stringify({ ID: c.lease }) },
    { path: '/v3/lease/revoke', body: (c) => JSON.stringify({ ID: c.lease }) },
    { path: '/v3/kv/range', body: JSON.stringify({ key: b64('lk') }) },
    { path: '/v3/lease/revoke', body: (c) => JSON.stringify({ ID: c.lease2 }) },
  ]);
});

test('Cluster: member list, add (learner), update, promote, remove and their errors', { skip }, async () => {
  await run([
    { path: '/v3/cluster/member/list', body: '{}' },
    { path: '/v3/cluster/member/add', body: JSON.stringify({ peerURLs: ['http://127.0.0.1:1'], isLearner: true }), keep: (j, c) => (c.learner = j.member.ID) },
    { path: '/v3/cluster/member/list' },
    // etcd 3.4 drops isLearner from the updated member in this answer (its UpdateRaftAttributes replaces the
    // whole RaftAttributes); etcetera keeps it. Known difference: only status and code are compared here.
    { path: '/v3/cluster/member/update', body: (c) => JSON.stringify({ ID: c.learner, peerURLs: ['http://127.0.0.1:2'] }), codeOnly: true },
    { path: '/v3/cluster/member/promote', body: (c) => JSON.stringify({ ID: c.learner }) },
    { path: '/v3/cluster/member/remove', body: (c) => JSON.stringify({ ID: c.learner }) },
    { path: '/v3/cluster/member/remove', body: (c) => JSON.stringify({ ID: c.learner }) },
    { path: '/v3/cluster/member/add', body: JSON.stringify({ peerURLs: ['bad'] }) },
    { path: '/v3/cluster/member/list' },
  ]);
});

test('Maintenance: status, alarm, defragment, transfer-leadership errors', { skip }, async () => {
  await run([
    { path: '/v3/maintenance/status', body: '{}' },
    { path: '/v3/maintenance/alarm', body: '{}' },
    { path: '/v3/maintenance/alarm', body: JSON.stringify({ action: 'GET', alarm: 'NOSPACE' }) },
    { path: '/v3/maintenance/defragment' },
    { path: '/v3/maintenance/transfer-leadership', body: JSON.stringify({ targetID: '5' }) },
    { path: '/v3/maintenance/hashkv', body: '{}' },
    { path: '/v3/maintenance/hash', body: '{}' },
  ]);
});

test('Maintenance: snapshot streamed as {"result":{blob, remaining_bytes}} lines that make a file etcdctl reads', { skip }, async () => {
  const out: unknown[] = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-snap-'));
  try {
    for (const side of [etcd, etc]) {
      const a = await request(side.srv.clientUrl, 'POST', '/v3/maintenance/snapshot', '{}');
      const lines = a.body.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
      const results = lines.map((l) => l.result);
      assert.ok(results.length > 0 && results.every((r) => r !== undefined), `${side.name}: every line is a result: ${a.body.slice(0, 200)}`);
      const remaining = results.map((r) => (r.remaining_bytes === undefined ? 0 : Number(r.remaining_bytes)));
      const blob = Buffer.concat(results.map((r) => Buffer.from(r.blob ?? '', 'base64')));
      const file = path.join(dir, `${side.name}.db`);
      fs.writeFileSync(file, blob);
      const status = JSON.parse(execFileSync('etcdctl', ['snapshot', 'status', file, '-w', 'json'], { encoding: 'utf8' }));
      out.push({
        status: a.status,
        contentType: a.headers['content-type'],
        keysOfFirst: Object.keys(results[0]).sort(),
        keysOfLast: Object.keys(results[results.length - 1]).sort(),
        remainingDecreases: remaining.every((n, i) => i === 0 || n < remaining[i - 1]),
        lastRemaining: remaining[remaining.length - 1],
        file: { revision: status.revision, totalKey: status.totalKey },
      });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(out[1], out[0]);
});

test('Lock and Election (with an observe stream)', { skip }, async () => {
  await run([
    { path: '/v3/lock/lock', body: JSON.stringify({ name: b64('mylock') }), keep: (j, c) => (c.lockKey = j.key) },
    { path: '/v3/lock/unlock', body: (c) => JSON.stringify({ key: c.lockKey }) },
    { path: '/v3/lease/grant', body: JSON.stringify({ TTL: 60 }), keep: (j, c) => (c.elLease = j.ID) },
    { path: '/v3/election/campaign', body: (c) => JSON.stringify({ name: b64('el'), lease: c.elLease, value: b64('v1') }), keep: (j, c) => (c.leader = j.leader) },
    { path: '/v3/election/leader', body: JSON.stringify({ name: b64('el') }) },
    { path: '/v3/election/proclaim', body: (c) => JSON.stringify({ leader: c.leader, value: b64('v2') }) },
    { path: '/v3/election/leader', body: JSON.stringify({ name: b64('el') }) },
    { path: '/v3/election/proclaim', body: JSON.stringify({ value: b64('v2') }) },
    { path: '/v3/election/leader', body: JSON.stringify({ name: b64('nobody') }) },
  ]);
  const obs: unknown[] = [];
  for (const side of [etcd, etc]) {
    const s = stream(side.srv.clientUrl, '/v3/election/observe', JSON.stringify({ name: b64('el') }));
    s.endBody();
    await s.waitLines(1);
    await request(side.srv.clientUrl, 'POST', '/v3/election/proclaim', JSON.stringify({ leader: side.ctx.leader, value: b64('v3') }));
    await s.waitLines(2);
    s.close();
    obs.push({ status: await s.status, lines: s.lines.slice(0, 2).map((l) => side.norm.body(l)) });
  }
  assert.deepEqual(obs[1], obs[0]);
  await run([
    { path: '/v3/election/resign', body: (c) => JSON.stringify({ leader: c.leader }) },
    { path: '/v3/election/leader', body: JSON.stringify({ name: b64('el') }) },
  ]);
});

test('Watch: a stream of {"result":…} lines (created, events, several watchers per body)', { skip }, async () => {
  const out: unknown[] = [];
  for (const side of [etcd, etc]) {
    const s = stream(
      side.srv.clientUrl,
      '/v3/watch',
      JSON.stringify({ create_request: { key: b64('w/'), range_end: b64('w0'), prev_kv: true } }) + JSON.stringify({ create_request: { key: b64('w/1'), filters: ['NODELETE'] } }),
    );
    await s.waitLines(2);
    await request(side.srv.clientUrl, 'POST', '/v3/kv/put', JSON.stringify({ key: b64('w/1'), value: b64('a') }));
    await request(side.srv.clientUrl, 'POST', '/v3/kv/put', JSON.stringify({ key: b64('w/1'), value: b64('b') }));
    await request(side.srv.clientUrl, 'POST', '/v3/kv/deleterange', JSON.stringify({ key: b64('w/1') }));
    // 3 events for watcher 0, 2 for watcher 1 (one message per revision per watcher).
    await s.waitLines(7);
    // A later request in the same body: cancel watcher 1, then the body ends (the stream stays open).
    s.write(JSON.stringify({ cancel_request: { watch_id: 1 } }));
    await s.waitLines(8);
    s.endBody();
    await request(side.srv.clientUrl, 'POST', '/v3/kv/put', JSON.stringify({ key: b64('w/2'), value: b64('c') }));
    await s.waitLines(9);
    s.close();
    const status = await s.status;
    const headers = await s.headers;
    // Messages of the two watchers may interleave differently: compare them sorted.
    const lines = s.lines.slice(0, 9).map((l) => JSON.stringify(side.norm.body(l)));
    out.push({ status, ct: headers['content-type'], grpc: headers['grpc-metadata-content-type'], first: lines.slice(0, 2), rest: lines.slice(2).sort() });
  }
  assert.deepEqual(out[1], out[0]);
  // A first request that does not decode is a 500 code 2 answer.
  await run([{ path: '/v3/watch', body: 'garbage' }, { path: '/v3/watch', body: JSON.stringify({ create_request: { key: 'Zm9' } }) }]);
});

test('bad input: malformed JSON, bad base64, wrong types, unknown enums, paths and methods', { skip }, async () => {
  const bodies = [
    '{"key":"Zm9v"', 'garbage', '{"key":"Zm9v",}', '{"key":"Zm9v" "a"}', '{"key":tru}', '{"key":"\\x"}', '{"key":"\\u12g4"}',
    '{"key":"Zm9v","limit":-}', '{"key":"Zm9v","limit":1.}', '{"key":"Zm9v","limit":1e}', '[1,2', '{"a":[1 2]}', '{"a"}', '\u0001',
    '{"key":"Zm9vx"}', '{"key":"Zm9"}', '{"key":"Zg="}', '{"key":"Zg"}', '{"key":"Zm 9v"}', '{"key":"Zm9v\\n"}', '{"key":"Z===" }', '{"key":"Zm9v","range_end":"é"}',
    '{"key":5}', '{"key":true}', '{"key":{}}', '{"key":[102,111]}', '5', '"str"', '[]', 'true',
    '{"key":"Zm9v","limit":"abc"}', '{"key":"Zm9v","limit":1.5}', '{"key":"Zm9v","limit":"99999999999999999999"}', '{"key":"Zm9v","limit":true}',
    '{"key":"Zm9v","limit":""}', '{"key":"Zm9v","limit":" 7 "}', '{"key":"Zm9v","keys_only":"true"}', '{"key":"Zm9v","keys_only":1}',
    '{"key":"Zm9v","sort_order":"BAD"}', '{"key":"Zm9v","sort_order":"1"}', '{"key":"Zm9v","sort_order":1.5}', '{"key":"Zm9v","sort_order":7}',
    '{"key":"Zm9v"} trailing garbage', '  {"key":"Zm9v"}  ', '{"key":"Zm9v","key":"YmFy"}', '{"key":null,"limit":null}',
  ];
  await run(bodies.map((body) => ({ path: '/v3/kv/range', body })));
  await run([
    { path: '/v3/kv/txn', body: '{"compare":{}}' },
    { path: '/v3/kv/txn', body: '{"compare":[{"result":"FOO"}]}' },
    { path: '/v3/kv/txn', body: '{"compare":[5]}' },
    { path: '/v3/kv/txn', body: '{"success":[{"request_put":{"key":5}}]}' },
    { path: '/v3/cluster/member/add', body: '{"peerURLs":"http://x"}' },
    { path: '/v3/cluster/member/add', body: '{"peerURLs":[5]}' },
    { path: '/v3/lease/grant', body: '{"TTL":"-5"}' },
    { path: '/v3/kv/nothing', body: '{}' },
    { path: '/v3/nothing', body: '{}' },
    { path: '/v3/kv/range/', body: '{}' },
    { path: '/v3//kv/range', body: '{}' },
    { path: '/v3/auth/status', body: '{}' },
    { path: '/v3/maintenance/hashkv', body: '{}' },
    { path: '/v3/kv/range', method: 'GET' },
    { path: '/v3/kv/put', method: 'PUT', body: '{}' },
    { path: '/v3/watch', method: 'GET' },
    { path: '/v3/kv/put', method: 'OPTIONS' },
  ]);
  // Between --max-request-bytes (1.5 MiB) and the gRPC limit (2 MiB): etcd's "request is too large".
  const big = JSON.stringify({ key: b64('big'), value: Buffer.alloc(1024 * 1024 + 600_000, 120).toString('base64') });
  await run([{ path: '/v3/kv/put', body: big }]);
  // Over the gRPC receive limit: ResourceExhausted / 429 (etcd quotes the exact encoded size; only the code is compared).
  const huge = JSON.stringify({ key: b64('big'), value: Buffer.alloc(3 * 1024 * 1024, 120).toString('base64') });
  await run([{ path: '/v3/kv/put', body: huge, codeOnly: true }, { path: '/v3/kv/range', body: JSON.stringify({ key: b64('big') }) }]);
  // The server is still fine.
  await run([{ path: '/v3/kv/put', body: JSON.stringify({ key: b64('after'), value: b64('ok') }) }, { path: '/v3/kv/range', body: JSON.stringify({ key: b64('after') }) }]);
});
