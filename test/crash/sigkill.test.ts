/**
 * Crash safety of the system under test (env SUT=etcetera|etcd):
 *
 * 1. Concurrent put load from several clients; every acknowledged put (key → value, revision) is
 *    recorded; SIGKILL at a random moment; restart on the same data dir; every acknowledged put must
 *    be there with its mod revision, and the revision counter continues. Several rounds.
 * 2. (etcetera only) WAL damage: a torn last record / a flipped byte in the last record is repaired
 *    (restart succeeds with the valid prefix); a flipped byte in a middle record makes the server
 *    refuse to start with a clear message and leaves the data dir bytes unchanged.
 *
 *   CRASH_ROUNDS=3   kill/restart rounds;   CRASH_CLIENTS=4   concurrent writers
 *   CRASH_SEED=n     replays the kill timing
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startSut, sutKind, sutUnavailable, ServerHandle } from '../helpers/servers';
import { RawClient } from '../helpers/grpc';
import { killAllChildren, trackTempDir } from '../helpers/procs';
import { walkRecords, lastWalRecord, walSegments, flipByte, hashTree, HEADER_BYTES } from '../helpers/wal';

after(killAllChildren);

const skip = sutUnavailable();

interface Ack { key: string; value: string; rev: number }

function tempDataDir(tag: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `etcetera-crash-${tag}-`));
  trackTempDir(d);
  return path.join(d, 'data');
}

/** Simple seeded PRNG for kill timing. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 4294967296; };
}

/** Reads every key under `prefix` as key → {value, modRevision}. */
async function readAll(endpoint: string, prefix: string): Promise<{ rev: number; kvs: Map<string, { value: string; mod: number }> }> {
  const c = new RawClient(endpoint);
  try {
    const end = Buffer.from(prefix);
    end[end.length - 1]++;
    const r = await c.range({ key: Buffer.from(prefix), rangeEnd: end });
    const kvs = new Map<string, { value: string; mod: number }>();
    for (const kv of r.kvs) kvs.set(Buffer.from(kv.key).toString(), { value: Buffer.from(kv.value).toString(), mod: kv.modRevision });
    return { rev: r.header.revision, kvs };
  } finally {
    c.close();
  }
}

/** Verifies every acknowledged put is present with its value and mod revision; returns the max acked revision. */
function verifyAcks(acks: Ack[], kvs: Map<string, { value: string; mod: number }>, ctx: string): number {
  let maxRev = 0;
  const missing: string[] = [];
  for (const a of acks) {
    maxRev = Math.max(maxRev, a.rev);
    const got = kvs.get(a.key);
    if (!got) { missing.push(a.key); continue; }
    assert.equal(got.value, a.value, `${ctx}: value of ${a.key}`);
    assert.equal(got.mod, a.rev, `${ctx}: mod revision of ${a.key}`);
  }
  assert.equal(missing.length, 0, `${ctx}: ${missing.length} acknowledged puts lost, e.g. ${missing.slice(0, 5).join(', ')}`);
  return maxRev;
}

