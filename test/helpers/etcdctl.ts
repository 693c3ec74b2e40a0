/**
 * Runs etcdctl (API v3) against an endpoint and captures its result.
 */
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';

/** Result of one etcdctl invocation. */
export interface EtcdctlResult { code: number; stdout: string; stderr: string }

/**
 * `etcdctl --endpoints=<endpoint> <args...>` with ETCDCTL_API=3; `input` is written to stdin
 * (e.g. a txn script). Never rejects on a non-zero exit code; times out after `timeoutMs`.
 */
export function etcdctl(endpoint: string | string[], args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<EtcdctlResult> {
  const eps = Array.isArray(endpoint) ? endpoint.join(',') : endpoint;
  return new Promise((resolve, reject) => {
    const child = spawn(process.env.ETCDCTL_BIN ?? 'etcdctl', [`--endpoints=${eps}`, '--dial-timeout=5s', '--command-timeout=20s', ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    const t = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`etcdctl ${args.join(' ')} timed out`)); }, opts.timeoutMs ?? 60_000);
    child.on('error', (e) => { clearTimeout(t); reject(e); });
    child.on('close', (code) => { clearTimeout(t); resolve({ code: code ?? -1, stdout, stderr }); });
    child.stdin.on('error', () => { /* etcdctl may exit without reading stdin (EPIPE) */ });
    child.stdin.end(opts.input ?? '');
  });
}

/** etcdctl's error as `<grpc code> | <Error: line>` (its retry log line carries timestamps and client ids). */
export function etcdctlError(stderr: string): string {
  const code = /code = (\w+) desc/.exec(stderr)?.[1] ?? '?';
  const line = stderr.split('\n').find((l) => l.startsWith('Error:')) ?? stderr.trim();
  return `${code} | ${line}`;
}

/** Replaces member ids (they differ per server) so alarm listings compare. */
export function anonymizeMemberIds(s: string): string {
  return s.replace(/memberID:\d+/g, 'memberID:<id>');
}

/** One member as `etcdctl endpoint status` prints it (IDs stay hex strings: etcd's are full 64-bit). */
export interface EpStatus { endpoint: string; id: string; isLeader: boolean }

/** `etcdctl endpoint status` of each endpoint (IDs as etcdctl prints them, hex). */
export async function endpointStatus(endpoints: string[]): Promise<EpStatus[]> {
  const r = await etcdctl(endpoints, ['endpoint', 'status']);
  assert.equal(r.code, 0, r.stderr);
  // "127.0.0.1:2379, 8e9e05c52164694d, 3.4.23, 20 kB, true, false, 2, 8, 8, "
  return r.stdout.trim().split('\n').map((line) => {
    const f = line.split(', ');
    return { endpoint: f[0], id: f[1], isLeader: f[4] === 'true' };
  });
}

/** Polls until every listed member names the same leader; returns it (hex). */
export async function agreedLeader(endpoints: string[], timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const st = await endpointStatus(endpoints);
      const leaders = st.filter((s) => s.isLeader);
      if (leaders.length === 1 && st.length === endpoints.length) {
        // Every member must also report that leader in its own Status (not just one member claiming it).
        const r = await etcdctl(endpoints, ['endpoint', 'status', '-w', 'json']);
        const ids = [...r.stdout.matchAll(/"leader":(\d+)/g)].map((m) => BigInt(m[1]).toString(16));
        if (ids.length === endpoints.length && ids.every((x) => x === leaders[0].id)) return leaders[0].id;
      }
      last = JSON.stringify(st);
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no agreed leader within ${timeoutMs} ms: ${last}`);
}
