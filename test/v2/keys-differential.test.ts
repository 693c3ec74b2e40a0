/**
 * Differential test of the v2 keys API (`--enable-v2=true`): the same HTTP request sequences against etcd 3.4 and
 * etcetera, answers compared after normalisation (test/v2/v2-http.ts: indexes relative to each side's store index
 * at the start, times blanked): status, Content-Type, Allow, X-Etcd-Index, presence of X-Etcd-Cluster-Id /
 * X-Raft-Index / X-Raft-Term, and the JSON. Covers set/get/delete, directories (auto-created, hidden, not empty),
 * prevExist/prevValue/prevIndex CAS and CAD with their errors, in-order POST, recursive and sorted gets, recursive
 * delete, TTLs (expiry, update to permanent, refresh), bad parameters, 405, `wait` (long poll, recursive, stream,
 * `waitIndex` in the history and out of the 1,000-event window), and a seeded random sequence.
 */
import { test, after, before } from 'node:test';
import * as assert from 'node:assert/strict';
import { startEtcd, startEtcetera, hasEtcd, NO_ETCD, type ServerHandle } from '../helpers/servers';
import { killAllChildren } from '../helpers/procs';
import { Rng } from '../helpers/rng';
import { longPoll, storeIndex, streamLines, v2, V2Normaliser, type HttpAnswer } from './v2-http';

after(killAllChildren);

interface Side {
  name: string;
  srv: ServerHandle;
  norm: V2Normaliser;
}

let etcd: Side;
let etc: Side;

before(async () => {
  if (!hasEtcd()) return;
  const [a, b] = await Promise.all([
    startEtcd({ extraArgs: ['--enable-v2=true'] }),
    startEtcetera({ extraArgs: ['--enable-v2=true'] }),
  ]);
  const [ia, ib] = await Promise.all([storeIndex(a.clientUrl), storeIndex(b.clientUrl)]);
  etcd = { name: 'etcd', srv: a, norm: new V2Normaliser(ia) };
  etc = { name: 'etcetera', srv: b, norm: new V2Normaliser(ib) };
});

after(async () => {
  await etcd?.srv.stop();
  await etc?.srv.stop();
});

/** One request; `path` may use the side's base index (absolute = base + relative). */
interface Step {
  method?: string;
  path: string | ((abs: (rel: number) => number) => string);
  form?: string;
  /** Sleep before this step (TTL expiry), ms. */
  sleepMs?: number;
}

const pathOf = (s: Step, side: Side): string => (typeof s.path === 'function' ? s.path((r) => side.norm.base + r) : s.path);

async function send(side: Side, s: Step): Promise<HttpAnswer> {
  return v2(side.srv.clientUrl, s.method ?? 'GET', pathOf(s, side), s.form);
}

/** Runs `steps` against both servers in lock-step and compares each answer. */
async function run(steps: Step[]): Promise<void> {
  for (const [i, s] of steps.entries()) {
    if (s.sleepMs) await new Promise((r) => setTimeout(r, s.sleepMs));
    const [a, b] = await Promise.all([send(etcd, s), send(etc, s)]);
    const sorted = pathOf(s, etcd).includes('sorted=true');
    assert.deepEqual(
      etc.norm.view(b, sorted),
      etcd.norm.view(a, sorted),
      `step ${i}: ${s.method ?? 'GET'} ${pathOf(s, etc)} ${s.form ?? ''}\netcd:     ${a.status} ${a.body}\netcetera: ${b.status} ${b.body}`,
    );
  }
}

const K = '/v2/keys';

