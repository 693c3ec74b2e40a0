/**
 * listenClientUrl with a plain Node http2 server behind the injector (the same nghttp2 checks grpc-js gets):
 * well-formed connections are injected as the raw socket, a URL-shaped :authority is repaired through the
 * rewriter (pipelined clients and clients waiting for the server preface, as grpc-go does), and malformed or
 * oversized starts are closed while the listener keeps serving.
 */
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { listenClientUrl, H2_SNIFF_TIMEOUT_MS, H2_SNIFF_MAX_BYTES, H2_SETTINGS_ACK_TIMEOUT_MS } from '../../src/api/client-listener';
import { H2_CLIENT_PREFACE, FrameType, FrameFlag } from '../../src/api/h2-authority';
import { RawH2, frame } from './h2-raw';

let h2: http2.Http2Server;
let listener: net.Server;
let port: number;
const injected: Array<{ raw: boolean }> = [];
const rewrites: string[] = [];

before(async () => {
  h2 = http2.createServer();
  h2.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    let n = 0;
    stream.on('data', (d: Buffer) => (n += d.length));
    stream.on('end', () => {
      stream.respond({ ':status': 200 });
      stream.end(`${headers[':authority']} ${headers[':path']}${headers[':method'] === 'POST' ? ` ${n}` : ''}`);
    });
  });
  h2.on('sessionError', () => { /* a client's protocol error */ });
  const l = await listenClientUrl({
    host: '127.0.0.1', port: 0, httpUpstream: { port: 1 },
    injectGrpc: (c: Duplex) => { injected.push({ raw: c instanceof net.Socket }); h2.emit('connection', c); },
    onRewrite: (a) => rewrites.push(a),
  });
  listener = l.server;
  port = l.port;
});
after(() => { listener?.close(); h2?.close(); });

