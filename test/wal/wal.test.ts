import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrWalCorrupt, ErrWalExists, ErrWalFailed, ErrWalNotFound, Wal } from '../../src/wal/wal';
import { decodeRecord } from '../../src/wal/record';
import { listSegments, segmentFileName, walDirOf } from '../../src/wal/segment';
import { captureLogger, entries, entry, plain, tmpDir } from './helpers';

const MD = { clusterId: 0x1234567890, memberId: 7 };
const SMALL = 8192;

/** Offsets of the valid records of a segment file. */
function recordOffsets(file: string): number[] {
  const buf = fs.readFileSync(file);
  const out: number[] = [];
  let off = 0;
  for (;;) {
    try {
      const f = decodeRecord(buf, off);
      out.push(off);
      off = f.nextOffset;
    } catch {
      return out;
    }
  }
}

function lastSegment(dir: string): string {
  const segs = listSegments(dir);
  return path.join(dir, segs[segs.length - 1]!.file);
}

function setup(n: number, opts = {}): string {
  const dir = walDirOf(tmpDir('wal'));
  const w = Wal.create(dir, MD, opts);
  for (let i = 1; i <= n; i += 5) w.append({ term: 1, vote: 7, commit: i }, entries(i, Math.min(n, i + 4)));
  w.sync();
  w.close();
  return dir;
}

test('create, append, sync, reopen: metadata, HardState and entries come back', () => {
  const dir = setup(20);
  assert.equal(path.basename(listSegments(dir)[0]!.file), segmentFileName(0, 0));
  assert.equal(fs.statSync(lastSegment(dir)).size, 64 * 1024 * 1024, 'preallocated to 64 MiB');
  const r = Wal.open(dir);
  assert.deepEqual(r.metadata, MD);
  assert.deepEqual(r.hardState, { term: 1, vote: 7, commit: 16 });
  assert.deepEqual(plain(r.entries), plain(entries(1, 20)));
  assert.equal(r.repaired, null);
  assert.equal(r.wal.lastIndex, 20);
  // keep appending after reopen
  r.wal.append(null, [entry(21)]);
  r.wal.sync();
  r.wal.close();
  assert.deepEqual(plain(Wal.open(dir).entries), plain(entries(1, 21)));
  assert.throws(() => Wal.create(dir, MD), ErrWalExists);
  assert.throws(() => Wal.open(tmpDir('empty')), ErrWalNotFound);
  fs.rmSync(path.dirname(path.dirname(dir)), { recursive: true }); // the 64 MiB segment
});

test('torn tail: file truncated mid-record is repaired, valid prefix kept, warning names file and offset', () => {
  const dir = setup(20, { segmentSizeBytes: SMALL });
  const file = lastSegment(dir);
  const offs = recordOffsets(file);
  const lastOff = offs[offs.length - 1]!; // HardState of the last batch
  const entryOff = offs[offs.length - 2]!; // entry 20
  fs.truncateSync(file, entryOff + 13);
  const log = captureLogger();
  const r = Wal.open(dir, { logger: log });
  assert.deepEqual(plain(r.entries), plain(entries(1, 19)));
  assert.deepEqual(r.hardState, { term: 1, vote: 7, commit: 11 });
  assert.equal(r.repaired?.offset, entryOff);
  assert.equal(log.lines.length, 1);
  assert.equal(log.lines[0]!.fields.file, file);
  assert.equal(log.lines[0]!.fields.offset, entryOff);
  assert.ok(lastOff > entryOff);
  // the repaired WAL accepts appends and reopens cleanly
  r.wal.append({ term: 2, vote: 7, commit: 19 }, [entry(20, 2)]);
  r.wal.sync();
  r.wal.close();
  const r2 = Wal.open(dir, { logger: log });
  assert.equal(r2.repaired, null);
  assert.deepEqual(plain(r2.entries), plain([...entries(1, 19), entry(20, 2)]));
  r2.wal.close();
});

