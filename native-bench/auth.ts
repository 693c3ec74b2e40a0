/**
 * Auth and TLS overhead, etcd vs etcetera (issue 9's closing benchmark): for each mode and system, a fresh 3-member
 * loopback cluster, driven by the Go load client (gobench) with put and linearizable range at 100 connections ×
 * 1000 clients. Modes: `off` (plaintext, no auth), `auth` (simple tokens; user `bench` whose role has read-write on
 * the prefix of the load client's keys and read on the prefix `foo`; gobench logs in with --user), `tls` (https
 * client URLs with --client-cert-auth, certificates made with openssl at run time; gobench presents a client
 * certificate; no auth).
 *
 *   node dist/native-bench/auth.js [--total 20000] [--modes off,auth,tls] [--rounds 1] [--systems etcd,etcetera] [--pause-ms 0] [--gobench /tmp/gobench/bin/gobench]
 *
 * `--pause-ms`: idle time before each gobench run, so every mode starts its timed part on a settled cluster (with
 * auth, gobench's 100 sequential bcrypt logins otherwise give the servers a quiet period the other modes lack; see
 * README "Why etcd's range-l gets faster with auth").
 *
 * Prints Markdown tables: QPS per round, system and mode with the load average; the etcetera/etcd ratio per round
 * and mode with its median; and issue 9's criterion, each mode's median ratio over the median ratio without auth.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as grpc from '@grpc/grpc-js';
import { startServer, type ServerHandle, type StartOptions } from '../test/helpers/servers';
import { RawClient } from '../test/helpers/grpc';
import { killAllChildren } from '../test/helpers/procs';
import { makePki } from '../test/tls/certs';
import { httpsReady, type ClientCreds } from '../test/tls/harness';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
}
const TOTAL = Number(arg('total', '20000'));
const GOBENCH = arg('gobench', '/tmp/gobench/bin/gobench');
/** A gobench run longer than this is killed and reported as failed (NaN). */
const GOBENCH_TIMEOUT_MS = 180_000;
type Mode = 'off' | 'auth' | 'tls';
const MODES = arg('modes', 'off,auth,tls').split(',') as Mode[];
const ROUNDS = Number(arg('rounds', '1'));
/** Systems to run (both by default; one alone gives no ratio, only its own figures across modes). */
const SYSTEMS = arg('systems', 'etcd,etcetera').split(',') as Array<'etcd' | 'etcetera'>;
/** Idle time before each gobench run (ms). */
const PAUSE_MS = Number(arg('pause-ms', '0'));
const pause = (): Promise<void> => new Promise((r) => setTimeout(r, PAUSE_MS));

/** Root, role `bench` (read-write on the 8-zero-byte key's prefix, read on prefix foo), user bench, auth on. */
async function enableAuth(h: ServerHandle): Promise<void> {
  const c = new RawClient(h.clientUrl);
  try {
    await c.call('Auth', 'UserAdd', { name: 'root', password: 'rootpw' });
    await c.call('Auth', 'RoleAdd', { name: 'root' });
    await c.call('Auth', 'UserGrantRole', { user: 'root', role: 'root' });
    await c.call('Auth', 'RoleAdd', { name: 'bench' });
    await c.call('Auth', 'RoleGrantPermission', { name: 'bench', perm: { permType: 2, key: Buffer.from([0]), rangeEnd: Buffer.from([1]) } });
    await c.call('Auth', 'RoleGrantPermission', { name: 'bench', perm: { permType: 0, key: Buffer.from('foo'), rangeEnd: Buffer.from('fop') } });
    await c.call('Auth', 'UserAdd', { name: 'bench', password: 'benchpw' });
    await c.call('Auth', 'UserGrantRole', { user: 'bench', role: 'bench' });
    await c.call('Auth', 'AuthEnable', {});
  } finally {
    c.close();
  }
}

