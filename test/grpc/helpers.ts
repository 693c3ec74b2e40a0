/**
 * Test helpers for the gRPC layer: free ports, a raw grpc-js unary caller (bytes in, status out), a real
 * etcd 3.4 started on loopback ports as the reference, and an etcdctl runner.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';

import { freePort } from '../helpers/ports';
export { freePort };

/** Outcome of one raw unary call: status code and details, plus the response bytes on success. */
export interface RawResult { code: number; details: string; bytes?: Buffer }

/** A raw unary caller against one endpoint ("127.0.0.1:port"); `limitBytes` raises the client's send limit. */
export class RawClient {
  private readonly client: grpc.Client;
  constructor(endpoint: string) {
    this.client = new grpc.Client(endpoint, grpc.credentials.createInsecure(), {
      'grpc.max_send_message_length': 64 * 1024 * 1024,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    });
  }
  /** Calls `path` (e.g. "/etcdserverpb.KV/Put") with `bytes` as the request message. */
  call(pathName: string, bytes: Uint8Array): Promise<RawResult> {
    return new Promise((resolve) => {
      this.client.makeUnaryRequest(
        pathName,
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from(bytes),
        { deadline: Date.now() + 10_000 },
        (err: grpc.ServiceError | null, res?: Buffer) => {
          if (err) resolve({ code: err.code, details: err.details });
          else resolve({ code: 0, details: '', bytes: res });
        },
      );
    });
  }
  close(): void {
    this.client.close();
  }
}

/** A real etcd 3.4 member on loopback ports (the reference behaviour). */
export interface RealEtcd { endpoint: string; proc: ChildProcess; dir: string; stop(): Promise<void> }

/** Whether the Debian etcd binary is installed. */
export function haveEtcd(): boolean {
  return spawnSync('etcd', ['--version']).status === 0;
}

/** Starts etcd with the given limits and waits until a Range succeeds (≤ 15 s). */
export async function startRealEtcd(opts: { maxRequestBytes: number; maxTxnOps: number }): Promise<RealEtcd> {
  const [cport, pport] = [await freePort(), await freePort()];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcetera-grpc-ref-'));
  const client = `http://127.0.0.1:${cport}`;
  const peer = `http://127.0.0.1:${pport}`;
  const proc = spawn(
    'etcd',
    [
      '--name', 'ref', '--data-dir', path.join(dir, 'data'),
      '--listen-client-urls', client, '--advertise-client-urls', client,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `ref=${peer}`,
      '--max-request-bytes', String(opts.maxRequestBytes), '--max-txn-ops', String(opts.maxTxnOps),
      '--log-level', 'error', '--logger', 'zap',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const endpoint = `127.0.0.1:${cport}`;
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const raw = new RawClient(endpoint);
  const deadline = Date.now() + 15_000;
  try {
    for (;;) {
      // RangeRequest{key:"x"}
      const r = await raw.call('/etcdserverpb.KV/Range', Buffer.from([0x0a, 0x01, 0x78]));
      if (r.code === 0) break;
      if (Date.now() > deadline || proc.exitCode !== null) {
        await stop();
        throw new Error(`reference etcd did not start: ${r.details}\n${stderr}`);
      }
      await new Promise((res) => setTimeout(res, 100));
    }
  } finally {
    raw.close();
  }
  return { endpoint, proc, dir, stop };
}

/** Runs `ETCDCTL_API=3 etcdctl --endpoints <endpoint> ...args` (stdin optional); returns status and output. */
export function etcdctl(endpoint: string, args: string[], input?: string): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn('etcdctl', ['--endpoints', endpoint, '--dial-timeout', '3s', '--command-timeout', '5s', ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (status) => resolve({ status: status ?? -1, stdout, stderr }));
    p.stdin.end(input ?? '');
  });
}