async function lastInjected(n0: number): Promise<{ raw: boolean }> {
  for (let i = 0; i < 100 && injected.length === n0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(injected.length, n0 + 1, 'one connection injected');
  return injected[n0];
}

test('well-formed :authority, pipelined: the socket itself is injected', async () => {
  const n0 = injected.length;
  const c = await RawH2.connect(port);
  c.write(Buffer.concat([c.preface(), frame(FrameType.HEADERS, FrameFlag.END_HEADERS | FrameFlag.END_STREAM, 1, c.encode(RawH2.get(`127.0.0.1:${port}`, '/x')))]));
  assert.equal((await c.response(1)).body, `127.0.0.1:${port} /x`);
  assert.deepEqual(await lastInjected(n0), { raw: true });
  // No SETTINGS of ours was needed: the first server frame is nghttp2's own SETTINGS.
  assert.equal(c.frames[0].type, FrameType.SETTINGS);
  c.close();
});

test('well-formed :authority, client waiting for the server preface: our SETTINGS ACK is hidden from nghttp2', async () => {
  const n0 = injected.length;
  const c = await RawH2.connect(port);
  c.write(c.preface());
  await c.waitFrame((f) => f.type === FrameType.SETTINGS && !(f.flags & FrameFlag.ACK)); // ours (auto-ACKed)
  c.write(frame(FrameType.HEADERS, FrameFlag.END_HEADERS | FrameFlag.END_STREAM, 1, c.encode(RawH2.get('localhost:1'))));
  assert.equal((await c.response(1)).body, 'localhost:1 /');
  c.write(frame(FrameType.HEADERS, FrameFlag.END_HEADERS | FrameFlag.END_STREAM, 3, c.encode(RawH2.get('localhost:1', '/2'))));
  assert.equal((await c.response(3)).body, 'localhost:1 /2');
  assert.deepEqual(await lastInjected(n0), { raw: true });
  assert.ok(!c.frames.some((f) => f.type === FrameType.GOAWAY), c.describe());
  c.close();
});

test('URL-shaped :authority (etcdctl endpoint status): repaired on every stream of the connection', async () => {
  const n0 = injected.length;
  const r0 = rewrites.length;
  const c = await RawH2.connect(port);
  const auth = `http://127.0.0.1:${port}`;
  c.write(c.preface());
  await c.waitFrame((f) => f.type === FrameType.SETTINGS && !(f.flags & FrameFlag.ACK));
  c.write(frame(FrameType.HEADERS, FrameFlag.END_HEADERS | FrameFlag.END_STREAM, 1, c.encode(RawH2.get(auth, '/one'))));
  assert.equal((await c.response(1)).body, `127.0.0.1:${port} /one`);
  assert.deepEqual(await lastInjected(n0), { raw: false });
  assert.deepEqual(rewrites.slice(r0), [auth]);
  // Later streams reuse the authority from the client's dynamic table; padded/priority and split blocks too.
  for (let i = 0; i < 20; i++) {
    const id = 3 + 2 * i;
    const block = c.encode(RawH2.get(auth, `/n${i}`));
    if (i % 3 === 0) {
      c.write(frame(FrameType.HEADERS, FrameFlag.END_HEADERS | FrameFlag.END_STREAM | FrameFlag.PADDED | FrameFlag.PRIORITY, id, Buffer.concat([Buffer.from([2, 0, 0, 0, 0, 16]), block, Buffer.alloc(2)])));
    } else if (i % 3 === 1) {
      c.write(Buffer.concat([frame(FrameType.HEADERS, FrameFlag.END_STREAM, id, block.subarray(0, 2)), frame(FrameType.CONTINUATION, FrameFlag.END_HEADERS, id, block.subarray(2))]));
    } else {
      c.write(frame(FrameType.HEADERS, FrameFlag.END_HEADERS | FrameFlag.END_STREAM, id, block));
    }
    assert.equal((await c.response(id)).body, `127.0.0.1:${port} /n${i}`);
  }
  c.write(frame(FrameType.PING, 0, 0, Buffer.from('pingpong')));
  const pong = await c.waitFrame((f) => f.type === FrameType.PING && (f.flags & FrameFlag.ACK) !== 0);
  assert.equal(pong.payload.toString(), 'pingpong');
  assert.ok(!c.frames.some((f) => f.type === FrameType.GOAWAY || f.type === FrameType.RST_STREAM), c.describe());
  c.close();
});

test('URL-shaped :authority, pipelined with the preface', async () => {
  const c = await RawH2.connect(port);
  c.write(Buffer.concat([c.preface(), frame(FrameType.HEADERS, FrameFlag.END_HEADERS | FrameFlag.END_STREAM, 1, c.encode(RawH2.get('https://example.com:443/ignored', '/p')))]));
  assert.equal((await c.response(1)).body, 'example.com:443 /p');
  c.close();
});

test('Node http2 client (normal path) works through the listener', async () => {
  const s = http2.connect(`http://127.0.0.1:${port}`);
  try {
    for (let i = 0; i < 50; i++) {
      const body = await new Promise<string>((resolve, reject) => {
        const req = s.request({ ':path': `/c${i}` });
        let b = '';
        req.setEncoding('utf8');
        req.on('data', (d) => (b += d));
        req.on('end', () => resolve(b));
        req.on('error', reject);
        req.end();
      });
      assert.equal(body, `127.0.0.1:${port} /c${i}`);
    }
  } finally { s.close(); }
});

test('idle client past the sniff timeout is injected as is and served', async () => {
  const n0 = injected.length;
  const c = await RawH2.connect(port);
  c.write(c.preface());
  await new Promise((r) => setTimeout(r, H2_SNIFF_TIMEOUT_MS + 300));
  assert.deepEqual(await lastInjected(n0), { raw: true });
  c.write(frame(FrameType.HEADERS, FrameFlag.END_HEADERS | FrameFlag.END_STREAM, 1, c.encode(RawH2.get('a:1'))));
  assert.equal((await c.response(1)).body, 'a:1 /');
  c.close();
});

test('a client busy past the sniff timeout before ACKing our SETTINGS is still served (loaded grpc-js clients)', async () => {
  const n0 = injected.length;
  const c = await RawH2.connect(port);
  c.autoAck = false;
  c.write(c.preface());
  await c.waitFrame((f) => f.type === FrameType.SETTINGS && !(f.flags & FrameFlag.ACK));
  await new Promise((r) => setTimeout(r, H2_SNIFF_TIMEOUT_MS + 300));
  c.write(frame(FrameType.SETTINGS, FrameFlag.ACK, 0));
  c.write(frame(FrameType.HEADERS, FrameFlag.END_HEADERS | FrameFlag.END_STREAM, 1, c.encode(RawH2.get('b:1'))));
  assert.equal((await c.response(1)).body, 'b:1 /');
  assert.deepEqual(await lastInjected(n0), { raw: true });
  assert.ok(!c.frames.some((f) => f.type === FrameType.GOAWAY), c.describe());
  c.close();
});

test('bad starts are closed and the listener keeps serving', async () => {
  const bad: Array<[string, (c: RawH2) => void]> = [
    ['bad preface', (c) => c.write(Buffer.from('PRI * HTTP/1.1\r\n\r\nxxxxxxxxxxxxxxxxxx'))],
    ['garbage frame after preface', (c) => c.write(Buffer.concat([H2_CLIENT_PREFACE, Buffer.from([0xff, 0xff, 0xff, 0xde, 0xad, 0xbe, 0xef, 0, 1]), Buffer.alloc(100, 0x41)]))],
    ['CONTINUATION first', (c) => c.write(Buffer.concat([c.preface(), frame(FrameType.CONTINUATION, FrameFlag.END_HEADERS, 1, Buffer.from([0x82]))]))],
    ['malformed HPACK', (c) => c.write(Buffer.concat([c.preface(), frame(FrameType.HEADERS, FrameFlag.END_HEADERS, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]))]))],
    ['HPACK index out of range', (c) => c.write(Buffer.concat([c.preface(), frame(FrameType.HEADERS, FrameFlag.END_HEADERS, 1, Buffer.from([0xfe]))]))],
    ['oversized first header block', (c) => {
      c.write(Buffer.concat([c.preface(), frame(FrameType.HEADERS, 0, 1, Buffer.alloc(16384, 0x82))]));
      for (let i = 0; i < H2_SNIFF_MAX_BYTES / 16384 + 1; i++) c.write(frame(FrameType.CONTINUATION, 0, 1, Buffer.alloc(16384, 0x82)));
    }],
    ['preface then silence (our SETTINGS never ACKed)', (c) => { c.autoAck = false; c.write(c.preface()); }],
  ];
  for (const [name, send] of bad) {
    const c = await RawH2.connect(port);
    send(c);
    await c.waitClosed(H2_SETTINGS_ACK_TIMEOUT_MS + 3000).catch((e) => { throw new Error(`${name}: ${(e as Error).message}`); });
  }
  const c = await RawH2.connect(port);
  c.write(Buffer.concat([c.preface(), frame(FrameType.HEADERS, FrameFlag.END_HEADERS | FrameFlag.END_STREAM, 1, c.encode(RawH2.get('http://x:1')))]));
  assert.equal((await c.response(1)).body, 'x:1 /');
  c.close();
});