/** Bytes of gobench's stderr kept for the failure report (it logs every failed request's retry). */
const GOBENCH_STDERR_TAIL_BYTES = 64 * 1024;

interface GobenchResult { qps: number; p99: number; errors: number; note: string }

/**
 * Runs gobench to completion, reading both pipes as they fill (stderr only its tail: a failing run writes
 * megabytes). Past GOBENCH_TIMEOUT_MS it is sent SIGTERM, on which it stops and prints a partial RESULT, still read
 * here. (spawnSync used to kill it and close the pipes at once: gobench, which catches SIGTERM, then died of
 * SIGPIPE writing its summary, hiding that it had timed out or filled the output buffer.)
 */
function gobench(endpoints: string[], extra: string[], cmd: string[]): Promise<GobenchResult> {
  const eps = endpoints.map((e) => e.replace(/^https?:\/\//, '')).join(',');
  const args = [`--endpoints=${eps}`, '--conns=100', '--clients=1000', ...extra, ...cmd];
  return new Promise((resolve) => {
    const child = spawn(GOBENCH, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let errBytes = 0;
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      errBytes += d.length;
      err = (err + d).slice(-GOBENCH_STDERR_TAIL_BYTES);
    });
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGTERM'); }, GOBENCH_TIMEOUT_MS);
    child.once('error', (e) => { clearTimeout(timer); resolve({ qps: NaN, p99: NaN, errors: -1, note: e.message }); });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const note = `${timedOut ? `timed out after ${GOBENCH_TIMEOUT_MS / 1000} s; ` : ''}exit ${code ?? signal}; stderr ${errBytes} chars`;
      const m = /RESULT qps=([\d.]+) avg_ms=[\d.]+ p50_ms=[\d.]+ p99_ms=([\d.]+) errors=(\d+)/.exec(out);
      if (!m || timedOut) {
        console.error(`gobench ${cmd.join(' ')} failed (${note}):\n${out.slice(-2000)}\n${err.slice(-2000)}`);
        return resolve({ qps: NaN, p99: NaN, errors: -1, note });
      }
      resolve({ qps: Number(m[1]), p99: Number(m[2]), errors: Number(m[3]), note });
    });
  });
}

/** How a mode starts the cluster, reaches it for set-up, and what gobench adds. */
interface ModeSetup { start: StartOptions; client: (url: string) => RawClient; gobenchArgs: string[] }

/**
 * etcd's default timings for both systems (the test helper gives etcd 20/200 ms for fast elections, which on a
 * loaded 2-core machine split the cluster mid-run).
 */
const TIMINGS = ['--heartbeat-interval=100', '--election-timeout=1000'];

function modeSetup(mode: Mode): ModeSetup {
  if (mode !== 'tls') return { start: { members: 3, extraArgs: TIMINGS }, client: (url) => new RawClient(url), gobenchArgs: mode === 'auth' ? ['--user=bench:benchpw'] : [] };
  const pki = makePki();
  const server = pki.issue('server', 'server');
  const creds: ClientCreds = { ca: pki.good.cert, cert: pki.issue('bench', 'bench') };
  const ssl = (): grpc.ChannelCredentials => grpc.credentials.createSsl(fs.readFileSync(creds.ca), fs.readFileSync(creds.cert!.key), fs.readFileSync(creds.cert!.cert));
  return {
    start: {
      members: 3,
      extraArgs: TIMINGS,
      clientScheme: 'https',
      memberArgs: () => [`--cert-file=${server.cert}`, `--key-file=${server.key}`, '--client-cert-auth', `--trusted-ca-file=${pki.good.cert}`],
      ready: httpsReady(creds, 120_000),
    },
    client: (url) => new RawClient(url, {}, ssl()),
    gobenchArgs: [`--cacert=${creds.ca}`, `--cert=${creds.cert!.cert}`, `--key=${creds.cert!.key}`],
  };
}

