/**
 * Snapshots travel on their own connection: a 50 MiB snapshot is delivered intact while heartbeats keep being
 * delivered on the main stream during the transfer; a receiver without a handler refuses.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { freePorts } from '../helpers/ports';
import { MessageType } from '../../src/raft';
import { PeerTransport } from '../../src/transport';
import { captureLogger, freshMetrics, heartbeat, metricValue, sleep, url, waitFor } from './helpers';

test('a 50 MiB snapshot on the side connection does not stop heartbeats on the main stream', async () => {
  const [pa, pb] = await freePorts(2);
  const peers = new Map([[1, [url(pa)]], [2, [url(pb)]]]);
  const SIZE = 50 * 1024 * 1024;
  const data = Buffer.allocUnsafe(SIZE);
  for (let i = 0; i < SIZE; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
  const wantHash = createHash('sha256').update(data).digest('hex');

  let inTransfer = false;
  let heartbeatsDuring = 0;
  let heartbeatsTotal = 0;
  let recvBytes = 0;
  let recvHash = '';
  let recvMeta = '';
  const statuses: [number, boolean][] = [];
  const mB = freshMetrics();
  const a = new PeerTransport({
    memberId: 1, clusterId: 9, listenUrls: [url(pa)], peers, onMessages: () => {},
    onSnapshotStatus: (id, ok) => statuses.push([id, ok]), logger: captureLogger('a'), metrics: freshMetrics(),
  });
  const b = new PeerTransport({
    memberId: 2, clusterId: 9, listenUrls: [url(pb)], peers, logger: captureLogger('b'), metrics: mB,
    onMessages: (msgs) => {
      for (const m of msgs) {
        if (m.type !== MessageType.MsgHeartbeat) continue;
        heartbeatsTotal++;
        if (inTransfer) heartbeatsDuring++;
      }
    },
    onSnapshot: async (from, meta, stream) => {
      assert.equal(from, 1);
      recvMeta = Buffer.from(meta).toString();
      inTransfer = true;
      const h = createHash('sha256');
      let n = 0;
      // A consumer that takes its time (as installing a snapshot does): yields to the event loop per chunk.
      for await (const chunk of stream as AsyncIterable<Uint8Array>) {
        h.update(chunk);
        recvBytes += chunk.length;
        if (++n % 4 === 0) await sleep(5);
      }
      recvHash = h.digest('hex');
      inTransfer = false;
    },
  });
  let hbTimer: NodeJS.Timeout | undefined;
  try {
    await Promise.all([a.start(), b.start()]);
    await waitFor(() => a.activePeers().includes(2), 'a→b stream');
    let seq = 0;
    hbTimer = setInterval(() => a.send([heartbeat(1, 2, ++seq)]), 2);
    await a.sendSnapshot(2, Buffer.from('meta:index=1234'), data);
    clearInterval(hbTimer);
    hbTimer = undefined;
    assert.equal(recvBytes, SIZE);
    assert.equal(recvHash, wantHash, 'snapshot bytes intact');
    assert.equal(recvMeta, 'meta:index=1234');
    assert.ok(heartbeatsDuring > 0, `heartbeats delivered during the transfer: ${heartbeatsDuring}`);
    assert.deepEqual(statuses, [[2, true]]);
    assert.equal(await metricValue(mB.etcd_network_snapshot_receive_success, { From: '1' }), 1);
    assert.ok((await metricValue(mB.etcd_network_peer_received_bytes_total, { From: '1' })) > SIZE);
    console.log(`# heartbeats during transfer: ${heartbeatsDuring} of ${heartbeatsTotal}`);
  } finally {
    if (hbTimer) clearInterval(hbTimer);
    await Promise.all([a.close(), b.close()]);
  }
});

test('snapshot to a member without onSnapshot (or a failing one) rejects and reports failure', async () => {
  const [pa, pb, pc] = await freePorts(3);
  const peers = new Map([[1, [url(pa)]], [2, [url(pb)]], [3, [url(pc)]]]);
  const statuses: [number, boolean][] = [];
  const a = new PeerTransport({
    memberId: 1, clusterId: 9, listenUrls: [url(pa)], peers, onMessages: () => {},
    onSnapshotStatus: (id, ok) => statuses.push([id, ok]), logger: captureLogger('a'), metrics: freshMetrics(),
  });
  const b = new PeerTransport({ memberId: 2, clusterId: 9, listenUrls: [url(pb)], peers, onMessages: () => {}, logger: captureLogger('b'), metrics: freshMetrics() });
  const c = new PeerTransport({
    memberId: 3, clusterId: 9, listenUrls: [url(pc)], peers, onMessages: () => {}, logger: captureLogger('c'), metrics: freshMetrics(),
    onSnapshot: async (_from, _meta, stream) => {
      for await (const _ of stream as AsyncIterable<Uint8Array>) throw new Error('disk full');
    },
  });
  try {
    await Promise.all([a.start(), b.start(), c.start()]);
    await assert.rejects(a.sendSnapshot(2, new Uint8Array(1), Buffer.alloc(3 << 20)), /refused/);
    await assert.rejects(a.sendSnapshot(3, new Uint8Array(1), Buffer.alloc(3 << 20)), /refused|closed/);
    await assert.rejects(a.sendSnapshot(99, new Uint8Array(1), Buffer.alloc(1)), /unknown peer/);
    assert.deepEqual(statuses, [[2, false], [3, false], [99, false]]);
  } finally {
    await Promise.all([a.close(), b.close(), c.close()]);
  }
});

test('snapshot data may be an async iterable of arbitrary chunk sizes', async () => {
  const [pa, pb] = await freePorts(2);
  const peers = new Map([[1, [url(pa)]], [2, [url(pb)]]]);
  const parts: Buffer[] = [];
  const a = new PeerTransport({ memberId: 1, clusterId: 9, listenUrls: [url(pa)], peers, onMessages: () => {}, logger: captureLogger('a'), metrics: freshMetrics() });
  const b = new PeerTransport({
    memberId: 2, clusterId: 9, listenUrls: [url(pb)], peers, onMessages: () => {}, logger: captureLogger('b'), metrics: freshMetrics(),
    onSnapshot: async (_from, _meta, stream) => {
      for await (const chunk of stream as AsyncIterable<Uint8Array>) parts.push(Buffer.from(chunk));
    },
  });
  async function* gen(): AsyncIterable<Uint8Array> {
    for (let i = 0; i < 12; i++) yield Buffer.alloc(i * 300_000 + 1, i);
  }
  try {
    await Promise.all([a.start(), b.start()]);
    await a.sendSnapshot(2, new Uint8Array(0), gen());
    const all = Buffer.concat(parts);
    let off = 0;
    for (let i = 0; i < 12; i++) {
      const n = i * 300_000 + 1;
      assert.ok(all.subarray(off, off + n).equals(Buffer.alloc(n, i)), `part ${i}`);
      off += n;
    }
    assert.equal(all.length, off);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});
