/**
 * Differential test of the v3 JSON gateway's Auth routes against etcd 3.4: the same HTTP request sequences against
 * a fresh etcd and a fresh etcetera, answers compared (status, Content-Type, JSON body or error body) after
 * normalising IDs, Raft terms and the simple tokens' random part. Covers `/v3/auth/authenticate`, user
 * add/get/list/delete/changepw/grant/revoke, role add/get/list/delete/grant/revoke, enable/disable, and KV and
 * admin calls carrying the token in the `Authorization` header: allowed, denied, without token, with an invalid
 * token and (second test, `--auth-token-ttl=1`) with an expired one; watches (`/v3/watch`) with and without a token.
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { startEtcd, startEtcetera, hasEtcd, NO_ETCD, type ServerHandle } from '../helpers/servers';
import { killAllChildren } from '../helpers/procs';
import { Normaliser, request, stream, type HttpAnswer } from './http';

after(killAllChildren);

const b64 = (s: string): string => Buffer.from(s, 'latin1').toString('base64');
const skip = hasEtcd() ? false : NO_ETCD;

interface Side {
  srv: ServerHandle;
  norm: Normaliser;
  /** Tokens this server handed out, by user. */
  tokens: Record<string, string>;
}

/** etcd's simple token: 16 random letters, a dot, the Raft index it was made at. */
const SIMPLE_TOKEN = /^[A-Za-z]{16}\.\d+$/;

/** What is compared of an answer; a simple token is compared by its shape. */
function view(side: Side, a: HttpAnswer): unknown {
  const body = side.norm.body(a.body) as Record<string, unknown>;
  if (body !== null && typeof body === 'object' && typeof body.token === 'string') body.token = SIMPLE_TOKEN.test(body.token) ? '<simple token>' : body.token;
  return { status: a.status, contentType: a.headers['content-type'], body };
}

interface Step {
  path: string;
  body: unknown;
  /** Whose token goes in the Authorization header ('bogus': a made-up one). */
  as?: string;
  /** Keep the token of this answer for that user. */
  keepTokenOf?: string;
}

/** Runs `steps` against both servers in lock-step and compares each answer. */
async function run(sides: [Side, Side], steps: Step[]): Promise<void> {
  for (const [i, s] of steps.entries()) {
    const answers: unknown[] = [];
    for (const side of sides) {
      const headers: Record<string, string> = {};
      if (s.as === 'bogus') headers.authorization = 'abcdefghijklmnop.1';
      else if (s.as !== undefined) headers.authorization = side.tokens[s.as] ?? 'missing-token';
      const a = await request(side.srv.clientUrl, 'POST', s.path, JSON.stringify(s.body), headers);
      if (s.keepTokenOf !== undefined && a.status === 200) side.tokens[s.keepTokenOf] = JSON.parse(a.body).token;
      answers.push(view(side, a));
    }
    const label = `step ${i}: ${s.as ?? 'no token'} ${s.path} ${JSON.stringify(s.body)}`;
    assert.deepEqual(answers[1], answers[0], `${label}\netcd:     ${JSON.stringify(answers[0])}\netcetera: ${JSON.stringify(answers[1])}`);
  }
}

async function startPair(extraArgs: string[]): Promise<[Side, Side]> {
  const [a, b] = await Promise.all([startEtcd({ extraArgs }), startEtcetera({ extraArgs })]);
  return [
    { srv: a, norm: new Normaliser(), tokens: {} },
    { srv: b, norm: new Normaliser(), tokens: {} },
  ];
}

const perm = (permType: string, key: string, rangeEnd?: string): unknown => ({ permType, key: b64(key), ...(rangeEnd !== undefined ? { range_end: b64(rangeEnd) } : {}) });

