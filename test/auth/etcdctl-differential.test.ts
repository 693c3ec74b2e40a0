/**
 * Auth, differential: the same etcdctl script (user / role / permission management, auth enable / disable, logins
 * with --user, permission-denied cases, a refused watch, a refused lease revoke, admin-only RPCs) against etcetera
 * and the reference etcd 3.4. Each step's exit code, stdout and error line must match once lease, cluster and
 * member IDs are normalised.
 */
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startEtcd, startEtcetera, hasEtcd, hasEtcdctl, NO_ETCD, NO_ETCDCTL, type ServerHandle } from '../helpers/servers';
import { etcdctl } from '../helpers/etcdctl';
import { killAllChildren } from '../helpers/procs';

const skip = !hasEtcd() ? NO_ETCD : !hasEtcdctl() ? NO_ETCDCTL : undefined;
let ours: ServerHandle | undefined;
let ref: ServerHandle | undefined;

before(async () => {
  if (skip) return;
  [ours, ref] = await Promise.all([startEtcetera(), startEtcd()]);
});
after(async () => {
  fs.rmSync(SNAPSHOT_FILE, { force: true });
  fs.rmSync(`${SNAPSHOT_FILE}.part`, { force: true });
  await Promise.all([ours?.stop(), ref?.stop()]);
  await killAllChildren();
});

const ROOT = ['--user', 'root:rootpw'];
const ALICE = ['--user', 'alice:apw'];

/** Where a `snapshot save` step writes (only root may: the non-admin step writes nothing). */
const SNAPSHOT_FILE = path.join(os.tmpdir(), `etcetera-auth-diff-${process.pid}.db`);

/**
 * One step: etcdctl args (`$LEASE` is replaced by the lease granted earlier, `$MEMBER` by the member ID a
 * `member list` printed), optional stdin.
 */
interface Step { args: string[]; input?: string }

