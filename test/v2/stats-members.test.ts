/**
 * Differential test of etcd 3.4's v2 statistics and membership routes (`--enable-v2=true`), 3 members on each side:
 * - `/v2/stats/self` on every member: the same fields in the same order with the same JSON types, the role (leader
 *   / follower), the member's own ID and name, the leader it follows; `/v2/stats/leader` on the leader: every other
 *   member listed with etcd's latency and count fields (answers counted), and on a follower etcd's 403 "not current
 *   leader"; wrong methods 405 with `Allow: GET`;
 * - `/v2/members` writes: add (201 with the new member), update (204), remove (204, then 410 Gone), and the
 *   answers to bad requests (415 content type, Go's JSON errors, URL errors, unknown and unparsable IDs, an
 *   existing peer URL 409, wrong methods, a second add while the first added member has not started 500), compared after replacing each side's member IDs and URLs by names.
 */
import { test, after, before } from 'node:test';
import * as assert from 'node:assert/strict';
import { startEtcd, startEtcetera, hasEtcd, NO_ETCD, type ServerHandle } from '../helpers/servers';
import { killAllChildren } from '../helpers/procs';
import { request, type HttpAnswer } from '../gateway/http';

after(killAllChildren);

interface SideMember {
  id: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
}

interface Side {
  name: string;
  cluster: ServerHandle;
  members: SideMember[];
  /** Client URL of the leader and of one follower. */
  leader: string;
  follower: string;
}

let etcd: Side;
let etc: Side;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The membership and leader as a side reports them, once a leader is known. */
async function survey(name: string, cluster: ServerHandle): Promise<Side> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const a = await request(cluster.clientUrl, 'GET', '/v2/members/leader').catch(() => null);
    if (a?.status === 200) {
      const lead = JSON.parse(a.body) as SideMember;
      const all = JSON.parse((await request(cluster.clientUrl, 'GET', '/v2/members')).body) as { members: SideMember[] };
      const follower = all.members.find((m) => m.id !== lead.id)!;
      return { name, cluster, members: all.members, leader: lead.clientURLs[0]!, follower: follower.clientURLs[0]! };
    }
    if (Date.now() > deadline) throw new Error(`${name}: no leader in 60 s`);
    await sleep(200);
  }
}

before(async () => {
  if (!hasEtcd()) return;
  const [a, b] = await Promise.all([
    startEtcd({ members: 3, extraArgs: ['--enable-v2=true'] }),
    startEtcetera({ members: 3, extraArgs: ['--enable-v2=true'] }),
  ]);
  [etcd, etc] = await Promise.all([survey('etcd', a), survey('etcetera', b)]);
});

after(async () => {
  await etcd?.cluster.stop();
  await etc?.cluster.stop();
});

/** A v2 write through the side's leader, retried on 5xx while the cluster settles. */
async function put(side: Side, key: string, value: string): Promise<void> {
  for (let i = 0; ; i++) {
    const a = await request(side.leader, 'PUT', `/v2/keys/${key}`, `value=${value}`, { 'content-type': 'application/x-www-form-urlencoded' });
    if (a.status < 300) return;
    if (i > 50) throw new Error(`${side.name}: PUT ${key}: ${a.status} ${a.body}`);
    await sleep(200);
  }
}

const RATE_FIELDS = new Set(['recvPkgRate', 'recvBandwidthRate', 'sendPkgRate', 'sendBandwidthRate']);

/** The JSON "shape" of a value: key order and types, leaves by type only. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(shape);
  if (v !== null && typeof v === 'object') return Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, shape(x)]);
  return typeof v;
}

/** stats/self without the rates (present only while traffic flowed within the last second), after checking them. */
function selfShape(body: string): unknown {
  const v = JSON.parse(body) as Record<string, unknown>;
  for (const k of RATE_FIELDS) if (k in v) assert.equal(typeof v[k], 'number', `${k} in ${body}`);
  return shape(Object.fromEntries(Object.entries(v).filter(([k]) => !RATE_FIELDS.has(k))));
}