/** Median of the finite values (NaN when there is none). */
function median(xs: number[]): number {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 === 1 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

const load = (): string => os.loadavg().map((x) => x.toFixed(1)).join(' ');

async function main(): Promise<void> {
  const rows: string[] = [];
  /** `${round}-${kind}-${mode}-${op}` → QPS. */
  const qps: Record<string, number> = {};
  const OPS = ['put', 'range-l'] as const;
  for (let round = 1; round <= ROUNDS; round++) {
    for (const mode of MODES) {
      // Alternate which system goes first, so neither always runs on the machine the other just warmed or loaded.
      const kinds = round % 2 === 1 ? SYSTEMS : [...SYSTEMS].reverse();
      for (const kind of kinds) {
        const setup = modeSetup(mode);
        const h = await startServer(kind, setup.start);
        try {
          // The range target exists before any auth (the load user may only read it).
          const c = setup.client(h.clientUrl);
          await c.put({ key: Buffer.from('foo'), value: Buffer.alloc(256, 'x') });
          c.close();
          if (mode === 'auth') await enableAuth(h);
          await pause();
          const before = load();
          const put = await gobench(h.endpoints, setup.gobenchArgs, ['--target-leader', 'put', '--key-size=8', '--val-size=256', '--sequential-keys', `--total=${TOTAL}`]);
          await pause();
          const range = await gobench(h.endpoints, setup.gobenchArgs, ['range', 'foo', '--consistency=l', `--total=${TOTAL}`]);
          for (const [op, r] of [['put', put], ['range-l', range]] as const) {
            qps[`${round}-${kind}-${mode}-${op}`] = r.qps;
            rows.push(`| ${round} | ${op} | ${mode} | ${kind} | ${r.qps.toFixed(0)} | ${r.p99.toFixed(1)} | ${r.errors} | ${before} → ${load()} |`);
            console.error(rows[rows.length - 1]);
          }
        } finally {
          await h.stop();
        }
      }
    }
  }
  await killAllChildren();
  console.log(`${TOTAL} requests × 100 conns × 1000 clients, 3-member loopback clusters, gobench, ${ROUNDS} round(s), ${PAUSE_MS} ms pause before each run\n`);
  console.log('| round | op | mode | system | QPS | p99 ms | errors | load 1/5/15 min before → after |\n|---|---|---|---|---|---|---|---|\n' + rows.join('\n'));
  const ratio = (round: number, m: Mode, op: string): number => qps[`${round}-etcetera-${m}-${op}`]! / qps[`${round}-etcd-${m}-${op}`]!;
  const rounds = Array.from({ length: ROUNDS }, (_, i) => i + 1);
  console.log(`\netcetera/etcd QPS ratio per round (median last)\n\n| op | ${MODES.map((m) => `${m}`).join(' | ')} |\n|---|${MODES.map(() => '---|').join('')}`);
  for (const op of OPS) {
    const cell = (m: Mode): string => `${rounds.map((r) => ratio(r, m, op).toFixed(2)).join(', ')}; **${median(rounds.map((r) => ratio(r, m, op))).toFixed(2)}**`;
    console.log(`| ${op} | ${MODES.map(cell).join(' | ')} |`);
  }
  // Issue 9's criterion: the ratio with auth (or TLS) at least 90 % of the ratio without.
  if (MODES.includes('off')) {
    console.log('\n| op | mode | median ratio / median ratio off | ≥ 0.90 |\n|---|---|---|---|');
    for (const op of OPS) {
      const off = median(rounds.map((r) => ratio(r, 'off', op)));
      for (const m of MODES.filter((x) => x !== 'off')) {
        const rel = median(rounds.map((r) => ratio(r, m, op))) / off;
        console.log(`| ${op} | ${m} | ${rel.toFixed(2)} | ${Number.isFinite(rel) ? (rel >= 0.9 ? 'yes' : 'no') : '?'} |`);
      }
    }
  }
}

void main().catch(async (e) => {
  console.error(e);
  await killAllChildren();
  process.exit(1);
});
