/** ringBytesFor (src/server/durable-log.ts): worker ring sizes derived from --max-request-bytes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MIN_RING_BYTES, ringBytesFor } from '../../src/server/durable-log';

test('rings are powers of two, at least MIN_RING_BYTES, and hold the largest request four times over', () => {
  for (const maxRequestBytes of [0, 1024, 1.5 * 1024 * 1024, 3 * 1024 * 1024, 10 * 1024 * 1024, 64 * 1024 * 1024]) {
    const bytes = ringBytesFor(maxRequestBytes);
    assert.ok(Number.isInteger(Math.log2(bytes)), `${bytes} is a power of two`);
    assert.ok(bytes >= MIN_RING_BYTES, `${bytes} >= ${MIN_RING_BYTES}`);
    // A ring's largest record is half its capacity; a request plus framing must fit twice over.
    assert.ok(bytes / 2 >= 2 * maxRequestBytes, `max-request-bytes ${maxRequestBytes}: ring ${bytes}`);
  }
  assert.equal(ringBytesFor(1.5 * 1024 * 1024), MIN_RING_BYTES, "etcd's default --max-request-bytes needs no more than the minimum");
});
