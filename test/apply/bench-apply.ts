/**
 * Apply throughput micro-benchmark (not a test): node dist/test/apply/bench-apply.js [entries]
 * Measures entries/s through the real worker for ring records of 1 and 100 puts (pipelined), and 1 put awaited
 * before the next (one LMDB commit per entry).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pb } from '../../src/wire/codec';
import { ApplyClient } from '../../src/apply/client';
import type { ApplyEntry } from '../../src/apply/batch-format';
import { encodeEntryData, EntryKind } from '../../src/wire/entry';

async function run(label: string, total: number, batch: number, awaitEach: boolean): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcetera-bench-'));
  const client = await ApplyClient.start({ dataDir: dir, memberId: 1, clusterId: 1 });
  let applied = 0;
  let wake: (() => void) | null = null;
  client.onApplied((idx) => { applied = idx; wake?.(); });
  const until = (i: number): Promise<void> => new Promise((r) => { if (applied >= i) r(); else wake = () => { if (applied >= i) { wake = null; r(); } }; });
  const value = Buffer.alloc(256, 120);
  const t0 = process.hrtime.bigint();
  let index = 0;
  while (index < total) {
    const entries: ApplyEntry[] = [];
    for (let i = 0; i < batch; i++) {
      index++;
      const payload = pb.PutRequest.encode({ key: Buffer.from(`key-${index % 10000}`), value }).finish();
      entries.push({ index, term: 1, type: 0, data: encodeEntryData(EntryKind.Put, index, payload) });
    }
    if (!client.hasRoom()) await client.whenRoom();
    client.apply(entries);
    if (awaitEach) await until(index);
  }
  await until(total);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`${label}: ${total} puts in ${secs.toFixed(2)} s = ${Math.round(total / secs)} entries/s`);
  await client.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 50000);
  await run('batch of 1, awaited (1 commit/entry)', Math.min(n, 10000), 1, true);
  await run('batch of 1, pipelined', n, 1, false);
  await run('batch of 100, pipelined', n, 100, false);
}
void main();
