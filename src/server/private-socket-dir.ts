/**
 * The private directory holding a member's internal HTTP Unix sockets (src/api/http-upstream.ts), and the removal
 * of the ones a crashed member left behind. The directory is made by mkdtemp in the temp dir (mode 0700: only this
 * user may connect) and removed at close; a member killed with SIGKILL cannot remove it, so each start removes
 * the stale ones first.
 *
 * The directory's name carries its owner's pid (`etcetera-http-<pid>-XXXXXX`). One is stale, and removed, only
 * when all of these hold: it is a real directory owned by this user; its pid is not a running process; it holds
 * nothing but the sockets a member creates; and none of those sockets accepts a connection. The last check keeps a
 * live member's directory when its pid is not visible from here (another PID namespace sharing the temp dir) or
 * was reused. Anything unexpected is left alone: a directory is never removed on a guess.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

/** Prefix of the private directories (followed by `<pid>-` and mkdtemp's six characters). */
export const PRIVATE_DIR_PREFIX = 'etcetera-http-';
/** The private app's socket (src/server/listeners.ts). */
export const HTTP_SOCKET_NAME = 'http.sock';
/** The socket of the app serving clients whose certificate has a CN (src/server/listeners.ts). */
export const CN_HTTP_SOCKET_NAME = 'http-cn.sock';
/** The app serving plaintext client URLs when their mounts differ from TLS ones (src/server/listeners.ts). */
export const PLAIN_HTTP_SOCKET_NAME = 'http-plain.sock';
/** Every file a member creates in its private directory. */
const PRIVATE_SOCKET_NAMES: readonly string[] = [HTTP_SOCKET_NAME, CN_HTTP_SOCKET_NAME, PLAIN_HTTP_SOCKET_NAME];
/** How long a connection attempt to a leftover socket may take before it counts as refused (ms). */
export const STALE_PROBE_TIMEOUT_MS = 500;
/** Directories examined per start at most: a temp dir full of them is not scanned without end. */
export const MAX_STALE_DIRS_EXAMINED = 256;

const NAME = new RegExp(`^${PRIVATE_DIR_PREFIX}(\\d+)-[A-Za-z0-9]{6}$`);

/** Creates this process's private directory (mode 0700) in `tmpDir` and returns its path. Throws fs errors. */
export function makePrivateSocketDir(tmpDir: string = os.tmpdir()): string {
  return fs.mkdtempSync(path.join(tmpDir, `${PRIVATE_DIR_PREFIX}${process.pid}-`));
}

/** Whether a process with this pid exists (EPERM: it exists, owned by another user). */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Resolves true when something accepts a connection on the Unix socket `p` within the probe timeout. */
function socketAccepts(p: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ path: p });
    const done = (alive: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(alive);
    };
    // A listener too busy to accept within the timeout is alive for our purpose: keep its directory.
    const timer = setTimeout(() => done(true), STALE_PROBE_TIMEOUT_MS);
    s.once('connect', () => done(true));
    s.once('error', (e: NodeJS.ErrnoException) => done(e.code !== 'ECONNREFUSED' && e.code !== 'ENOENT'));
  });
}

/** Whether `dir` (named for `pid`) is a stale private directory, per the rules in this file's comment. */
async function isStale(dir: string, pid: number): Promise<boolean> {
  if (pid === process.pid || pidAlive(pid)) return false;
  const st = fs.lstatSync(dir);
  if (!st.isDirectory() || (process.getuid !== undefined && st.uid !== process.getuid())) return false;
  const entries = fs.readdirSync(dir, { withFileTypes: true });
  if (!entries.every((e) => e.isSocket() && PRIVATE_SOCKET_NAMES.includes(e.name))) return false;
  for (const e of entries) if (await socketAccepts(path.join(dir, e.name))) return false;
  return true;
}

/**
 * Removes the stale private directories in `tmpDir` and returns their paths. Never throws: a directory that cannot
 * be examined or removed is left (reported through `onError`).
 */
export async function removeStalePrivateDirs(tmpDir: string = os.tmpdir(), onError?: (dir: string, e: Error) => void): Promise<string[]> {
  let names: string[];
  try {
    names = fs.readdirSync(tmpDir).filter((n) => NAME.test(n)).slice(0, MAX_STALE_DIRS_EXAMINED);
  } catch (e) {
    onError?.(tmpDir, e as Error);
    return [];
  }
  const removed: string[] = [];
  for (const n of names) {
    const dir = path.join(tmpDir, n);
    try {
      if (!(await isStale(dir, Number(NAME.exec(n)![1])))) continue;
      fs.rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    } catch (e) {
      onError?.(dir, e as Error);
    }
  }
  return removed;
}
