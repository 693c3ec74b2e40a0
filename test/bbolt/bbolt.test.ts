/**
 * src/bbolt: files written by the streaming writer read back entry for entry (multi-level trees, overflow pages,
 * inline, nested and empty buckets), pass our structure check and — the oracle — bbolt's own, through
 * `etcdctl snapshot status` (bbolt Open + Tx.Check + a walk of every bucket), whose hash, key count and size must
 * equal ours. Meta page selection and bbolt's open errors: checksum, magic, version, short file.
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BoltReader, BoltWriter, bucketRef, decodeMeta, type BucketRef } from '../../src/bbolt';
import { snapshotStatus } from '../../src/snapshot/status';
import { hasEtcdctl } from '../helpers/servers';
import { Rng } from '../helpers/rng';
import { etcdctlOffline } from '../snapshot/helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'etcetera-bbolt-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

type Tree = Map<string, Buffer | Tree>;

function writeFile(file: string, build: (w: BoltWriter) => void, txid = 7): void {
  const fd = fs.openSync(file, 'w');
  try {
    const w = new BoltWriter({ write: (d, off) => { fs.writeSync(fd, d, 0, d.length, off); } });
    build(w);
    w.finish(txid);
  } finally {
    fs.closeSync(fd);
  }
}

function readTree(r: BoltReader, b: BucketRef): Tree {
  const out: Tree = new Map();
  for (const e of r.entries(b)) {
    const k = e.key.toString('latin1');
    out.set(k, e.isBucket ? readTree(r, bucketRef(Buffer.from(e.value))) : Buffer.from(e.value));
  }
  return out;
}

/** A database of `n` keys in `key` (some values several pages long), small and nested buckets. */
function sample(n: number, seed: number): { build: (w: BoltWriter) => void; expect: Tree } {
  const r = new Rng(seed);
  const big: Array<[Buffer, Buffer]> = [];
  for (let i = 0; i < n; i++) {
    const k = Buffer.from(`k${String(i).padStart(7, '0')}${'x'.repeat(r.int(40))}`, 'latin1');
    const len = r.chance(0.002) ? 4096 + r.int(20_000) : r.int(200);
    big.push([k, Buffer.alloc(len, r.int(256))]);
  }
  const small: Array<[Buffer, Buffer]> = [[Buffer.from('a'), Buffer.from('1')], [Buffer.from('b'), Buffer.alloc(0)]];
  const expect: Tree = new Map();
  expect.set('data', new Map(big.map(([k, v]) => [k.toString('latin1'), v])));
  expect.set('empty', new Map());
  const inner: Tree = new Map(small.map(([k, v]) => [k.toString('latin1'), v]));
  expect.set('nest', new Map<string, Buffer | Tree>([['child', inner], ['z', Buffer.from('zz')]]));
  expect.set('small', new Map(small.map(([k, v]) => [k.toString('latin1'), v])));
  const build = (w: BoltWriter): void => {
    const kb = w.bucket();
    for (const [k, v] of big) kb.put(k, v);
    w.root.putBucket(Buffer.from('data'), kb.finish());
    w.root.putBucket(Buffer.from('empty'), w.bucket().finish());
    const nb = w.bucket();
    const child = nb.nested();
    for (const [k, v] of small) child.put(k, v);
    nb.putBucket(Buffer.from('child'), child.finish());
    nb.put(Buffer.from('z'), Buffer.from('zz'));
    w.root.putBucket(Buffer.from('nest'), nb.finish());
    const sb = w.bucket();
    for (const [k, v] of small) sb.put(k, v);
    w.root.putBucket(Buffer.from('small'), sb.finish());
  };
  return { build, expect };
}

test('bbolt writer → reader: every entry back in order, structure check clean', () => {
  for (const n of [0, 1, 300, 20_000]) {
    const file = path.join(tmp, `rt-${n}.db`);
    const { build, expect } = sample(n, n + 1);
    writeFile(file, build);
    const r = BoltReader.open(file);
    try {
      assert.deepEqual(r.check(), []);
      assert.deepEqual(readTree(r, r.rootBucket()), expect);
      assert.equal(r.sizeBytes, fs.statSync(file).size);
      const key = r.bucket('data')!;
      if (n === 300) assert.ok(key.root !== 0, 'a bucket over a quarter page has pages of its own');
      if (n === 1) assert.equal(key.root, 0, 'a small bucket is inline');
      assert.equal(r.bucket('small')!.root, 0);
    } finally {
      r.close();
    }
  }
});