const STEPS: Step[] = [
  // management while auth is off
  { args: ['auth', 'enable'] },
  { args: ['user', 'add', 'root:rootpw'] },
  { args: ['role', 'add', 'root'] },
  { args: ['user', 'grant-role', 'root', 'root'] },
  { args: ['user', 'add', 'alice:apw'] },
  { args: ['user', 'add', 'alice:other'] },
  { args: ['user', 'add', 'carol', '--no-password'] },
  { args: ['role', 'add', 'ro'] },
  { args: ['role', 'add', 'ro'] },
  { args: ['role', 'add', 'rw'] },
  { args: ['role', 'grant-permission', 'ro', 'read', '/app/', '--prefix'] },
  { args: ['role', 'grant-permission', 'rw', 'readwrite', '/data/', '--prefix'] },
  { args: ['role', 'grant-permission', 'rw', 'write', '/data/', '--prefix'] },
  { args: ['role', 'grant-permission', 'rw', 'read', '/single'] },
  { args: ['role', 'grant-permission', 'rw', 'write', '/zz', '--from-key'] },
  { args: ['role', 'grant-permission', 'nosuch', 'read', '/x'] },
  { args: ['user', 'grant-role', 'alice', 'ro'] },
  { args: ['user', 'grant-role', 'alice', 'rw'] },
  { args: ['user', 'grant-role', 'alice', 'ro'] },
  { args: ['user', 'grant-role', 'alice', 'nosuch'] },
  { args: ['user', 'grant-role', 'nobody', 'ro'] },
  { args: ['user', 'revoke-role', 'alice', 'root'] },
  { args: ['role', 'revoke-permission', 'ro', '/nope'] },
  { args: ['role', 'revoke-permission', 'nosuch', '/nope'] },
  { args: ['role', 'get', 'ro'] },
  { args: ['role', 'get', 'rw'] },
  { args: ['role', 'get', 'nosuch'] },
  { args: ['role', 'list'] },
  { args: ['user', 'get', 'alice'] },
  { args: ['user', 'get', 'alice', '--detail'] },
  { args: ['user', 'get', 'nobody'] },
  { args: ['user', 'list'] },
  { args: ['user', 'delete', 'nobody'] },
  { args: ['role', 'delete', 'nosuch'] },
  { args: ['put', '/secret/k', 'before-auth'] },
  // enabled (etcdctl grants role root itself when needed)
  { args: ['auth', 'enable'] },
  { args: ['auth', 'enable', ...ROOT] },
  { args: ['put', '/app/x', '1'] },
  { args: ['get', '/app/x'] },
  { args: ['put', '/app/x', '1', ...ROOT] },
  { args: ['put', '/data/a', 'v', ...ROOT] },
  { args: ['get', '/app/x', ...ALICE] },
  { args: ['get', '/app/', '--prefix', ...ALICE] },
  { args: ['get', '/app', '--prefix', ...ALICE] },
  { args: ['get', '/other', ...ALICE] },
  { args: ['get', '/single', ...ALICE] },
  { args: ['get', '/single', '--prefix', ...ALICE] },
  { args: ['put', '/app/x', '2', ...ALICE] },
  { args: ['put', '/data/b', '2', ...ALICE] },
  { args: ['put', '/data/b', '3', '--prev-kv', ...ALICE] },
  { args: ['put', '/zz/z', '3', ...ALICE] },
  { args: ['put', '/zy', '3', ...ALICE] },
  { args: ['del', '/data/', '--prefix', ...ALICE] },
  { args: ['del', '/app/x', ...ALICE] },
  { args: ['get', '/app/x', '--user', 'alice:wrong'] },
  { args: ['get', '/app/x', '--user', 'nobody:pw'] },
  { args: ['get', '/app/x', '--user', 'carol:'] },
  // txn: every compare and op is checked
  { args: ['txn', ...ALICE], input: 'value("/app/x") = "1"\n\nput /data/t ok\n\nget /app/x\n\n' },
  { args: ['txn', ...ALICE], input: 'value("/other") = "1"\n\nput /data/t ok\n\n\n' },
  { args: ['txn', ...ALICE], input: 'value("/app/x") = "1"\n\nput /app/t no\n\n\n' },
  { args: ['txn', ...ALICE], input: 'value("/app/x") = "2"\n\n\nget /secret/k\n\n' },
  { args: ['txn', ...ALICE], input: 'value("/app/x") = "2"\n\n\ndel /data/t\n\n' },
  // leases: revoking needs write on every attached key
  { args: ['lease', 'grant', '100', ...ROOT] },
  { args: ['put', '/secret/leased', 'v', '--lease=$LEASE', ...ROOT] },
  { args: ['lease', 'revoke', '$LEASE', ...ALICE] },
  { args: ['put', '/data/leased', 'v', '--lease=$LEASE', ...ALICE] },
  { args: ['lease', 'revoke', '$LEASE', ...ROOT] },
  // self-service reads and admin-only operations
  { args: ['user', 'get', 'alice', ...ALICE] },
  { args: ['user', 'get', 'root', ...ALICE] },
  { args: ['role', 'get', 'ro', ...ALICE] },
  { args: ['role', 'get', 'root', ...ALICE] },
  { args: ['user', 'list', ...ALICE] },
  { args: ['role', 'list', ...ALICE] },
  { args: ['role', 'add', 'x', ...ALICE] },
  { args: ['user', 'add', 'y:y', ...ALICE] },
  { args: ['auth', 'disable', ...ALICE] },
  { args: ['defrag', ...ALICE] },
  { args: ['endpoint', 'hashkv', ...ALICE] },
  { args: ['member', 'add', 'newm', '--peer-urls=http://127.0.0.1:1', ...ALICE] },
  // the other admin-only RPCs (etcd's maintenance and cluster guards); member list is open to all
  { args: ['member', 'list', ...ALICE] },
  { args: ['member', 'update', '$MEMBER', '--peer-urls=http://127.0.0.1:1', ...ALICE] },
  { args: ['member', 'remove', '$MEMBER', ...ALICE] },
  { args: ['member', 'promote', '$MEMBER', ...ALICE] },
  { args: ['move-leader', '$MEMBER', ...ALICE] },
  { args: ['alarm', 'list', ...ALICE] },
  { args: ['alarm', 'disarm', ...ALICE] },
  { args: ['compaction', '2', ...ALICE] },
  { args: ['snapshot', 'save', SNAPSHOT_FILE, ...ALICE] },
  { args: ['alarm', 'list', ...ROOT] },
  { args: ['compaction', '2', ...ROOT] },
  { args: ['user', 'list', ...ROOT] },
  { args: ['user', 'revoke-role', 'root', 'root', ...ROOT] },
  { args: ['user', 'delete', 'root', ...ROOT] },
  { args: ['role', 'delete', 'root', ...ROOT] },
  // password change: the old password stops working
  { args: ['user', 'passwd', 'alice', '--interactive=false', ...ROOT], input: 'newpw\n' },
  { args: ['get', '/app/x', ...ALICE] },
  { args: ['get', '/app/x', '--user', 'alice:newpw'] },
  // revoking a role, deleting a role, then a user
  { args: ['user', 'revoke-role', 'alice', 'ro', ...ROOT] },
  { args: ['get', '/app/x', '--user', 'alice:newpw'] },
  { args: ['role', 'delete', 'rw', ...ROOT] },
  { args: ['user', 'get', 'alice', ...ROOT] },
  { args: ['user', 'delete', 'alice', ...ROOT] },
  { args: ['get', '/app/x', '--user', 'alice:newpw'] },
  { args: ['auth', 'disable', ...ROOT] },
  { args: ['get', '/app/x'] },
  { args: ['user', 'list'] },
  { args: ['role', 'list'] },
];