test('zero-filled tail: a last record left as zeros in preallocated space is truncated', () => {
  for (const variant of ['payload zeroed (header landed)', 'header zeroed (payload landed)']) {
    const dir = setup(20, { segmentSizeBytes: SMALL });
    const file = lastSegment(dir);
    const offs = recordOffsets(file);
    const lastOff = offs[offs.length - 1]!; // the last batch's HardState
    const fd = fs.openSync(file, 'r+');
    if (variant.startsWith('payload')) fs.writeSync(fd, Buffer.alloc(16), 0, 16, lastOff + 16);
    else fs.writeSync(fd, Buffer.alloc(8), 0, 8, lastOff);
    fs.closeSync(fd);
    const log = captureLogger();
    const r = Wal.open(dir, { logger: log, segmentSizeBytes: SMALL });
    assert.deepEqual(plain(r.entries), plain(entries(1, 20)), variant);
    assert.deepEqual(r.hardState, { term: 1, vote: 7, commit: 11 }, variant);
    assert.equal(r.repaired?.offset, lastOff, variant);
    assert.equal(log.lines.length, 1);
    r.wal.close();
    const buf = fs.readFileSync(file);
    assert.ok(buf.subarray(lastOff).every((b) => b === 0), 'tail zeroed');
    assert.equal(buf.length, SMALL, 'preallocation kept');
  }
});

test('a zeroed record header followed by valid records is corruption, not a tail', () => {
  const dir = setup(20, { segmentSizeBytes: SMALL });
  const file = lastSegment(dir);
  const offs = recordOffsets(file);
  const entryOff = offs[offs.length - 2]!;
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.alloc(8), 0, 8, entryOff);
  fs.closeSync(fd);
  const before = fs.readFileSync(file);
  assert.throws(() => Wal.open(dir, { logger: captureLogger() }), ErrWalCorrupt);
  assert.ok(fs.readFileSync(file).equals(before));
});

test('CRC mismatch in the last record is truncated; in the middle it is ErrWalCorrupt and the file is untouched', () => {
  const dir = setup(20, { segmentSizeBytes: SMALL });
  const file = lastSegment(dir);
  const offs = recordOffsets(file);
  const corrupt = (off: number): void => {
    const fd = fs.openSync(file, 'r+');
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, off + 12);
    b[0] = b[0]! ^ 0x40;
    fs.writeSync(fd, b, 0, 1, off + 12);
    fs.closeSync(fd);
  };
  // middle: entry 10
  const before = fs.readFileSync(file);
  const midOff = offs[12]!;
  corrupt(midOff);
  const corrupted = fs.readFileSync(file);
  assert.throws(() => Wal.open(dir, { logger: captureLogger() }), (e: unknown) => {
    assert.ok(e instanceof ErrWalCorrupt);
    assert.equal(e.offset, midOff);
    assert.match(e.message, /followed by a valid record/);
    return true;
  });
  assert.ok(fs.readFileSync(file).equals(corrupted), 'file bytes unchanged after ErrWalCorrupt');
  corrupt(midOff); // undo
  assert.ok(fs.readFileSync(file).equals(before));
  // last record (the final HardState)
  const lastOff = offs[offs.length - 1]!;
  corrupt(lastOff);
  const log = captureLogger();
  const r = Wal.open(dir, { logger: log });
  assert.equal(r.repaired?.offset, lastOff);
  assert.match(r.repaired!.reason, /CRC/);
  assert.deepEqual(plain(r.entries), plain(entries(1, 20)));
  assert.deepEqual(r.hardState, { term: 1, vote: 7, commit: 11 }, 'previous HardState wins');
  r.wal.close();
});

