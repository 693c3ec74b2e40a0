/**
 * Watch scale and flow control on a real etcetera process:
 * - 10,000 watchers on one stream and 1,000 streams: every event delivered (counted);
 * - a stalled client (stops reading; HTTP/2 flow control blocks the server) does not stop the others, the
 *   server's pending events stay bounded (its watchers become slow and are caught up from history), and once it
 *   reads again it receives every event exactly once, in order;
 * - a watch on a follower of a 3-member cluster sees every event in order exactly once.
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { startEtcetera } from '../helpers/servers';
import { RawClient, grpcTarget } from '../helpers/grpc';
import { killAllChildren } from '../helpers/procs';
import { WatchClient, RawWatchStream, metricValue } from './watch-client';

after(killAllChildren);
const B = (s: string): Buffer => Buffer.from(s);

test('10,000 watchers on one stream and 1,000 streams: every event delivered', { timeout: 180_000 }, async () => {
  const s = await startEtcetera();
  const kv = new RawClient(s.clientUrl);
  const shared = new grpc.Client(grpcTarget(s.clientUrl), grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
  const streams: WatchClient[] = [];
  try {
    const one = new WatchClient(s.clientUrl);
    streams.push(one);
    for (let i = 0; i < 10_000; i++) one.create({ key: B('k'), rangeEnd: i % 2 ? B('l') : Buffer.alloc(0) }); // key and prefix watchers
    await one.until(() => one.createdCount === 10_000, 60_000, '10k created');
    for (let i = 0; i < 1000; i++) {
      const w = new WatchClient(s.clientUrl, shared);
      w.create({ key: B('k') });
      streams.push(w);
    }
    for (const w of streams.slice(1)) await w.until((rs) => rs.some((r) => r.created), 60_000, 'stream created');
    const PUTS = 5;
    for (let i = 0; i < PUTS; i++) await kv.put({ key: B('k'), value: B(`v${i}`) });
    await one.until(() => one.eventCount === 10_000 * PUTS, 60_000, '50k events on one stream');
    for (const w of streams.slice(1)) await w.until(() => w.eventCount === PUTS, 60_000, 'events on each stream');
    const total = streams.reduce((n, w) => n + w.events().length, 0);
    assert.equal(total, 10_000 * PUTS + 1000 * PUTS);
    assert.ok(await metricValue(s.metricsUrl, 'etcd_debugging_mvcc_watcher_total') >= 11_000);
    assert.ok(await metricValue(s.metricsUrl, 'etcd_debugging_mvcc_watch_stream_total') >= 1001);
  } finally {
    for (const w of streams) w.close();
    shared.close();
    kv.close();
    await s.stop();
  }
});

test('a stalled client does not stop the others and server memory stays bounded', { timeout: 180_000 }, async () => {
  const s = await startEtcetera();
  const kv = new RawClient(s.clientUrl);
  const stalled = new RawWatchStream(s.clientUrl);
  const normal = new WatchClient(s.clientUrl);
  try {
    stalled.send({ createRequest: { key: B('s/'), rangeEnd: B('s0') } });
    normal.create({ key: B('s/'), rangeEnd: B('s0') });
    await normal.until((rs) => rs.some((r) => r.created), 10_000, 'created');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(stalled.responses.length, 1, 'stalled stream got its created response');
    stalled.pause();
    const N = 300;
    const value = Buffer.alloc(64 * 1024, 'x');
    let maxPending = 0;
    let maxSlow = 0;
    for (let i = 0; i < N; i++) {
      await kv.put({ key: B(`s/${i % 10}`), value });
      if (i % 25 === 24) {
        maxPending = Math.max(maxPending, await metricValue(s.metricsUrl, 'etcd_debugging_mvcc_pending_events_total'));
        maxSlow = Math.max(maxSlow, await metricValue(s.metricsUrl, 'etcd_debugging_mvcc_slow_watcher_total'));
      }
    }
    await normal.until(() => normal.events().length === N, 60_000, 'normal client gets every event');
    console.log(`stalled: ${stalled.events().length} events read before pause; server pending events max ${maxPending}, slow watchers max ${maxSlow}`);
    // 300 × 64 KiB = 19 MiB produced; the stream's budget is 4 MiB (+ HTTP/2 window): pending stays near 64 events.
    assert.ok(maxPending <= 100, `pending events bounded (max ${maxPending})`);
    assert.ok(maxSlow >= 1, 'the stalled watcher became slow');
    stalled.resume();
    const deadline = Date.now() + 60_000;
    while (stalled.events().length < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const revs = stalled.events().map((e) => e.kv.modRevision);
    assert.equal(revs.length, N, 'stalled client caught up with every event');
    for (let i = 1; i < revs.length; i++) assert.ok(revs[i]! > revs[i - 1]!, `in order, no repeats at ${i}`);
    assert.deepEqual(revs, normal.events().map((e) => e.kv.modRevision));
  } finally {
    stalled.close();
    normal.close();
    kv.close();
    await s.stop();
  }
});

test('a watch on a follower of a 3-member cluster sees every event in order exactly once', { timeout: 180_000 }, async () => {
  const c = await startEtcetera({ members: 3 });
  const members = c.members!;
  const status = await Promise.all(members.map(async (m) => { const r = new RawClient(m.clientUrl); try { return await r.status(); } finally { r.close(); } }));
  const leaderId = status[0].leader;
  const fi = status.findIndex((st) => st.header.memberId !== leaderId);
  const li = status.findIndex((st) => st.header.memberId === leaderId);
  const follower = members[fi]!;
  const kv = new RawClient(members[li]!.clientUrl);
  const w = new WatchClient(follower.clientUrl);
  try {
    w.create({ key: B('f/'), rangeEnd: B('f0'), prevKv: true });
    await w.until((rs) => rs.some((r) => r.created), 10_000, 'created');
    const N = 200;
    const revs: number[] = [];
    for (let i = 0; i < N; i++) {
      const r = i % 7 === 6 ? await kv.deleteRange({ key: B(`f/${i % 5}`) }) : await kv.put({ key: B(`f/${i % 5}`), value: B(`v${i}`) });
      if (i % 7 !== 6 || r.deleted > 0) revs.push(r.header.revision);
    }
    await w.until(() => w.events().length >= revs.length, 60_000, 'follower events');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(w.events().map((e) => e.kv.modRevision), revs);
    assert.notEqual(w.responses[0]!.header.memberId, leaderId, 'served by the follower');
  } finally {
    w.close();
    kv.close();
    await c.stop();
  }
});