test('set, get, delete; 201 vs 200; prevNode; errors of missing keys', { skip: !hasEtcd() && NO_ETCD }, async () => {
  await run([
    { method: 'PUT', path: `${K}/basic/foo`, form: 'value=bar' },
    { method: 'PUT', path: `${K}/basic/foo`, form: 'value=baz' },
    { path: `${K}/basic/foo` },
    { method: 'HEAD', path: `${K}/basic/foo` },
    { method: 'PUT', path: `${K}/basic/empty`, form: 'value=' },
    { path: `${K}/basic/empty` },
    { method: 'PUT', path: `${K}/basic/q?value=fromquery` },
    { method: 'PUT', path: `${K}/basic/q?value=fromquery`, form: 'value=frombody' },
    { method: 'PUT', path: `${K}/basic/sp`, form: 'value=a+b%20c%26d' },
    { method: 'DELETE', path: `${K}/basic/foo` },
    { path: `${K}/basic/foo` },
    { method: 'DELETE', path: `${K}/basic/foo` },
    { path: `${K}/basic/foo/deeper` },
    { method: 'PUT', path: `${K}/basic//dots/./x/../y`, form: 'value=clean' },
    { path: `${K}/basic/dots/y` },
    { method: 'PUT', path: `${K}/basic/sp/x`, form: 'value=under-a-file' },
    { path: `${K}/basic/sp/x` },
    { method: 'PUT', path: `${K}/basic/noval` },
    { path: `${K}/basic?sorted=true` },
  ]);
});

test('JSON as Go writes it: <, >, & and U+2028 escaped in keys, values and error causes', { skip: !hasEtcd() && NO_ETCD }, async () => {
  await run([
    { method: 'PUT', path: `${K}/esc/%3Ca%3E%26b`, form: 'value=%3Cscript%3E%26amp%3B%E2%80%A8%E2%80%A9%22%5C' },
    { path: `${K}/esc/%3Ca%3E%26b` },
    { path: `${K}/esc?recursive=true` },
    { path: `${K}/esc/%3Cmissing%3E` },
    { method: 'PUT', path: `${K}/esc/%3Ca%3E%26b?prevValue=%3Cx%3E`, form: 'value=y' },
    { method: 'DELETE', path: `${K}/esc/%3Ca%3E%26b` },
  ]);
});

test('directories: auto-created parents, listings, hidden nodes, not a file / not empty / root read only', { skip: !hasEtcd() && NO_ETCD }, async () => {
  await run([
    { method: 'PUT', path: `${K}/dir?dir=true` },
    { method: 'PUT', path: `${K}/dir?dir=true` },
    { method: 'PUT', path: `${K}/dir/a`, form: 'value=1' },
    { method: 'PUT', path: `${K}/dir/b/c`, form: 'value=2' },
    { method: 'PUT', path: `${K}/dir/b/d/e`, form: 'value=3' },
    { method: 'PUT', path: `${K}/dir/_hidden`, form: 'value=h' },
    { path: `${K}/dir/_hidden` },
    { path: `${K}/dir` },
    { path: `${K}/dir?sorted=true` },
    { path: `${K}/dir?recursive=true&sorted=true` },
    { path: `${K}/dir?recursive=true` },
    { method: 'PUT', path: `${K}/dir`, form: 'value=x' },
    { method: 'PUT', path: `${K}/dir/a/x`, form: 'value=1' },
    { method: 'PUT', path: `${K}/dir/a?dir=true` },
    { method: 'DELETE', path: `${K}/dir` },
    { method: 'DELETE', path: `${K}/dir?dir=true` },
    { method: 'DELETE', path: `${K}/dir/a?dir=true` },
    { method: 'PUT', path: `${K}/dir/empty?dir=true` },
    { method: 'DELETE', path: `${K}/dir/empty?dir=true` },
    { method: 'DELETE', path: `${K}/dir/b?recursive=true` },
    { path: `${K}/dir/b/c` },
    { method: 'DELETE', path: `${K}/dir?recursive=true` },
    { path: `${K}/dir` },
    { method: 'DELETE', path: `${K}/` },
    { method: 'DELETE', path: `${K}/?recursive=true` },
    { method: 'PUT', path: `${K}/`, form: 'value=root' },
    { method: 'POST', path: `${K}/dir2/_q`, form: 'value=hidden-queue' },
    { path: `${K}/dir2` },
  ]);
});

