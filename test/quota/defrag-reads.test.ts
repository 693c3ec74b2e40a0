/**
 * Reads while Defragment swaps the store (issue 8 item 1, issue 10): etcd 3.4 makes reads wait for the defrag
 * (its backend lock) and then answers them; none fails. The same script runs against etcd 3.4 and etcetera: a store
 * of ~64 MiB, then a Defragment while clients keep issuing linearizable and serializable Ranges, LeaseTimeToLive and
 * keep-alives of a lease (the lessor reads the store too). Every call must succeed with the right answer, and
 * calls must actually have been issued while the Defragment was running.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { startServer, hasEtcd, NO_ETCD, type ServerKind } from '../helpers/servers';
import { RawClient } from '../helpers/grpc';
import { killAllChildren } from '../helpers/procs';

after(killAllChildren);

const VALUE_BYTES = 512 * 1024;
const KEYS = 128;
const DEFRAGS = 3;

interface Outcome { calls: number; duringDefrag: number; failures: string[]; defragMs: number[] }

async function run(kind: ServerKind): Promise<Outcome> {
  const h = await startServer(kind, { extraArgs: ['--quota-backend-bytes=4294967296'] });
  const c = new RawClient(h.clientUrl);
  const admin = new RawClient(h.clientUrl);
  const etcd = new Etcd3({ hosts: h.clientUrl });
  const out: Outcome = { calls: 0, duringDefrag: 0, failures: [], defragMs: [] };
  try {
    for (let i = 0; i < KEYS; i++) await c.put({ key: Buffer.from(`big/${i}`), value: Buffer.alloc(VALUE_BYTES, i) });
    await c.put({ key: Buffer.from('probe'), value: Buffer.from('p') });
    const lease = (await etcd.leaseClient.leaseGrant({ TTL: 600 })).ID;
    // History to compact away, so the defrag has work.
    for (let i = 0; i < KEYS / 2; i++) await c.put({ key: Buffer.from(`big/${i}`), value: Buffer.alloc(VALUE_BYTES, i + 1) });
    const { header } = await c.range({ key: Buffer.from('probe') });
    await c.compact({ revision: header.revision });

    let defragging = false;
    let stop = false;
    const check = async (what: string, f: () => Promise<boolean>): Promise<void> => {
      const during = defragging;
      try {
        if (!(await f())) out.failures.push(`${what}: wrong answer`);
      } catch (e) {
        out.failures.push(`${what}: ${(e as Error).message}`);
      }
      out.calls++;
      if (during) out.duringDefrag++;
    };
    const readers = Array.from({ length: 4 }, async (_x, r) => {
      while (!stop) {
        await check('linearizable range', async () => Buffer.from((await c.range({ key: Buffer.from('probe') })).kvs[0].value).toString() === 'p');
        await check('serializable range', async () => Buffer.from((await c.range({ key: Buffer.from('probe'), serializable: true })).kvs[0].value).toString() === 'p');
        if (r === 0) {
          await check('lease timetolive', async () => Number((await etcd.leaseClient.leaseTimeToLive({ ID: lease })).TTL) > 0);
          await check('lease keep-alive', async () => {
            const s = await etcd.leaseClient.leaseKeepAlive();
            try {
              const res = await new Promise<{ TTL: string }>((resolve, reject) => {
                s.on('data', resolve);
                s.on('error', reject);
                s.write({ ID: lease });
              });
              return Number(res.TTL) === 600;
            } finally {
              s.end();
            }
          });
        }
      }
    });
    for (let d = 0; d < DEFRAGS; d++) {
      await new Promise((r) => setTimeout(r, 100));
      defragging = true;
      const t0 = Date.now();
      await admin.call('Maintenance', 'Defragment', {}, 120_000);
      out.defragMs.push(Date.now() - t0);
      defragging = false;
    }
    stop = true;
    await Promise.all(readers);
    return out;
  } finally {
    c.close();
    admin.close();
    etcd.close();
    await h.stop();
  }
}

test('reads, lease TimeToLive and keep-alives during Defragment wait and succeed (as etcd 3.4)', { skip: hasEtcd() ? undefined : NO_ETCD, timeout: 300_000 }, async () => {
  const ref = await run('etcd');
  const ours = await run('etcetera');
  console.log(`reads during defrag: etcd 3.4 ${JSON.stringify(ref)}; etcetera ${JSON.stringify(ours)}`);
  assert.deepEqual(ref.failures, [], 'etcd 3.4 itself failed a call');
  assert.deepEqual(ours.failures, [], 'every call during Defragment succeeds');
  assert.ok(ours.duringDefrag > 0, 'calls were issued while the Defragment ran');
});
