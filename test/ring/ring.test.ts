import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  RingConsumer,
  RingCorruptError,
  RingProducer,
  RingRecordTooLargeError,
  RingClosedError,
  createRing,
} from '../../src/ring/ring';
import { StatusWord, StatusWords } from '../../src/ring/status';
import { seededRandom } from '../../src/raft';

/** Deterministic PRNG (mulberry32) so failures reproduce. */
const rng = seededRandom;

function payload(seq: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (seq * 7 + i * 13) & 0xff;
  return b;
}

test('createRing validates capacity', () => {
  assert.throws(() => createRing(100), RangeError);
  assert.throws(() => createRing(32), RangeError);
  const sab = createRing(1024);
  assert.equal(sab.byteLength, 256 + 1024);
  assert.throws(() => new RingConsumer(new SharedArrayBuffer(2048)), RingCorruptError);
});

test('wrap-around with records of varied sizes keeps order and bytes (records are contiguous)', () => {
  const sab = createRing(1024);
  const p = new RingProducer(sab);
  const c = new RingConsumer(sab);
  const rand = rng(42);
  let written = 0;
  let read = 0;
  let wraps = 0;
  let lastOffset = -1;
  const onRecord = (buf: Uint8Array, off: number, len: number): void => {
    const expectLen = Math.floor(rng(read + 1)() * (p.maxRecordBytes + 1));
    assert.equal(len, expectLen, `record ${read} length`);
    assert.ok(off + len <= buf.length, 'record lies inside the data area (not split)');
    assert.deepEqual(buf.subarray(off, off + len), payload(read, len), `record ${read} bytes`);
    if (off < lastOffset) wraps++;
    lastOffset = off;
    read++;
  };
  for (let round = 0; round < 3000; round++) {
    // write a few
    const k = 1 + Math.floor(rand() * 4);
    for (let j = 0; j < k; j++) {
      const len = Math.floor(rng(written + 1)() * (p.maxRecordBytes + 1));
      if (!p.tryWriteBytes(payload(written, len))) break;
      written++;
    }
    if (rand() < 0.6) c.drain(onRecord, 1 + Math.floor(rand() * 4));
  }
  while (c.drain(onRecord, 100) > 0);
  assert.equal(read, written);
  assert.ok(written > 1000, `wrote ${written}`);
  assert.ok(wraps > 100, `expected many wrap-arounds, saw ${wraps}`);
  assert.equal(c.usedBytes(), 0);
});

test('back-pressure: a full ring returns false, then succeeds after a drain', () => {
  const sab = createRing(256);
  const p = new RingProducer(sab);
  const c = new RingConsumer(sab);
  let n = 0;
  while (p.tryWriteBytes(payload(n, 28))) n++;
  assert.equal(n, 256 / 32, 'each 28-byte record takes 32 bytes');
  assert.equal(p.tryWriteBytes(payload(n, 28)), false);
  assert.equal(p.tryWriteBytes(new Uint8Array(0)), false);
  let got = 0;
  assert.equal(c.drain(() => got++, 1), 1);
  assert.equal(p.tryWriteBytes(payload(n, 28)), true);
  assert.equal(p.tryWriteBytes(payload(n + 1, 28)), false);
  assert.equal(c.drain(() => got++, 1000), n);
  assert.equal(got, n + 1);
});

test('a record larger than the limit throws a typed error; the limit itself fits at any position', () => {
  const sab = createRing(256);
  const p = new RingProducer(sab);
  const c = new RingConsumer(sab);
  assert.equal(p.maxRecordBytes, 120);
  assert.throws(() => p.tryWrite(121, () => {}), RingRecordTooLargeError);
  assert.throws(() => p.tryWrite(-1, () => {}), RangeError);
  for (let shift = 0; shift < 40; shift++) {
    assert.ok(p.tryWriteBytes(payload(shift, shift % 17)));
    assert.ok(p.tryWriteBytes(payload(1000 + shift, 120)), `max record at shift ${shift}`);
    const lens: number[] = [];
    c.drain((_b, _o, len) => lens.push(len), 10);
    assert.deepEqual(lens, [shift % 17, 120]);
  }
});

test('a throwing consumer callback releases only the records before it', () => {
  const sab = createRing(256);
  const p = new RingProducer(sab);
  const c = new RingConsumer(sab);
  for (let i = 0; i < 3; i++) p.tryWriteBytes(new Uint8Array([i]));
  assert.throws(() => c.drain((b, o) => {
    if (b[o] === 1) throw new Error('boom');
  }, 10), /boom/);
  const seen: number[] = [];
  c.drain((b, o) => seen.push(b[o]!), 10);
  assert.deepEqual(seen, [1, 2]);
});