test('prevExist / prevValue / prevIndex: create, update, compareAndSwap, compareAndDelete and their errors', { skip: !hasEtcd() && NO_ETCD }, async () => {
  await run([
    { method: 'PUT', path: `${K}/cas/k?prevExist=false`, form: 'value=one' },
    { method: 'PUT', path: `${K}/cas/k?prevExist=false`, form: 'value=two' },
    { method: 'PUT', path: `${K}/cas/k?prevExist=true`, form: 'value=three' },
    { method: 'PUT', path: `${K}/cas/none?prevExist=true`, form: 'value=three' },
    { method: 'PUT', path: `${K}/cas/k?prevValue=three`, form: 'value=four' },
    { method: 'PUT', path: `${K}/cas/k?prevValue=nope`, form: 'value=five' },
    { method: 'PUT', path: (abs) => `${K}/cas/k?prevIndex=${abs(4)}`, form: 'value=six' },
    { method: 'PUT', path: (abs) => `${K}/cas/k?prevIndex=${abs(4)}`, form: 'value=seven' },
    { method: 'PUT', path: (abs) => `${K}/cas/k?prevIndex=${abs(1)}&prevValue=zz`, form: 'value=eight' },
    { method: 'PUT', path: `${K}/cas/k?prevExist=true&prevValue=six`, form: 'value=nine' },
    { method: 'PUT', path: `${K}/cas/k?prevExist=false&prevValue=nine`, form: 'value=ten' },
    { method: 'PUT', path: `${K}/cas/none?prevValue=a`, form: 'value=one' },
    { method: 'PUT', path: `${K}/cas?prevValue=a`, form: 'value=one' },
    { method: 'PUT', path: `${K}/cas?prevExist=true`, form: 'value=one' },
    { method: 'PUT', path: `${K}/cas?prevExist=true&dir=true` },
    { method: 'DELETE', path: `${K}/cas/k?prevValue=nope` },
    { method: 'DELETE', path: (abs) => `${K}/cas/k?prevIndex=${abs(1)}` },
    { method: 'DELETE', path: `${K}/cas?prevValue=x` },
    { method: 'DELETE', path: `${K}/cas/none?prevValue=x` },
    { method: 'DELETE', path: `${K}/cas/k?prevValue=nine` },
    { path: `${K}/cas/k` },
    { method: 'PUT', path: `${K}/cas/d?dir=true&prevExist=false` },
    { method: 'PUT', path: `${K}/cas/d?dir=true&prevExist=false` },
  ]);
});

test('in-order keys by POST, listed sorted', { skip: !hasEtcd() && NO_ETCD }, async () => {
  await run([
    { method: 'POST', path: `${K}/queue`, form: 'value=a' },
    { method: 'POST', path: `${K}/queue`, form: 'value=b' },
    { method: 'POST', path: `${K}/queue?dir=true` },
    { method: 'POST', path: `${K}/queue`, form: 'value=c' },
    { path: `${K}/queue?recursive=true&sorted=true` },
    { method: 'PUT', path: `${K}/file`, form: 'value=f' },
    { method: 'POST', path: `${K}/file`, form: 'value=under-file' },
  ]);
});

