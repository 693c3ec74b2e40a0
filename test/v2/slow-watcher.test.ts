/**
 * A `wait=true&stream=true` v2 watcher whose client stops reading (differential against etcd 3.4 with
 * `--enable-v2=true`): etcd drops a watcher whose event channel fills while its writer is blocked on the client;
 * etcetera drops it once MAX_V2_WATCH_BACKLOG_BYTES wait for the client. On both, the watcher count of
 * /v2/stats/store falls back to the one reading watcher while the slow client reads nothing; once it reads again it
 * gets fewer events than were written, none written after the drop, and (as etcd 3.4 never closes a dropped
 * watcher's channel) an answer that does not end.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import { hasEtcd, NO_ETCD } from '../helpers/servers';
import { MAX_V2_WATCH_BACKLOG_BYTES } from '../../src/api/v2/keys';
import { v2, v2Pair } from './v2-http';

const pair = v2Pair();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function watchers(base: string): Promise<number> {
  return (JSON.parse((await v2(base, 'GET', '/v2/stats/store')).body) as { watchers: number }).watchers;
}

/** A stream watch on /slow whose answer is not read until `resume()`. */
function stalledWatch(base: string): { started: Promise<void>; resume(): void; text(): string; ended(): boolean; close(): void } {
  const u = new URL('/v2/keys/slow?wait=true&stream=true&recursive=true', base);
  let res!: http.IncomingMessage;
  let text = '';
  let ended = false;
  const started = new Promise<void>((resolve, reject) => {
    const req = http.get({ host: u.hostname, port: u.port, path: u.pathname + u.search, agent: false }, (r) => {
      res = r;
      r.pause();
      r.setEncoding('utf8');
      r.on('data', (c: string) => (text += c));
      r.on('end', () => (ended = true));
      r.on('error', () => undefined);
      resolve();
    });
    req.on('error', reject);
  });
  return { started, resume: () => res.resume(), text: () => text, ended: () => ended, close: () => res.destroy() };
}

test('a slow stream watcher is dropped as etcd drops it', { skip: !hasEtcd() && NO_ETCD }, async () => {
  const VALUE_BYTES = 64 * 1024;
  const EVENTS = 400; // 25 MiB: past the kernel's socket buffers, etcd's 100 events and our backlog bound
  assert.ok(EVENTS * VALUE_BYTES > 8 * MAX_V2_WATCH_BACKLOG_BYTES);
  const value = `value=${'x'.repeat(VALUE_BYTES)}`;
  const results = await Promise.all([pair.etcd, pair.etc].map(async (srv) => {
    const w = stalledWatch(srv.clientUrl);
    await w.started;
    const reader = http.get(new URL('/v2/keys/slow?wait=true&stream=true', srv.clientUrl));
    reader.on('response', (r) => r.resume());
    reader.on('error', () => undefined);
    await sleep(200);
    assert.equal(await watchers(srv.clientUrl), 2, `${srv.kind}: both watchers registered`);
    for (let i = 0; i < EVENTS; i++) {
      const a = await v2(srv.clientUrl, 'PUT', `/v2/keys/slow/k${i % 10}`, value);
      assert.ok(a.status < 300, `${srv.kind}: PUT ${a.status} ${a.body}`);
    }
    let left = -1;
    for (let t = 0; t < 100 && left !== 1; t++, await sleep(100)) left = await watchers(srv.clientUrl);
    w.resume();
    // Read what was written before the drop, until nothing more comes.
    for (let last = -1; last !== w.text().length; await sleep(1000)) last = w.text().length;
    await v2(srv.clientUrl, 'PUT', '/v2/keys/slow/after', 'value=marker');
    await sleep(1000);
    const events = w.text().split('\n').filter((l) => l.trim() !== '');
    w.close();
    reader.destroy();
    return { left, fewer: events.length < EVENTS, marker: w.text().includes('marker'), ended: w.ended(), whole: events.every((l) => JSON.parse(l) !== null) };
  }));
  assert.deepEqual(results[1], results[0]);
  assert.deepEqual(results[0], { left: 1, fewer: true, marker: false, ended: false, whole: true });
});