test(`SIGKILL under concurrent put load keeps every acknowledged put (${sutKind()})`, { skip, timeout: 10 * 60_000 }, async (t) => {
  const rounds = Number(process.env.CRASH_ROUNDS ?? 3);
  const nClients = Number(process.env.CRASH_CLIENTS ?? 4);
  const seed = process.env.CRASH_SEED !== undefined ? Number(process.env.CRASH_SEED) : Math.floor(Math.random() * 2 ** 31);
  t.diagnostic(`seed=${seed} rounds=${rounds} clients=${nClients} (replay: CRASH_SEED=${seed} SUT=${sutKind()} node scripts/run-tests.js crash/sigkill)`);
  const rand = rng(seed);
  const dataDir = tempDataDir('load');
  let h: ServerHandle = await startSut({ dataDir });
  const acks: Ack[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      let stop = false;
      const clients = Array.from({ length: nClients }, () => new RawClient(h.clientUrl));
      const roundAcks: Ack[] = [];
      const writers = clients.map(async (c, ci) => {
        for (let seq = 0; !stop; seq++) {
          const key = `/crash/r${round}/c${ci}/${String(seq).padStart(6, '0')}`;
          const value = `v${round}.${ci}.${seq}.${Math.floor(rand() * 1e9)}`;
          try {
            const r = await c.call('KV', 'Put', { key: Buffer.from(key), value: Buffer.from(value) }, 10_000);
            roundAcks.push({ key, value, rev: r.header.revision });
          } catch {
            return; // server gone: this put is unacknowledged
          }
        }
      });
      const delay = 300 + Math.floor(rand() * 1200);
      await new Promise((r) => setTimeout(r, delay));
      await h.kill('SIGKILL');
      stop = true;
      await Promise.all(writers);
      for (const c of clients) c.close();
      assert.ok(roundAcks.length > 0, `round ${round}: no put was acknowledged in ${delay} ms`);
      acks.push(...roundAcks);
      // Within one server life, revisions are unique per acknowledged put.
      const revs = new Set(roundAcks.map((a) => a.rev));
      assert.equal(revs.size, roundAcks.length, `round ${round}: two acknowledged puts share a revision`);

      h = await h.restart();
      const { rev, kvs } = await readAll(h.clientUrl, '/crash/');
      const maxRev = verifyAcks(acks, kvs, `after kill #${round + 1} (at ${delay} ms)`);
      assert.ok(rev >= maxRev, `store revision ${rev} is behind acknowledged revision ${maxRev}`);
      const c = new RawClient(h.clientUrl);
      const p = await c.put({ key: Buffer.from(`/crash/after/${round}`), value: Buffer.from('x') });
      c.close();
      assert.ok(p.header.revision > maxRev, `new put got revision ${p.header.revision}, not above acknowledged ${maxRev}`);
      acks.push({ key: `/crash/after/${round}`, value: 'x', rev: p.header.revision });
      t.diagnostic(`round ${round}: killed after ${delay} ms, ${roundAcks.length} acked puts verified, next revision ${p.header.revision}`);
    }
  } finally {
    await h.stop();
  }
});

// ---------------- WAL damage (etcetera only) ----------------

test('WAL walker finds the last non-zero record of a synthetic preallocated segment', () => {
  const seg = Buffer.alloc(4096);
  let off = 0;
  const write = (payload: Buffer, type: number): void => {
    seg.writeUInt32LE(payload.length + 1, off); // len counts the type byte
    seg.writeUInt32LE(0xdeadbeef, off + 4);
    seg[off + 8] = type;
    payload.copy(seg, off + HEADER_BYTES);
    off += (HEADER_BYTES + payload.length + 7) & ~7;
  };
  write(Buffer.from('first'), 1);
  write(Buffer.alloc(0), 2);
  write(Buffer.from('the third record, longer'), 1);
  const recs = walkRecords(seg);
  assert.equal(recs.length, 3);
  assert.deepEqual(recs.map((r) => r.offset), [0, 16, 32]);
  assert.equal(recs[2].payloadBytes, 24);
  assert.equal(recs[2].end, 32 + 40);
  assert.equal(seg.subarray(recs[2].payloadOffset, recs[2].payloadOffset + recs[2].payloadBytes).toString(), 'the third record, longer');
});

const walSkip = skip ?? (sutKind() === 'etcd' ? "etcd's WAL has its own format and repair rules; these cases check etcetera's WAL" : undefined);
const N_PUTS = 30;

/** Fresh SUT, N sequential puts (recorded), SIGKILL. Returns the data dir, the handle and the acks in order. */
async function writeThenKill(tag: string): Promise<{ h: ServerHandle; acks: Ack[] }> {
  const dataDir = tempDataDir(tag);
  const h = await startSut({ dataDir });
  const c = new RawClient(h.clientUrl);
  const acks: Ack[] = [];
  for (let i = 0; i < N_PUTS; i++) {
    const key = `/wal/${String(i).padStart(4, '0')}`;
    const value = `value-${i}`;
    const r = await c.put({ key: Buffer.from(key), value: Buffer.from(value) });
    acks.push({ key, value, rev: r.header.revision });
  }
  c.close();
  if (sutKind() === 'etcetera') await commitRecordsWritten(h.dataDir);
  await h.kill('SIGKILL');
  return { h, acks };
}

