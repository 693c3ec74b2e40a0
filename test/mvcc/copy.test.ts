import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DB_NAMES, META_KEY, initialMeta, openMvccEnv, readMeta, type MvccDbs } from '../../src/mvcc/env';
import { copyMvccEnv, copyMvccEnvInWorker, COPY_MAX_RECORDS_PER_TXN } from '../../src/mvcc/copy';

const RAW = { keyEncoding: 'binary', encoding: 'binary', cache: false } as const;

function dump(dbs: MvccDbs): Record<string, Array<[string, string]>> {
  const out: Record<string, Array<[string, string]>> = {};
  for (const name of DB_NAMES) {
    out[name] = [...dbs.root.openDB<Buffer, Buffer>(name, RAW).getRange({})].map(({ key, value }) => [key.toString('hex'), value.toString('hex')]);
  }
  return out;
}

test('copyMvccEnv: every record of every named database, a smaller file, and writes on the copy work', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'etcetera-copy-'));
  try {
    const src = openMvccEnv(path.join(root, 'src'));
    // More records than one destination transaction holds, values from 1 byte to several overflow pages, then
    // most of them deleted so the source file has free pages the copy must not carry over.
    let seed = 7;
    const next = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    for (const name of DB_NAMES) {
      const db = src.root.openDB<Buffer, Buffer>(name, RAW);
      src.root.transactionSync(() => {
        for (let i = 0; i < COPY_MAX_RECORDS_PER_TXN + 500; i++) {
          const key = Buffer.alloc(8);
          key.writeUInt32BE(next(), 0);
          key.writeUInt32BE(i, 4);
          db.put(key, Buffer.alloc(i % 97 === 0 ? 40_000 : 1 + (next() % 300), i & 0xff));
        }
      });
      src.root.transactionSync(() => {
        let n = 0;
        for (const { key } of db.getRange({})) if (n++ % 4 !== 0) db.remove(key);
      });
    }
    const before = dump(src);
    const { file, records } = await copyMvccEnv(src, path.join(root, 'dst'));
    assert.equal(records, Object.values(before).reduce((a, r) => a + r.length, 0));
    assert.ok(fs.statSync(file).size < fs.statSync(path.join(src.dir, 'data.mdb')).size, 'the copy leaves free pages behind');
    await src.root.close();

    const dst = openMvccEnv(path.join(root, 'dst'));
    assert.deepEqual(dump(dst), before);
    // The overload test's crash came on the first writes after a swap: write, delete and rewrite on the copy.
    const kv = dst.root.openDB<Buffer, Buffer>('kv', RAW);
    for (let round = 0; round < 20; round++) {
      dst.root.transactionSync(() => {
        for (let i = 0; i < 200; i++) kv.put(Buffer.from(`w${round}-${i}`), Buffer.alloc(1 + ((round * 7919 + i) % 70_000)));
        let n = 0;
        for (const { key } of kv.getRange({})) if (n++ % 3 === 0) kv.remove(key);
      });
    }
    assert.ok(kv.getCount() > 0);
    await dst.root.close();
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

// The copy runs on a worker thread of the writing process. It used to run in a child process opening the same
// environment; under load the writer beside it then failed about 1 run in 25 (MDB_BAD_TXN "mdb_page_touch no parent"
// or SIGSEGV), so this case also guards against a return to a second process.
test('copyMvccEnvInWorker: one consistent state while the source keeps being written, with its consistent index', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'etcetera-copy-'));
  try {
    const src = openMvccEnv(path.join(root, 'src'));
    const kv = src.root.openDB<Buffer, Buffer>('kv', RAW);
    // Transaction i writes key i and sets the consistent index to i: a consistent copy at index X holds keys 1..X.
    let index = 0;
    const step = (): void => {
      index++;
      src.root.transactionSync(() => {
        kv.put(Buffer.from(`k${String(index).padStart(8, '0')}`), Buffer.alloc(1 + (index % 5000), index & 0xff));
        src.meta.put(META_KEY, { ...initialMeta(), consistentIndex: index });
      });
    };
    for (let i = 0; i < 3000; i++) step();
    const copying = copyMvccEnvInWorker(path.join(root, 'src'), path.join(root, 'dst'));
    let done = false;
    void copying.then(() => { done = true; }, () => { done = true; });
    let writtenDuring = 0;
    while (!done) {
      for (let i = 0; i < 50; i++) step();
      writtenDuring += 50;
      await new Promise((r) => setImmediate(r));
    }
    const copy = await copying;
    await src.root.close();
    assert.ok(writtenDuring > 0, 'the source was written while the copy ran');
    assert.ok(copy.consistentIndex >= 3000 && copy.consistentIndex <= index, `copy at ${copy.consistentIndex}, source at ${index}`);

    const dst = openMvccEnv(path.join(root, 'dst'));
    const keys = [...dst.root.openDB<Buffer, Buffer>('kv', RAW).getKeys({})].map((k) => Number(k.toString().slice(1)));
    assert.equal(readMeta(dst).consistentIndex, copy.consistentIndex);
    assert.equal(keys.length, copy.consistentIndex, 'exactly the keys written up to the copied index');
    assert.equal(keys[keys.length - 1], copy.consistentIndex);
    await dst.root.close();
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