/** Hides what legitimately differs: IDs, revisions are kept (they must match). */
function normalise(text: string, lease: string | null): string {
  let t = lease !== null ? text.split(lease).join('LEASE') : text;
  t = t
    .replace(/cluster_id:\d+ member_id:\d+/g, 'cluster_id:X member_id:X')
    .replace(/\b[0-9a-f]{16}\b/g, 'ID')
    .replace(/, \d+ bytes|\d+\.\d+ [kM]?B/g, 'SIZE')
    .replace(/Finished defragmenting etcd member\[[^\]]*\]/g, 'Finished defragmenting etcd member[EP]')
    .replace(/127\.0\.0\.1:\d+/g, 'EP');
  return t;
}

/** etcdctl's error line (the last plain line of stderr; its JSON retry logs vary). */
function errorLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{'));
  return lines[lines.length - 1] ?? '';
}

async function runScript(h: ServerHandle): Promise<string[]> {
  const out: string[] = [];
  let lease: string | null = null;
  let member: string | null = null;
  // Member IDs are printed in hex without leading zeros, so they are hidden by value, not only by shape.
  const hide = (t: string): string => normalise(member !== null ? t.split(member).join('MEMBER') : t, lease);
  for (const step of STEPS) {
    const args = step.args.map((a) => a.replace('$LEASE', lease ?? '$LEASE').replace('$MEMBER', member ?? '$MEMBER'));
    const r = await etcdctl(h.clientUrl, args, { input: step.input });
    const m = /lease ([0-9a-f]{16}) granted/.exec(r.stdout);
    if (m) lease = m[1]!;
    const mm = /^([0-9a-f]+), started,/m.exec(r.stdout);
    if (mm && member === null) member = mm[1]!;
    out.push(`$ ${step.args.join(' ')}\n[${r.code}] ${hide(r.stdout).trim()} ${hide(errorLine(r.stderr))}`);
  }
  return out;
}

test('etcdctl auth script: etcetera answers exactly as etcd 3.4', { skip, timeout: 240_000 }, async () => {
  const [a, b] = await Promise.all([runScript(ours!), runScript(ref!)]);
  if (process.env.AUTH_TRANSCRIPT) fs.writeFileSync(process.env.AUTH_TRANSCRIPT, a.join('\n') + '\n=====\n' + b.join('\n'));
  assert.equal(a.length, b.length);
  // The script exercises both outcomes (a transcript of connection errors would also be "equal").
  const all = a.join('\n');
  for (const expected of ['etcdserver: permission denied', 'etcdserver: user name is empty', 'Authentication Enabled', 'Role rw updated', 'SUCCESS', 'lease LEASE revoked', 'MEMBER, started']) {
    assert.ok(all.includes(expected), `transcript lacks ${expected}`);
  }
  for (let i = 0; i < a.length; i++) assert.equal(a[i], b[i], `step ${i}`);
});

/**
 * `etcdctl watch` as a user without read permission: etcd answers created + canceled with "etcdserver:
 * permission denied", which etcdctl prints before exiting; a permitted watch stays open (killed after 5 s).
 */
async function watchOutcome(h: ServerHandle, key: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.env.ETCDCTL_BIN ?? 'etcdctl', [`--endpoints=${h.clientUrl}`, '--user', 'wuser:wpw', 'watch', key], {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout.on('data', (b) => (text += b));
    child.stderr.on('data', (b) => (text += b));
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(t);
      const lines = text.split('\n').filter((l) => l !== '' && !l.startsWith('{'));
      resolve(`${signal ?? code}: ${lines.join(' | ')}`);
    });
  });
}

test('a watch on a range the user may not read is refused as etcd 3.4 refuses it', { skip, timeout: 120_000 }, async () => {
  const setup = async (h: ServerHandle): Promise<void> => {
    for (const args of [
      ['user', 'add', 'wuser:wpw'], ['role', 'add', 'wrole'], ['role', 'grant-permission', 'wrole', 'read', '/w/', '--prefix'],
      ['user', 'grant-role', 'wuser', 'wrole'],
    ]) await etcdctl(h.clientUrl, args);
    await etcdctl(h.clientUrl, ['user', 'add', 'root:rootpw']);
    await etcdctl(h.clientUrl, ['role', 'add', 'root']);
    await etcdctl(h.clientUrl, ['user', 'grant-role', 'root', 'root']);
    const r = await etcdctl(h.clientUrl, ['auth', 'enable']);
    assert.equal(r.code, 0, r.stderr);
  };
  await Promise.all([ours!.stop(), ref!.stop()]);
  [ours, ref] = await Promise.all([startEtcetera(), startEtcd()]);
  await Promise.all([setup(ours!), setup(ref!)]);
  for (const key of ['/secret', '/w/ok']) {
    const [a, b]: string[] = await Promise.all([watchOutcome(ours!, key), watchOutcome(ref!, key)]);
    assert.equal(a, b, `watch ${key}`);
  }
  assert.match(await watchOutcome(ours, '/secret'), /permission denied/);
});
