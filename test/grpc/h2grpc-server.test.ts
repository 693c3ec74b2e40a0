/**
 * The h2 gRPC server layer (src/api/h2grpc) on its own, with small handlers written against grpc-js's call
 * surface and driven by grpc-js clients and raw node:http2 clients: the four call kinds, metadata with `-bin`
 * values, percent-encoded status messages, deadlines seen by the handler, a client reset seen as 'cancelled',
 * HTTP/2 flow control as back-pressure for a client that stops reading, SETTINGS_MAX_CONCURRENT_STREAMS,
 * keepalive PINGs, and GOAWAY with a grace period on close.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import * as http2 from 'node:http2';
import { H2GrpcServer, type H2Method } from '../../src/api/h2grpc/server';
import type { H2Call } from '../../src/api/h2grpc/call';
import { connect, frame, messages, rawCall } from './h2-raw';
import { instrumentStream, MethodCounters } from '../../src/api/grpc/metrics';

/** go-grpc-prometheus counters of the StreamFail method, fed by the same wrapper the member uses. */
const streamFailCounters = new MethodCounters('t.T', 'StreamFail', 'server_stream');

const id = (b: Buffer): Buffer => b;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** What the handlers observed, for the assertions. */
const seen = {
  metadata: null as grpc.Metadata | null,
  deadline: 0,
  cancelled: [] as string[],
  writesBeforeFull: -1,
  drained: false,
  /** Messages the Flood handler has written so far. */
  flooded: 0,
};

const CHUNK = Buffer.alloc(16 * 1024, 0x61);
const FLOOD_MESSAGES = 400;

const methods = new Map<string, H2Method>([
  ['/t.T/Echo', { kind: 'unary', handler: (call, reply) => {
    seen.metadata = call.metadata;
    reply(null, call.request);
  } }],
  ['/t.T/Fail', { kind: 'unary', handler: (_call, reply) => reply({ code: 9, details: 'déjà vu: 100% failed\nline 2' }) }],
  ['/t.T/Throw', { kind: 'unary', handler: () => { throw new Error('handler bug'); } }],
  ['/t.T/Wait', { kind: 'unary', handler: (call) => {
    seen.deadline = call.getDeadline();
    call.on('cancelled', () => seen.cancelled.push('Wait'));
  } }],
  ['/t.T/Count', { kind: 'server_stream', handler: (call) => {
    const n = call.request.readUInt32BE(0);
    for (let i = 0; i < n; i++) {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(i);
      call.write(b);
    }
    call.end();
  } }],
  ['/t.T/StreamFail', { kind: 'server_stream', handler: instrumentStream((call: grpc.ServerWritableStream<Buffer, Uint8Array>) => {
    call.write(Buffer.from('one'));
    call.emit('error', { code: 5, details: 'gone' });
  }, streamFailCounters, 'server_stream') as unknown as H2Method['handler'] }],
  ['/t.T/Flood', { kind: 'server_stream', handler: (call) => {
    let i = 0;
    const pump = (): void => {
      while (i < FLOOD_MESSAGES) {
        i++;
        seen.flooded = i;
        if (!call.write(CHUNK)) {
          if (seen.writesBeforeFull < 0) seen.writesBeforeFull = i;
          call.once('drain', () => {
            seen.drained = true;
            pump();
          });
          return;
        }
      }
      call.end();
    };
    call.on('cancelled', () => seen.cancelled.push('Flood'));
    pump();
  } }],
  ['/t.T/Sum', { kind: 'client_stream', handler: (call, reply) => {
    let sum = 0;
    call.on('data', (b: Buffer) => (sum += b.readUInt32BE(0)));
    call.on('end', () => {
      const out = Buffer.alloc(4);
      out.writeUInt32BE(sum);
      reply(null, out);
    });
  } }],
  ['/t.T/Chat', { kind: 'bidi_stream', handler: (call) => {
    call.on('data', (b: Buffer) => call.write(Buffer.concat([Buffer.from('re:'), b])));
    call.on('end', () => call.end());
    call.on('cancelled', () => seen.cancelled.push('Chat'));
  } }],
]);

