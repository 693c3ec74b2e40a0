/**
 * The nemesis's peer proxy over real sockets: dialers are identified from etcetera's real handshake bytes
 * (src/transport's encoder) and from etcd's X-Server-From header; a one-way block stalls exactly one direction
 * and delivers the held bytes, in order, after the heal; reset cuts connections; a connection whose sender goes
 * away while bytes are held is reset, never delivered after a gap.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { encodeHandshake, ConnKind } from '../../src/transport';
import { freePort } from '../helpers';
import { Network, identifyEtcd, identifyEtcetera } from './proxy';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const CLUSTER = 0xabcdefn;
const ID = { a: 0x1111n, b: 0x2222n, c: 0x3333n };

/** A fake member's peer listener: remembers every byte each accepted connection sent. */
class Listener {
  readonly conns: { sock: net.Socket; got: Buffer[]; closed: boolean }[] = [];
  server!: net.Server;
  port = 0;
  async start(): Promise<void> {
    this.port = await freePort();
    this.server = net.createServer((sock) => {
      const c = { sock, got: [] as Buffer[], closed: false };
      this.conns.push(c);
      sock.on('data', (b: Buffer) => c.got.push(b));
      sock.on('error', () => {});
      sock.on('close', () => { c.closed = true; });
    });
    await new Promise<void>((r) => this.server.listen(this.port, '127.0.0.1', () => r()));
  }
  text(i = 0): string { return Buffer.concat(this.conns[i]?.got ?? []).toString('latin1'); }
  close(): void { for (const c of this.conns) c.sock.destroy(); this.server.close(); }
}

/** A dialer socket that remembers what it received. */
async function dial(port: number): Promise<{ sock: net.Socket; got: () => string; closed: () => boolean }> {
  const sock = net.connect({ host: '127.0.0.1', port });
  const got: Buffer[] = [];
  let closed = false;
  sock.on('data', (b: Buffer) => got.push(b));
  sock.on('error', () => {});
  sock.on('close', () => { closed = true; });
  await new Promise<void>((r, j) => { sock.once('connect', () => r()); sock.once('error', j); });
  return { sock, got: () => Buffer.concat(got).toString('latin1'), closed: () => closed };
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const cleanups: (() => unknown)[] = [];
after(async () => { for (const f of cleanups.reverse()) await f(); });

async function setup(identify = identifyEtcetera): Promise<{ net: Network; b: Listener; bProxy: number }> {
  const network = new Network(identify);
  const b = new Listener();
  await b.start();
  const bProxy = await freePort();
  await network.add('a', await freePort(), await freePort());
  await network.add('b', bProxy, b.port);
  await network.add('c', await freePort(), await freePort());
  network.setMemberIds(new Map([['a', ID.a], ['b', ID.b], ['c', ID.c]]));
  cleanups.push(() => network.close(), () => b.close());
  return { net: network, b, bProxy };
}

const handshake = (from: bigint, to: bigint): Buffer => encodeHandshake(ConnKind.Stream, CLUSTER, Number(from), Number(to));

test('identifies the dialer from etcetera handshakes and etcd request headers', () => {
  assert.equal(identifyEtcetera(handshake(ID.a, ID.b).subarray(0, 20)), 'more');
  assert.equal(identifyEtcetera(handshake(ID.a, ID.b)), ID.a);
  assert.equal(identifyEtcetera(Buffer.concat([handshake(ID.c, ID.b), Buffer.from('frames')])), ID.c);
  assert.equal(identifyEtcetera(Buffer.alloc(32, 0x41)), null);
  assert.equal(identifyEtcetera(encodeHandshake(ConnKind.Members, 0n, 0, 0)), null);
  const req = 'GET /raft/stream/message/2222 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Server-From: 1111\r\nX-Raft-To: 2222\r\n\r\n';
  assert.equal(identifyEtcd(Buffer.from(req.slice(0, 40))), 'more');
  assert.equal(identifyEtcd(Buffer.from(req)), ID.a);
  assert.equal(identifyEtcd(Buffer.from('GET /version HTTP/1.1\r\nHost: x\r\n\r\n')), null);
});

test('a one-way block stalls one direction only; held bytes arrive in order after the heal', async () => {
  const { net: network, b, bProxy } = await setup();
  const a = await dial(bProxy);
  a.sock.write(Buffer.concat([handshake(ID.a, ID.b), Buffer.from('m1')]));
  await until(() => b.text().endsWith('m1'), 'first bytes');
  assert.equal(b.text().length, 34);
  b.conns[0].sock.write('p1');
  await until(() => a.got() === 'p1', 'answer');

  // a ↛ b: a's bytes stall, b's still reach a.
  network.block([['a', 'b']]);
  a.sock.write('m2');
  a.sock.write('m3');
  b.conns[0].sock.write('p2');
  await until(() => a.got() === 'p1p2', 'b → a during a ↛ b');
  await sleep(300);
  assert.ok(b.text().endsWith('m1'), 'a → b bytes crossed a one-way block');
  // Blocks of other pairs do not matter to this connection.
  network.heal();
  network.block([['c', 'b'], ['b', 'c']]);
  await until(() => b.text().endsWith('m1m2m3'), 'held bytes after the heal');
  network.heal();

  // b ↛ a: the other direction.
  network.block([['b', 'a']]);
  b.conns[0].sock.write('p3');
  a.sock.write('m4');
  await until(() => b.text().endsWith('m4'), 'a → b during b ↛ a');
  await sleep(300);
  assert.equal(a.got(), 'p1p2');
  network.heal();
  await until(() => a.got() === 'p1p2p3', 'b → a after the heal');
  a.sock.destroy();
});

test('a symmetric block stalls the handshake of a new connection; an unidentified dialer stalls while its listener has any block', async () => {
  const { net: network, b, bProxy } = await setup();
  network.block([['a', 'b'], ['b', 'a']]);
  const a = await dial(bProxy);
  a.sock.write(handshake(ID.a, ID.b));
  const stranger = await dial(bProxy);
  stranger.sock.write('GET /version HTTP/1.1\r\n\r\n' + 'x'.repeat(40));
  await sleep(300);
  assert.equal(b.conns.length, 2, 'the proxy connects upstream at once');
  assert.equal(b.text(0) + b.text(1), '', 'nothing crosses');
  network.heal();
  await until(() => b.text(0).length + b.text(1).length === 32 + 65, 'both after the heal');
  a.sock.destroy();
  stranger.sock.destroy();
});

test('reset cuts every connection between two members; a sender that closes during a block is heard after the heal', async () => {
  const { net: network, b, bProxy } = await setup();
  const a = await dial(bProxy);
  a.sock.write(handshake(ID.a, ID.b));
  const c = await dial(bProxy);
  c.sock.write(handshake(ID.c, ID.b));
  await until(() => b.conns.length === 2 && b.text(0).length === 32 && b.text(1).length === 32, 'handshakes');
  assert.equal(network.reset('a', 'b'), 1);
  await until(() => a.closed(), 'a reset');
  assert.equal(c.closed(), false);

  // A sender that closes while its bytes are stalled: like TCP retransmitting data and FIN after the network
  // heals, the listener gets the bytes, then the close.
  network.block([['c', 'b']]);
  c.sock.end('late');
  await sleep(300);
  assert.equal(b.conns[1].closed, false);
  assert.equal(b.text(1).length, 32);
  network.heal();
  await until(() => b.conns[1].closed, 'close after the heal');
  assert.ok(b.text(1).endsWith('late'));
});
