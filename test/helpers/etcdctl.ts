/**
 * Runs etcdctl (API v3) against an endpoint and captures its result.
 */
import { spawn } from 'node:child_process';

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
