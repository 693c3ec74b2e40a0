/**
 * The apply client's result loop on the main thread sleeps on the applyOut ring between batches (one wake per
 * applied batch; at one put in flight, one per put). The wait must not leave anything behind per wake: racing
 * each wait against the worker's long-lived exit promise added a reaction to that promise per wake, kept until the
 * worker exits (about 300 bytes per put for a member's lifetime, and more old-generation work for the GC).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { pb } from '../../src/wire/codec';
import { ApplyClient } from '../../src/apply/client';
import { encodeEntryData, EntryKind } from '../../src/wire/entry';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function retainedHeapBytes(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

test('one result wake per put retains nothing per wake on the main thread', { timeout: 120_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcetera-apply-wakes-'));
  try {
    const client = await ApplyClient.start({ dataDir: dir, memberId: 1, clusterId: 1 });
    try {
      let applied = 0;
      let wake: (() => void) | null = null;
      client.onApplied((index) => {
        applied = index;
        wake?.();
      });
      const payload = pb.PutRequest.encode({ key: Buffer.from('k'), value: Buffer.from('v') }).finish();
      let index = 0;
      // One entry at a time, each awaited: the result loop goes back to sleep on the ring before the next.
      const putOneByOne = async (n: number): Promise<void> => {
        for (let i = 0; i < n; i++) {
          index++;
          const done = new Promise<void>((resolve) => (wake = () => applied >= index && resolve()));
          client.apply([{ index, term: 2, type: 0, data: encodeEntryData(EntryKind.Put, index, payload) }]);
          await done;
        }
      };
      await putOneByOne(500); // warm-up: code, caches and the store's pages settle
      const before = retainedHeapBytes();
      const N = 4000;
      await putOneByOne(N);
      const perPut = (retainedHeapBytes() - before) / N;
      assert.equal(applied, index, 'every entry was applied');
      // Before the fix: ~700 bytes per put measured (a race promise, its reaction and resolvers on the exit promise).
      assert.ok(perPut < 100, `main-thread heap retained per put: ${perPut.toFixed(0)} bytes`);
    } finally {
      await client.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
