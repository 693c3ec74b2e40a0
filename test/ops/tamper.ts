/**
 * Offline damage to a stopped member's store, as silent disk corruption would do it, for the corruption-check tests:
 * one stored value changed, the structure left valid.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openMvccEnv } from '../../src/mvcc/env';
import { RECORD_HEADER_BYTES } from '../../src/mvcc/encoding';

/** Flips the last value byte of the oldest stored revision of `key` in a stopped etcetera member's store. */
export async function tamperEtcetera(dataDir: string, key: string): Promise<void> {
  const dbs = openMvccEnv(path.join(dataDir, 'member'));
  try {
    const want = Buffer.from(key);
    let done = false;
    for (const { key: k, value } of dbs.rev.getRange({})) {
      const v = Buffer.from(value);
      const keyLen = v.readUInt32LE(RECORD_HEADER_BYTES - 4);
      if (!v.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + keyLen).equals(want)) continue;
      v[v.length - 1] ^= 0x01;
      await dbs.rev.put(Buffer.from(k), v);
      done = true;
      break;
    }
    assert.ok(done, `no stored revision of ${key}`);
  } finally {
    await dbs.root.close();
  }
}

/**
 * Flips the last byte of every copy of `value` in a stopped etcd 3.4 member's bbolt file (member/snap/db): bbolt has
 * no page checksums, so etcd reads the changed value back as stored. `value` must be unique in the file.
 */
export function tamperEtcd(dataDir: string, value: string): void {
  const file = path.join(dataDir, 'member', 'snap', 'db');
  const db = fs.readFileSync(file);
  const want = Buffer.from(value);
  let n = 0;
  for (let at = db.indexOf(want); at >= 0; at = db.indexOf(want, at + 1)) {
    db[at + want.length - 1] ^= 0x01;
    n++;
  }
  assert.ok(n > 0, `${value} not found in ${file}`);
  fs.writeFileSync(file, db);
}
