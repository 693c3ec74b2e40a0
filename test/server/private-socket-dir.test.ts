/**
 * The private directory of a member's internal HTTP sockets (src/server/private-socket-dir.ts): a member killed
 * with SIGKILL leaves its `etcetera-http-<pid>-*` directory behind, and the next member started with the same temp
 * dir removes it — and only directories that are certainly stale: a live pid, a socket that still accepts
 * connections (a member in another PID namespace), unexpected content or a name without pid are left alone. A
 * member stopped normally removes its own. Each member runs with its own TMPDIR, so the machine's temp dir is not
 * touched.
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { startEtcetera, type ServerHandle } from '../helpers/servers';
import { trackTempDir } from '../helpers/procs';

const handles: ServerHandle[] = [];
const servers: net.Server[] = [];
after(async () => {
  for (const s of servers) s.close();
  for (const h of handles) await h.stop().catch(() => undefined);
});

/** The private directories in `tmp` named for `pid`. */
function dirsOf(tmp: string, pid: number): string[] {
  return fs.readdirSync(tmp).filter((n) => n.startsWith(`etcetera-http-${pid}-`));
}

/** A pid that belonged to a process which has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

test('private socket dirs: a crashed member\'s is removed at the next start; live, foreign or unexpected ones are kept', { timeout: 120_000 }, async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'etcetera-privdir-test-'));
  trackTempDir(tmp);
  const env = { TMPDIR: tmp };

  const first = await startEtcetera({ env });
  handles.push(first);
  const own = dirsOf(tmp, first.pid);
  assert.equal(own.length, 1, `one private dir for pid ${first.pid}: ${fs.readdirSync(tmp).join(', ')}`);
  const firstDir = path.join(tmp, own[0]!);
  assert.equal(fs.statSync(firstDir).mode & 0o777, 0o700, 'mode 0700');
  assert.ok(fs.readdirSync(firstDir).includes('http.sock'), 'the app\'s socket is inside');

  // Decoys, each of which must survive the next start.
  const dead = deadPid();
  const keep: Record<string, string> = {
    livePid: path.join(tmp, `etcetera-http-${process.pid}-aaaaaa`),
    listening: path.join(tmp, `etcetera-http-${dead}-bbbbbb`),
    unexpected: path.join(tmp, `etcetera-http-${dead}-cccccc`),
    noPid: path.join(tmp, 'etcetera-http-dddddd'),
  };
  for (const d of Object.values(keep)) fs.mkdirSync(d, { mode: 0o700 });
  const srv = net.createServer((c) => c.destroy());
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(path.join(keep.listening!, 'http.sock'), r));
  fs.writeFileSync(path.join(keep.unexpected!, 'notes.txt'), 'not a socket');
  const staleEmpty = path.join(tmp, `etcetera-http-${dead}-eeeeee`);
  fs.mkdirSync(staleEmpty, { mode: 0o700 });

  await first.kill('SIGKILL');
  assert.ok(fs.existsSync(firstDir), 'SIGKILL leaves the directory behind');

  const second = await startEtcetera({ env });
  handles.push(second);
  assert.equal(fs.existsSync(firstDir), false, `the crashed member's directory is removed:\n${second.output().slice(-2000)}`);
  assert.equal(fs.existsSync(staleEmpty), false, 'an empty directory of a dead pid is removed');
  for (const [why, d] of Object.entries(keep)) assert.ok(fs.existsSync(d), `kept: ${why}`);
  assert.ok(fs.readdirSync(keep.unexpected!).includes('notes.txt'));
  assert.match(second.output(), /removed private socket directories left by members that crashed/);
  const secondDirs = dirsOf(tmp, second.pid);
  assert.equal(secondDirs.length, 1);

  await second.stop({ keepData: false });
  assert.equal(fs.existsSync(path.join(tmp, secondDirs[0]!)), false, 'a member stopped normally removes its own directory');
});
