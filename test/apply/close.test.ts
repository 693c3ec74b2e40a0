/**
 * ApplyClient.close() with a non-empty hand-off queue (issue 8 item 1: a member once spun at 100 % in close() when
 * a flush waiting for ring space was already running). With a ring far smaller than what is handed over, close()
 * must yield while it drains (timers keep firing), resolve, and leave every handed-over entry applied in the store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pb } from '../../src/wire/codec';
import { ApplyClient } from '../../src/apply/client';
import { encodeEntryData, EntryKind } from '../../src/wire/entry';
import { MvccReader } from '../../src/mvcc/reader';
import { rng } from '../mvcc/util';

test('close() with a queue far larger than the ring: the event loop keeps turning, nothing handed over is dropped', { timeout: 120_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcetera-apply-close-'));
  try {
    const client = await ApplyClient.start({ dataDir: dir, memberId: 1, clusterId: 1, applyInBytes: 4096, applyOutBytes: 4096, maxQueuedBytes: 64 * 1024 });
    const N = 2000;
    const value = 'x'.repeat(200);
    for (let i = 1; i <= N; i++) {
      const payload = pb.PutRequest.encode({ key: Buffer.from(`k${i}`), value: Buffer.from(value) }).finish();
      client.apply([{ index: i, term: 2, type: 0, data: encodeEntryData(EntryKind.Put, i, payload) }]);
    }
    assert.equal(client.hasRoom(), false, 'the hand-off queue is over its bound before close');
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    await client.close();
    clearInterval(timer);
    assert.ok(ticks > 0, 'timers fired while close() drained the queue (it yields)');
    const reader = MvccReader.open(dir);
    try {
      assert.equal(reader.consistentIndex(), N, 'every handed-over entry was applied before the worker closed');
      const r = reader.range(rng('k', 'l'));
      assert.equal(r.count, N);
    } finally {
      await reader.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
