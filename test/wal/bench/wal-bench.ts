/**
 * WAL benchmark (not a test): appends + fdatasync per second.
 *
 * Usage: node dist/test/wal/bench/wal-bench.js [dir=os.tmpdir()] [seconds=3] [entryBytes=128]
 * 1. direct Wal in this thread: append(HardState, k entries) + sync() per batch, k = 1 and 64;
 * 2. through WalClient + worker, k = 1: (a) one append then wait durable (latency-bound),
 *    (b) pipelined appends (up to 256 in flight; the worker batches them under one fdatasync).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Wal } from '../../../src/wal/wal';
import { WalClient } from '../../../src/wal/client';
import type { WalEntry } from '../../../src/wal/record';

const base = process.argv[2] ?? os.tmpdir();
const seconds = Number(process.argv[3] ?? 3);
const entryBytes = Number(process.argv[4] ?? 128);
const MD = { clusterId: 1, memberId: 1 };

function mk(index: number): WalEntry {
  return { index, term: 1, type: 0, data: new Uint8Array(entryBytes).fill(index & 0xff) };
}

function direct(k: number): void {
  const dir = fs.mkdtempSync(path.join(base, 'walbench-'));
  const w = Wal.create(dir, MD);
  let idx = 0;
  let batches = 0;
  const end = Date.now() + seconds * 1000;
  const t0 = process.hrtime.bigint();
  while (Date.now() < end) {
    const es: WalEntry[] = [];
    for (let j = 0; j < k; j++) es.push(mk(++idx));
    w.append({ term: 1, vote: 1, commit: idx }, es);
    w.sync();
    batches++;
  }
  const sec = Number(process.hrtime.bigint() - t0) / 1e9;
  w.close();
  fs.rmSync(dir, { recursive: true });
  console.log(`direct  k=${String(k).padStart(2)}: ${Math.round(batches / sec)} append+fdatasync/s, ${Math.round(idx / sec)} entries/s`);
}

async function viaWorker(pipelined: boolean): Promise<void> {
  const dir = fs.mkdtempSync(path.join(base, 'walbench-'));
  const { client } = await WalClient.open({ dir, metadata: MD });
  let idx = 0;
  const end = Date.now() + seconds * 1000;
  const t0 = process.hrtime.bigint();
  if (!pipelined) {
    while (Date.now() < end) {
      idx++;
      await client.waitDurable(client.append({ term: 1, vote: 1, commit: idx }, [mk(idx)]));
    }
  } else {
    const MAX_IN_FLIGHT = 256;
    while (Date.now() < end) {
      while (client.appendedSeq - client.durableSeq < MAX_IN_FLIGHT) {
        idx++;
        client.append({ term: 1, vote: 1, commit: idx }, [mk(idx)]);
      }
      await client.waitDurable(client.durableSeq + 1);
    }
    await client.waitDurable(client.appendedSeq);
  }
  const sec = Number(process.hrtime.bigint() - t0) / 1e9;
  await client.close();
  fs.rmSync(dir, { recursive: true });
  console.log(`worker  k= 1 ${pipelined ? 'pipelined' : 'sequential'}: ${Math.round(idx / sec)} durable appends/s`);
}

async function main(): Promise<void> {
  console.log(`dir=${base} entry=${entryBytes}B, ${seconds}s each`);
  direct(1);
  direct(64);
  await viaWorker(false);
  await viaWorker(true);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
