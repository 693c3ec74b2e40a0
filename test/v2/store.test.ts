/**
 * The v2 store module on its own (src/v2store over a real LMDB environment, no server): what the HTTP differential
 * cannot see from outside — the TTL index stays exact through replaces, updates and recursive deletes (so the leader
 * stops proposing SYNC entries once no TTL is left), expiry order and cutoff, the history window's edges, the watch
 * hub across an applied batch larger than the window, and the
 * request encoding applied twice on two stores giving the same state (what every member relies on).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openMvccEnv, type MvccDbs } from '../../src/mvcc/env';
import { V2Store } from '../../src/v2store/store';
import { HISTORY_CAPACITY, HUB_SLACK_EVENTS, V2Nodes } from '../../src/v2store/nodes';
import { V2WatchHub } from '../../src/v2store/watch-hub';
import { applyV2, decodeV2Request, encodeV2Request, type V2Request } from '../../src/v2store/request';
import { V2Error } from '../../src/errors';

/** Times well after etcd's minimum expiry (2000-01-01; earlier means permanent), ms. */
const T = Date.UTC(2030, 0, 1);

function open(): { dbs: MvccDbs; store: V2Store; write<T>(f: () => T): T; close(): Promise<void> } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'v2store-'));
  const dbs = openMvccEnv(dir, { mapSizeBytes: 64 * 1024 * 1024 });
  const store = new V2Store(new V2Nodes(dbs.v2), () => T + 1_000);
  return {
    dbs,
    store,
    write: <T>(f: () => T): T => dbs.root.transactionSync(f),
    close: async () => {
      await dbs.root.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('the TTL index follows replaces, updates to permanent and recursive deletes', async () => {
  const s = open();
  try {
    s.write(() => s.store.set('/a', false, 'x', { expiryMs: T + 2_000 }));
    s.write(() => s.store.set('/a', false, 'y', { expiryMs: T + 3_000 }));
    assert.equal(s.store.nodes.firstExpiring()?.expiryMs, T + 3_000, 'a replaced node keeps one index entry');
    s.write(() => s.store.update('/a', 'z', {}));
    assert.equal(s.store.hasTtlKeys(), false, 'an update without ttl makes the node permanent');
    s.write(() => s.store.set('/d/e/f', false, 'x', { expiryMs: T + 2_000 }));
    s.write(() => s.store.set('/d/g', false, 'x', { expiryMs: T + 2_500 }));
    assert.equal(s.store.hasTtlKeys(), true);
    s.write(() => s.store.delete('/d', false, true));
    assert.equal(s.store.hasTtlKeys(), false, 'a recursive delete removes the TTL entries below it');
  } finally {
    await s.close();
  }
});

test('expiry: oldest first, only up to the cutoff, a directory with what is below it; each an event', async () => {
  const s = open();
  try {
    s.write(() => {
      s.store.set('/late', false, 'l', { expiryMs: T + 9_000 });
      s.store.set('/dir/child', false, 'c', {});
      s.store.update('/dir', '', { expiryMs: T + 5_000 });
      s.store.set('/early', false, 'e', { expiryMs: T + 4_000 });
    });
    const before = s.store.index();
    const events = s.write(() => s.store.expire(T + 6_000));
    assert.deepEqual(events.map((e) => [e.action, e.node.key, e.etcdIndex]), [['expire', '/early', before + 1], ['expire', '/dir', before + 2]]);
    assert.throws(() => s.store.get('/dir/child', false, false), (e: V2Error) => e.errorCode === 100);
    assert.equal(s.store.get('/late', false, false).node.value, 'l');
    assert.equal(s.store.nodes.stats().expireCount, 2);
  } finally {
    await s.close();
  }
});

test('history window: the oldest kept event is answered, the one before it is cleared', async () => {
  const s = open();
  try {
    s.write(() => {
      for (let i = 0; i < HISTORY_CAPACITY + 5; i++) s.store.set(`/k${i % 7}`, false, String(i), {});
    });
    const last = s.store.index();
    const first = last - HISTORY_CAPACITY + 1;
    assert.equal(s.store.scan('/', true, first)?.node.modifiedIndex, first);
    assert.throws(() => s.store.scan('/', true, first - 1), (e: V2Error) => e.errorCode === 401 && e.cause === `the requested history has been cleared [${first}/${first - 1}]` && e.index === last);
    assert.equal(s.store.scan('/', true, last + 1), null, 'a future index waits');
  } finally {
    await s.close();
  }
});

test('the watch hub delivers across an applied batch of more than 1,000 v2 writes; past its slack every watcher ends', async () => {
  const s = open();
  try {
    const hub = new V2WatchHub(() => s.store);
    const got: string[] = [];
    let cleared = 0;
    hub.watch(
      (since, startIndex) => ({ key: '/w', recursive: false, stream: true, since, startIndex, onEvent: (e) => got.push(e.node.value ?? ''), onCleared: () => cleared++ }),
      '/w', false, 0,
    );
    // One batch (one poll after it, as after one applied record) with the watched key's events 1,502 apart.
    s.write(() => {
      s.store.set('/w', false, 'first', {});
      for (let i = 0; i < 1500; i++) s.store.set(`/other/${i}`, false, 'x', {});
      s.store.set('/w', false, 'last', {});
    });
    hub.poll();
    assert.deepEqual(got, ['first', 'last'], 'both events delivered, none lost to the 1,000-event window');
    assert.equal(cleared, 0);
    const last = s.store.index();
    assert.throws(() => s.store.scan('/', true, last - HISTORY_CAPACITY), (e: V2Error) => e.errorCode === 401, 'waitIndex still sees 1,000 events');
    s.write(() => {
      for (let i = 0; i <= HISTORY_CAPACITY + HUB_SLACK_EVENTS; i++) s.store.set(`/other/${i % 10}`, false, 'y', {});
    });
    hub.poll();
    assert.equal(cleared, 1, 'a batch beyond the slack ends the watcher');
    assert.equal(hub.size, 0);
  } finally {
    await s.close();
  }
});

test('the same encoded requests applied on two stores give the same nodes, index and history', async () => {
  const a = open();
  const b = open();
  try {
    const reqs: V2Request[] = [
      { method: 'PUT', path: '/x', val: '1' },
      { method: 'POST', path: '/q', val: 'j' },
      { method: 'PUT', path: '/x', prevValue: '1', val: '2', expiryMs: T + 2_000 },
      { method: 'PUT', path: '/x', prevValue: 'nope', val: '3' },
      { method: 'DELETE', path: '/q', recursive: true },
      { method: 'SYNC', path: '/', time: T + 2_000 },
    ];
    for (const s of [a, b]) for (const r of reqs) s.write(() => applyV2(s.store, decodeV2Request(encodeV2Request(r))));
    const view = (s: typeof a): unknown => [s.store.index(), s.store.get('/', true, true), s.store.scan('/', true, 1), s.store.nodes.stats()];
    assert.deepEqual(view(a), view(b));
    assert.equal(a.store.index(), 5, 'set, create, compareAndSwap, delete, expire');
    assert.equal(a.store.nodes.stats().expireCount, 1);
    assert.equal(a.store.nodes.stats().compareAndSwapFail, 1);
  } finally {
    await a.close();
    await b.close();
  }
});
