/**
 * Unit tests of src/api/h2-authority.ts: nghttp2's :authority check and its repair, the first-frames scanner,
 * and the frame-level :authority rewriter (dynamic table tracking, padding/priority, CONTINUATION, limits).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  isValidAuthority, fixAuthority, scanClientPrefix, ClientPrefixScanner, ByteQueue, AuthorityRewriter, HpackDecoder, encodeHeaderBlock,
  H2_CLIENT_PREFACE, FrameType, FrameFlag, MAX_HEADER_BLOCK_BYTES, type HeaderField,
} from '../../src/api/h2-authority';
import { frame, RawH2 } from './h2-raw';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const hpack = require('hpack.js');

function encoder(): (fields: Array<[string, string]>) => Buffer {
  const enc = hpack.compressor.create({ table: { maxSize: 4096 } });
  return (fields) => {
    enc.write(fields.map(([name, value]) => ({ name, value })));
    const out: Buffer[] = [];
    for (let b = enc.read(); b !== null; b = enc.read()) out.push(b);
    return Buffer.concat(out);
  };
}

/** Parses the rewriter's output into frames, decoding header blocks (HEADERS + CONTINUATION) with one decoder. */
function parseOut(bufs: Buffer[]): { preface: Buffer; frames: Array<{ type: number; flags: number; stream: number; payload: Buffer; fields?: HeaderField[] }> } {
  let b = Buffer.concat(bufs);
  const preface = b.subarray(0, 24);
  b = b.subarray(24);
  const frames: Array<{ type: number; flags: number; stream: number; payload: Buffer; fields?: HeaderField[] }> = [];
  const dec = new HpackDecoder();
  let block: Buffer[] = [];
  while (b.length) {
    const len = b.readUIntBE(0, 3);
    assert.ok(len <= 16384, `frame of ${len} octets`);
    const f = { type: b[3], flags: b[4], stream: b.readUInt32BE(5), payload: b.subarray(9, 9 + len) } as { type: number; flags: number; stream: number; payload: Buffer; fields?: HeaderField[] };
    b = b.subarray(9 + len);
    frames.push(f);
    if (f.type === FrameType.HEADERS || f.type === FrameType.CONTINUATION) {
      assert.equal(f.flags & FrameFlag.PADDED, 0);
      block.push(f.type === FrameType.HEADERS && f.flags & FrameFlag.PRIORITY ? f.payload.subarray(5) : f.payload);
      if (f.flags & FrameFlag.END_HEADERS) { f.fields = dec.decode(Buffer.concat(block)); block = []; }
    }
  }
  assert.equal(block.length, 0, 'unterminated header block');
  return { preface, frames };
}

const field = (fs: HeaderField[] | undefined, name: string): string | undefined => fs?.find((f) => f.name === name)?.value;

test('isValidAuthority follows nghttp2 (RFC 3986 authority characters)', () => {
  for (const ok of ['127.0.0.1:2379', 'localhost', '[::1]:2379', 'user@host:1', 'h%41', '']) assert.equal(isValidAuthority(ok), true, ok);
  for (const bad of ['http://127.0.0.1:2379', 'h/x', 'a b', 'h?x', 'h#x', 'h\u00e9']) assert.equal(isValidAuthority(bad), false, bad);
});

test('fixAuthority keeps the host:port of a URL', () => {
  assert.equal(fixAuthority('http://127.0.0.1:2379'), '127.0.0.1:2379');
  assert.equal(fixAuthority('https://[::1]:2379/x?y#z'), '[::1]:2379');
  assert.equal(fixAuthority('unix:///tmp/sock'), 'localhost');
  assert.equal(fixAuthority('127.0.0.1:2379'), '127.0.0.1:2379');
  assert.equal(fixAuthority('a b'), 'a b');
});

test('HpackDecoder / encodeHeaderBlock round-trip, never-indexed kept, dynamic table untouched', () => {
  const fields: HeaderField[] = [{ name: ':method', value: 'POST' }, { name: 'authorization', value: 'secret', neverIndex: true }, { name: 'x-bin', value: '\u00ff\u0000\u0080' }];
  const block = encodeHeaderBlock(fields);
  const dec = new HpackDecoder();
  const got = dec.decode(block);
  assert.deepEqual(got.map((f) => [f.name, f.value, f.neverIndex]), [[':method', 'POST', false], ['authorization', 'secret', true], ['x-bin', '\u00ff\u0000\u0080', false]]);
  // Same block again decodes the same: nothing was inserted into the dynamic table.
  assert.deepEqual(dec.decode(encodeHeaderBlock(fields)).map((f) => f.value), ['POST', 'secret', '\u00ff\u0000\u0080']);
  assert.throws(() => new HpackDecoder().decode(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])));
  assert.throws(() => new HpackDecoder().decode(Buffer.from([0x41, 0x85, 0xff])), 'truncated string');
});

