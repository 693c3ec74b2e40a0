/**
 * Lock acquire/release rate through v3lockpb.Lock / Unlock (raw gRPC), etcd 3.4 vs etcetera, single member each.
 * N contenders (each its own lease) loop Lock(name) → Unlock(key) on one lock name for a fixed time; the figure is
 * completed acquire+release cycles per second and the mean Lock latency.
 *
 *   npx tsc -p tsconfig.json && node scripts/copy-proto.js
 *   node dist/native-bench/lock.js [--contenders 10,100] [--seconds 5] [--systems etcd,etcetera]
 */
import { startEtcd, startEtcetera, type ServerHandle } from '../test/helpers/servers';
import { killAllChildren } from '../test/helpers/procs';
import { ConcurrencyClient } from '../test/concurrency/concurrency-client';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
}

async function run(h: ServerHandle, contenders: number, seconds: number, leaseBase: number): Promise<{ rate: number; meanLockMs: number; cycles: number }> {
  const channels = Array.from({ length: Math.min(contenders, 8) }, () => new ConcurrencyClient(h.clientUrl));
  const leases: number[] = [];
  for (let i = 0; i < contenders; i++) leases.push(await channels[0]!.grant(600, leaseBase + i));
  const name = `bench-${leaseBase}`;
  let cycles = 0;
  let lockMs = 0;
  let holders = 0;
  let violations = 0;
  const stopAt = Date.now() + seconds * 1000;
  const t0 = Date.now();
  await Promise.all(leases.map(async (lease, i) => {
    const c = channels[i % channels.length]!;
    while (Date.now() < stopAt) {
      const s = performance.now();
      const r = await c.lock(name, lease);
      lockMs += performance.now() - s;
      if (++holders > 1) violations++;
      holders--;
      await c.unlock(r.key);
      cycles++;
    }
  }));
  const elapsed = (Date.now() - t0) / 1000;
  for (const l of leases) await channels[0]!.revoke(l).catch(() => undefined);
  for (const c of channels) c.close();
  if (violations > 0) throw new Error(`${violations} overlapping holders`);
  return { rate: cycles / elapsed, meanLockMs: lockMs / cycles, cycles };
}

async function main(): Promise<void> {
  const contenders = arg('contenders', '10,100').split(',').map(Number);
  const seconds = Number(arg('seconds', '5'));
  const systems = arg('systems', 'etcd,etcetera').split(',');
  const rows: string[] = ['| system | contenders | cycles/s | mean Lock latency (ms) | cycles |', '|---|---|---|---|---|'];
  for (const sys of systems) {
    // etcd with its default timings (the test helper's are shortened); both single-member, fresh data dirs.
    const h = sys === 'etcd' ? await startEtcd({ extraArgs: ['--heartbeat-interval=100', '--election-timeout=1000'] }) : await startEtcetera();
    try {
      let base = 0x10000;
      for (const n of contenders) {
        const r = await run(h, n, seconds, base);
        base += 0x10000;
        rows.push(`| ${sys} | ${n} | ${r.rate.toFixed(0)} | ${r.meanLockMs.toFixed(2)} | ${r.cycles} |`);
        console.error(rows[rows.length - 1]);
      }
    } finally {
      await h.stop();
    }
  }
  console.log(rows.join('\n'));
}

main().then(
  async () => { await killAllChildren(); process.exit(0); },
  async (e) => { console.error(e); await killAllChildren(); process.exit(1); },
);
