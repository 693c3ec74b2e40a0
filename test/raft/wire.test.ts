/** Tests of the peer wire format: round trip, truncation, corruption and limits never crash the process. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EntryType, Message, MessageType, WireDecodeError, decodeMessages, encodeMessages, makeMessage } from '../../src/raft';
import { enc, prng } from './helpers';

function sample(): Message[] {
  return [
    makeMessage({
      type: MessageType.MsgApp,
      to: 2 ** 53 - 1,
      from: 1,
      term: 7,
      logTerm: 6,
      index: 2 ** 40 + 3,
      commit: 99,
      entries: [
        { term: 7, index: 2 ** 40 + 4, type: EntryType.Normal, data: enc('hello') },
        { term: 7, index: 2 ** 40 + 5, type: EntryType.ConfChange, data: new Uint8Array(0) },
      ],
    }),
    makeMessage({ type: MessageType.MsgAppResp, to: 1, from: 2, term: 7, index: 5, reject: true, rejectHint: 3, logTerm: 2 }),
    makeMessage({ type: MessageType.MsgHeartbeat, to: 3, from: 1, term: 7, commit: 4, context: enc('ctx') }),
    makeMessage({ type: MessageType.MsgReadIndexResp, to: 3, from: 1, term: 7, index: 4, context: new Uint8Array(0) }),
    makeMessage({
      type: MessageType.MsgSnap,
      to: 3,
      from: 1,
      term: 7,
      snapshot: { metadata: { index: 50, term: 6, confState: { voters: [1, 2, 3], learners: [4] } }, data: new Uint8Array(300).fill(9) },
    }),
  ];
}

test('wire: round trip preserves every field', () => {
  const msgs = sample();
  const out = decodeMessages(encodeMessages(msgs));
  assert.deepEqual(out, msgs);
  assert.deepEqual(decodeMessages(encodeMessages([])), []);
});

test('wire: every truncation throws WireDecodeError', () => {
  const buf = encodeMessages(sample());
  for (let n = 0; n < buf.length; n++) {
    assert.throws(() => decodeMessages(buf.subarray(0, n)), WireDecodeError, `truncated at ${n}`);
  }
  const longer = new Uint8Array(buf.length + 1);
  longer.set(buf);
  assert.throws(() => decodeMessages(longer), WireDecodeError, 'trailing bytes');
});

test('wire: random corruption never throws anything but WireDecodeError', () => {
  const buf = encodeMessages(sample());
  const rnd = prng(42);
  for (let i = 0; i < 3000; i++) {
    const b = buf.slice();
    const flips = 1 + Math.floor(rnd() * 4);
    for (let k = 0; k < flips; k++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
    try {
      decodeMessages(b);
    } catch (e) {
      assert.ok(e instanceof WireDecodeError, `unexpected ${(e as Error).name}: ${(e as Error).message}`);
    }
  }
  for (let i = 0; i < 1000; i++) {
    const b = new Uint8Array(Math.floor(rnd() * 64)).map(() => Math.floor(rnd() * 256));
    try {
      decodeMessages(b);
    } catch (e) {
      assert.ok(e instanceof WireDecodeError);
    }
  }
});

test('wire: huge counts and bad enums are rejected without allocating', () => {
  const buf = encodeMessages([makeMessage({ type: MessageType.MsgHeartbeat, to: 1, from: 2, term: 1 })]);
  const b = buf.slice();
  new DataView(b.buffer).setUint32(1, 0xffffffff, true); // message count
  assert.throws(() => decodeMessages(b), WireDecodeError);
  const c = buf.slice();
  c[5] = 200; // message type
  assert.throws(() => decodeMessages(c), /unknown message type/);
  const d = buf.slice();
  d[0] = 9; // version
  assert.throws(() => decodeMessages(d), /unsupported version/);
  const e = buf.slice();
  new DataView(e.buffer).setUint32(5 + 1 + 4, 0xffffffff, true); // high word of `to` beyond 2^53
  assert.throws(() => decodeMessages(e), /2\^53/);
  assert.throws(() => encodeMessages([makeMessage({ type: MessageType.MsgApp, to: -1 })]), /non-negative/);
});