test('Auth routes: users, roles, enable/disable, tokens in the Authorization header', { skip }, async () => {
  const sides = await startPair([]);
  try {
    await run(sides, [
      // Users and roles while auth is off (no token needed).
      { path: '/v3/auth/status', body: {} },
      { path: '/v3/auth/user/add', body: { name: 'root', password: 'rootpw' } },
      { path: '/v3/auth/user/add', body: { name: 'root', password: 'other' } },
      { path: '/v3/auth/user/add', body: { name: 'alice', password: 'alicepw' } },
      { path: '/v3/auth/user/add', body: { name: 'nopw', options: { no_password: true } } },
      { path: '/v3/auth/user/add', body: { name: '', password: 'x' } },
      { path: '/v3/auth/user/get', body: { name: 'root' } },
      { path: '/v3/auth/user/get', body: { name: 'nobody' } },
      { path: '/v3/auth/user/list', body: {} },
      { path: '/v3/auth/role/add', body: { name: 'reader' } },
      { path: '/v3/auth/role/add', body: { name: 'reader' } },
      { path: '/v3/auth/role/add', body: { name: '' } },
      { path: '/v3/auth/role/add', body: { name: 'scratch' } },
      { path: '/v3/auth/role/grant', body: { name: 'reader', perm: perm('READ', 'a/', 'a0') } },
      { path: '/v3/auth/role/grant', body: { name: 'reader', perm: perm('WRITE', 'w') } },
      { path: '/v3/auth/role/grant', body: { name: 'reader', perm: { permType: 2, key: b64('rw/'), range_end: b64('\0') } } },
      { path: '/v3/auth/role/grant', body: { name: 'nosuch', perm: perm('READ', 'x') } },
      { path: '/v3/auth/role/grant', body: { name: 'reader', perm: { permType: 'BOGUS', key: b64('x') } } },
      { path: '/v3/auth/role/get', body: { role: 'reader' } },
      { path: '/v3/auth/role/get', body: { role: 'nosuch' } },
      { path: '/v3/auth/role/list', body: {} },
      { path: '/v3/auth/user/grant', body: { user: 'alice', role: 'reader' } },
      { path: '/v3/auth/user/grant', body: { user: 'alice', role: 'nosuch' } },
      { path: '/v3/auth/user/grant', body: { user: 'nobody', role: 'reader' } },
      { path: '/v3/auth/user/grant', body: { user: 'alice', role: 'scratch' } },
      { path: '/v3/auth/user/get', body: { name: 'alice' } },
      { path: '/v3/auth/user/revoke', body: { name: 'alice', role: 'scratch' } },
      { path: '/v3/auth/user/revoke', body: { name: 'alice', role: 'scratch' } },
      { path: '/v3/auth/role/delete', body: { role: 'scratch' } },
      { path: '/v3/auth/role/delete', body: { role: 'scratch' } },
      { path: '/v3/auth/authenticate', body: { name: 'root', password: 'rootpw' } },
      // Enabling needs root to hold the root role.
      { path: '/v3/auth/enable', body: {} },
      { path: '/v3/auth/user/grant', body: { user: 'root', role: 'root' } },
      { path: '/v3/auth/enable', body: {} },
      { path: '/v3/auth/status', body: {} },
      // Auth on: tokens.
      { path: '/v3/auth/authenticate', body: { name: 'root', password: 'wrong' } },
      { path: '/v3/auth/authenticate', body: { name: 'nobody', password: 'x' } },
      { path: '/v3/auth/authenticate', body: { name: 'nopw', password: '' } },
      { path: '/v3/auth/authenticate', body: { name: 'root', password: 'rootpw' }, keepTokenOf: 'root' },
      { path: '/v3/auth/authenticate', body: { name: 'alice', password: 'alicepw' }, keepTokenOf: 'alice' },
      // KV with and without permission.
      { path: '/v3/kv/put', body: { key: b64('a/1'), value: b64('v') } },
      { path: '/v3/kv/put', body: { key: b64('a/1'), value: b64('v') }, as: 'root' },
      { path: '/v3/kv/range', body: { key: b64('a/1') }, as: 'alice' },
      { path: '/v3/kv/range', body: { key: b64('a/'), range_end: b64('a0') }, as: 'alice' },
      { path: '/v3/kv/range', body: { key: b64('a/'), range_end: b64('b') }, as: 'alice' },
      { path: '/v3/kv/put', body: { key: b64('a/1'), value: b64('x') }, as: 'alice' },
      { path: '/v3/kv/put', body: { key: b64('w'), value: b64('x') }, as: 'alice' },
      { path: '/v3/kv/put', body: { key: b64('rw/q'), value: b64('x') }, as: 'alice' },
      { path: '/v3/kv/range', body: { key: b64('w') }, as: 'alice' },
      { path: '/v3/kv/deleterange', body: { key: b64('w') }, as: 'alice' },
      { path: '/v3/kv/txn', body: { success: [{ request_put: { key: b64('a/2'), value: b64('y') } }] }, as: 'alice' },
      { path: '/v3/kv/txn', body: { success: [{ request_range: { key: b64('a/1') } }] }, as: 'alice' },
      { path: '/v3/kv/range', body: { key: b64('a/1') }, as: 'bogus' },
      { path: '/v3/kv/put', body: { key: b64('a/1'), value: b64('v') }, as: 'bogus' },
      { path: '/v3/lease/grant', body: { TTL: 60 }, as: 'alice' },
      { path: '/v3/maintenance/status', body: {}, as: 'alice' },
    ]);
    // Watches carry the token too: one on a readable key is created, one on a key alice may only write is
    // cancelled with the permission error; a watch without token is refused as a range is.
    for (const [who, key] of [['alice', 'a/1'], ['alice', 'w'], [undefined, 'a/1'], ['bogus', 'a/1']] as const) {
      const lines: unknown[] = [];
      for (const side of sides) {
        const headers: Record<string, string> = who === undefined ? {} : { authorization: who === 'bogus' ? 'abcdefghijklmnop.1' : side.tokens[who]! };
        const s = stream(side.srv.clientUrl, '/v3/watch', JSON.stringify({ create_request: { key: b64(key) } }), headers);
        try {
          await s.waitLines(1, 30_000);
          lines.push({ status: await s.status, first: side.norm.body(s.lines[0]!) });
        } finally {
          s.close();
        }
      }
      assert.deepEqual(lines[1], lines[0], `watch ${key} as ${who ?? 'no token'}\netcd:     ${JSON.stringify(lines[0])}\netcetera: ${JSON.stringify(lines[1])}`);
    }
    await run(sides, [
      // Admin calls: only root may.
      { path: '/v3/auth/user/list', body: {} },
      { path: '/v3/auth/user/list', body: {}, as: 'alice' },
      { path: '/v3/auth/user/list', body: {}, as: 'bogus' },
      { path: '/v3/auth/user/list', body: {}, as: 'root' },
      { path: '/v3/auth/user/get', body: { name: 'alice' }, as: 'alice' },
      { path: '/v3/auth/role/get', body: { role: 'reader' }, as: 'alice' },
      { path: '/v3/auth/role/list', body: {}, as: 'alice' },
      { path: '/v3/auth/role/list', body: {}, as: 'root' },
      { path: '/v3/auth/user/changepw', body: { name: 'alice', password: 'newpw' }, as: 'alice' },
      { path: '/v3/auth/user/changepw', body: { name: 'alice', password: 'newpw' }, as: 'root' },
      { path: '/v3/auth/user/changepw', body: { name: 'nobody', password: 'newpw' }, as: 'root' },
      { path: '/v3/auth/authenticate', body: { name: 'alice', password: 'alicepw' } },
      { path: '/v3/auth/authenticate', body: { name: 'alice', password: 'newpw' }, keepTokenOf: 'alice' },
      { path: '/v3/kv/range', body: { key: b64('a/1') }, as: 'alice' },
      { path: '/v3/auth/role/revoke', body: { role: 'reader', key: b64('a/'), range_end: b64('a0') }, as: 'root' },
      { path: '/v3/auth/role/revoke', body: { role: 'reader', key: b64('a/'), range_end: b64('a0') }, as: 'root' },
      { path: '/v3/auth/role/revoke', body: { role: 'nosuch', key: b64('a/') }, as: 'root' },
      { path: '/v3/auth/role/get', body: { role: 'reader' }, as: 'root' },
      { path: '/v3/kv/range', body: { key: b64('a/1') }, as: 'alice' },
      { path: '/v3/auth/user/revoke', body: { name: 'root', role: 'root' }, as: 'root' },
      { path: '/v3/auth/role/delete', body: { role: 'root' }, as: 'root' },
      { path: '/v3/auth/user/delete', body: { name: 'root' }, as: 'root' },
      { path: '/v3/auth/user/revoke', body: { name: 'alice', role: 'reader' }, as: 'root' },
      { path: '/v3/auth/user/get', body: { name: 'alice' }, as: 'root' },
      { path: '/v3/auth/role/delete', body: { role: 'reader' }, as: 'root' },
      { path: '/v3/auth/user/delete', body: { name: 'alice' }, as: 'root' },
      { path: '/v3/auth/user/delete', body: { name: 'alice' }, as: 'root' },
      { path: '/v3/kv/range', body: { key: b64('a/1') }, as: 'alice' },
      { path: '/v3/auth/user/list', body: {}, as: 'root' },
      { path: '/v3/auth/disable', body: {}, as: 'alice' },
      { path: '/v3/auth/disable', body: {}, as: 'root' },
      // Auth off again: no token needed, a stale one is ignored.
      { path: '/v3/auth/status', body: {} },
      { path: '/v3/kv/range', body: { key: b64('a/1') } },
      { path: '/v3/kv/range', body: { key: b64('a/1') }, as: 'bogus' },
      { path: '/v3/auth/user/list', body: {} },
      // Malformed bodies on auth routes.
    ]);
    for (const [pathName, body] of [
      ['/v3/auth/user/add', '{"name":'],
      ['/v3/auth/role/grant', '{"name":"x","perm":{"key":"!!"}}'],
      ['/v3/auth/authenticate', 'garbage'],
    ] as const) {
      const answers: unknown[] = [];
      for (const side of sides) answers.push(view(side, await request(side.srv.clientUrl, 'POST', pathName, body)));
      assert.deepEqual(answers[1], answers[0], `${pathName} ${body}`);
    }
  } finally {
    await Promise.all(sides.map((s) => s.srv.stop()));
  }
});