test('scanClientPrefix: preface, first header block, first SETTINGS ACK, errors', () => {
  const enc = encoder();
  const block = enc(RawH2.get('http://h:1'));
  const settings = frame(FrameType.SETTINGS, 0, 0);
  const ack = frame(FrameType.SETTINGS, FrameFlag.ACK, 0);
  assert.deepEqual(scanClientPrefix(H2_CLIENT_PREFACE.subarray(0, 10)), { prefaceComplete: false });
  assert.ok(scanClientPrefix(Buffer.from('PRI * HTTP/1.1\r\n')).error);
  assert.deepEqual(scanClientPrefix(Buffer.concat([H2_CLIENT_PREFACE, settings])), { prefaceComplete: true });
  const split = Buffer.concat([H2_CLIENT_PREFACE, settings, frame(FrameType.HEADERS, FrameFlag.END_STREAM, 1, block.subarray(0, 3))]);
  assert.equal(scanClientPrefix(split).headerBlock, undefined);
  const whole = Buffer.concat([split, ack, frame(FrameType.CONTINUATION, FrameFlag.END_HEADERS, 1, block.subarray(3))]);
  assert.ok(scanClientPrefix(whole).error, 'a SETTINGS ACK inside a header block is an error');
  const ok = Buffer.concat([split, frame(FrameType.CONTINUATION, FrameFlag.END_HEADERS, 1, block.subarray(3)), ack]);
  const r = scanClientPrefix(ok);
  assert.deepEqual(r.headerBlock, block);
  assert.deepEqual(r.settingsAck, [ok.length - 9, ok.length]);
  // padded + priority
  const padded = Buffer.concat([Buffer.from([4]), Buffer.from([0, 0, 0, 0, 15]), block, Buffer.alloc(4)]);
  assert.deepEqual(scanClientPrefix(Buffer.concat([H2_CLIENT_PREFACE, frame(FrameType.HEADERS, FrameFlag.END_HEADERS | FrameFlag.PADDED | FrameFlag.PRIORITY, 1, padded)])).headerBlock, block);
  assert.ok(scanClientPrefix(Buffer.concat([H2_CLIENT_PREFACE, frame(FrameType.HEADERS, FrameFlag.END_HEADERS | FrameFlag.PADDED, 1, Buffer.from([9, 1, 2]))])).error);
  assert.ok(scanClientPrefix(Buffer.concat([H2_CLIENT_PREFACE, Buffer.from([0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0])])).error, 'huge frame');
  assert.ok(scanClientPrefix(Buffer.concat([H2_CLIENT_PREFACE, frame(FrameType.CONTINUATION, FrameFlag.END_HEADERS, 1, block)])).error);
});

test('AuthorityRewriter: rewrites :authority in every block, tracking the client dynamic table', () => {
  const enc = encoder();
  const rw = new AuthorityRewriter();
  const ping = frame(FrameType.PING, 0, 0, Buffer.from('12345678'));
  const data = frame(FrameType.DATA, FrameFlag.END_STREAM, 3, Buffer.from('hello'));
  const b1 = enc(RawH2.get('http://127.0.0.1:2379', '/a'));
  const b2 = enc(RawH2.get('http://127.0.0.1:2379', '/b')); // authority now an indexed reference
  assert.ok(b2.length < b1.length, 'second block uses the dynamic table');
  const b3 = enc([[':method', 'GET'], [':scheme', 'http'], [':authority', 'ok:1'], [':path', '/c'], ['x-big', 'v'.repeat(40_000)]]);
  const input = Buffer.concat([
    H2_CLIENT_PREFACE, frame(FrameType.SETTINGS, 0, 0), frame(FrameType.WINDOW_UPDATE, 0, 0, Buffer.from([0, 1, 0, 0])),
    frame(FrameType.HEADERS, FrameFlag.END_HEADERS | FrameFlag.END_STREAM, 1, b1),
    // padded + priority, no END_STREAM, then DATA
    frame(FrameType.HEADERS, FrameFlag.END_HEADERS | FrameFlag.PADDED | FrameFlag.PRIORITY, 3, Buffer.concat([Buffer.from([3]), Buffer.from([0x80, 0, 0, 1, 200]), b2, Buffer.alloc(3)])),
    data, ping,
    // split across HEADERS + 3 CONTINUATION, re-encoded block > 16 KiB
    frame(FrameType.HEADERS, FrameFlag.END_STREAM, 5, b3.subarray(0, 10)),
    frame(FrameType.CONTINUATION, 0, 5, b3.subarray(10, 16000)),
    frame(FrameType.CONTINUATION, 0, 5, b3.subarray(16000, 30000)),
    frame(FrameType.CONTINUATION, FrameFlag.END_HEADERS, 5, b3.subarray(30000)),
  ]);
  // Feed in awkward slices (1, 7, 100 octets...) to exercise partial frames and a split preface.
  const out: Buffer[] = [];
  const sizes = [1, 7, 100, 5, 3000];
  for (let off = 0, i = 0; off < input.length; i++) { const n = sizes[i % sizes.length]; out.push(...rw.push(input.subarray(off, off + n))); off += n; }
  const { preface, frames } = parseOut(out);
  assert.deepEqual(preface, H2_CLIENT_PREFACE);
  assert.deepEqual(frames.map((f) => [f.type, f.stream]), [
    [FrameType.SETTINGS, 0], [FrameType.WINDOW_UPDATE, 0], [FrameType.HEADERS, 1], [FrameType.HEADERS, 3], [FrameType.DATA, 3], [FrameType.PING, 0],
    [FrameType.HEADERS, 5], [FrameType.CONTINUATION, 5], [FrameType.CONTINUATION, 5],
  ]);
  const h1 = frames[2];
  assert.equal(h1.flags, FrameFlag.END_HEADERS | FrameFlag.END_STREAM);
  assert.equal(field(h1.fields, ':authority'), '127.0.0.1:2379');
  assert.equal(field(h1.fields, ':path'), '/a');
  const h3 = frames[3];
  assert.equal(h3.flags, FrameFlag.END_HEADERS | FrameFlag.PRIORITY);
  assert.deepEqual(h3.payload.subarray(0, 5), Buffer.from([0x80, 0, 0, 1, 200]));
  assert.equal(field(h3.fields, ':authority'), '127.0.0.1:2379');
  assert.equal(field(h3.fields, ':path'), '/b');
  assert.deepEqual(frames[4].payload, Buffer.from('hello'));
  assert.deepEqual(frames[5].payload, Buffer.from('12345678'));
  assert.equal(frames[6].flags, FrameFlag.END_STREAM);
  assert.equal(frames[8].flags, FrameFlag.END_HEADERS);
  assert.equal(field(frames[8].fields, ':authority'), 'ok:1');
  assert.equal(field(frames[8].fields, 'x-big')?.length, 40_000);
  assert.equal(rw.rewritten, 2);
});