test('TTL: answers, update to permanent, refresh, expiry', { skip: !hasEtcd() && NO_ETCD }, async () => {
  await run([
    { method: 'PUT', path: `${K}/ttl/a?ttl=100`, form: 'value=x' },
    { path: `${K}/ttl/a` },
    { method: 'PUT', path: `${K}/ttl/a?prevExist=true`, form: 'value=y' },
    { path: `${K}/ttl/a` },
    { method: 'PUT', path: `${K}/ttl/a?prevExist=true&ttl=50`, form: 'value=z' },
    { method: 'PUT', path: `${K}/ttl/a?refresh=true&ttl=60&prevExist=true` },
    { path: `${K}/ttl/a` },
    { method: 'PUT', path: `${K}/ttl/a?refresh=true&ttl=60`, form: 'value=v' },
    { method: 'PUT', path: `${K}/ttl/a?refresh=true`, form: '' },
    { method: 'PUT', path: `${K}/ttl/nope?refresh=true&ttl=5` },
    { method: 'PUT', path: `${K}/ttl/d?dir=true&ttl=100` },
    { method: 'PUT', path: `${K}/ttl/d?dir=true&ttl=200&prevExist=true` },
    { path: `${K}/ttl?recursive=true&sorted=true` },
    { method: 'PUT', path: `${K}/ttl/short?ttl=1`, form: 'value=s' },
    { method: 'PUT', path: `${K}/ttl/shortdir?dir=true&ttl=1` },
    { method: 'PUT', path: `${K}/ttl/shortdir/child`, form: 'value=c' },
    { path: `${K}/ttl/short`, sleepMs: 3000 },
    { path: `${K}/ttl/shortdir/child` },
    { path: `${K}/ttl?recursive=true&sorted=true` },
  ]);
});

test('bad parameters and methods get etcd codes 201/202/203/209/211/212 and 405', { skip: !hasEtcd() && NO_ETCD }, async () => {
  await run([
    { method: 'PUT', path: `${K}/bad?ttl=abc`, form: 'value=x' },
    { method: 'PUT', path: `${K}/bad?ttl=-1`, form: 'value=x' },
    { method: 'PUT', path: `${K}/bad?prevIndex=x`, form: 'value=x' },
    { path: `${K}/bad?wait=true&waitIndex=x` },
    { path: `${K}/bad?recursive=maybe` },
    { path: `${K}/bad?sorted=` },
    { method: 'PUT', path: `${K}/bad?wait=true`, form: 'value=x' },
    { method: 'PUT', path: `${K}/bad?prevValue=`, form: 'value=x' },
    { method: 'PUT', path: `${K}/bad?prevExist=zz`, form: 'value=x' },
    { method: 'PUT', path: `${K}/bad?dir=yes` },
    { method: 'PUT', path: `${K}/bad?refresh=maybe&ttl=1` },
    { method: 'PUT', path: `${K}/bad?quorum=2` },
    { method: 'PUT', path: `${K}/bad?value=%zz` },
    { method: 'PATCH', path: `${K}/bad`, form: 'value=x' },
    { method: 'OPTIONS', path: `${K}/bad` },
    { path: `${K}/bad?quorum=true` },
  ]);
});

