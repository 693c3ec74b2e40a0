/**
 * The h2 gRPC server's pure parts: message reassembly at every chunk boundary (src/api/h2grpc/framing.ts), the
 * receive limit and flag checks, `grpc-timeout` parsing and `grpc-message` percent-encoding (metadata.ts).
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { MessageReader, frameMessage } from '../../src/api/h2grpc/framing';
import { encodeGrpcMessage, metadataOf, parseTimeoutMs } from '../../src/api/h2grpc/metadata';

function readAll(r: MessageReader, chunks: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (const c of chunks) r.push(c, (m) => out.push(Buffer.from(m)));
  return out;
}

describe('h2grpc framing', () => {
  const msgs = [Buffer.from('hello'), Buffer.alloc(0), Buffer.alloc(300, 7), Buffer.from('x')];
  const wire = Buffer.concat(msgs.map(frameMessage));

  it('frameMessage: flag 0, big-endian length, bytes', () => {
    assert.deepEqual(frameMessage(Buffer.from('ab')), Buffer.from([0, 0, 0, 0, 2, 0x61, 0x62]));
  });

  it('reassembles the same messages for every split of the stream into two chunks, and byte by byte', () => {
    for (let cut = 0; cut <= wire.length; cut++) {
      const got = readAll(new MessageReader(1000), [wire.subarray(0, cut), wire.subarray(cut)]);
      assert.deepEqual(got, msgs, `cut at ${cut}`);
    }
    const r = new MessageReader(1000);
    assert.deepEqual(readAll(r, [...wire].map((b) => Buffer.from([b]))), msgs);
    assert.equal(r.partial, false);
  });

  it('partial is true while a prefix or body is incomplete', () => {
    const r = new MessageReader(1000);
    readAll(r, [wire.subarray(0, 3)]);
    assert.equal(r.partial, true);
    readAll(r, [wire.subarray(3, 8)]);
    assert.equal(r.partial, true);
    readAll(r, [wire.subarray(8, 10)]);
    assert.equal(r.partial, false);
  });

  it('refuses a message over the limit from its prefix (ResourceExhausted, grpc-go text) and stays failed', () => {
    const r = new MessageReader(4);
    const got = readAll(r, [frameMessage(Buffer.from('1234')), frameMessage(Buffer.from('12345')).subarray(0, 5)]);
    assert.deepEqual(got, [Buffer.from('1234')]);
    assert.deepEqual(r.error, { code: 8, details: 'grpc: received message larger than max (5 vs. 4)' });
    assert.equal(r.push(frameMessage(Buffer.from('1')), () => assert.fail('no message after an error')), false);
  });

  it('refuses compressed and unknown flags (Internal, grpc-go texts)', () => {
    const c = new MessageReader(100);
    readAll(c, [Buffer.from([1, 0, 0, 0, 0])]);
    assert.deepEqual(c.error, { code: 13, details: 'grpc: compressed flag set with identity or empty encoding' });
    const u = new MessageReader(100);
    readAll(u, [Buffer.from([2, 0, 0, 0, 0])]);
    assert.deepEqual(u.error, { code: 13, details: 'grpc: received unexpected payload format 2' });
  });
});

describe('h2grpc metadata', () => {
  it('grpc-timeout: every unit, absent, malformed', () => {
    assert.equal(parseTimeoutMs('2H'), 7_200_000);
    assert.equal(parseTimeoutMs('3M'), 180_000);
    assert.equal(parseTimeoutMs('5S'), 5000);
    assert.equal(parseTimeoutMs('250m'), 250);
    assert.equal(parseTimeoutMs('1500u'), 1.5);
    assert.equal(parseTimeoutMs('2000000n'), 2);
    assert.equal(parseTimeoutMs(undefined), undefined);
    for (const bad of ['', 'abc', '5', '123456789S', '-1S', '1.5S', '5s']) assert.equal(parseTimeoutMs(bad), null, bad);
  });

  it('grpc-message: printable ASCII unchanged, the rest percent-encoded UTF-8', () => {
    assert.equal(encodeGrpcMessage('etcdserver: key is not provided'), 'etcdserver: key is not provided');
    assert.equal(encodeGrpcMessage('100%'), '100%25');
    assert.equal(encodeGrpcMessage('a\nb\té'), 'a%0Ab%09%C3%A9');
    assert.equal(decodeURIComponent(encodeGrpcMessage('ünïcödé 100% \u2713')), 'ünïcödé 100% \u2713');
  });

  it('metadata: custom headers kept, transport and pseudo headers dropped, -bin values base64-decoded', () => {
    const md = metadataOf({
      ':path': '/a/b', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '1S', 'user-agent': 'x',
      token: 'tok', 'x-bin': `${Buffer.from([1, 2]).toString('base64')},${Buffer.from([3]).toString('base64')}`,
    });
    assert.deepEqual(md.getMap(), { token: 'tok', 'x-bin': Buffer.from([1, 2]) });
    assert.deepEqual(md.get('x-bin'), [Buffer.from([1, 2]), Buffer.from([3])]);
  });
});
