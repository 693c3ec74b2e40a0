/**
 * PeerTransport over real loopback sockets: batching and per-sender order between three members, reconnect after
 * a receiver restart on the same port, RTT pings, and drops when a peer is down.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { freePorts } from '../helpers/ports';
import { MessageType } from '../../src/raft';
import type { Message } from '../../src/raft';
import { PeerTransport } from '../../src/transport';
import { captureLogger, freshMetrics, heartbeat, metricValue, msgApp, sleep, url, waitFor } from './helpers';

const CLUSTER = 0x1234abcd;

test('three transports exchange batches in order per sender, one frame per destination per send()', async () => {
  const ids = [11, 22, 33];
  const ports = await freePorts(3);
  const peers = new Map(ids.map((id, i) => [id, [url(ports[i])]]));
  const got = new Map<number, Message[]>(ids.map((id) => [id, []]));
  const ts = ids.map(
    (id, i) =>
      new PeerTransport({
        memberId: id,
        clusterId: CLUSTER,
        listenUrls: [url(ports[i])],
        peers,
        onMessages: (msgs) => got.get(id)!.push(...msgs),
        logger: captureLogger(String(id)),
        metrics: freshMetrics(),
      }),
  );
  try {
    const started = await Promise.all(ts.map((t) => t.start()));
    assert.deepEqual(started.map((s) => s.ports[0]), ports);
    await waitFor(() => ts.every((t) => t.activePeers().length === 2), 'all streams up');

    const ROUNDS = 300;
    for (let r = 0; r < ROUNDS; r++) {
      for (let i = 0; i < 3; i++) {
        const from = ids[i];
        const batch: Message[] = [];
        // Interleave destinations inside one call; index carries the per-sender sequence.
        for (const to of ids) {
          if (to === from) continue;
          batch.push(msgApp(from, to, r * 10 + 1, 2, 1 + (r % 64)));
          batch.push(heartbeat(from, to, r));
        }
        ts[i].send(batch);
      }
      if (r % 50 === 0) await sleep(1);
    }
    const expectPerReceiver = 2 * ROUNDS * 2; // 2 senders × ROUNDS × (MsgApp + heartbeat)
    await waitFor(() => ids.every((id) => got.get(id)!.length === expectPerReceiver), 'all messages delivered');

    for (const [i, t] of ts.entries()) {
      assert.equal(t.stats.droppedMessages, 0, `member ${ids[i]} dropped nothing`);
      assert.equal(t.stats.sentFrames, 2 * ROUNDS, 'one frame per destination per send() call');
      assert.equal(t.stats.receivedFrames, 2 * ROUNDS, 'frames received = frames the two others sent to us');
    }
    for (const id of ids) {
      const msgs = got.get(id)!;
      assert.ok(msgs.every((m) => m.to === id), 'only messages addressed to this member');
      for (const from of ids) {
        if (from === id) continue;
        const mine = msgs.filter((m) => m.from === from);
        assert.equal(mine.length, 2 * ROUNDS);
        for (let r = 0; r < ROUNDS; r++) {
          const app = mine[2 * r];
          const hb = mine[2 * r + 1];
          assert.equal(app.type, MessageType.MsgApp);
          assert.equal(app.entries[0].index, r * 10 + 1, 'per-sender order');
          assert.equal(app.entries.length, 2);
          const want = msgApp(from, id, r * 10 + 1, 2, 1 + (r % 64));
          assert.deepEqual(Buffer.from(app.entries[1].data), Buffer.from(want.entries[1].data), 'entry data intact');
          assert.equal(hb.type, MessageType.MsgHeartbeat);
          assert.equal(hb.commit, r);
        }
      }
    }
  } finally {
    await Promise.all(ts.map((t) => t.close()));
  }
});

test('a receiver restarted on the same port gets messages again after reconnect; drops are counted meanwhile', async () => {
  const [pa, pb] = await freePorts(2);
  const peers = new Map([[1, [url(pa)]], [2, [url(pb)]]]);
  const mA = freshMetrics();
  const unreachable: number[] = [];
  const a = new PeerTransport({
    memberId: 1, clusterId: CLUSTER, listenUrls: [url(pa)], peers, onMessages: () => {},
    onUnreachable: (id) => unreachable.push(id), logger: captureLogger('a'), metrics: mA,
  });
  const mkB = (sink: Message[]): PeerTransport => new PeerTransport({
    memberId: 2, clusterId: CLUSTER, listenUrls: [url(pb)], peers, onMessages: (m) => sink.push(...m),
    logger: captureLogger('b'), metrics: freshMetrics(),
  });
  const got1: Message[] = [];
  const got2: Message[] = [];
  let b = mkB(got1);
  try {
    await a.start();
    await b.start();
    await waitFor(() => a.activePeers().includes(2), 'a→b stream');
    a.send([heartbeat(1, 2, 1)]);
    await waitFor(() => got1.length === 1, 'first delivery');
    assert.equal(await metricValue(mA.etcd_network_active_peers, { Local: '1', Remote: '2' }), 1);

    await b.close();
    await waitFor(() => a.activePeers().length === 0, 'a notices b is gone');
    assert.equal(await metricValue(mA.etcd_network_disconnected_peers_total, { Local: '1', Remote: '2' }), 1);
    assert.equal(await metricValue(mA.etcd_network_active_peers, { Local: '1', Remote: '2' }), 0);
    const before = a.stats.droppedMessages;
    a.send([heartbeat(1, 2, 2), heartbeat(1, 2, 3)]); // b is down: dropped, counted, reported, never throws
    assert.equal(a.stats.droppedMessages - before, 2);
    assert.ok(unreachable.includes(2), 'onUnreachable(2) called');
    assert.ok((await metricValue(mA.etcd_network_peer_sent_failures_total, { To: '2' })) >= 2);

    b = mkB(got2);
    await b.start();
    await waitFor(() => a.activePeers().includes(2), 'a reconnects to restarted b');
    a.send([heartbeat(1, 2, 4)]);
    await waitFor(() => got2.length === 1, 'delivery after restart');
    assert.equal(got2[0].commit, 4);
    assert.equal(got1.length, 1, 'nothing late-delivered to the old instance');
    assert.ok((await metricValue(mA.etcd_network_peer_sent_bytes_total, { To: '2' })) > 0);
  } finally {
    await a.close();
    await b.close();
  }
});

test('pings measure RTT into etcd_network_peer_round_trip_time_seconds', async () => {
  const [pa, pb] = await freePorts(2);
  const peers = new Map([[1, [url(pa)]], [2, [url(pb)]]]);
  const mA = freshMetrics();
  const a = new PeerTransport({ memberId: 1, clusterId: CLUSTER, listenUrls: [url(pa)], peers, onMessages: () => {}, logger: captureLogger('a'), metrics: mA, pingIntervalMs: 20 });
  const b = new PeerTransport({ memberId: 2, clusterId: CLUSTER, listenUrls: [url(pb)], peers, onMessages: () => {}, logger: captureLogger('b'), metrics: freshMetrics() });
  try {
    await Promise.all([a.start(), b.start()]);
    await waitFor(() => a.activePeers().length === 1, 'stream');
    let count = 0;
    for (let i = 0; i < 100 && count < 3; i++) {
      count = await metricValue(mA.etcd_network_peer_round_trip_time_seconds, { To: '2' }, '_count');
      await sleep(20);
    }
    assert.ok(count >= 3, `RTT samples: ${count}`);
    const buckets = (await mA.etcd_network_peer_round_trip_time_seconds.get()).values
      .filter((v) => v.metricName?.endsWith('_bucket') && v.labels.To === '2')
      .map((v) => (v.labels as Record<string, unknown>).le);
    assert.equal(buckets[0], 0.0001);
    assert.equal(buckets[15], 3.2768);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('a full per-peer queue drops and counts instead of blocking', async () => {
  // A fake peer that accepts the handshake and then never reads: the sender's socket buffer fills up.
  const net = await import('node:net');
  const { encodeAnswer, HandshakeStatus } = await import('../../src/transport/frame');
  const sockets: import('node:net').Socket[] = [];
  const srv = net.createServer((s) => {
    sockets.push(s);
    s.once('data', () => {
      s.write(encodeAnswer(HandshakeStatus.Ok));
      s.pause();
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as import('node:net').AddressInfo).port;
  const [pa] = await freePorts(1);
  const unreachable: number[] = [];
  const a = new PeerTransport({
    memberId: 1, clusterId: CLUSTER, listenUrls: [url(pa)], peers: new Map([[2, [url(port)]]]), onMessages: () => {},
    onUnreachable: (id) => unreachable.push(id), logger: captureLogger('a'), metrics: freshMetrics(), maxQueueBytes: 1 << 20,
  });
  try {
    await a.start();
    await waitFor(() => a.activePeers().length === 1, 'stream to fake peer');
    const t0 = Date.now();
    for (let i = 0; i < 400; i++) a.send([msgApp(1, 2, i * 4 + 1, 4, 16 * 1024)]); // 400 × 64 KiB = 25 MiB
    const took = Date.now() - t0;
    assert.ok(a.stats.droppedMessages > 0, 'some batches dropped');
    assert.ok(unreachable.length > 0 && unreachable.every((id) => id === 2));
    assert.ok(took < 5000, `send() returned promptly (${took} ms)`);
  } finally {
    await a.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  }
});

test('setPeers adds and removes members at runtime', async () => {
  const [pa, pb] = await freePorts(2);
  const got: Message[] = [];
  const a = new PeerTransport({ memberId: 1, clusterId: CLUSTER, listenUrls: [url(pa)], peers: new Map(), onMessages: () => {}, logger: captureLogger('a'), metrics: freshMetrics() });
  const b = new PeerTransport({
    memberId: 2, clusterId: CLUSTER, listenUrls: [url(pb)], peers: new Map([[1, [url(pa)]]]), onMessages: (m) => got.push(...m),
    logger: captureLogger('b'), metrics: freshMetrics(),
  });
  try {
    await Promise.all([a.start(), b.start()]);
    a.send([heartbeat(1, 2, 1)]);
    assert.equal(a.stats.droppedMessages, 1, 'unknown destination is dropped');
    a.setPeers(new Map([[1, [url(pa)]], [2, [url(pb)]]]));
    await waitFor(() => a.activePeers().includes(2), 'a dials the added member');
    a.send([heartbeat(1, 2, 2)]);
    await waitFor(() => got.length === 1, 'delivery to the added member');
    b.setPeers(new Map()); // b forgets a: its inbound stream from a is closed and redials are refused
    await waitFor(() => a.activePeers().length === 0, 'a’s stream is dropped by b');
    a.setPeers(new Map());
    a.send([heartbeat(1, 2, 3)]);
    await sleep(100);
    assert.equal(got.length, 1);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});