test('wait: long poll on a key, recursive, waitIndex in the history and out of the 1,000-event window', { skip: !hasEtcd() && NO_ETCD }, async () => {
  const sides = [etcd, etc];
  // A long poll: answered with the next change of the key.
  const polls = sides.map((s) => longPoll(s.srv.clientUrl, `${K}/w/key?wait=true`));
  const heads = await Promise.all(polls.map((p) => p.headers));
  assert.deepEqual(
    { idx: etc.norm.rel(Number(heads[1]!['x-etcd-index'])), raft: heads[1]!['x-raft-index'] !== undefined },
    { idx: etcd.norm.rel(Number(heads[0]!['x-etcd-index'])), raft: heads[0]!['x-raft-index'] !== undefined },
  );
  await run([{ method: 'PUT', path: `${K}/w/other`, form: 'value=o' }, { method: 'PUT', path: `${K}/w/key`, form: 'value=v1' }]);
  const done = await Promise.all(polls.map((p) => p.done));
  assert.deepEqual(etc.norm.view(done[1]!, false), etcd.norm.view(done[0]!, false), `${done[0]!.body} vs ${done[1]!.body}`);
  // Recursive: a change below the directory; a hidden one is not seen.
  const rec = sides.map((s) => longPoll(s.srv.clientUrl, `${K}/w?wait=true&recursive=true`));
  await Promise.all(rec.map((p) => p.headers));
  await run([{ method: 'PUT', path: `${K}/w/_hidden`, form: 'value=h' }, { method: 'PUT', path: `${K}/w/sub/x`, form: 'value=r' }]);
  const recDone = await Promise.all(rec.map((p) => p.done));
  assert.deepEqual(etc.norm.view(recDone[1]!, false), etcd.norm.view(recDone[0]!, false), `${recDone[0]!.body} vs ${recDone[1]!.body}`);
  // A watcher below a directory that is deleted sees the delete.
  const below = sides.map((s) => longPoll(s.srv.clientUrl, `${K}/w/sub/x?wait=true`));
  await Promise.all(below.map((p) => p.headers));
  await run([{ method: 'DELETE', path: `${K}/w?recursive=true` }]);
  const belowDone = await Promise.all(below.map((p) => p.done));
  assert.deepEqual(etc.norm.view(belowDone[1]!, false), etcd.norm.view(belowDone[0]!, false), `${belowDone[0]!.body} vs ${belowDone[1]!.body}`);
  // waitIndex inside the history: answered at once with the first matching event at or after it.
  const now = await storeIndex(etc.srv.clientUrl);
  const relNow = etc.norm.rel(now);
  await run([
    { path: (abs) => `${K}/w/key?wait=true&waitIndex=${abs(1)}` },
    { path: (abs) => `${K}/w?wait=true&recursive=true&waitIndex=${abs(1)}` },
    { path: (abs) => `${K}/w/other?wait=true&waitIndex=${abs(relNow - 2)}` },
  ]);
  // stream=true: one event per line, the connection stays open.
  const streams = sides.map((s) => streamLines(s.srv.clientUrl, `${K}/ws?wait=true&recursive=true&stream=true`, 3));
  await Promise.all(streams.map((p) => p.started));
  await run([
    { method: 'PUT', path: `${K}/ws/a`, form: 'value=1' },
    { method: 'PUT', path: `${K}/ws/b`, form: 'value=2' },
    { method: 'DELETE', path: `${K}/ws/a` },
  ]);
  const [sa, sb] = await Promise.all(streams.map((p) => p.lines));
  assert.deepEqual(sb!.map((l) => etc.norm.value(JSON.parse(l))), sa!.map((l) => etcd.norm.value(JSON.parse(l))));
  // Fill the history past its 1,000 events: the oldest index is cleared (400, errorCode 401).
  for (const s of sides) {
    const base = s.srv.clientUrl;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < 1010) {
        const i = next++;
        const a = await v2(base, 'PUT', `${K}/fill/k${i % 10}`, `value=${i}`);
        assert.ok(a.status === 200 || a.status === 201, `${s.name}: ${a.status} ${a.body}`);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
  }
  await run([
    { path: (abs) => `${K}/w/key?wait=true&waitIndex=${abs(1)}` },
    { method: 'PUT', path: `${K}/fill/last`, form: 'value=l' },
    { path: (abs) => `${K}/fill/last?wait=true&waitIndex=${abs(relNow + 1000)}` },
  ]);
});