test('v2 stats/self and stats/leader: etcd 3.4 fields, types and roles; 403 on a follower; 405', { skip: !hasEtcd() && NO_ETCD }, async () => {
  for (const side of [etcd, etc]) for (let i = 0; i < 10; i++) await put(side, `stats${i}`, String(i));
  const views = await Promise.all([etcd, etc].map(async (side) => {
    const out: Record<string, unknown> = {};
    const leadId = side.members.find((m) => m.clientURLs[0] === side.leader)!.id;
    for (const m of side.members) {
      const a = await request(m.clientURLs[0]!, 'GET', '/v2/stats/self');
      assert.equal(a.status, 200, `${side.name} ${m.name}: ${a.body}`);
      const v = JSON.parse(a.body) as { name: string; id: string; state: string; leaderInfo: { leader: string; uptime: string; startTime: string }; startTime: string; sendAppendRequestCnt: number; recvAppendRequestCnt: number };
      assert.equal(v.id, m.id, `${side.name}: stats/self id`);
      assert.equal(v.name, m.name, `${side.name}: stats/self name`);
      assert.equal(v.leaderInfo.leader, leadId, `${side.name} ${m.name}: leaderInfo.leader`);
      assert.match(v.leaderInfo.uptime, /^[0-9.]+(ns|µs|ms|s|m|h)/, `${side.name}: uptime is a Go duration: ${v.leaderInfo.uptime}`);
      assert.ok(!Number.isNaN(Date.parse(v.startTime)) && !Number.isNaN(Date.parse(v.leaderInfo.startTime)), `${side.name}: times ${a.body}`);
      const isLeader = m.clientURLs[0] === side.leader;
      assert.equal(v.state, isLeader ? 'StateLeader' : 'StateFollower', `${side.name} ${m.name}: state`);
      // The leader sent appends for the writes above; each follower received some.
      if (isLeader) assert.ok(v.sendAppendRequestCnt > 0, `${side.name}: leader sent no appends: ${a.body}`);
      else assert.ok(v.recvAppendRequestCnt > 0, `${side.name}: follower received no appends: ${a.body}`);
      out[isLeader ? 'leader' : 'follower'] = { status: a.status, type: a.headers['content-type'], shape: selfShape(a.body) };
    }
    const lead = await request(side.leader, 'GET', '/v2/stats/leader');
    assert.equal(lead.status, 200, `${side.name}: ${lead.body}`);
    const ls = JSON.parse(lead.body) as { leader: string; followers: Record<string, { counts: { success: number } }> };
    assert.equal(ls.leader, leadId);
    assert.deepEqual(Object.keys(ls.followers).sort(), side.members.map((m) => m.id).filter((id) => id !== leadId).sort(), `${side.name}: followers`);
    for (const [id, f] of Object.entries(ls.followers)) assert.ok(f.counts.success > 0, `${side.name}: follower ${id} answered nothing: ${lead.body}`);
    out.leaderStats = { status: lead.status, type: lead.headers['content-type'], shape: Object.values(ls.followers).map(shape) };
    const onFollower = await request(side.follower, 'GET', '/v2/stats/leader');
    out.leaderStatsOnFollower = { status: onFollower.status, type: onFollower.headers['content-type'], body: onFollower.body };
    for (const [method, path] of [['POST', '/v2/stats/self'], ['HEAD', '/v2/stats/leader'], ['HEAD', '/v2/stats/store'], ['PUT', '/v2/stats/store']] as const) {
      const a = await request(side.follower, method, path);
      out[`${method} ${path}`] = { status: a.status, allow: a.headers['allow'], type: a.headers['content-type'] };
    }
    return out;
  }));
  assert.deepEqual(views[1], views[0], `etcetera vs etcd:\n${JSON.stringify(views[1])}\n${JSON.stringify(views[0])}`);
});

/** A side's answer with its member IDs, names and URLs replaced by roles (the new member's ID by `<new>`). */
function normalise(side: Side, a: HttpAnswer, newId: string): unknown {
  let body = a.body;
  // Members by role: which member leads differs between the sides.
  for (const m of side.members) {
    const role = m.clientURLs[0] === side.leader ? 'leader' : 'follower';
    body = body.split(`"${m.id}"`).join(`"<${role}>"`).split(`: ${m.id}`).join(`: <${role}>`).split(`"name":"${m.name}"`).join(`"name":"<${role}>"`);
    for (const u of m.peerURLs) body = body.split(u).join(`<${role}-peer>`);
    for (const u of m.clientURLs) body = body.split(u).join(`<${role}-client>`);
  }
  if (newId !== '') body = body.split(newId).join('<new>');
  // A listing is sorted by ID, and IDs differ between the sides: compared as a set.
  if (body.startsWith('{"members":')) {
    const v = JSON.parse(body) as { members: unknown[] };
    body = JSON.stringify({ members: v.members.map((m) => JSON.stringify(m)).sort() });
  }
  return {
    status: a.status,
    contentType: a.headers['content-type'],
    allow: a.headers['allow'],
    clusterId: a.headers['x-etcd-cluster-id'] !== undefined,
    body,
  };
}

interface Step {
  method: string;
  /** Path, given the side (its members) and the new member's ID. */
  path: string | ((side: Side, newId: string) => string);
  body?: string | ((side: Side) => string);
  contentType?: string;
}

