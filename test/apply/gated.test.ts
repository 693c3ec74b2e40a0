/**
 * Gated applyIn records (the direct WAL → apply hand-off, src/apply/worker.ts): entries handed to the apply worker
 * before their WAL fdatasync are applied only once the WAL's DurableSeq status word reaches their gate, records
 * behind them wait (log order), and they are dropped unapplied if the WAL stops first. The WAL worker's side is
 * played by the test through the same status words (store, then notify, as src/wal/worker.ts does).
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pb, type PutResponse } from '../../src/wire/codec';
import { ApplyClient } from '../../src/apply/client';
import type { ApplyEntry, ApplyResult } from '../../src/apply/batch-format';
import { encodeEntryData, EntryKind } from '../../src/wire/entry';
import { StatusWord, StatusWords } from '../../src/ring/status';

const dirs: string[] = [];
process.on('exit', () => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
const tmp = (): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'etcetera-gated-'));
  dirs.push(d);
  return d;
};
const open: ApplyClient[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
});

function put(index: number, requestId: number, key: string, value: string): ApplyEntry {
  const payload = pb.PutRequest.encode({ key: Buffer.from(key), value: Buffer.from(value) }).finish();
  return { index, term: 2, type: 0, data: encodeEntryData(EntryKind.Put, requestId, payload) };
}

async function start(wal: StatusWords | null) {
  const client = await ApplyClient.start({ dataDir: tmp(), memberId: 1, clusterId: 2, walStatus: wal?.sab });
  open.push(client);
  const results = new Map<number, ApplyResult>();
  let applied = 0;
  const waiters: { index: number; resolve: () => void }[] = [];
  client.onApplied((idx, rs) => {
    applied = idx;
    for (const r of rs) results.set(r.requestId, r);
    for (const w of waiters.splice(0)) if (applied >= w.index) w.resolve(); else waiters.push(w);
  });
  const until = (index: number): Promise<void> => (applied >= index ? Promise.resolve() : new Promise((resolve) => waiters.push({ index, resolve })));
  return { client, results, until };
}

/** Gives the worker time to (wrongly) apply something; a correct worker never does, so this cannot fail on a slow machine. */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 300));
const revisionOf = (r: ApplyResult | undefined): number => (pb.PutResponse.decode(r!.response) as unknown as PutResponse).header.revision;

/** What the WAL worker does after an fdatasync: publish DurableSeq, then wake an apply worker sleeping on ApplyWake. */
function durable(wal: StatusWords, seq: number): void {
  wal.store(StatusWord.DurableSeq, seq);
  wal.notify(StatusWord.DurableSeq);
  wakeApply(wal);
}
function wakeApply(wal: StatusWords): void {
  if (wal.load(StatusWord.ApplySleeping) === 0) return;
  wal.add(StatusWord.ApplyWake, 1);
  wal.notify(StatusWord.ApplyWake);
}

test('a gated record is applied only once DurableSeq reaches its gate; records behind it wait, the log order is kept', async () => {
  const wal = StatusWords.create();
  const { client, results, until } = await start(wal);
  client.apply([put(1, 101, 'a', '1')]);
  await until(1);
  assert.equal(client.applyWhenDurable([put(2, 102, 'a', '2'), put(3, 103, 'b', '1')], 5), true);
  client.apply([put(4, 104, 'a', '3')]); // an ordinary record behind the gated one
  await settle();
  assert.equal(client.appliedIndex(), 1, 'nothing applied before the gated entries are durable');
  assert.equal(results.has(102) || results.has(104), false);
  durable(wal, 4);
  await settle();
  assert.equal(client.appliedIndex(), 1, 'a durable sequence below the gate is not enough');
  durable(wal, 5);
  await until(4);
  assert.equal(client.appliedIndex(), 4);
  assert.deepEqual([101, 102, 103, 104].map((id) => revisionOf(results.get(id))), [2, 3, 4, 5], 'applied in log order');
});

test('gated entries are dropped unapplied when the WAL stops before they are durable; later records still apply', async () => {
  const wal = StatusWords.create();
  const { client, results, until } = await start(wal);
  durable(wal, 3);
  assert.equal(client.applyWhenDurable([put(1, 101, 'a', '1')], 3), true, 'durable already: applied at once');
  await until(1);
  assert.equal(client.applyWhenDurable([put(2, 102, 'lost', 'x')], 4), true);
  await settle();
  assert.equal(results.has(102), false);
  wal.store(StatusWord.WalStopped, 1); // the WAL failed: seq 4 never became durable
  wal.notify(StatusWord.DurableSeq);
  wakeApply(wal);
  client.apply([put(3, 103, 'c', '1')]);
  await until(3);
  assert.equal(results.has(102), false, 'never applied: it was not durable');
  assert.equal(revisionOf(results.get(103)), 3, 'the next write follows the first one: the lost entry made no revision');
});

test('without the WAL status words the client declines gated hand-offs (nothing is written)', async () => {
  const { client, until } = await start(null);
  assert.equal(client.applyWhenDurable([put(1, 101, 'a', '1')], 1), false);
  client.apply([put(1, 101, 'a', '1')]);
  await until(1);
  assert.equal(client.appliedIndex(), 1);
});
