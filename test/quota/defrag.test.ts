/**
 * Defragment under write load (etcd api: Maintenance.Defragment): entries committed while the store is swapped for
 * its compacted copy are held back and applied afterwards — every acknowledged put is readable with its revision,
 * revisions stay contiguous, and the member keeps serving. Runs against etcd 3.4 too with SUT=etcd.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSut, sutKind, sutUnavailable } from '../helpers/servers';
import { RawClient } from '../helpers/grpc';
import { killAllChildren } from '../helpers/procs';

after(killAllChildren);

test(`defragment while 4 clients write: nothing acknowledged is lost (${sutKind()})`, { skip: sutUnavailable(), timeout: 120_000 }, async () => {
  const h = await startSut();
  const c = new RawClient(h.clientUrl);
  let stop = false;
  let writers: Promise<void>[] = [];
  try {
    // History worth compacting: overwrite a few keys many times, then compact it away.
    for (let i = 0; i < 300; i++) await c.put({ key: Buffer.from(`churn/${i % 5}`), value: Buffer.alloc(2048, i & 0xff) });
    const { header } = await c.range({ key: Buffer.from('churn/0') });
    await c.compact({ revision: header.revision, physical: true });

    const acks = new Map<string, { value: string; revision: number }>();
    writers = Array.from({ length: 4 }, async (_x, w) => {
      for (let i = 0; !stop; i++) {
        const key = `w${w}/${i}`;
        const value = `value-${w}-${i}`;
        const r = await c.put({ key: Buffer.from(key), value: Buffer.from(value) });
        acks.set(key, { value, revision: r.header.revision });
      }
    });
    for (let d = 0; d < 5; d++) {
      await new Promise((r) => setTimeout(r, 100));
      await c.call('Maintenance', 'Defragment', {});
    }
    stop = true;
    await Promise.all(writers);
    assert.ok(acks.size > 0, 'writers made progress');

    const all = await c.range({ key: Buffer.from('w'), rangeEnd: Buffer.from('x') });
    const got = new Map(all.kvs.map((kv: { key: Uint8Array; value: Uint8Array; modRevision: number }) => [Buffer.from(kv.key).toString(), kv]));
    for (const [key, a] of acks) {
      const kv = got.get(key) as { value: Uint8Array; modRevision: number } | undefined;
      assert.ok(kv, `acknowledged ${key} missing after defragment`);
      assert.equal(Buffer.from(kv.value).toString(), a.value, key);
      assert.equal(kv.modRevision, a.revision, `${key} revision`);
    }
    // One revision per put, no gaps: the held-back entries were applied once, in order.
    const revs = [...acks.values()].map((a) => a.revision).sort((x, y) => x - y);
    for (let i = 1; i < revs.length; i++) assert.equal(revs[i], revs[i - 1]! + 1, `revision gap after ${revs[i - 1]}`);
    const next = await c.put({ key: Buffer.from('after'), value: Buffer.from('x') });
    assert.equal(next.header.revision, revs[revs.length - 1]! + 1);
  } finally {
    stop = true;
    await Promise.allSettled(writers);
    c.close();
    await h.stop();
  }
});
