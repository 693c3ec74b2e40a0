/**
 * Refusals and protocol violations: cluster-ID mismatch and unknown members are refused at the handshake (nothing
 * delivered, sender logs the reason); garbage, undecodable batches and oversized frames close only the offending
 * connection while the server keeps serving a legitimate peer.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { freePorts } from '../helpers/ports';
import type { Message } from '../../src/raft';
import { PeerTransport } from '../../src/transport';
import { ConnKind, FrameType, encodeHandshake, frameHeader } from '../../src/transport/frame';
import { captureLogger, freshMetrics, heartbeat, url, waitFor } from './helpers';

test('a member with a mismatched cluster ID (or an unknown member) is refused and nothing is delivered', async () => {
  const [pa, px, py] = await freePorts(3);
  const got: Message[] = [];
  const logA = captureLogger('a');
  const logX = captureLogger('x');
  const logY = captureLogger('y');
  const a = new PeerTransport({
    memberId: 1, clusterId: 100, listenUrls: [url(pa)], peers: new Map([[2, [url(px)]]]),
    onMessages: (m) => got.push(...m), logger: logA, metrics: freshMetrics(),
  });
  // x claims to be member 2 (known to a) but belongs to another cluster (other --initial-cluster-token).
  const x = new PeerTransport({
    memberId: 2, clusterId: 999, listenUrls: [url(px)], peers: new Map([[1, [url(pa)]]]),
    onMessages: () => {}, logger: logX, metrics: freshMetrics(),
  });
  // y has the right cluster ID but is not a member a knows.
  const y = new PeerTransport({
    memberId: 7, clusterId: 100, listenUrls: [url(py)], peers: new Map([[1, [url(pa)]]]),
    onMessages: () => {}, logger: logY, metrics: freshMetrics(),
  });
  try {
    await Promise.all([a.start(), x.start(), y.start()]);
    await waitFor(() => logX.has('rejected: cluster ID mismatch'), 'x logs the cluster-ID rejection');
    await waitFor(() => logY.has('rejected: unknown member'), 'y logs the unknown-member rejection');
    x.send([heartbeat(2, 1, 1)]);
    y.send([heartbeat(7, 1, 1)]);
    assert.ok(logA.has('refused peer connection: cluster ID mismatch'), 'a logs why it refused x');
    assert.ok(logA.has('refused peer connection: unknown member'), 'a logs why it refused y');
    await new Promise((r) => setTimeout(r, 300)); // let any (wrongly) accepted bytes arrive
    assert.equal(got.length, 0, 'nothing delivered');
    assert.equal(x.activePeers().length, 0);
    assert.equal(y.activePeers().length, 0);
    assert.ok(x.stats.droppedMessages >= 1);
    const line = logX.lines.find((l) => l.msg === 'rejected: cluster ID mismatch');
    assert.ok(line && line.level === 'error');
    await assert.rejects(x.sendSnapshot(1, new Uint8Array(4), Buffer.alloc(10)), /cluster ID mismatch/);
  } finally {
    await Promise.all([a.close(), x.close(), y.close()]);
  }
});

/** Open a raw socket to `port`, write `bytes` (optionally after a handshake), resolve when the server closes it. */
function rawSession(port: number, chunks: Buffer[], handshake?: Buffer): Promise<{ closed: boolean; answer: Buffer }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    const recv: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ closed: false, answer: Buffer.concat(recv) });
    }, 3000);
    s.on('connect', () => {
      if (handshake) s.write(handshake);
      for (const c of chunks) s.write(c);
    });
    s.on("data", (d: Buffer) => recv.push(d));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ closed: true, answer: Buffer.concat(recv) });
    });
    s.on('timeout', reject);
  });
}

test('garbage, undecodable batches and oversized frames close that connection; the server keeps serving', async () => {
  const [pa, pb] = await freePorts(2);
  const PHANTOM = 3; // a member b knows but that is not running: the raw sockets pretend to be it
  const peers = new Map([[1, [url(pa)]], [2, [url(pb)]], [PHANTOM, ['http://127.0.0.1:1']]]);
  const got: Message[] = [];
  const logB = captureLogger('b');
  const a = new PeerTransport({ memberId: 1, clusterId: 5, listenUrls: [url(pa)], peers, onMessages: () => {}, logger: captureLogger('a'), metrics: freshMetrics() });
  const b = new PeerTransport({
    memberId: 2, clusterId: 5, listenUrls: [url(pb)], peers, onMessages: (m) => got.push(...m), logger: logB,
    metrics: freshMetrics(), maxFrameBytes: 1 << 20,
  });
  let seq = 0;
  const roundTrip = async (): Promise<void> => {
    const want = ++seq;
    a.send([heartbeat(1, 2, want)]);
    await waitFor(() => got.some((m) => m.commit === want), `heartbeat ${want} from the legitimate peer`);
  };
  try {
    await Promise.all([a.start(), b.start()]);
    await waitFor(() => a.activePeers().includes(2), 'a→b');
    await roundTrip();
    const hs = encodeHandshake(ConnKind.Stream, 5n, PHANTOM, 2);

    // 1. not our protocol at all (e.g. an HTTP client)
    let r = await rawSession(pb, [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.padEnd(64, ' '))]);
    assert.ok(r.closed, 'garbage handshake closes');
    assert.equal(r.answer.length, 0, 'no answer to a non-etcetera client');
    await roundTrip();

    // 2. valid handshake, then a frame whose payload fails decodeMessages
    const junk = Buffer.from([0xff, 1, 2, 3, 4, 5, 6, 7, 8]);
    r = await rawSession(pb, [frameHeader(FrameType.Messages, junk.length), junk], hs);
    assert.ok(r.closed, 'undecodable batch closes');
    assert.equal(r.answer[6], 0, 'handshake itself was accepted');
    await roundTrip();

    // 3. valid handshake, then a frame header declaring 2 MiB (cap is 1 MiB): closed before the body is sent
    r = await rawSession(pb, [frameHeader(FrameType.Messages, 2 << 20)], hs);
    assert.ok(r.closed, 'oversized frame closes');
    await roundTrip();

    // 4. unknown frame type, and a zero-length frame
    r = await rawSession(pb, [frameHeader(99 as FrameType, 0)], hs);
    assert.ok(r.closed, 'unknown frame type closes');
    r = await rawSession(pb, [Buffer.alloc(4)], hs);
    assert.ok(r.closed, 'zero-length frame closes');
    await roundTrip();

    // 5. a connection addressed to another member ID is refused
    r = await rawSession(pb, [], encodeHandshake(ConnKind.Stream, 5n, PHANTOM, 42));
    assert.ok(r.closed);
    assert.equal(r.answer[6], 4, 'WrongReceiver status');

    assert.ok(b.stats.rejectedConnections >= 5, `rejected ${b.stats.rejectedConnections}`);
    assert.ok(logB.has('bad handshake magic'));
    assert.ok(logB.has('undecodable message batch'));
    assert.ok(logB.has('exceeds the 1048576-byte cap'));
    assert.ok(got.every((m) => m.from === 1), 'only the legitimate peer’s messages were delivered');
    assert.equal(got.length, seq);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});
