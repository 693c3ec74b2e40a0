/**
 * Child-process bookkeeping for tests: every server a helper spawns is registered here and killed
 * (SIGKILL) when the test process exits, however it exits — a failing assertion, an uncaught
 * exception, or node's test runner finishing the file. Temp dirs the helpers created are removed too.
 */
import { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let hooked = false;

function hook(): void {
  if (hooked) return;
  hooked = true;
  const cleanup = (): void => {
    for (const c of children) {
      try { if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL'); } catch { /* already gone */ }
    }
    children.clear();
    for (const d of tempDirs) {
      try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ }
    }
    tempDirs.clear();
  };
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => { cleanup(); process.exit(130); });
  }
}

/** Registers a child so it is SIGKILLed at process exit if still running; unregisters itself on exit. */
export function track(child: ChildProcess): void {
  hook();
  children.add(child);
  child.once('exit', () => children.delete(child));
}

/** Registers a temp dir to be removed at process exit (unless removed earlier). */
export function trackTempDir(dir: string): void {
  hook();
  tempDirs.add(dir);
}

/** Removes a tracked temp dir now. */
export function removeTempDir(dir: string): void {
  tempDirs.delete(dir);
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Kills every still-running tracked child with SIGKILL and waits for them to exit. Use in `after()`. */
export async function killAllChildren(): Promise<void> {
  const waits: Promise<void>[] = [];
  for (const c of children) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    waits.push(new Promise((r) => c.once('exit', () => r())));
    try { c.kill('SIGKILL'); } catch { /* gone */ }
  }
  await Promise.all(waits);
}

/** Number of tracked children still running (for a "no stray processes" assertion). */
export function runningChildren(): number {
  let n = 0;
  for (const c of children) if (c.exitCode === null && c.signalCode === null) n++;
  return n;
}
