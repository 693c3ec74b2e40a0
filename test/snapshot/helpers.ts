/**
 * Helpers of the snapshot tests: running etcetera-util, `etcdctl snapshot …` (no endpoint), and comparing two
 * servers' keyspaces revision by revision.
 */
import { spawn } from 'node:child_process';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { grpcTarget, type RawClient } from '../helpers/grpc';
import { root } from '../../src/wire/codec';

/** Result of one CLI run. */
export interface CliResult { code: number; stdout: string; stderr: string }

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    const t = setTimeout(() => child.kill('SIGKILL'), 600_000);
    child.on('error', (e) => { clearTimeout(t); reject(e); });
    child.on('close', (code) => { clearTimeout(t); resolve({ code: code ?? -1, stdout, stderr }); });
  });
}

/** Path of the compiled etcetera-util CLI. */
export function utilCli(): string {
  return path.resolve(__dirname, '..', '..', 'src', 'cli', 'etcetera-util.js');
}

/** `etcetera-util <args>`. */
export function etceteraUtil(args: string[]): Promise<CliResult> {
  return run(process.execPath, [utilCli(), ...args]);
}

/** `etcdctl <args>` with ETCDCTL_API=3 and no endpoint (snapshot status/restore, defrag --data-dir). */
export function etcdctlOffline(args: string[]): Promise<CliResult> {
  return run(process.env.ETCDCTL_BIN ?? 'etcdctl', args, { ETCDCTL_API: '3' });
}

/** The last line of a CLI's stderr: etcdctl's "Error: …" after its log lines. */
export function lastLine(s: string): string {
  return s.trim().split('\n').pop() ?? '';
}

const Z = Buffer.from([0]);

/** Every kv of a Range over the whole keyspace at `revision` (0 = current), as comparable plain objects. */
export async function keyspaceAt(c: RawClient, revision: number): Promise<{ revision: number; kvs: object[] } | { err: string }> {
  const s = await c.settle('KV', 'Range', { key: Z, rangeEnd: Z, revision });
  if (s.err) return { err: s.err.details };
  const kvs = (s.ok.kvs ?? []).map((kv: any) => ({
    key: Buffer.from(kv.key ?? []).toString('hex'),
    value: Buffer.from(kv.value ?? []).toString('hex'),
    createRevision: Number(kv.createRevision ?? 0),
    modRevision: Number(kv.modRevision ?? 0),
    version: Number(kv.version ?? 0),
    lease: String(kv.lease ?? 0),
  }));
  return { revision: Number(s.ok.header.revision), kvs };
}

/**
 * Asserts that `b` serves what `a` serves: the keyspace at every revision from `from` to `to` (answers and
 * errors), HashKV at the current revision and at `to`, and every lease with its granted TTL and keys.
 * Returns the number of revisions compared.
 */
export async function assertSameStore(a: RawClient, b: RawClient, from: number, to: number, what: string): Promise<number> {
  let n = 0;
  for (let rev = from; rev <= to; rev++) {
    const [x, y] = await Promise.all([keyspaceAt(a, rev), keyspaceAt(b, rev)]);
    assert.deepEqual(y, x, `${what}: keyspace at revision ${rev}`);
    n++;
  }
  for (const revision of [0, to]) {
    const [x, y] = await Promise.all([a.call('Maintenance', 'HashKV', { revision }), b.call('Maintenance', 'HashKV', { revision })]);
    assert.equal(y.hash, x.hash, `${what}: HashKV(${revision})`);
    assert.equal(String(y.compactRevision), String(x.compactRevision), `${what}: compact revision`);
    assert.equal(String(y.header.revision), String(x.header.revision), `${what}: HashKV header revision`);
  }
  const leases = async (c: RawClient): Promise<object[]> => {
    const l = await c.call('Lease', 'LeaseLeases', {});
    const ids = (l.leases ?? []).map((x: any) => String(x.ID)).sort();
    const out: object[] = [];
    for (const id of ids) {
      const t = await c.call('Lease', 'LeaseTimeToLive', { ID: id, keys: true });
      assert.ok(Number(t.TTL) <= Number(t.grantedTTL) && Number(t.TTL) > 0, `${what}: lease ${id} remaining TTL ${t.TTL} of ${t.grantedTTL}`);
      out.push({ id, grantedTTL: String(t.grantedTTL), keys: (t.keys ?? []).map((k: Uint8Array) => Buffer.from(k).toString('hex')).sort() });
    }
    return out;
  };
  const [la, lb] = await Promise.all([leases(a), leases(b)]);
  assert.deepEqual(lb, la, `${what}: leases`);
  return n;
}

/** One Maintenance.Snapshot message as received. */
export interface SnapshotMessage { remainingBytes: number; blob: Buffer; hasHeader: boolean }

/** Reads a whole Maintenance.Snapshot stream from `endpoint` with a raw grpc-js client. */
export function snapshotMessages(endpoint: string): Promise<SnapshotMessage[]> {
  const resT = root.lookupType('etcdserverpb.SnapshotResponse');
  const client = new grpc.Client(grpcTarget(endpoint), grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const out: SnapshotMessage[] = [];
    const call = client.makeServerStreamRequest(
      '/etcdserverpb.Maintenance/Snapshot',
      () => Buffer.alloc(0),
      (b: Buffer) => {
        const m = resT.decode(b) as unknown as { header?: object | null; remainingBytes: number | { toNumber(): number }; blob: Uint8Array };
        const rb = typeof m.remainingBytes === 'number' ? m.remainingBytes : m.remainingBytes.toNumber();
        return { remainingBytes: rb, blob: Buffer.from(m.blob), hasHeader: m.header != null };
      },
      {},
      new grpc.Metadata(),
      { deadline: Date.now() + 120_000 },
    );
    call.on('data', (m: SnapshotMessage) => out.push(m));
    call.on('error', (e) => { client.close(); reject(e); });
    call.on('end', () => { client.close(); resolve(out); });
  });
}