test('close marker: consumer sees closed after draining; producer refuses writes', () => {
  const sab = createRing(128);
  const p = new RingProducer(sab);
  const c = new RingConsumer(sab);
  p.tryWriteBytes(new Uint8Array([9]));
  p.close();
  assert.throws(() => p.tryWriteBytes(new Uint8Array(1)), RingClosedError);
  assert.equal(c.closed, false);
  assert.equal(c.drain(() => {}, 10), 1);
  assert.equal(c.closed, true);
  assert.equal(c.waitSync(10_000), 'not-equal', 'a closed empty ring never sleeps');
});

test('consumer waitAsync wakes on publish and times out when empty', async () => {
  const sab = createRing(1024);
  const p = new RingProducer(sab);
  const c = new RingConsumer(sab);
  const t0 = Date.now();
  await c.waitAsync(60);
  assert.ok(Date.now() - t0 >= 40, 'empty ring: waitAsync waited for the timeout');
  let woke = false;
  const w = c.waitAsync(5000).then(() => (woke = true));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(woke, false);
  p.tryWriteBytes(new Uint8Array([1, 2, 3]));
  await w;
  assert.equal(woke, true);
  // non-empty: resolves immediately
  await c.waitAsync();
  assert.equal(c.drain(() => {}, 10), 1);
});

test('producer waitSpaceAsync wakes when the consumer frees space', async () => {
  const sab = createRing(64);
  const p = new RingProducer(sab);
  const c = new RingConsumer(sab);
  while (p.tryWriteBytes(new Uint8Array(4)));
  let woke = false;
  const w = p.waitSpaceAsync(5000).then(() => (woke = true));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(woke, false);
  c.drain(() => {}, 1);
  await w;
  assert.ok(p.tryWriteBytes(new Uint8Array(4)));
});

test('two worker threads stream 1e6 records with matching checksums', async () => {
  const sab = createRing(64 * 1024);
  const file = path.join(__dirname, 'fixtures', 'stream-worker.js');
  const count = 1_000_000;
  const run = (role: string) =>
    new Promise<{ count: number; checksum: number; waits: number; bad?: string }>((resolve, reject) => {
      const w = new Worker(file, { workerData: { role, sab, count } });
      w.once('message', resolve);
      w.once('error', reject);
      w.once('exit', (code) => code !== 0 && reject(new Error(`${role} exited ${code}`)));
    });
  const t0 = process.hrtime.bigint();
  const [prod, cons] = await Promise.all([run('producer'), run('consumer')]);
  const sec = Number(process.hrtime.bigint() - t0) / 1e9;
  assert.equal(cons.bad, '');
  assert.equal(prod.count, count);
  assert.equal(cons.count, count);
  assert.equal(cons.checksum, prod.checksum);
  console.log(`# 1e6 records in ${sec.toFixed(2)} s (${Math.round(count / sec)} rec/s incl. thread start; producer waits ${prod.waits}, consumer waits ${cons.waits})`);
});

test('main-thread consumer with waitAsync keeps the event loop responsive', async () => {
  const sab = createRing(16 * 1024);
  const file = path.join(__dirname, 'fixtures', 'stream-worker.js');
  const count = 200_000;
  const w = new Worker(file, { workerData: { role: 'producer', sab, count } });
  const prodDone = new Promise<{ checksum: number }>((res, rej) => {
    w.once('message', res);
    w.once('error', rej);
  });
  const c = new RingConsumer(sab);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  let next = 0;
  let ok = true;
  while (!c.closed) {
    c.drain((buf, off, len) => {
      const seq = (buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16) | (buf[off + 3]! << 24)) >>> 0;
      if (seq !== next || len !== 4 + (next % 61)) ok = false;
      next++;
    }, 256);
    await c.waitAsync(1000);
  }
  clearInterval(timer);
  await prodDone;
  assert.ok(ok, 'records in order');
  assert.equal(next, count);
  assert.ok(ticks > 0, 'timers ran while consuming');
});

test('status words: load/store, waitAsync wake-up, range checks', async () => {
  const s = StatusWords.create();
  const other = new StatusWords(s.sab);
  assert.equal(s.load(StatusWord.DurableIndex), 0);
  other.store(StatusWord.DurableIndex, 2 ** 53 - 1);
  assert.equal(s.load(StatusWord.DurableIndex), 2 ** 53 - 1);
  assert.throws(() => s.store(StatusWord.DurableIndex, 2 ** 53), RangeError);
  assert.throws(() => s.store(StatusWord.DurableIndex, -1), RangeError);
  assert.equal(await s.waitAsync(StatusWord.DurableSeq, 5), 'not-equal');
  const w = s.waitAsync(StatusWord.DurableSeq, 0, 5000);
  setTimeout(() => {
    other.add(StatusWord.DurableSeq, 3);
    other.notify(StatusWord.DurableSeq);
  }, 10);
  assert.equal(await w, 'ok');
  assert.equal(s.load(StatusWord.DurableSeq), 3);
  assert.equal(await s.waitAsync(StatusWord.DurableSeq, 3, 20), 'timed-out');
  assert.throws(() => new StatusWords(new SharedArrayBuffer(8)), RangeError);
});