test('seeded random sequence of v2 operations (set, get, delete, CAS, CAD, dirs, TTLs, in-order keys, recursive ops, past waits)', { skip: !hasEtcd() && NO_ETCD }, async () => {
  const seed = Number(process.env.V2_SEED ?? 12);
  const rng = new Rng(seed);
  const start = etc.norm.rel(await storeIndex(etc.srv.clientUrl));
  assert.equal(etcd.norm.rel(await storeIndex(etcd.srv.clientUrl)), start, 'both sides start the random part at the same relative index');
  // The store index reached so far (relative), read before each step: prevIndex and waitIndex are drawn below it.
  let hi = start;
  const past = (frac: number, lo: number): number => lo + Math.floor(frac * (hi - lo + 1));
  const names = ['/r/a', '/r/b', '/r/d', '/r/d/x', '/r/d/y', '/r/d/e/f', '/r/q'];
  const steps: Step[] = [];
  for (let i = 0; i < 160; i++) {
    const k = rng.pick(names);
    const v = `v${rng.int(4)}`;
    const frac = rng.next();
    switch (rng.int(14)) {
      case 0: case 1: steps.push({ method: 'PUT', path: `${K}${k}`, form: `value=${v}` }); break;
      case 2: steps.push({ path: `${K}${k}` }); break;
      case 3: steps.push({ method: 'DELETE', path: `${K}${k}` }); break;
      case 4: steps.push({ method: 'PUT', path: `${K}${k}?prevValue=${v}`, form: `value=${v}x` }); break;
      case 5: steps.push({ method: 'PUT', path: (abs) => `${K}${k}?prevIndex=${abs(past(frac, start - 3) + 1)}`, form: `value=${v}` }); break;
      case 6: steps.push({ method: 'DELETE', path: `${K}${k}?prevValue=${v}` }); break;
      case 7: steps.push({ method: 'PUT', path: `${K}${k}?dir=true${rng.chance(0.5) ? '&prevExist=false' : ''}` }); break;
      case 8: steps.push({ method: 'PUT', path: `${K}${k}?ttl=${rng.between(100, 300)}${rng.chance(0.3) ? '&prevExist=true' : ''}`, form: `value=${v}` }); break;
      case 9: steps.push({ method: 'POST', path: `${K}${k}`, form: `value=${v}` }); break;
      case 10: steps.push({ path: `${K}/r?recursive=true&sorted=true` }); break;
      case 11: steps.push({ method: 'DELETE', path: `${K}${k}?${rng.pick(['dir=true', 'recursive=true', 'dir=true&recursive=true'])}` }); break;
      // A wait on every change below /r from an index already reached: answered from the history at once.
      case 12: steps.push({ path: (abs) => (hi > start ? `${K}/r?wait=true&recursive=true&waitIndex=${abs(Math.max(start + 1, past(frac, start + 1)))}` : `${K}/r?recursive=true&sorted=true`) }); break;
      default: steps.push({ method: 'PUT', path: `${K}${k}?prevExist=${rng.chance(0.5)}`, form: `value=${v}` }); break;
    }
  }
  for (const s of steps) {
    hi = etc.norm.rel(await storeIndex(etc.srv.clientUrl));
    await run([s]);
  }
  assert.ok(hi > start + 20, `the random sequence changed the store (index ${start} → ${hi}, seed ${seed})`);
});