describe('h2 gRPC server layer', { timeout: 120_000 }, () => {
  let server: H2GrpcServer;
  let endpoint: string;
  let client: grpc.Client;

  before(async () => {
    server = new H2GrpcServer({ methods, maxReceiveMessageBytes: 64 * 1024, maxConcurrentStreams: 1000, keepaliveIntervalMs: 100, keepaliveTimeoutMs: 5000 });
    endpoint = `127.0.0.1:${await server.listen('127.0.0.1', 0)}`;
    client = new grpc.Client(endpoint, grpc.credentials.createInsecure());
  });

  after(async () => {
    client?.close();
    await server?.close(100);
  });

  const unary = (path: string, req: Buffer, md = new grpc.Metadata(), deadline?: number): Promise<{ err: grpc.ServiceError | null; res?: Buffer }> =>
    new Promise((resolve) => {
      client.makeUnaryRequest(path, id, id, req, md, deadline ? { deadline } : {}, (err, res) => resolve({ err, res }));
    });

  it('grpc-js unary: the message comes back; metadata with -bin values reaches the handler decoded', async () => {
    const md = new grpc.Metadata();
    md.set('token', 'abc');
    md.set('trace-bin', Buffer.from([0, 1, 2, 0xfe, 0xff]));
    md.add('multi', 'x');
    md.add('multi', 'y');
    const { err, res } = await unary('/t.T/Echo', Buffer.from('hello'), md);
    assert.equal(err, null);
    assert.equal(res?.toString(), 'hello');
    assert.deepEqual(seen.metadata?.get('token'), ['abc']);
    assert.deepEqual(seen.metadata?.get('trace-bin'), [Buffer.from([0, 1, 2, 0xfe, 0xff])]);
    // Repeated headers reach Node's server joined by ", " (the gRPC spec's equivalent of two values).
    assert.equal(seen.metadata?.get('multi').join(', '), 'x, y');
    assert.deepEqual(seen.metadata?.get('content-type'), [], 'transport headers are not metadata');
  });

  it('an empty message and a message split into many DATA frames', async () => {
    assert.equal((await unary('/t.T/Echo', Buffer.alloc(0))).res?.length, 0);
    const s = connect(endpoint);
    const big = Buffer.alloc(50_000, 0x7a);
    const parts = [];
    const f = frame(big);
    for (let off = 0; off < f.length; off += 999) parts.push(f.subarray(off, off + 999));
    const a = await rawCall(s, '/t.T/Echo', parts);
    s.close();
    assert.equal(a.code, 0);
    assert.deepEqual(messages(a.body)[0], big);
  });

  it('a status message with non-ASCII, % and a newline arrives intact (percent-encoded on the wire)', async () => {
    const { err } = await unary('/t.T/Fail', Buffer.alloc(0));
    assert.equal(err?.code, 9);
    assert.equal(err?.details, 'déjà vu: 100% failed\nline 2');
    const s = connect(endpoint);
    const a = await rawCall(s, '/t.T/Fail', [frame(Buffer.alloc(0))]);
    s.close();
    assert.equal(a.headers['grpc-status'], '9', 'trailers-only response');
    assert.match(String(a.headers['grpc-message']), /^d%C3%A9j%C3%A0 vu: 100%25 failed%0Aline 2$/);
  });

  it('a handler that throws ends its call with Unknown', async () => {
    const { err } = await unary('/t.T/Throw', Buffer.alloc(0));
    assert.equal(err?.code, grpc.status.UNKNOWN);
    assert.equal(err?.details, 'handler bug');
  });

  it('over the receive limit: ResourceExhausted with grpc-go\'s text, and the connection stays usable', async () => {
    const { err } = await unary('/t.T/Echo', Buffer.alloc(64 * 1024 + 1));
    assert.equal(err?.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.equal(err?.details, `grpc: received message larger than max (${64 * 1024 + 1} vs. ${64 * 1024})`);
    assert.equal((await unary('/t.T/Echo', Buffer.from('x'))).res?.toString(), 'x');
  });

  it('unknown method and unknown service: Unimplemented with grpc-go\'s texts', async () => {
    assert.deepEqual(await unary('/t.T/Nope', Buffer.alloc(0)).then((r) => [r.err?.code, r.err?.details]), [12, 'unknown method Nope for service t.T']);
    assert.deepEqual(await unary('/x.Y/Z', Buffer.alloc(0)).then((r) => [r.err?.code, r.err?.details]), [12, 'unknown service x.Y']);
  });

  it('deadline: the handler sees it, and when it passes the call ends DeadlineExceeded and the handler is cancelled', async () => {
    seen.cancelled.length = 0;
    const s = connect(endpoint);
    const t0 = Date.now();
    const a = await rawCall(s, '/t.T/Wait', [frame(Buffer.alloc(0))], { extra: { 'grpc-timeout': '200m' } });
    s.close();
    assert.ok(seen.deadline >= t0 + 150 && seen.deadline <= t0 + 5000, `deadline ${seen.deadline - t0} ms after the start`);
    assert.deepEqual([a.code, a.message], [4, 'context deadline exceeded']);
    assert.ok(Date.now() - t0 >= 190);
    assert.deepEqual(seen.cancelled, ['Wait']);
    const r = await unary('/t.T/Wait', Buffer.alloc(0), new grpc.Metadata(), Date.now() + 200);
    assert.equal(r.err?.code, grpc.status.DEADLINE_EXCEEDED);
  });

  it('a client reset (grpc-js cancel) and a lost connection are seen by the handler as cancelled', async () => {
    seen.cancelled.length = 0;
    const call = client.makeUnaryRequest('/t.T/Wait', id, id, Buffer.alloc(0), () => {});
    await until(() => server.sessionCount > 0, 'session');
    await sleep(50);
    call.cancel();
    await until(() => seen.cancelled.includes('Wait'), 'cancelled');
    // A bidi stream whose connection goes away while it is open (grpc-js and Node half-close before a reset,
    // which a handler may answer by ending the call; a lost connection leaves no such chance).
    const raw = connect(endpoint);
    const req = raw.request({ ':method': 'POST', ':path': '/t.T/Chat', 'content-type': 'application/grpc', te: 'trailers' });
    req.on('error', () => {});
    req.write(frame(Buffer.from('a')));
    await new Promise((r) => req.once('data', r));
    raw.destroy();
    await until(() => seen.cancelled.includes('Chat'), 'bidi cancelled');
  });

  it('server stream: messages in order then OK; an emitted error ends it with that status after the messages', async () => {
    const req = Buffer.alloc(4);
    req.writeUInt32BE(500);
    const got: number[] = [];
    const st = client.makeServerStreamRequest('/t.T/Count', id, id, req);
    st.on('data', (b: Buffer) => got.push(b.readUInt32BE(0)));
    await new Promise<void>((resolve, reject) => { st.on('end', resolve); st.on('error', reject); });
    assert.deepEqual(got, Array.from({ length: 500 }, (_, i) => i));
    const f = client.makeServerStreamRequest('/t.T/StreamFail', id, id, Buffer.alloc(0));
    const msgs: string[] = [];
    f.on('data', (b: Buffer) => msgs.push(b.toString()));
    const err = await new Promise<grpc.ServiceError>((resolve) => f.on('error', resolve));
    assert.deepEqual([msgs, err.code, err.details], [['one'], 5, 'gone']);
    // Counted once, with the emitted code (not as OK).
    assert.deepEqual([streamFailCounters.handled[5], streamFailCounters.handled[0], streamFailCounters.sent], [1, 0, 1]);
  });

  it('client stream and bidi stream', async () => {
    const sum = await new Promise<number>((resolve, reject) => {
      const c = client.makeClientStreamRequest('/t.T/Sum', id, id, (err, res) => (err ? reject(err) : resolve(res!.readUInt32BE(0))));
      for (let i = 1; i <= 100; i++) {
        const b = Buffer.alloc(4);
        b.writeUInt32BE(i);
        c.write(b);
      }
      c.end();
    });
    assert.equal(sum, 5050);
    const bidi = client.makeBidiStreamRequest('/t.T/Chat', id, id);
    const replies: string[] = [];
    bidi.on('data', (b: Buffer) => replies.push(b.toString()));
    for (const w of ['a', 'b', 'c']) bidi.write(Buffer.from(w));
    bidi.end();
    await new Promise<void>((resolve, reject) => { bidi.on('end', resolve); bidi.on('error', reject); });
    assert.deepEqual(replies, ['re:a', 're:b', 're:c']);
  });

  it('a client that stops reading: writes report a full buffer, the handler waits for drain, all messages arrive once it reads', async () => {
    seen.writesBeforeFull = -1;
    seen.drained = false;
    const s = connect(endpoint);
    const req = s.request({ ':method': 'POST', ':path': '/t.T/Flood', 'content-type': 'application/grpc', te: 'trailers' });
    req.on('error', () => {});
    req.end(frame(Buffer.alloc(0)));
    req.pause();
    await until(() => seen.writesBeforeFull > 0, 'a write that reports a full buffer');
    await sleep(500);
    // HTTP/2 flow control stalls the handler: what it wrote is bounded by the windows and buffers (~64 KiB
    // stream window + the client's and server's stream buffers), far below the 6.4 MB it wants to send.
    const stalledAt = seen.flooded;
    assert.ok(stalledAt < 40, `messages written while the client reads nothing: ${stalledAt}`);
    await sleep(300);
    assert.equal(seen.flooded, stalledAt, 'no progress while the client does not read');
    const parts: Buffer[] = [];
    let trailers: Record<string, unknown> = {};
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (d: Buffer) => parts.push(d));
    req.resume();
    await new Promise((r) => req.on('close', r));
    s.close();
    assert.equal(seen.drained, true);
    assert.equal(trailers['grpc-status'], '0');
    const got = messages(Buffer.concat(parts));
    assert.equal(got.length, FLOOD_MESSAGES);
    assert.ok(got.every((m) => m.equals(CHUNK)));
  });

  it('a client that stops reading and then resets: the blocked handler is cancelled', async () => {
    seen.cancelled.length = 0;
    seen.writesBeforeFull = -1;
    const s = connect(endpoint);
    const req = s.request({ ':method': 'POST', ':path': '/t.T/Flood', 'content-type': 'application/grpc', te: 'trailers' });
    req.on('error', () => {});
    req.end(frame(Buffer.alloc(0)));
    req.pause();
    await until(() => seen.writesBeforeFull > 0, 'full buffer');
    req.close(8 /* CANCEL */);
    await until(() => seen.cancelled.includes('Flood'), 'cancelled');
    s.close();
  });

  it('SETTINGS carry max concurrent streams; the server PINGs at the keepalive interval', async () => {
    const s = connect(endpoint);
    let pings = 0;
    s.on('ping', () => pings++);
    await new Promise((r) => s.once('remoteSettings', r));
    assert.equal(s.remoteSettings.maxConcurrentStreams, 1000);
    await until(() => pings >= 2, 'two keepalive pings', 10_000);
    s.close();
  });
});