test('Auth routes: an expired simple token (--auth-token-ttl=1)', { skip }, async () => {
  const sides = await startPair(['--auth-token-ttl=1']);
  try {
    await run(sides, [
      { path: '/v3/auth/user/add', body: { name: 'root', password: 'rootpw' } },
      { path: '/v3/auth/user/grant', body: { user: 'root', role: 'root' } },
      { path: '/v3/auth/enable', body: {} },
      { path: '/v3/auth/authenticate', body: { name: 'root', password: 'rootpw' }, keepTokenOf: 'root' },
    ]);
    // Each server's token expires after a second unused; wait (no timing assumed) until both refuse it.
    const deadline = Date.now() + 60_000;
    const denied: unknown[] = [];
    for (const side of sides) {
      for (;;) {
        const a = await request(side.srv.clientUrl, 'POST', '/v3/kv/range', JSON.stringify({ key: b64('k') }), { authorization: side.tokens.root! });
        if (a.status !== 200) {
          denied.push(view(side, a));
          break;
        }
        assert.ok(Date.now() < deadline, `the token was still accepted after 60 s: ${a.body}`);
        await new Promise((r) => setTimeout(r, 1500));
      }
    }
    assert.deepEqual(denied[1], denied[0], `etcd:     ${JSON.stringify(denied[0])}\netcetera: ${JSON.stringify(denied[1])}`);
    // An expired token stays refused, on admin calls too.
    await run(sides, [
      { path: '/v3/auth/user/list', body: {}, as: 'root' },
      { path: '/v3/kv/put', body: { key: b64('k'), value: b64('v') }, as: 'root' },
    ]);
  } finally {
    await Promise.all(sides.map((s) => s.srv.stop()));
  }
});
