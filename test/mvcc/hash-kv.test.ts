/**
 * hashKV without a reference etcd: the bytes fed to CRC-32C are rebuilt here independently (bbolt revision keys by
 * hand, KeyValues with protobufjs) and the one-shot checksum of them must equal the store's streamed one. The
 * differential test (test/differential/hashkv.test.ts) is what ties these rules to etcd's actual hashes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32c } from '@node-rs/crc32';
import { pb } from '../../src/wire/codec';
import { Errors } from '../../src/errors';
import { hashKV } from '../../src/mvcc/hash-kv';
import { del, errId, freshStore, put } from './util';

function boltKey(main: number, sub: number, tombstone: boolean): Buffer {
  const k = Buffer.alloc(tombstone ? 18 : 17);
  k.writeBigUInt64BE(BigInt(main), 0);
  k[8] = 0x5f;
  k.writeBigUInt64BE(BigInt(sub), 9);
  if (tombstone) k[17] = 0x74;
  return k;
}

const kv = (o: object): Buffer => Buffer.from(pb.KeyValue.encode(o).finish());

test('hashKV streams exactly the bucket name, bolt keys and stored KeyValues', () => {
  const { store } = freshStore();
  const fresh = hashKV(store.dbs, 0);
  assert.deepEqual(fresh, { hash: crc32c(Buffer.from('key')) >>> 0, currentRevision: 1, compactRevision: -1 });

  const big = Buffer.alloc(100 * 1024, 0x61); // larger than one checksum chunk
  store.put(put('a', 'v1')); // 2
  store.put(put('k\x00', '')); // 3: empty value, a key with a zero byte
  store.put(put('a', big.toString())); // 4
  store.deleteRange(del('k\x00')); // 5
  const parts = [
    Buffer.from('key'),
    boltKey(2, 0, false), kv({ key: Buffer.from('a'), createRevision: 2, modRevision: 2, version: 1, value: Buffer.from('v1') }),
    boltKey(3, 0, false), kv({ key: Buffer.from('k\x00'), createRevision: 3, modRevision: 3, version: 1 }),
    boltKey(4, 0, false), kv({ key: Buffer.from('a'), createRevision: 2, modRevision: 4, version: 2, value: big }),
    boltKey(5, 0, true), kv({ key: Buffer.from('k\x00') }),
  ];
  assert.equal(hashKV(store.dbs, 0).hash, crc32c(Buffer.concat(parts)) >>> 0);
  assert.equal(hashKV(store.dbs, 3).hash, crc32c(Buffer.concat(parts.slice(0, 5))) >>> 0);
  assert.equal(hashKV(store.dbs, 3).currentRevision, 5);

  assert.equal(errId(() => hashKV(store.dbs, 6)), Errors.FutureRev.id);
  store.compact({ revision: 3, physical: true });
  assert.equal(errId(() => hashKV(store.dbs, 3)), Errors.Compacted.id);
  assert.equal(errId(() => hashKV(store.dbs, 1)), Errors.Compacted.id);
  // a@2 was superseded at 4 and k@3 deleted at 5, so neither compaction survivor is hashed at 5 ...
  assert.deepEqual(hashKV(store.dbs, 0), {
    hash: crc32c(Buffer.concat([parts[0]!, ...parts.slice(5)])) >>> 0, currentRevision: 5, compactRevision: 3,
  });
  // ... but at 4 the key k still holds its revision 3.
  assert.equal(hashKV(store.dbs, 4).hash, crc32c(Buffer.concat([parts[0]!, parts[3]!, parts[4]!, parts[5]!, parts[6]!])) >>> 0);
});