describe('h2 gRPC server keepalive policy (etcd --grpc-keepalive-min-time)', { timeout: 60_000 }, () => {
  /** 64 messages of 32 KiB (etcd's snapshot chunk), written with back-pressure as Maintenance.Snapshot does. */
  const burst = (call: H2Call): void => {
    let i = 0;
    const pump = (): void => {
      while (i < 64) {
        i++;
        if (!call.write(Buffer.alloc(32 * 1024, i))) {
          call.once('drain', pump);
          return;
        }
      }
      call.end();
    };
    pump();
  };
  const m = new Map<string, H2Method>([
    ['/t.T/Hold', { kind: 'bidi_stream', handler: () => {} }],
    ['/t.T/Burst', { kind: 'server_stream', handler: burst as unknown as H2Method['handler'] }],
  ]);
  const ping = (s: ReturnType<typeof connect>): Promise<void> => new Promise((resolve) => s.ping(() => resolve()));

  it('a client PINGing after every DATA frame it receives (grpc-go\'s BDP probe) while a large answer streams is not struck', async () => {
    // A small stream window makes the server send each 32 KiB message as many small frames after the handler's
    // write, which is how a grpc-go client reading a snapshot sees it; it PINGs on each one (one PING in flight).
    const server = new H2GrpcServer({ methods: m, maxReceiveMessageBytes: 1024, keepaliveMinTimeMs: 60_000 });
    const endpoint = `127.0.0.1:${await server.listen('127.0.0.1', 0)}`;
    const s = http2.connect(`http://${endpoint}`, { settings: { initialWindowSize: 2048 } });
    s.on('error', () => {});
    let goaway: string | null = null;
    s.on('goaway', (code, _last, data) => (goaway = `${code} ${data?.toString() ?? ''}`));
    let pings = 0;
    let inFlight = false;
    const req = s.request({ ':method': 'POST', ':path': '/t.T/Burst', 'content-type': 'application/grpc', te: 'trailers' });
    req.on('error', () => {});
    req.end(frame(Buffer.alloc(0)));
    const received = await new Promise<number>((resolve) => {
      let n = 0;
      req.on('data', (d: Buffer) => {
        n += d.length;
        if (!inFlight && !s.destroyed && !s.closed) {
          inFlight = true;
          pings++;
          s.ping(() => { inFlight = false; });
        }
      });
      req.on('close', () => resolve(n));
      s.on('close', () => resolve(n));
    });
    assert.equal(goaway, null);
    assert.equal(received, 64 * (5 + 32 * 1024), 'every message arrived');
    assert.ok(pings > 3 * 64, `the client PINGed ${pings} times, i.e. several times per message`);
    s.destroy();
    await server.close(100);
  });

  it('PINGs more often than the min time while a stream is open: GOAWAY ENHANCE_YOUR_CALM "too_many_pings" at the third strike', async () => {
    const server = new H2GrpcServer({ methods: m, maxReceiveMessageBytes: 1024, keepaliveMinTimeMs: 60_000 });
    const endpoint = `127.0.0.1:${await server.listen('127.0.0.1', 0)}`;
    const s = connect(endpoint);
    const goaway = new Promise<[number, string]>((resolve) => s.on('goaway', (code, _last, data) => resolve([code, data?.toString() ?? ''])));
    const req = s.request({ ':method': 'POST', ':path': '/t.T/Hold', 'content-type': 'application/grpc', te: 'trailers' });
    req.on('error', () => {});
    await until(() => server.sessionCount === 1, 'session');
    for (let i = 0; i < 3; i++) await ping(s);
    assert.equal(s.destroyed || s.closed, false, 'two strikes are tolerated');
    await ping(s).catch(() => undefined);
    assert.deepEqual(await goaway, [11, 'too_many_pings']);
    await server.close(100);
    s.destroy();
  });

  it('PINGs spaced by at least the min time are fine', async () => {
    const server = new H2GrpcServer({ methods: m, maxReceiveMessageBytes: 1024, keepaliveMinTimeMs: 150 });
    const endpoint = `127.0.0.1:${await server.listen('127.0.0.1', 0)}`;
    const s = connect(endpoint);
    let goaway = false;
    s.on('goaway', () => (goaway = true));
    const req = s.request({ ':method': 'POST', ':path': '/t.T/Hold', 'content-type': 'application/grpc', te: 'trailers' });
    req.on('error', () => {});
    for (let i = 0; i < 6; i++) {
      await ping(s);
      await sleep(200);
    }
    assert.equal(goaway, false);
    s.destroy();
    await server.close(100);
  });
});

