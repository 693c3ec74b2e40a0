/**
 * A long-running etcdctl (lock / elect / elect -l) for tests: output captured as it arrives, wait for text,
 * signal it, wait for its exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { track } from '../helpers/procs';

export class EtcdctlSession {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;
  private waiters: Array<() => void> = [];

  constructor(endpoint: string, args: string[]) {
    this.child = spawn(process.env.ETCDCTL_BIN ?? 'etcdctl', [`--endpoints=${endpoint}`, '--dial-timeout=5s', ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    track(this.child);
    this.child.stdout!.on('data', (b: Buffer) => { this.stdout += b.toString(); this.wake(); });
    this.child.stderr!.on('data', (b: Buffer) => { this.stderr += b.toString(); this.wake(); });
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => { this.wake(); resolve(code); }));
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves once stdout has at least `lines` complete lines; rejects after `timeoutMs`. */
  async lines(n: number, timeoutMs = 20_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ls = this.stdout.split('\n');
      if (ls.length - 1 >= n) return ls.slice(0, n);
      if (Date.now() > deadline) throw new Error(`etcdctl: ${n} lines not seen in ${timeoutMs} ms; stdout=${JSON.stringify(this.stdout)} stderr=${this.stderr}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }

  /** SIGINT (etcdctl unlocks / resigns and exits), then waits for the exit code. */
  async interrupt(): Promise<number | null> {
    this.child.kill('SIGINT');
    return this.exited;
  }

  kill(): void {
    try { this.child.kill('SIGKILL'); } catch { /* gone */ }
  }
}
