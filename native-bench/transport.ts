/**
 * Peer transport throughput benchmark (not a test): a sender process streams batches of MsgApp to a receiver
 * process over loopback through two PeerTransports; the receiver decodes them (decodeMessages) and counts.
 * The sender paces itself on `queuedBytes()` so nothing is dropped.
 *
 * Usage: node dist/native-bench/transport.js [seconds=3]
 * Prints, per scenario (messages per frame × entries per message × entry bytes): messages/s, entries/s, frames/s
 * and payload MB/s (entry data bytes, 10^6) as counted by the receiver.
 */
import { fork } from 'node:child_process';
import * as net from 'node:net';
import { EntryType, MessageType, makeMessage } from '../src/raft';
import type { Message } from '../src/raft';
import { PeerTransport } from '../src/transport';

const silent = { debug() {}, info() {}, warn() {}, error() {} };
/** Sender keeps at most this many bytes queued per peer (well under the transport's default cap). */
const PACE_BYTES = 4 * 1024 * 1024;

interface Scenario {
  name: string;
  msgsPerFrame: number;
  entriesPerMsg: number;
  entryBytes: number;
}

const SCENARIOS: Scenario[] = [
  { name: 'heartbeat-size (no entries), 1 msg/frame', msgsPerFrame: 1, entriesPerMsg: 0, entryBytes: 0 },
  { name: 'small: 64 msgs/frame, 1 × 100 B entry', msgsPerFrame: 64, entriesPerMsg: 1, entryBytes: 100 },
  { name: 'medium: 8 msgs/frame, 64 × 1 KiB entries', msgsPerFrame: 8, entriesPerMsg: 64, entryBytes: 1024 },
  { name: 'large: 1 msg/frame, 256 × 4 KiB entries (1 MiB MsgApp)', msgsPerFrame: 1, entriesPerMsg: 256, entryBytes: 4096 },
];

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

function buildBatch(sc: Scenario, startIndex: number): Message[] {
  const out: Message[] = [];
  const data = new Uint8Array(sc.entryBytes).fill(7);
  let idx = startIndex;
  for (let i = 0; i < sc.msgsPerFrame; i++) {
    const entries = [];
    for (let e = 0; e < sc.entriesPerMsg; e++) entries.push({ term: 1, index: idx++, type: EntryType.Normal, data });
    out.push(makeMessage({ type: MessageType.MsgApp, from: 1, to: 2, term: 1, logTerm: 1, index: startIndex - 1, entries }));
  }
  return out;
}

/** Receiver role (child process): counts what arrives; replies to 'report' with totals. */
async function receiver(portA: number, portB: number): Promise<void> {
  let msgs = 0;
  let entries = 0;
  let dataBytes = 0;
  let frames = 0;
  const t = new PeerTransport({
    memberId: 2, clusterId: 1, listenUrls: [`http://127.0.0.1:${portB}`],
    peers: new Map([[1, [`http://127.0.0.1:${portA}`]]]), logger: silent,
    onMessages: (ms) => {
      frames++;
      msgs += ms.length;
      for (const m of ms) {
        entries += m.entries.length;
        for (const e of m.entries) dataBytes += e.data.length;
      }
    },
  });
  await t.start();
  process.on('message', async (cmd: string) => {
    if (cmd === 'report') {
      process.send!({ msgs, entries, dataBytes, frames });
      msgs = entries = dataBytes = frames = 0;
    } else if (cmd === 'exit') {
      await t.close();
      process.disconnect?.();
    }
  });
  process.send!('ready');
}

async function main(): Promise<void> {
  if (process.argv[2] === 'receiver') return receiver(Number(process.argv[3]), Number(process.argv[4]));
  const seconds = Number(process.argv[2] ?? 3);
  const portA = await freePort();
  const portB = await freePort();
  const child = fork(__filename, ['receiver', String(portA), String(portB)]);
  await new Promise<void>((r) => child.once('message', () => r()));
  const t = new PeerTransport({
    memberId: 1, clusterId: 1, listenUrls: [`http://127.0.0.1:${portA}`],
    peers: new Map([[2, [`http://127.0.0.1:${portB}`]]]), logger: silent, onMessages: () => {},
  });
  await t.start();
  while (!t.activePeers().includes(2)) await new Promise((r) => setTimeout(r, 10));
  const report = (): Promise<{ msgs: number; entries: number; dataBytes: number; frames: number }> =>
    new Promise((resolve) => {
      child.once('message', (m) => resolve(m as { msgs: number; entries: number; dataBytes: number; frames: number }));
      child.send('report');
    });

  console.log(`peer transport loopback, 2 processes, ${seconds} s per scenario, node ${process.version}`);
  for (const sc of SCENARIOS) {
    await report(); // reset
    const batch = buildBatch(sc, 1); // the same messages every time: we measure transport + codec, not building
    const deadline = Date.now() + seconds * 1000;
    const t0 = process.hrtime.bigint();
    let sentFrames = 0;
    while (Date.now() < deadline) {
      for (let i = 0; i < 64 && t.queuedBytes(2) <= PACE_BYTES; i++) {
        t.send(batch);
        sentFrames++;
      }
      await new Promise((r) => setImmediate(r));
    }
    // let the receiver drain what is in flight
    while (t.queuedBytes(2) > 0) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 100));
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const r = await report();
    console.log(
      `${sc.name.padEnd(56)} ${(r.msgs / secs).toFixed(0).padStart(9)} msg/s  ${(r.entries / secs).toFixed(0).padStart(9)} entries/s  ` +
        `${(r.frames / secs).toFixed(0).padStart(7)} frames/s  ${(r.dataBytes / secs / 1e6).toFixed(1).padStart(7)} MB/s data` +
        `  (sent ${sentFrames} frames, dropped ${t.stats.droppedMessages})`,
    );
  }
  await t.close();
  child.send('exit');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