describe('h2 gRPC server shutdown', { timeout: 60_000 }, () => {
  it('GOAWAY: new calls are refused, a running call may finish within the grace period, the rest are cancelled', async () => {
    const cancelled: string[] = [];
    let finishLater: (() => void) | null = null;
    const m = new Map<string, H2Method>([
      ['/t.T/Slow', { kind: 'unary', handler: (call: H2Call, reply) => { finishLater = () => reply(null, Buffer.from('done')); } }],
      ['/t.T/Never', { kind: 'unary', handler: (call: H2Call) => call.on('cancelled', () => cancelled.push('Never')) }],
    ]);
    const server = new H2GrpcServer({ methods: m, maxReceiveMessageBytes: 1024 });
    const endpoint = `127.0.0.1:${await server.listen('127.0.0.1', 0)}`;
    const s = connect(endpoint);
    let goaway = false;
    s.on('goaway', () => (goaway = true));
    const slow = rawCall(s, '/t.T/Slow', [frame(Buffer.alloc(0))]);
    const never = rawCall(s, '/t.T/Never', [frame(Buffer.alloc(0))]);
    await until(() => finishLater !== null, 'Slow running');
    await sleep(50);
    const closed = server.close(500);
    await until(() => goaway, 'GOAWAY');
    finishLater!();
    const a = await slow;
    assert.deepEqual([a.code, messages(a.body)[0]?.toString()], [0, 'done']);
    await closed;
    await never;
    assert.deepEqual(cancelled, ['Never']);
    // Nothing listens any more.
    const c = new grpc.Client(endpoint, grpc.credentials.createInsecure());
    const code = await new Promise<number>((resolve) => c.makeUnaryRequest('/t.T/Slow', id, id, Buffer.alloc(0), { deadline: Date.now() + 2000 }, (err) => resolve(err?.code ?? 0)));
    c.close();
    assert.equal(code, grpc.status.UNAVAILABLE);
    s.destroy();
  });
});
