/**
 * A full disk must give etcd's error and nothing else: no crash, no wedge, no loss of acknowledged writes.
 * The member runs on a small tmpfs (root only; skipped with the reason otherwise), is written to until the
 * disk is nearly full, must then answer writes with "etcdserver: mvcc: database space exceeded" (raising etcd's
 * NOSPACE alarm), keep serving reads and report itself unhealthy; after the data dir moves to a roomy disk, every
 * acknowledged put is there, and writes resume once the alarm is disarmed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startEtcetera } from '../helpers/servers';
import { RawClient } from '../helpers/grpc';

function mountTmpfs(dir: string, sizeBytes: number): string | null {
  if (process.getuid?.() !== 0) return 'needs root to mount a tmpfs';
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', dir], { stdio: 'pipe' });
    return null;
  } catch (e) {
    return `mount -t tmpfs failed: ${(e as Error).message.split('\n')[0]}`;
  }
}

test('full disk: writes get etcd\'s no-space error, reads and restart keep every acknowledged put', { timeout: 180_000 }, async (t) => {
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'etcetera-full-'));
  // 64 MiB for the preallocated WAL segment plus ~3 MiB for LMDB: the store is what fills the disk.
  const why = mountTmpfs(mnt, 67 * 1024 * 1024);
  if (why !== null) {
    fs.rmSync(mnt, { recursive: true, force: true });
    t.skip(why);
    return;
  }
  const roomy = fs.mkdtempSync(path.join(os.tmpdir(), 'etcetera-roomy-'));
  try {
    // A small --max-request-bytes keeps the member's free-space reserve (1 MiB + 4 × max request) below the tmpfs.
    const h = await startEtcetera({ dataDir: path.join(mnt, 'data'), extraArgs: ['--max-request-bytes', String(128 * 1024)] });
    const c = new RawClient(h.clientUrl);
    const acked = new Map<string, number>();
    let lastError: { code?: number; details?: string } | null = null;
    const value = Buffer.alloc(64 * 1024, 0x61);
    for (let i = 0; i < 400 && lastError === null; i++) {
      const key = `/full/${String(i).padStart(4, '0')}`;
      try {
        const r = await c.put({ key: Buffer.from(key), value });
        acked.set(key, Number(r.header.revision));
      } catch (e) {
        lastError = e as { code?: number; details?: string };
      }
    }
    assert.ok(lastError !== null, `the disk never filled after ${acked.size} puts of 64 KiB`);
    assert.ok(acked.size > 0, 'no put succeeded before the disk filled');
    assert.equal(lastError.details, 'etcdserver: mvcc: database space exceeded', `unexpected error: ${JSON.stringify(lastError)}`);
    assert.equal(lastError.code, 8, 'ResourceExhausted');
    // No wedge: further writes fail at once with the same error, reads still work, the process is alive.
    await assert.rejects(c.put({ key: Buffer.from('/full/again'), value: Buffer.from('x') }), (e: { details?: string }) => e.details === 'etcdserver: mvcc: database space exceeded');
    const first = [...acked.keys()][0] as string;
    const got = await c.range({ key: Buffer.from(first), serializable: true }).catch((e: Error) => {
      throw new Error(`read after the disk filled failed: ${e.message}\n--- server output tail ---\n${h.output().slice(-4000)}`);
    });
    assert.equal(got.kvs.length, 1, 'an acknowledged key is not readable after the disk filled');
    const health = (await (await fetch(`${h.clientUrl}/health`)).json()) as { health: string };
    assert.equal(health.health, 'false', '/health must report the failure');
    c.close();
    await h.stop();
    // Move the data dir to a disk with room: every acknowledged put is there with its revision.
    fs.cpSync(path.join(mnt, 'data'), path.join(roomy, 'data'), { recursive: true });
    const h2 = await startEtcetera({ dataDir: path.join(roomy, 'data') });
    const c2 = new RawClient(h2.clientUrl);
    try {
      const all = await c2.range({ key: Buffer.from('/full/'), rangeEnd: Buffer.from('/full0') });
      const have = new Map(all.kvs.map((kv: { key: Uint8Array; modRevision: number | string }) => [Buffer.from(kv.key).toString(), Number(kv.modRevision)]));
      for (const [k, rev] of acked) assert.equal(have.get(k), rev, `acknowledged ${k}@${rev} lost or changed`);
      // The full disk raised etcd's NOSPACE alarm (as an exceeded quota does); it stays until an operator disarms it.
      const alarms = await c2.call('Maintenance', 'Alarm', { action: 0 });
      assert.ok(alarms.alarms?.some((a: { alarm: string | number }) => a.alarm === 'NOSPACE' || a.alarm === 1), `no NOSPACE alarm after the disk filled: ${JSON.stringify(alarms)}`);
      await assert.rejects(c2.put({ key: Buffer.from('/full/blocked'), value: Buffer.from('x') }), (e: { details?: string }) => e.details === 'etcdserver: mvcc: database space exceeded');
      for (const a of alarms.alarms ?? []) await c2.call('Maintenance', 'Alarm', { action: 2, memberID: a.memberID, alarm: a.alarm });
      const p = await c2.put({ key: Buffer.from('/full/after'), value: Buffer.from('ok') });
      assert.ok(Number(p.header.revision) > Math.max(...acked.values()), 'revision counter went backwards after restart');
    } finally {
      c2.close();
      await h2.stop();
    }
  } finally {
    try { execFileSync('umount', ['-l', mnt], { stdio: 'pipe' }); } catch { /* already gone */ }
    fs.rmSync(mnt, { recursive: true, force: true });
    fs.rmSync(roomy, { recursive: true, force: true });
  }
});
