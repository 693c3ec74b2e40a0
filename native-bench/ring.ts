/**
 * Ring throughput benchmark (not a test): a producer worker and a consumer worker stream N records of a fixed size
 * through one ring; the producer publishes every `batch` records (RingProducer.tryWrite defer + publish).
 *
 * Usage: node dist/native-bench/ring.js [records=2000000] [recordBytes=64] [batches=1,16,256] [ringBytes=1048576]
 * Prints records/s and MB/s per batch size.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { RingConsumer, RingProducer, createRing } from '../src/ring/ring';

interface Job {
  role: 'producer' | 'consumer';
  sab: SharedArrayBuffer;
  records: number;
  recordBytes: number;
  batch: number;
}

const WAIT_MS = 5000;

function producer(j: Job): void {
  const p = new RingProducer(j.sab);
  let i = 0;
  const fill = (buf: Uint8Array, off: number): void => {
    buf[off] = i & 0xff;
  };
  while (i < j.records) {
    const last = i + 1 === j.records || (i + 1) % j.batch === 0;
    if (p.tryWrite(j.recordBytes, fill, !last)) i++;
    else p.waitSpaceSync(WAIT_MS);
  }
  p.close();
  parentPort!.postMessage(i);
}

function consumer(j: Job): void {
  const c = new RingConsumer(j.sab);
  let n = 0;
  let bad = 0;
  const onRecord = (buf: Uint8Array, off: number, len: number): void => {
    if (buf[off] !== (n & 0xff) || len !== j.recordBytes) bad++;
    n++;
  };
  for (;;) {
    if (c.drain(onRecord, 4096) > 0) continue;
    if (c.closed) break;
    c.waitSync(WAIT_MS);
  }
  parentPort!.postMessage(bad === 0 ? n : -bad);
}

async function main(): Promise<void> {
  const records = Number(process.argv[2] ?? 2_000_000);
  const recordBytes = Number(process.argv[3] ?? 64);
  const batches = (process.argv[4] ?? '1,16,256').split(',').map(Number);
  const ringBytes = Number(process.argv[5] ?? 1 << 20);
  for (const batch of batches) {
    const sab = createRing(ringBytes);
    const run = (role: Job['role']): Promise<number> =>
      new Promise((resolve, reject) => {
        const w = new Worker(__filename, { workerData: { role, sab, records, recordBytes, batch } satisfies Job });
        w.once('message', resolve);
        w.once('error', reject);
      });
    const t0 = process.hrtime.bigint();
    const [, got] = await Promise.all([run('producer'), run('consumer')]);
    const sec = Number(process.hrtime.bigint() - t0) / 1e9;
    if (got !== records) throw new Error(`consumer got ${got} of ${records}`);
    console.log(
      `batch=${String(batch).padStart(4)} records=${records} size=${recordBytes}B: ${Math.round(records / sec).toLocaleString('en-US')} rec/s, ${((records * recordBytes) / sec / 1e6).toFixed(1)} MB/s (${sec.toFixed(2)} s incl. 2 thread starts)`,
    );
  }
}

if (isMainThread) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  const j = workerData as Job;
  if (j.role === 'producer') producer(j);
  else consumer(j);
}
