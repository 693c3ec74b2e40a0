/**
 * The CORRUPT alarm and Maintenance.Hash, differential against etcd 3.4 in the same run.
 *
 *  - CORRUPT raised (through Maintenance.Alarm ACTIVATE, which etcd 3.4 accepts from clients as the corruption
 *    check raises it through Raft): etcd's applierV3Corrupt answers puts, deletes, write txns, compaction, lease
 *    grant and revoke with "etcdserver: corrupt cluster" (DataLoss) while reads, read-only txns and keep-alives
 *    work; `etcdctl alarm list`, /health, `endpoint status` errors and `alarm disarm` — every answer equal (/health: its verdict).
 *  - Maintenance.Hash: etcd's algorithm (CRC-32C over the backend's buckets, `meta`/`consistent_index` left out),
 *    checked by hashing etcd's own db file with src/snapshot/status.ts backendHash and getting the Hash etcd
 *    answered; etcetera's Hash equals the same function over the snapshot it streams; and, bucket by bucket, the
 *    content hashed equals etcd's for the same history except `members` (member IDs differ between the two).
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { anonymizeMemberIds, etcdctl, etcdctlError } from '../helpers/etcdctl';
import { RawClient } from '../helpers/grpc';
import { hasEtcd, hasEtcdctl, NO_ETCD, NO_ETCDCTL, startServer, type ServerKind } from '../helpers/servers';
import { killAllChildren, trackTempDir } from '../helpers/procs';
import { BoltReader, bucketRef } from '../../src/bbolt';
import { backendHash } from '../../src/snapshot/status';

after(killAllChildren);

const skip = !hasEtcd() ? NO_ETCD : !hasEtcdctl() ? NO_ETCDCTL : undefined;
const ALARM_GET = 0;
const ALARM_ACTIVATE = 1;
const CORRUPT = 2;
const LEASE_ID = 0x4d2;

/** What each server answers once CORRUPT is raised, then disarmed. */
async function corruptSequence(kind: ServerKind): Promise<Record<string, unknown>> {
  const srv = await startServer(kind);
  const c = new RawClient(srv.clientUrl);
  try {
    const ep = srv.clientUrl.replace('http://', '');
    await c.put({ key: Buffer.from('a'), value: Buffer.from('1') });
    await c.call('Lease', 'LeaseGrant', { ID: LEASE_ID, TTL: 600 });
    const memberID = (await c.status()).header.memberId;
    const raised = await c.call('Maintenance', 'Alarm', { action: ALARM_ACTIVATE, memberID, alarm: CORRUPT });
    let alarmList = '';
    for (let i = 0; i < 100 && alarmList === ''; i++) {
      alarmList = (await etcdctl(ep, ['alarm', 'list'])).stdout.trim();
      if (alarmList === '') await new Promise((r) => setTimeout(r, 100));
    }
    const out = (r: { code: number; stdout: string; stderr: string }): string => (r.code === 0 ? r.stdout.trim() : etcdctlError(r.stderr));
    const o: Record<string, unknown> = {
      raised: raised.alarms.map((a: { memberID: number; alarm: number }) => ({ self: a.memberID === memberID, alarm: a.alarm })),
      alarmList: anonymizeMemberIds(alarmList),
      put: out(await etcdctl(ep, ['put', 'b', '2'])),
      get: out(await etcdctl(ep, ['get', 'a'])),
      del: out(await etcdctl(ep, ['del', 'a'])),
      txnWrite: out(await etcdctl(ep, ['txn'], { input: '\nput x y\n\n\n' })),
      txnRead: out(await etcdctl(ep, ['txn'], { input: '\nget a\n\n\n' })),
      leaseGrant: out(await etcdctl(ep, ['lease', 'grant', '60'])),
      leaseRevoke: out(await etcdctl(ep, ['lease', 'revoke', LEASE_ID.toString(16)])),
      keepAlive: out(await etcdctl(ep, ['lease', 'keep-alive', '--once', LEASE_ID.toString(16)])),
      compact: out(await etcdctl(ep, ['compact', '1'])),
      alarmGet: (await c.call('Maintenance', 'Alarm', { action: ALARM_GET, memberID: 0, alarm: 0 })).alarms.length,
    };
    const h = await fetch(`${srv.clientUrl}/health`);
    // etcetera's /health adds a "reason" field (etcd 3.5's wording) that etcd 3.4 leaves out: compare the verdict.
    o.health = { status: h.status, health: (JSON.parse(await h.text()) as { health: string }).health };
    const st = JSON.parse((await etcdctl(ep, ['endpoint', 'status', '-w', 'json'])).stdout) as Array<{ Status: { errors?: string[] } }>;
    o.statusErrors = (st[0]!.Status.errors ?? []).map(anonymizeMemberIds);
    o.disarm = anonymizeMemberIds(out(await etcdctl(ep, ['alarm', 'disarm'])));
    o.listAfterDisarm = out(await etcdctl(ep, ['alarm', 'list']));
    o.putAfterDisarm = out(await etcdctl(ep, ['put', 'c', '3']));
    return o;
  } finally {
    c.close();
    await srv.stop();
  }
}

