/**
 * The README's "Walkthrough: a 3-member cluster with TLS, client certificates and auth" runs as written, against
 * etcetera and against etcd 3.4 (the same script with `etcd` as the binary), and every `# → text` annotation in it
 * appears in the script's output, in order, for both. Only the ports are changed (to free ones) and the script runs
 * in a temp dir, so certificates are made at test time and never land in the repository.
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { etceteraCli, hasEtcd, hasEtcdctl, NO_ETCD, type ServerKind } from '../helpers/servers';
import { freePorts } from '../helpers/ports';
import { trackTempDir } from '../helpers/procs';
import { repoPath } from './ops-helpers';

const HEADING = '### Walkthrough: a 3-member cluster with TLS, client certificates and auth';
const SCRIPT_TIMEOUT_MS = 150_000;
const skip = !hasEtcd() || !hasEtcdctl() ? NO_ETCD : undefined;
const groups: number[] = [];
after(() => {
  for (const pid of groups) {
    try { process.kill(-pid, 'SIGKILL'); } catch { /* already gone */ }
  }
});

/** The ```sh blocks of the walkthrough subsection, joined. */
function walkthrough(): string {
  const readme = fs.readFileSync(repoPath('README.md'), 'utf8');
  const start = readme.indexOf(HEADING);
  assert.ok(start >= 0, `README has "${HEADING}"`);
  const rest = readme.slice(start + HEADING.length);
  const section = rest.slice(0, rest.search(/^#{2,3} /m));
  const blocks = [...section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
  assert.ok(blocks.length > 0, 'the walkthrough has a sh block');
  return blocks.join('\n');
}

/** The `# → text` annotations, in order. */
function expectations(script: string): string[] {
  return script.split('\n').flatMap((l) => {
    const i = l.indexOf('→ ');
    return i >= 0 && l.lastIndexOf('#', i) >= 0 ? [l.slice(i + 2).trim()] : [];
  });
}

/** Runs the walkthrough for `kind` in a fresh temp dir with free ports; resolves its combined output. */
async function run(kind: ServerKind, script: string): Promise<{ out: string; logs: string }> {
  const ports = await freePorts(6);
  const byOld = new Map<string, number>();
  ['12379', '12380', '22379', '22380', '32379', '32380'].forEach((p, i) => byOld.set(p, ports[i]!));
  const binary = kind === 'etcd' ? 'etcd' : `"${process.execPath}" "${etceteraCli()}"`;
  const text = script
    .replace(/\b[123]23(?:79|80)\b/g, (p) => String(byOld.get(p)))
    .replaceAll('node dist/src/cli/etcetera.js', binary);
  // The etcd and etcetera runs go side by side: a README port left unreplaced would be taken by whichever started
  // first, and the other's members would die with EADDRINUSE while its etcdctl loop waited on the wrong cluster.
  assert.doesNotMatch(text, /:[123]23(?:79|80)\b/, 'every README port is replaced by a free one');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `etcetera-walk-${kind}-`));
  trackTempDir(dir);
  fs.writeFileSync(path.join(dir, 'walkthrough.sh'), text);
  // Own process group: the members the script starts in the background are killed with it if it hangs.
  const child = spawn('bash', ['walkthrough.sh'], { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  groups.push(child.pid!);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } }, SCRIPT_TIMEOUT_MS);
  // 'exit', not 'close': members the script left in the background hold its stdout/stderr open until killed.
  const closed = new Promise<void>((r) => child.once('close', () => r()));
  await new Promise<void>((r) => child.once('exit', () => r()));
  clearTimeout(timer);
  try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* all exited */ }
  await closed;
  let logs = '';
  for (const m of ['infra1', 'infra2', 'infra3']) {
    try { logs += `\n--- ${m}.log (tail)\n` + fs.readFileSync(path.join(dir, 'data', `${m}.log`), 'utf8').slice(-3000); } catch { /* none */ }
  }
  return { out, logs };
}

/** The annotations not found in `out` in order (empty when all are there). */
function missing(out: string, wanted: string[]): string[] {
  let at = 0;
  const miss: string[] = [];
  for (const w of wanted) {
    const i = out.indexOf(w, at);
    if (i < 0) miss.push(w);
    else at = i + w.length;
  }
  return miss;
}

test('README walkthrough: TLS on client and peer ports, client-cert auth, auth enable, read-only role — etcetera and etcd 3.4 alike', { skip, timeout: 2 * SCRIPT_TIMEOUT_MS + 30_000 }, async () => {
  const script = walkthrough();
  for (const flag of ['--client-cert-auth', '--peer-client-cert-auth', '--trusted-ca-file', '--peer-trusted-ca-file', 'auth enable', '--cacert', '--cert', '--key']) {
    assert.ok(script.includes(flag), `the walkthrough uses ${flag}`);
  }
  const wanted = expectations(script);
  assert.ok(wanted.length >= 12, `annotations: ${JSON.stringify(wanted)}`);
  const [etcd, etcetera] = await Promise.all([run('etcd', script), run('etcetera', script)]);
  assert.deepEqual(missing(etcd.out, wanted), [], `etcd 3.4 output:\n${etcd.out}${etcd.logs}`);
  assert.deepEqual(missing(etcetera.out, wanted), [], `etcetera output:\n${etcetera.out}${etcetera.logs}`);
});
