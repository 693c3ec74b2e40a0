/**
 * Auth and TLS overhead, etcd vs etcetera (issue 9's closing benchmark): for each mode and system, a fresh 3-member
 * loopback cluster, driven by the Go load client (gobench) with put and linearizable range at 100 connections ×
 * 1000 clients. Modes: `off` (plaintext, no auth), `auth` (simple tokens; user `bench` whose role has read-write on
 * the prefix of the load client's keys and read on the prefix `foo`; gobench logs in with --user), `tls` (https
 * client URLs with --client-cert-auth, certificates made with openssl at run time; gobench presents a client
 * certificate; no auth).
 *
 *   node dist/native-bench/auth.js [--total 20000] [--modes off,auth,tls] [--gobench /tmp/gobench/bin/gobench]
 *
 * Prints Markdown tables: QPS per system and mode, and the etcetera/etcd ratio per mode.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
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

function gobench(endpoints: string[], extra: string[], cmd: string[]): { qps: number; p99: number; errors: number } {
  const eps = endpoints.map((e) => e.replace(/^https?:\/\//, '')).join(',');
  const args = [`--endpoints=${eps}`, '--conns=100', '--clients=1000', ...extra, ...cmd];
  // gobench logs every failed request's retry (zap, stderr): a failing run writes megabytes, keep them all.
  const r = spawnSync(GOBENCH, args, { encoding: 'utf8', timeout: GOBENCH_TIMEOUT_MS, maxBuffer: 256 * 1024 * 1024 });
  const m = /RESULT qps=([\d.]+) avg_ms=[\d.]+ p50_ms=[\d.]+ p99_ms=([\d.]+) errors=(\d+)/.exec(r.stdout);
  if (!m) {
    console.error(`gobench ${cmd.join(' ')} failed (status ${r.status}, signal ${r.signal}):\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
    return { qps: NaN, p99: NaN, errors: -1 };
  }
  return { qps: Number(m[1]), p99: Number(m[2]), errors: Number(m[3]) };
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

async function main(): Promise<void> {
  const rows: string[] = [];
  const qps: Record<string, number> = {};
  for (const mode of MODES) {
    for (const kind of ['etcd', 'etcetera'] as const) {
      const setup = modeSetup(mode);
      const h = await startServer(kind, setup.start);
      try {
        // The range target exists before any auth (the load user may only read it).
        const c = setup.client(h.clientUrl);
        await c.put({ key: Buffer.from('foo'), value: Buffer.alloc(256, 'x') });
        c.close();
        if (mode === 'auth') await enableAuth(h);
        const put = gobench(h.endpoints, setup.gobenchArgs, ['--target-leader', 'put', '--key-size=8', '--val-size=256', '--sequential-keys', `--total=${TOTAL}`]);
        const range = gobench(h.endpoints, setup.gobenchArgs, ['range', 'foo', '--consistency=l', `--total=${TOTAL}`]);
        for (const [op, r] of [['put', put], ['range-l', range]] as const) {
          qps[`${kind}-${mode}-${op}`] = r.qps;
          rows.push(`| ${op} | ${mode} | ${kind} | ${r.qps.toFixed(0)} | ${r.p99.toFixed(1)} | ${r.errors} |`);
          console.error(rows[rows.length - 1]);
        }
      } finally {
        await h.stop();
      }
    }
  }
  await killAllChildren();
  console.log(`${TOTAL} requests × 100 conns × 1000 clients, 3-member loopback clusters, gobench\n`);
  console.log('| op | mode | system | QPS | p99 ms | errors |\n|---|---|---|---|---|---|\n' + rows.join('\n'));
  console.log(`\n| op | ${MODES.map((m) => `etcetera/etcd ${m}`).join(' | ')} |\n|---|${MODES.map(() => '---|').join('')}`);
  for (const op of ['put', 'range-l']) {
    const r = (m: Mode): string => (qps[`etcetera-${m}-${op}`]! / qps[`etcd-${m}-${op}`]!).toFixed(2);
    console.log(`| ${op} | ${MODES.map(r).join(' | ')} |`);
  }
}

void main().catch(async (e) => {
  console.error(e);
  await killAllChildren();
  process.exit(1);
});
