import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Wal, WalNoSpaceError, ErrWalFailed } from '../../src/wal/wal';
import { WalClient, WalFatalError } from '../../src/wal/client';
import { WalErrorCode } from '../../src/wal/protocol';
import { entries, plain, tmpDir } from './helpers';

const MD = { clusterId: 5, memberId: 6 };
const SEG = 64 * 1024;

/** Mounts a tiny tmpfs, or returns the reason it cannot. */
function mountTiny(sizeBytes: number): { dir: string; umount: () => void } | string {
  if (process.getuid?.() !== 0) return 'not running as root';
  const dir = tmpDir('enospc');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (e) {
    fs.rmdirSync(dir);
    return `mount -t tmpfs failed: ${String((e as Error).message).split('\n')[0]}`;
  }
  return {
    dir,
    umount: () => {
      execFileSync('umount', [dir]);
      fs.rmdirSync(dir);
    },
  };
}

const probe = mountTiny(256 * 1024);
const skipReason = typeof probe === 'string' ? probe : false;
if (typeof probe !== 'string') probe.umount();
if (skipReason) console.log(`# ENOSPC tests skipped: ${skipReason}`);

test('ENOSPC on a tiny tmpfs: typed error, WAL failed, reopen recovers the durable prefix', { skip: skipReason }, () => {
  const m = mountTiny(256 * 1024) as { dir: string; umount: () => void };
  try {
    const dir = path.join(m.dir, 'member', 'wal');
    const w = Wal.create(dir, MD, { segmentSizeBytes: SEG });
    let durable = 0;
    let err: unknown = null;
    for (let i = 1; i < 100_000; i += 10) {
      try {
        w.append({ term: 1, vote: 6, commit: i - 1 }, entries(i, i + 9));
        w.sync();
        durable = i + 9;
      } catch (e) {
        err = e;
        break;
      }
    }
    assert.ok(err instanceof WalNoSpaceError, `expected WalNoSpaceError, got ${String(err)}`);
    assert.equal(err.code, 'ENOSPC');
    assert.ok(durable > 100, `wrote ${durable} entries before the disk filled`);
    assert.throws(() => w.append(null, entries(durable + 1, durable + 1)), ErrWalFailed);
    w.close();
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no half-made segment left');
    const r = Wal.open(dir, { segmentSizeBytes: SEG });
    assert.equal(r.repaired, null, 'nothing torn: the failed segment creation left no partial file');
    assert.deepEqual(plain(r.entries), plain(entries(1, durable)));
    r.wal.close();
  } finally {
    m.umount();
  }
});

test('ENOSPC through the worker: fatal code NoSpace in the status words, durable prefix survives', { skip: skipReason }, async () => {
  const m = mountTiny(256 * 1024) as { dir: string; umount: () => void };
  try {
    const dir = path.join(m.dir, 'member', 'wal');
    const { client } = await WalClient.open({ dir, metadata: MD, segmentSizeBytes: SEG, ringCapacityBytes: 1 << 20 });
    let durableIndex = 0;
    client.onDurable((i) => (durableIndex = i));
    const fatal = new Promise<WalFatalError>((res) => client.onFatal(res));
    let i = 1;
    let rejected: unknown = null;
    while (!client.fatal && i < 200_000) {
      try {
        const seq = client.append({ term: 1, vote: 6, commit: i - 1 }, entries(i, i + 9));
        i += 10;
        await client.waitDurable(seq);
      } catch (e) {
        rejected = e;
        break;
      }
    }
    const f = await fatal;
    assert.equal(f.code, WalErrorCode.NoSpace);
    assert.match(f.message, /ENOSPC/);
    assert.ok(rejected instanceof WalFatalError);
    assert.throws(() => client.append(null, entries(i, i)), WalFatalError);
    await client.close();
    const r = Wal.open(dir, { segmentSizeBytes: SEG });
    assert.ok(durableIndex > 0);
    assert.ok(r.entries.length >= durableIndex, `reopen has ${r.entries.length} entries, ${durableIndex} were durable`);
    assert.deepEqual(plain(r.entries.slice(0, durableIndex)), plain(entries(1, durableIndex)));
    r.wal.close();
  } finally {
    m.umount();
  }
});
