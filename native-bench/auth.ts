/**
 * Auth overhead, etcd vs etcetera (issue 9's closing benchmark): for each system, a fresh 3-member loopback cluster
 * with auth off, then one with auth on (simple tokens; user `bench` whose role has read-write on the prefix of the
 * load client's keys and read on the prefix `foo`), each driven by the Go load client (gobench, which logs in with
 * --user) with put and linearizable range at 100 connections × 1000 clients.
 *
 *   node dist/native-bench/auth.js [--total 20000] [--gobench /tmp/gobench/bin/gobench]
 *
 * Prints one Markdown table: QPS per system and mode, and the etcetera/etcd ratio with and without auth.
 */
import { spawnSync } from 'node:child_process';
import { startEtcd, startEtcetera, type ServerHandle } from '../test/helpers/servers';
import { RawClient } from '../test/helpers/grpc';
import { killAllChildren } from '../test/helpers/procs';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
}
const TOTAL = Number(arg('total', '20000'));
const GOBENCH = arg('gobench', '/tmp/gobench/bin/gobench');

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

function gobench(endpoints: string[], auth: boolean, cmd: string[]): { qps: number; p99: number; errors: number } {
  const eps = endpoints.map((e) => e.replace(/^http:\/\//, '')).join(',');
  const args = [`--endpoints=${eps}`, '--conns=100', '--clients=1000', ...(auth ? ['--user=bench:benchpw'] : []), ...cmd];
  const r = spawnSync(GOBENCH, args, { encoding: 'utf8', timeout: 300_000 });
  const m = /RESULT qps=([\d.]+) avg_ms=[\d.]+ p50_ms=[\d.]+ p99_ms=([\d.]+) errors=(\d+)/.exec(r.stdout);
  if (!m) {
    console.error(`gobench ${cmd.join(' ')} failed (status ${r.status}, signal ${r.signal}):\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
    return { qps: NaN, p99: NaN, errors: -1 };
  }
  return { qps: Number(m[1]), p99: Number(m[2]), errors: Number(m[3]) };
}

async function main(): Promise<void> {
  const rows: string[] = [];
  const qps: Record<string, number> = {};
  for (const auth of [false, true]) {
    for (const kind of ['etcd', 'etcetera'] as const) {
      const h = kind === 'etcd' ? await startEtcd({ members: 3 }) : await startEtcetera({ members: 3 });
      try {
        // The range target exists before any auth (the load user may only read it).
        const c = new RawClient(h.clientUrl);
        await c.put({ key: Buffer.from('foo'), value: Buffer.alloc(256, 'x') });
        c.close();
        if (auth) await enableAuth(h);
        const put = gobench(h.endpoints, auth, ['--target-leader', 'put', '--key-size=8', '--val-size=256', '--sequential-keys', `--total=${TOTAL}`]);
        const range = gobench(h.endpoints, auth, ['range', 'foo', '--consistency=l', `--total=${TOTAL}`]);
        for (const [op, r] of [['put', put], ['range-l', range]] as const) {
          qps[`${kind}-${auth}-${op}`] = r.qps;
          rows.push(`| ${op} | ${auth ? 'on' : 'off'} | ${kind} | ${r.qps.toFixed(0)} | ${r.p99.toFixed(1)} | ${r.errors} |`);
          console.error(rows[rows.length - 1]);
        }
      } finally {
        await h.stop();
      }
    }
  }
  await killAllChildren();
  console.log(`${TOTAL} requests × 100 conns × 1000 clients, 3-member loopback clusters, gobench\n`);
  console.log('| op | auth | system | QPS | p99 ms | errors |\n|---|---|---|---|---|---|\n' + rows.join('\n'));
  console.log('\n| op | etcetera/etcd without auth | with auth |\n|---|---|---|');
  for (const op of ['put', 'range-l']) {
    const r = (a: boolean): string => (qps[`etcetera-${a}-${op}`]! / qps[`etcd-${a}-${op}`]!).toFixed(2);
    console.log(`| ${op} | ${r(false)} | ${r(true)} |`);
  }
}

void main().catch(async (e) => {
  console.error(e);
  await killAllChildren();
  process.exit(1);
});
