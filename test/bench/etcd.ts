/**
 * Test helper: starts a throwaway single-member etcd (Debian's etcd 3.4) on free loopback ports with a temp
 * data dir, and stops it (by its own pid) afterwards.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Path of the etcd binary, or null when it is not installed. */
export function etcdBinary(): string | null {
  const r = spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p ? p : null;
}

import { freePort } from '../helpers/ports';
export { freePort };

export interface EtcdHandle { endpoint: string; proc: ChildProcess; dir: string; stop(): Promise<void> }

/** Starts etcd and resolves once its client port accepts connections and it reports a leader (≤ 20 s). */
export async function startEtcd(bin: string): Promise<EtcdHandle> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-etcd-'));
  const cport = await freePort();
  const pport = await freePort();
  const client = `http://127.0.0.1:${cport}`;
  const peer = `http://127.0.0.1:${pport}`;
  const log = fs.openSync(path.join(dir, 'etcd.log'), 'w');
  const proc = spawn(bin, [
    '--name', 'b1', '--data-dir', path.join(dir, 'data'),
    '--listen-client-urls', client, '--advertise-client-urls', client,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `b1=${peer}`, '--initial-cluster-state', 'new',
  ], { stdio: ['ignore', log, log] });
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const gone = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    }
    fs.closeSync(log);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 20000;
  for (;;) {
    const r = spawnSync('etcdctl', ['--endpoints', client, '--dial-timeout', '1s', 'endpoint', 'status'], { encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' } });
    if (r.status === 0) break;
    if (Date.now() > deadline || proc.exitCode !== null) {
      const text = fs.existsSync(path.join(dir, 'etcd.log')) ? fs.readFileSync(path.join(dir, 'etcd.log'), 'utf8').slice(-2000) : '';
      await stop();
      throw new Error(`etcd did not come up on ${client}:\n${text}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { endpoint: `127.0.0.1:${cport}`, proc, dir, stop };
}