test('segment rollover with a small segment size, reopen across segments, corruption in a non-last segment', () => {
  const dir = walDirOf(tmpDir('roll'));
  const w = Wal.create(dir, MD, { segmentSizeBytes: SMALL });
  for (let i = 1; i <= 600; i += 3) {
    w.append({ term: 1, vote: 7, commit: i }, entries(i, i + 2));
    if (i % 30 === 1) w.sync();
  }
  w.sync();
  const segs = listSegments(dir);
  assert.ok(segs.length >= 5, `expected several segments, got ${segs.length}`);
  segs.forEach((s, i) => assert.equal(s.seq, i));
  for (let i = 1; i < segs.length; i++) assert.ok(segs[i]!.firstIndex > segs[i - 1]!.firstIndex);
  for (const s of segs) assert.ok(fs.statSync(path.join(dir, s.file)).size <= SMALL, 'batches never overflow a segment');
  w.close();
  const r = Wal.open(dir);
  assert.deepEqual(plain(r.entries), plain(entries(1, 600)));
  assert.deepEqual(r.hardState, { term: 1, vote: 7, commit: 598 });
  r.wal.close();
  // a CRC-bad record in a non-last segment is corruption
  const second = path.join(dir, segs[1]!.file);
  const offs = recordOffsets(second);
  const fd = fs.openSync(second, 'r+');
  fs.writeSync(fd, Buffer.from([0xff]), 0, 1, offs[offs.length - 1]! + 9);
  fs.closeSync(fd);
  assert.throws(() => Wal.open(dir), ErrWalCorrupt);
  // a missing middle segment is corruption
  fs.unlinkSync(second);
  assert.throws(() => Wal.open(dir), /sequence gap/);
});

test('replay: later entries overwrite conflicting indexes (also across segments)', () => {
  const dir = walDirOf(tmpDir('conflict'));
  const w = Wal.create(dir, MD, { segmentSizeBytes: SMALL });
  w.append({ term: 1, vote: 1, commit: 3 }, entries(1, 10, 1));
  w.append({ term: 2, vote: 2, commit: 5 }, entries(6, 8, 2)); // leader change: 6..10 replaced by 6..8
  w.sync();
  let r = Wal.open(dir, { segmentSizeBytes: SMALL });
  w.close();
  assert.deepEqual(plain(r.entries), plain([...entries(1, 5, 1), ...entries(6, 8, 2)]));
  // many more, forcing rollovers, then a conflict far back
  for (let i = 9; i <= 300; i += 4) r.wal.append(null, entries(i, i + 3, 2));
  r.wal.append({ term: 3, vote: 3, commit: 100 }, entries(150, 152, 3));
  r.wal.sync();
  assert.ok(r.wal.segmentFiles().length > 2);
  r.wal.close();
  r = Wal.open(dir, { segmentSizeBytes: SMALL });
  assert.deepEqual(plain(r.entries), plain([...entries(1, 5, 1), ...entries(6, 149, 2), ...entries(150, 152, 3)]));
  assert.equal(r.wal.lastIndex, 152);
  r.wal.close();
});

test('snapshot marker and releaseTo: old segments deleted, replay starts after the snapshot', () => {
  const dir = walDirOf(tmpDir('snap'));
  const w = Wal.create(dir, MD, { segmentSizeBytes: SMALL });
  for (let i = 1; i <= 400; i += 4) w.append({ term: 1, vote: 7, commit: i }, entries(i, i + 3));
  w.saveSnapshot({ index: 300, term: 1 });
  w.sync();
  const before = w.segmentFiles();
  const deleted = w.releaseTo(300);
  assert.ok(deleted.length > 0 && deleted.length < before.length);
  assert.deepEqual(w.segmentFiles(), before.slice(deleted.length));
  assert.deepEqual(listSegments(dir).map((s) => s.file), w.segmentFiles());
  w.close();
  const r = Wal.open(dir);
  assert.deepEqual(r.snapshot, { index: 300, term: 1 });
  assert.deepEqual(plain(r.entries), plain(entries(301, 400)));
  assert.deepEqual(r.hardState, { term: 1, vote: 7, commit: 397 });
  r.wal.close();
});

test('append after close throws ErrWalFailed', () => {
  const dir = setup(1, { segmentSizeBytes: SMALL, preallocate: 'sparse' });
  const r = Wal.open(dir);
  r.wal.close();
  assert.throws(() => r.wal.append(null, [entry(2)]), ErrWalFailed);
});