test('/v2/stats/store: the counters move alike over the same requests (reads, writes, failures, expiry, watchers)', { skip: !hasEtcd() && NO_ETCD }, async () => {
  const stats = async (side: Side): Promise<Record<string, number>> => {
    const a = await v2(side.srv.clientUrl, 'GET', '/v2/stats/store');
    assert.equal(a.status, 200, a.body);
    assert.equal(a.headers['content-type'], 'application/json');
    return JSON.parse(a.body) as Record<string, number>;
  };
  // etcd's v2 store metrics of the same requests (writes by action, expiries, reads, watch requests).
  const storeMetrics = async (side: Side): Promise<Record<string, number>> => {
    const text = await (await fetch(`${side.srv.clientUrl}/metrics`)).text();
    const out: Record<string, number> = {};
    for (const m of text.matchAll(/^(etcd_debugging_store_(?:writes_total|writes_failed_total|expires_total|reads_total|watch_requests_total)(?:\{[^}]*\})?) (\S+)$/gm)) out[m[1]!] = Number(m[2]);
    return out;
  };
  const [bm0, em0] = await Promise.all([storeMetrics(etcd), storeMetrics(etc)]);
  const [b0, e0] = await Promise.all([stats(etcd), stats(etc)]);
  assert.deepEqual(Object.keys(e0), Object.keys(b0), 'the same counters in the same order');
  await run([
    { method: 'PUT', path: `${K}/st/a`, form: 'value=1' },
    { method: 'PUT', path: `${K}/st/a?prevExist=false`, form: 'value=1' },
    { method: 'PUT', path: `${K}/st/a?prevExist=true`, form: 'value=2' },
    { method: 'PUT', path: `${K}/st/none?prevExist=true`, form: 'value=2' },
    { method: 'PUT', path: `${K}/st/a?prevValue=2`, form: 'value=3' },
    { method: 'PUT', path: `${K}/st/a?prevValue=x`, form: 'value=3' },
    { method: 'POST', path: `${K}/st/q`, form: 'value=1' },
    { path: `${K}/st/a` },
    { path: `${K}/st/none` },
    { method: 'DELETE', path: `${K}/st/a?prevValue=x` },
    { method: 'DELETE', path: `${K}/st/a?prevValue=3` },
    { method: 'DELETE', path: `${K}/st/a` },
    { method: 'DELETE', path: `${K}/st?recursive=true` },
    { method: 'PUT', path: `${K}/st2?ttl=1`, form: 'value=1' },
    { path: `${K}/st2`, sleepMs: 3000 },
  ]);
  const polls = [etcd, etc].map((s) => longPoll(s.srv.clientUrl, `${K}/st/watched?wait=true`));
  await Promise.all(polls.map((p) => p.headers));
  const [b1, e1] = await Promise.all([stats(etcd), stats(etc)]);
  const ended = polls.map((p) => p.done.catch(() => undefined));
  for (const p of polls) p.close();
  await Promise.all(ended);
  // etcd's own periodic reads of its membership keys count as failed gets: getsFail is compared by presence only.
  const delta = (x: Record<string, number>, y: Record<string, number>): Record<string, number> =>
    Object.fromEntries(Object.keys(y).map((k) => [k, k === 'getsFail' ? Number((y[k] ?? 0) - (x[k] ?? 0) >= 2) : (y[k] ?? 0) - (x[k] ?? 0)]));
  assert.deepEqual(delta(e0, e1), delta(b0, b1));
  const [bm1, em1] = await Promise.all([storeMetrics(etcd), storeMetrics(etc)]);
  const mdelta = (x: Record<string, number>, y: Record<string, number>): Record<string, number> =>
    Object.fromEntries(Object.keys(y).filter((k) => !k.includes('reads_total') && y[k] !== (x[k] ?? 0)).map((k) => [k, y[k]! - (x[k] ?? 0)]));
  assert.deepEqual(mdelta(em0, em1), mdelta(bm0, bm1), 'etcd_debugging_store_* moved alike');
  assert.ok(Object.keys(em1).some((k) => k.startsWith('etcd_debugging_store_reads_total')), 'reads are counted');
});

test('/v2/members, /v2/members/leader, /v2/machines and unknown /v2/ paths', { skip: !hasEtcd() && NO_ETCD }, async () => {
  // Member IDs and ports differ between the two servers: shown as placeholders.
  const norm = (a: HttpAnswer): unknown => ({
    status: a.status,
    contentType: a.headers['content-type'],
    allow: a.headers['allow'],
    clusterId: a.headers['x-etcd-cluster-id'] !== undefined,
    body: a.body.replace(/"id":"[0-9a-f]+"/g, '"id":"<id>"').replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:<port>'),
  });
  for (const [method, path] of [['GET', '/v2/members'], ['GET', '/v2/members/leader'], ['GET', '/v2/machines'], ['PUT', '/v2/machines'], ['GET', '/v2/nope'], ['GET', '/v2/keysx']]) {
    const [a, b] = await Promise.all([v2(etcd.srv.clientUrl, method!, path!), v2(etc.srv.clientUrl, method!, path!)]);
    assert.deepEqual(norm(b), norm(a), `${method} ${path}\netcd:     ${a.status} ${a.body}\netcetera: ${b.status} ${b.body}`);
  }
});