test('bbolt writer: keys must ascend', () => {
  writeFile(path.join(tmp, 'order.db'), (w) => {
    const b = w.bucket();
    b.put(Buffer.from('b'), Buffer.from('1'));
    assert.throws(() => b.put(Buffer.from('a'), Buffer.from('2')), /strictly ascending/);
    assert.throws(() => b.put(Buffer.from('b'), Buffer.from('2')), /strictly ascending/);
    w.root.putBucket(Buffer.from('x'), b.finish());
  });
});

test('bbolt meta pages: txid T and T−1, the valid newer one chosen, bbolt\'s open errors', () => {
  const file = path.join(tmp, 'meta.db');
  writeFile(file, sample(50, 3).build, 42);
  const bytes = fs.readFileSync(file);
  assert.equal(decodeMeta(bytes.subarray(0, 4096)).txid, 42n);
  assert.equal(decodeMeta(bytes.subarray(4096, 8192)).txid, 41n);
  const variant = (name: string, edit: (b: Buffer) => void): string => {
    const b = Buffer.from(bytes);
    edit(b);
    const f = path.join(tmp, name);
    fs.writeFileSync(f, b);
    return f;
  };
  const r = BoltReader.open(variant('meta0-bad.db', (b) => { b[16 + 40] ^= 1; }));
  assert.equal(r.meta.txid, 41n, 'meta 1 used when meta 0 fails its checksum');
  r.close();
  assert.throws(() => BoltReader.open(variant('both-bad.db', (b) => { b[16 + 40] ^= 1; b[4096 + 16 + 40] ^= 1; })), /^BoltFormatError: checksum error$/);
  assert.throws(() => BoltReader.open(variant('magic.db', (b) => { b[16] ^= 1; b[4096 + 16] ^= 1; })), /invalid database/);
  assert.throws(() => BoltReader.open(variant('version.db', (b) => { b[20] = 3; b[4096 + 20] = 3; })), /version mismatch/);
  const short = variant('short.db', () => undefined);
  fs.truncateSync(short, 5000);
  assert.throws(() => BoltReader.open(short), /file size too small/);
});

test('bbolt check: a page referenced twice, a page of the wrong type', () => {
  const file = path.join(tmp, 'check.db');
  writeFile(file, sample(2000, 5).build);
  const r0 = BoltReader.open(file);
  const root = r0.bucket('data')!.root;
  r0.close();
  const b = fs.readFileSync(file);
  assert.equal(b.readUInt16LE(root * 4096 + 8), 0x01, 'a 2000-key bucket has a branch root');
  // Point the branch's second child at its first: that page is then referenced twice.
  const firstChild = b.readBigUInt64LE(root * 4096 + 16 + 8);
  b.writeBigUInt64LE(firstChild, root * 4096 + 16 + 16 + 8);
  fs.writeFileSync(file, b);
  const r = BoltReader.open(file);
  assert.ok(r.check().includes(`page ${firstChild}: multiple references`), r.check().join('; '));
  r.close();
  b.writeUInt16LE(0x10, Number(firstChild) * 4096 + 8);
  fs.writeFileSync(file, b);
  const r2 = BoltReader.open(file);
  assert.ok(r2.check().some((e) => e === `page ${firstChild}: invalid type: freelist`), r2.check().join('; '));
  r2.close();
});

test('bbolt files we write pass bbolt itself (etcdctl snapshot status) with our hash', { skip: hasEtcdctl() ? undefined : 'etcdctl not installed' }, async () => {
  for (const n of [1, 20_000]) {
    const file = path.join(tmp, `oracle-${n}.db`);
    writeFile(file, sample(n, 9).build);
    const x = await etcdctlOffline(['snapshot', 'status', file, '-w', 'json']);
    assert.equal(x.code, 0, x.stderr);
    assert.deepEqual(snapshotStatus(file), JSON.parse(x.stdout));
  }
});