test('garbage after a repaired connection started closes only that connection', async () => {
  const c = await RawH2.connect(port);
  c.write(Buffer.concat([c.preface(), frame(FrameType.HEADERS, FrameFlag.END_HEADERS | FrameFlag.END_STREAM, 1, c.encode(RawH2.get('http://y:1')))]));
  assert.equal((await c.response(1)).body, 'y:1 /');
  c.write(frame(FrameType.HEADERS, FrameFlag.END_HEADERS, 3, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])));
  await c.waitClosed();
  const d = await RawH2.connect(port);
  d.write(Buffer.concat([d.preface(), frame(FrameType.HEADERS, FrameFlag.END_HEADERS | FrameFlag.END_STREAM, 1, d.encode(RawH2.get('z:1')))]));
  assert.equal((await d.response(1)).body, 'z:1 /');
  d.close();
});

test('first request with a body sent before our SETTINGS is ACKed (DATA buffered while sniffing)', async () => {
  for (const authority of ['127.0.0.1:1', 'http://127.0.0.1:1']) {
    const c = await RawH2.connect(port);
    c.autoAck = false;
    c.write(c.preface());
    await c.waitFrame((f) => f.type === FrameType.SETTINGS && !(f.flags & FrameFlag.ACK));
    const post: Array<[string, string]> = [[':method', 'POST'], [':scheme', 'http'], [':authority', authority], [':path', '/post']];
    c.write(frame(FrameType.HEADERS, FrameFlag.END_HEADERS, 1, c.encode(post)));
    for (let i = 0; i < 4; i++) c.write(frame(FrameType.DATA, i === 3 ? FrameFlag.END_STREAM : 0, 1, Buffer.alloc(16_000, 0x61)));
    await new Promise((r) => setTimeout(r, 50));
    c.autoAck = true;
    c.write(frame(FrameType.SETTINGS, FrameFlag.ACK, 0)); // ACK of our SETTINGS, after the body
    // (nghttp2's own SETTINGS, sent once the connection is injected, is auto-ACKed from now on.)
    assert.equal((await c.response(1)).body, '127.0.0.1:1 /post 64000', c.describe());
    assert.ok(!c.frames.some((f) => f.type === FrameType.GOAWAY), c.describe());
    c.close();
  }
});

test('Node http2 client: a 1 MB POST as the first request of a connection', async () => {
  const s = http2.connect(`http://127.0.0.1:${port}`);
  try {
    const body = await new Promise<string>((resolve, reject) => {
      const req = s.request({ ':method': 'POST', ':path': '/big' });
      let b = '';
      req.setEncoding('utf8');
      req.on('data', (d) => (b += d));
      req.on('end', () => resolve(b));
      req.on('error', reject);
      req.end(Buffer.alloc(1 << 20, 0x62));
    });
    assert.equal(body, `127.0.0.1:${port} /big ${1 << 20}`);
  } finally { s.close(); }
});