test('v2 members: add, update, remove and the answers to bad requests as etcd 3.4 gives them', { skip: !hasEtcd() && NO_ETCD }, async () => {
  const J = 'application/json';
  const other = (s: Side): SideMember => s.members.find((m) => m.clientURLs[0] !== s.leader)!;
  const steps: Step[] = [
    { method: 'POST', path: '/v2/members', body: '{"peerURLs":["http://127.0.0.1:1"]}', contentType: 'application/x-www-form-urlencoded' },
    { method: 'POST', path: '/v2/members', body: '{"peerURLs":["http://127.0.0.1:1"]}' },
    { method: 'POST', path: '/v2/members', body: '{bad', contentType: J },
    { method: 'POST', path: '/v2/members', body: '', contentType: J },
    { method: 'POST', path: '/v2/members', body: '[]', contentType: J },
    { method: 'POST', path: '/v2/members', body: '{"peerURLs":"x"}', contentType: J },
    { method: 'POST', path: '/v2/members', body: '{"peerURLs":[1]}', contentType: J },
    { method: 'POST', path: '/v2/members', body: '{"peerURLs":[]}', contentType: J },
    { method: 'POST', path: '/v2/members', body: '{"peerURLs":["foo"]}', contentType: J },
    { method: 'POST', path: '/v2/members', body: '{"peerURLs":["http://127.0.0.1"]}', contentType: J },
    { method: 'POST', path: '/v2/members', body: '{"peerURLs":["http://127.0.0.1:1/x"]}', contentType: J },
    { method: 'POST', path: '/v2/members', body: '{"peerURLs":["http://127.0.0.1:1/"]}', contentType: J },
    { method: 'POST', path: '/v2/members', body: (s) => `{"peerURLs":["${other(s).peerURLs[0]}"]}`, contentType: J },
    { method: 'PATCH', path: '/v2/members' },
    { method: 'HEAD', path: '/v2/members' },
    { method: 'DELETE', path: '/v2/members' },
    { method: 'PUT', path: '/v2/members/', body: '{}', contentType: J },
    { method: 'DELETE', path: '/v2/members/zz' },
    { method: 'DELETE', path: '/v2/members/123abc' },
    { method: 'PUT', path: '/v2/members/zz', body: '{}', contentType: J },
    { method: 'GET', path: (s) => `/v2/members/${other(s).id}` },
    { method: 'GET', path: '/v2/members/leader' },
    { method: 'GET', path: '/v2/members/' },
    // The add: 201 with the new member (no name, no client URLs yet), listed by every later GET.
    { method: 'POST', path: '/v2/members', body: '{"peerURLs":[" http://127.0.0.1:1 "]}', contentType: `${J}; charset=utf-8` },
    { method: 'GET', path: '/v2/members' },
    // A second add while the first new member has not started: etcd's strict reconfiguration check finds a voter
    // it has no stream to (ErrUnhealthy) and answers 500.
    { method: 'POST', path: '/v2/members', body: '{"peerURLs":["http://127.0.0.1:3"]}', contentType: J },
    { method: 'PUT', path: (_s, id) => `/v2/members/${id}`, body: '{"peerURLs":["http://127.0.0.1:2"]}', contentType: J },
    { method: 'PUT', path: (_s, id) => `/v2/members/${id}`, body: (s) => `{"peerURLs":["${other(s).peerURLs[0]}"]}`, contentType: J },
    { method: 'PUT', path: (_s, id) => `/v2/members/${id}`, body: '{"peerURLs":["bad"]}', contentType: J },
    { method: 'PUT', path: (_s, id) => `/v2/members/${id}`, body: '{"peerURLs":["http://127.0.0.1:2"]}' },
    { method: 'GET', path: '/v2/members' },
    { method: 'DELETE', path: (_s, id) => `/v2/members/${id}` },
    { method: 'DELETE', path: (_s, id) => `/v2/members/${id}` },
    { method: 'PUT', path: (_s, id) => `/v2/members/${id}`, body: '{"peerURLs":["http://127.0.0.1:2"]}', contentType: J },
    { method: 'GET', path: '/v2/members' },
  ];
  // etcd refuses member changes (500, ErrUnhealthy) until every member has been connected for 5 s
  // (--strict-reconfig-check); the steps compare answers past that window, not etcd's start-up timing.
  await new Promise((r) => setTimeout(r, 6_000));
  const newIds = new Map<Side, string>([[etcd, ''], [etc, '']]);
  for (const [i, s] of steps.entries()) {
    const [a, b] = await Promise.all([etcd, etc].map(async (side) => {
      const path = typeof s.path === 'function' ? s.path(side, newIds.get(side)!) : s.path;
      const body = typeof s.body === 'function' ? s.body(side) : s.body;
      const ans = await request(side.leader, s.method, path, body, s.contentType !== undefined ? { 'content-type': s.contentType } : {});
      if (s.method === 'POST' && ans.status === 201) newIds.set(side, (JSON.parse(ans.body) as SideMember).id);
      return ans;
    }));
    assert.deepEqual(
      normalise(etc, b!, newIds.get(etc)!),
      normalise(etcd, a!, newIds.get(etcd)!),
      `step ${i}: ${s.method} ${typeof s.path === 'string' ? s.path : '…'}\netcd:     ${a!.status} ${a!.body}\netcetera: ${b!.status} ${b!.body}`,
    );
  }
  assert.notEqual(newIds.get(etc), '', 'the add went through');
});
