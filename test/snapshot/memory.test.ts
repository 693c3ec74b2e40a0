/**
 * Snapshot and restore with bounded memory (issue 10): a store of SNAPSHOT_STORE_MIB MiB (default 64; set 1024 for
 * the 1 GiB run) is written to etcetera, saved with `etcdctl snapshot save` and restored with `etcetera-util
 * snapshot restore`, while the anonymous resident memory (RssAnon: heap, stacks, worker threads — not the
 * file-backed pages of LMDB's memory map, which the kernel can drop) of the server and of the restore process is
 * sampled. The increase must stay below a bound that does not depend on the store size.
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { startEtcetera, hasEtcdctl, NO_ETCDCTL, type ServerHandle } from '../helpers/servers';
import { RawClient } from '../helpers/grpc';
import { etcdctl } from '../helpers/etcdctl';
import { killAllChildren, track, trackTempDir } from '../helpers/procs';
import { utilCli } from './helpers';

after(killAllChildren);

/** Anonymous resident memory of `pid` in MiB (0 once it exited). */
function rssAnonMiB(pid: number): number {
  try {
    const m = /RssAnon:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** Samples RssAnon of `pid` every 25 ms until stopped; returns the peak. */
function sampler(pid: number): { stop(): number } {
  let peak = rssAnonMiB(pid);
  const t = setInterval(() => { peak = Math.max(peak, rssAnonMiB(pid)); }, 25);
  return { stop: () => { clearInterval(t); return Math.max(peak, rssAnonMiB(pid)); } };
}

/** Increase of anonymous memory allowed while snapshotting or restoring any store size (MiB). */
const BOUND_MIB = 96;

test('snapshot save and restore of a large store in bounded memory', { skip: hasEtcdctl() ? undefined : NO_ETCDCTL, timeout: 1_800_000 }, async (t) => {
  const storeMiB = Number(process.env.SNAPSHOT_STORE_MIB ?? 64);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'etcetera-snapmem-'));
  trackTempDir(tmp);
  let server: ServerHandle | undefined;
  const c: RawClient[] = [];
  try {
    server = await startEtcetera({ extraArgs: ['--quota-backend-bytes=8589934592', '--snapshot-count=100000000'] });
    const valueBytes = 128 * 1024;
    const puts = Math.ceil((storeMiB * 1024 * 1024) / valueBytes);
    const value = Buffer.alloc(valueBytes, 0x61);
    const conc = 4;
    for (let w = 0; w < conc; w++) c.push(new RawClient(server.clientUrl));
    let next = 0;
    await Promise.all(c.map(async (cl) => {
      for (let i = next++; i < puts; i = next++) {
        value.writeUInt32BE(i, 0);
        await cl.put({ key: Buffer.from(`big/${String(i).padStart(8, '0')}`), value });
      }
    }));
    const baseline = rssAnonMiB(server.pid);
    const file = path.join(tmp, 'big.db');
    const s = sampler(server.pid);
    const t0 = Date.now();
    const save = await etcdctl(server.clientUrl, ['snapshot', 'save', file, '--command-timeout=1200s'], { timeoutMs: 1_250_000 });
    const saveMs = Date.now() - t0;
    const serverPeak = s.stop();
    assert.equal(save.code, 0, save.stderr);
    const size = fs.statSync(file).size;
    await server.stop();
    server = undefined;

    const t1 = Date.now();
    const child = spawn(process.execPath, [utilCli(), 'snapshot', 'restore', file, '--data-dir', path.join(tmp, 'restored')], { stdio: ['ignore', 'ignore', 'pipe'] });
    track(child);
    const rs = sampler(child.pid!);
    let stderr = '';
    child.stderr.on('data', (b) => (stderr += b));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (x) => resolve(x)));
    const restorePeak = rs.stop();
    const restoreMs = Date.now() - t1;
    assert.equal(code, 0, stderr);
    const restored = JSON.parse(stderr.trim().split('\n').pop()!);
    assert.equal(restored.keys, puts, 'every key restored');

    t.diagnostic(`store ${storeMiB} MiB (${puts} × ${valueBytes / 1024} KiB), snapshot file ${(size / 1048576).toFixed(1)} MiB`);
    t.diagnostic(`save: ${saveMs} ms, server RssAnon ${baseline.toFixed(1)} → peak ${serverPeak.toFixed(1)} MiB (+${(serverPeak - baseline).toFixed(1)})`);
    t.diagnostic(`restore: ${restoreMs} ms, etcetera-util peak RssAnon ${restorePeak.toFixed(1)} MiB`);
    assert.ok(size >= storeMiB * 1024 * 1024, 'the snapshot holds the store');
    assert.ok(serverPeak - baseline < BOUND_MIB, `snapshot raised the server's anonymous memory by ${(serverPeak - baseline).toFixed(1)} MiB`);
    assert.ok(restorePeak < BOUND_MIB + 64, `restore used ${restorePeak.toFixed(1)} MiB of anonymous memory`);
  } finally {
    for (const cl of c) cl.close();
    await server?.stop();
  }
});