/** Longest wait (ms) for the WAL worker to write the commit-only HardState of the last put (it rides with the next
 * append or the worker's idle wait of about a second). */
const COMMIT_RECORD_WAIT_MS = 15_000;

/**
 * Waits until the last WAL record follows the last entry record: a commit index that only moved is queued without
 * waking the WAL worker (src/wal/client.ts, quiet records), so right after the last acknowledged put the tail may
 * still be that put's entry. The damage tests model a crash that loses or tears what came after the last entry.
 */
async function commitRecordsWritten(dataDir: string): Promise<void> {
  const ENTRY_RECORD = 2;
  const end = Date.now() + COMMIT_RECORD_WAIT_MS;
  for (;;) {
    const last = lastWalRecord(dataDir);
    if (last !== undefined && last.record.type !== ENTRY_RECORD) return;
    assert.ok(Date.now() < end, `no commit-only HardState record after the last entry within ${COMMIT_RECORD_WAIT_MS} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** After repair: present keys must be a prefix of the write order, each with its acked revision; the server must accept writes. */
async function verifyPrefix(h: ServerHandle, acks: Ack[], ctx: string): Promise<void> {
  const { kvs } = await readAll(h.clientUrl, '/wal/');
  let n = 0;
  while (n < acks.length && kvs.has(acks[n].key)) n++;
  for (let i = n; i < acks.length; i++) assert.ok(!kvs.has(acks[i].key), `${ctx}: ${acks[i].key} present after a hole at ${acks[n]?.key}`);
  verifyAcks(acks.slice(0, n), kvs, ctx);
  // Damage to one record loses at most the one batch it held (sequential puts: one put).
  assert.ok(n >= acks.length - 1, `${ctx}: only ${n}/${acks.length} puts survived damage to the last record`);
  const c = new RawClient(h.clientUrl);
  const p = await c.put({ key: Buffer.from('/wal-after'), value: Buffer.from('x') });
  c.close();
  const last = n > 0 ? acks[n - 1].rev : 0;
  assert.ok(p.header.revision > last, `${ctx}: new put revision ${p.header.revision} not above ${last}`);
}

test('WAL: torn write after the last record (crash mid-append) → restart succeeds, every acknowledged put kept', { skip: walSkip, timeout: 120_000 }, async (t) => {
  // A torn write is a record the crash interrupted: it was never fdatasynced, so nothing in it was committed,
  // applied or acknowledged. Model it as a record header promising more bytes than follow, after the last record.
  const { h, acks } = await writeThenKill('torn');
  const last = lastWalRecord(h.dataDir);
  assert.ok(last, `no WAL record found under ${h.dataDir}/member/wal (segments: ${walSegments(h.dataDir).join(', ') || 'none'})`);
  const torn = Buffer.alloc(HEADER_BYTES + 40, 0xab);
  torn.writeUInt32LE(400, 0); // len: far more than what follows
  torn.writeUInt32LE(0x12345678, 4); // a CRC that cannot match
  const fd = fs.openSync(last.file, 'r+');
  try { fs.writeSync(fd, torn, 0, torn.length, last.record.end); } finally { fs.closeSync(fd); }
  t.diagnostic(`${path.basename(last.file)}: wrote a torn ${torn.length}-byte record at ${last.record.end}`);
  const h2 = await h.restart();
  try {
    await verifyPrefix(h2, acks, 'torn tail');
    const { kvs } = await readAll(h2.clientUrl, '/wal/');
    for (const a of acks) assert.ok(kvs.has(a.key), `torn tail: acknowledged ${a.key} lost`);
  } finally { await h2.stop(); }
});

test('WAL: commit-only HardState records after the last entry never reached the file → restart succeeds, nothing lost', { skip: walSkip, timeout: 120_000 }, async (t) => {
  // A HardState that only moves the commit index is written behind the next fsync while the committed entries are
  // applied at once, so a crash can leave the MVCC store's applied index past the last commit index in the WAL.
  // Model it by erasing every record after the last entry record (they are commit-only HardStates).
  const { h, acks } = await writeThenKill('lazycommit');
  const segs = walSegments(h.dataDir);
  const file = segs[segs.length - 1];
  const buf = fs.readFileSync(file);
  const recs = walkRecords(buf);
  const ENTRY_RECORD = 2;
  const lastEntry = [...recs].reverse().find((r) => r.type === ENTRY_RECORD);
  assert.ok(lastEntry, `no entry record in ${file}`);
  const tail = recs.filter((r) => r.offset >= lastEntry.end);
  assert.ok(tail.length > 0, `expected commit-only HardState records after the last entry in ${file}`);
  const end = tail[tail.length - 1].end;
  const fd = fs.openSync(file, 'r+');
  try { fs.writeSync(fd, Buffer.alloc(end - lastEntry.end), 0, end - lastEntry.end, lastEntry.end); } finally { fs.closeSync(fd); }
  t.diagnostic(`${path.basename(file)}: erased ${tail.length} records (${end - lastEntry.end} bytes) after the last entry`);
  const h2 = await h.restart();
  try {
    const { kvs } = await readAll(h2.clientUrl, '/wal/');
    verifyAcks(acks, kvs, 'lost commit records');
    await verifyPrefix(h2, acks, 'lost commit records');
  } finally { await h2.stop(); }
});

test('WAL: flipped byte in the last record → restart succeeds with the valid prefix', { skip: walSkip, timeout: 120_000 }, async (t) => {
  const { h, acks } = await writeThenKill('lastflip');
  const last = lastWalRecord(h.dataDir);
  assert.ok(last, `no WAL record found under ${h.dataDir}/member/wal`);
  const r = last.record;
  const at = r.payloadBytes > 0 ? r.payloadOffset + Math.floor(r.payloadBytes / 2) : r.offset + 4;
  t.diagnostic(`${path.basename(last.file)}: flipping byte ${at} of the last record (${r.offset}..${r.end})`);
  flipByte(last.file, at);
  const h2 = await h.restart();
  try { await verifyPrefix(h2, acks, 'flipped last record'); } finally { await h2.stop(); }
});

test('WAL: flipped byte in a middle record → refuses to start, clear message, data dir unchanged', { skip: walSkip, timeout: 120_000 }, async (t) => {
  const { h } = await writeThenKill('midflip');
  const segs = walSegments(h.dataDir);
  assert.ok(segs.length > 0, 'no WAL segment');
  const recs = walkRecords(fs.readFileSync(segs[0]));
  assert.ok(recs.length >= 3, `expected at least 3 records in ${segs[0]}, found ${recs.length}`);
  const r = recs[Math.floor(recs.length / 2)];
  const at = r.payloadBytes > 0 ? r.payloadOffset + Math.floor(r.payloadBytes / 2) : r.offset + 4;
  t.diagnostic(`${path.basename(segs[0])}: ${recs.length} records; flipping byte ${at} in record at ${r.offset}`);
  flipByte(segs[0], at);
  const before = hashTree(h.dataDir);
  const h2 = await h.restart({ noWait: true });
  const timer = setTimeout(() => { void h2.kill('SIGKILL'); }, 60_000);
  const exit = await h2.exited;
  clearTimeout(timer);
  assert.notEqual(exit.code, 0, `server must refuse to start; exit ${JSON.stringify(exit)}\n${h2.output().slice(-2000)}`);
  assert.equal(exit.signal, null, `server hung and was killed instead of refusing to start\n${h2.output().slice(-2000)}`);
  assert.match(h2.output(), /corrupt|crc|checksum/i, `refusal message should name the corruption:\n${h2.output().slice(-2000)}`);
  assert.deepEqual(hashTree(h.dataDir), before, 'the data dir changed while refusing to start');
});