test('CORRUPT alarm: writes refused with etcd\'s error, reads served, disarm restores writes (etcd 3.4 and etcetera equal)', { skip, timeout: 180_000 }, async () => {
  const mine = await corruptSequence('etcetera');
  assert.equal(mine.put, 'DataLoss | Error: etcdserver: corrupt cluster');
  assert.match(String(mine.alarmList), /^memberID:<id> alarm:CORRUPT$/);
  assert.equal(mine.putAfterDisarm, 'OK');
  const ref = await corruptSequence('etcd');
  assert.deepEqual(mine, ref);
});

/** CRC-32C of each top-level bucket of a bbolt file (name, keys, values), `meta`/`consistent_index` left out. */
function bucketHashes(file: string): Record<string, number> {
  const r = BoltReader.open(file);
  try {
    const out: Record<string, number> = {};
    for (const b of r.entries(r.rootBucket())) {
      const name = Buffer.from(b.key).toString('latin1');
      let crc = crc32c(Buffer.from(b.key), 0);
      for (const e of r.entries(bucketRef(Buffer.from(b.value)))) {
        if (name === 'meta' && Buffer.from(e.key).toString('latin1') === 'consistent_index') continue;
        crc = crc32c(Buffer.from(e.value), crc32c(Buffer.from(e.key), crc));
      }
      out[name] = crc >>> 0;
    }
    return out;
  } finally {
    r.close();
  }
}

/** One history (explicit lease ID so both stores agree), then Maintenance.Hash, HashKV and a db file to inspect. */
async function hashHistory(kind: ServerKind, tmp: string): Promise<{ hash: number; revision: number; hashKV: number; file: string; fileHash: number }> {
  const srv = await startServer(kind);
  const c = new RawClient(srv.clientUrl);
  try {
    await c.call('Lease', 'LeaseGrant', { ID: LEASE_ID, TTL: 600 });
    for (let i = 0; i < 30; i++) await c.put({ key: Buffer.from(`k${i % 7}`), value: Buffer.from(`v${i}`), lease: i % 5 === 0 ? LEASE_ID : 0 });
    await c.deleteRange({ key: Buffer.from('k1') });
    await c.txn({ success: [{ requestPut: { key: Buffer.from('t'), value: Buffer.from('x') } }, { requestDeleteRange: { key: Buffer.from('k2') } }] });
    await c.compact({ revision: 10, physical: true });
    await c.put({ key: Buffer.from('last'), value: Buffer.from('z') });
    const h = await c.call('Maintenance', 'Hash', {});
    const again = await c.call('Maintenance', 'Hash', {});
    assert.equal(again.hash, h.hash, `${kind}: Hash is stable while nothing is written`);
    const kv = await c.call('Maintenance', 'HashKV', { revision: 0 });
    let file: string;
    if (kind === 'etcd') {
      c.close();
      await srv.stop({ keepData: true });
      file = path.join(tmp, 'etcd.db');
      fs.copyFileSync(path.join(srv.dataDir, 'member', 'snap', 'db'), file);
      fs.rmSync(srv.dataDir, { recursive: true, force: true });
    } else {
      file = path.join(tmp, 'etcetera.db');
      const saved = await etcdctl(srv.clientUrl.replace('http://', ''), ['snapshot', 'save', file]);
      assert.equal(saved.code, 0, saved.stderr);
    }
    return { hash: h.hash, revision: h.header.revision, hashKV: kv.hash, file, fileHash: backendHash(file).hash };
  } finally {
    c.close();
    await srv.stop();
  }
}

test('Maintenance.Hash: etcd\'s algorithm over etcd\'s backend content; equal to etcd\'s bucket by bucket but members', { skip, timeout: 180_000 }, async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'etcetera-hash-'));
  trackTempDir(tmp);
  const e = await hashHistory('etcd', tmp);
  const s = await hashHistory('etcetera', tmp);
  assert.equal(e.fileHash, e.hash, 'backendHash over etcd\'s db file is the Hash etcd answers');
  assert.equal(s.fileHash, s.hash, 'etcetera\'s Hash is the same function over the backend it streams');
  assert.equal(s.revision, e.revision);
  assert.equal(s.hashKV, e.hashKV, 'HashKV equal');
  const eb = bucketHashes(e.file);
  const sb = bucketHashes(s.file);
  assert.deepEqual(Object.keys(sb), Object.keys(eb), 'same buckets');
  for (const name of Object.keys(eb)) {
    if (name === 'members') continue;
    assert.equal(sb[name], eb[name], `bucket ${name}`);
  }
});