test('AuthorityRewriter: framing and HPACK errors throw', () => {
  const pre = Buffer.concat([H2_CLIENT_PREFACE, frame(FrameType.SETTINGS, 0, 0)]);
  assert.throws(() => new AuthorityRewriter().push(Buffer.from('PRI * HTTP/1.1\r\n\r\n')));
  assert.throws(() => new AuthorityRewriter().push(Buffer.concat([pre, Buffer.from([0xff, 0xff, 0xff, 1, 4, 0, 0, 0, 1])])));
  assert.throws(() => new AuthorityRewriter().push(Buffer.concat([pre, frame(FrameType.HEADERS, FrameFlag.END_HEADERS, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7f]))])));
  assert.throws(() => new AuthorityRewriter().push(Buffer.concat([pre, frame(FrameType.HEADERS, 0, 1, Buffer.from([0x82])), frame(FrameType.PING, 0, 0, Buffer.alloc(8))])));
  const rw = new AuthorityRewriter();
  const chunk = frame(FrameType.CONTINUATION, 0, 1, Buffer.alloc(16384));
  assert.throws(() => { rw.push(Buffer.concat([pre, frame(FrameType.HEADERS, 0, 1, Buffer.alloc(16384))])); for (let i = 0; i <= MAX_HEADER_BLOCK_BYTES / 16384; i++) rw.push(chunk); }, /too large/);
});

test('ClientPrefixScanner: octet-by-octet pushes give the same result as one push', () => {
  const enc = encoder();
  const input = Buffer.concat([
    H2_CLIENT_PREFACE, frame(FrameType.SETTINGS, 0, 0), frame(FrameType.SETTINGS, FrameFlag.ACK, 0),
    frame(FrameType.HEADERS, FrameFlag.END_STREAM, 1, enc(RawH2.get('http://h:1'))), frame(FrameType.CONTINUATION, FrameFlag.END_HEADERS, 1, enc([['x', 'y']])),
  ]);
  const s = new ClientPrefixScanner();
  for (const b of input) s.push(Buffer.from([b]));
  assert.deepEqual({ ...s.result }, scanClientPrefix(input));
  assert.deepEqual(s.bytes(), input);
  assert.ok(s.result.headerBlock);
});

test('ByteQueue: append / view / consume across growth and compaction', () => {
  const q = new ByteQueue();
  let expect = Buffer.alloc(0);
  let n = 0;
  for (let i = 0; i < 2000; i++) {
    const chunk = Buffer.alloc((i * 37) % 300, i & 0xff);
    q.append(chunk);
    expect = Buffer.concat([expect, chunk]);
    n += chunk.length;
    if (i % 3 === 0) { const k = Math.min(q.length, 250); q.consume(k); expect = expect.subarray(k); }
    assert.equal(q.length, expect.length);
  }
  assert.deepEqual(q.view(), expect);
  assert.ok(n > 100_000);
});
