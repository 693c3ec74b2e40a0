/**
 * One nemesis run: a 3-member cluster behind proxies, concurrent clients, faults on a seeded schedule, then heal,
 * final reads, and the checks (per-key linearizability, real-time revision order, the write log against every
 * acknowledged write, members' MVCC histories equal, no member crashed).
 *
 * Everything of the run lives in one temp dir (members' data dirs and logs, `history.jsonl`, `report.txt`),
 * removed after a pass and kept after a failure.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Etcd3 } from 'etcd3';
import { NemesisCluster, type SutKind } from './cluster';
import { History, toOperations } from './history';
import { checkHistory, type KeyResult, type Value } from './linearizability';
import { runWorkload, KEY_PREFIX, type WorkloadStats } from './workload';
import { runFaults, healAll, FAULT_KINDS, type FaultCounts, type FaultKind } from './faults';
import { checkRevisionOrder, checkWriteLog, type WriteEvent } from './checks';

export interface NemesisOptions {
  sut: SutKind;
  seed: number;
  /** Wall time of the faulty phase (s). */
  seconds: number;
  clients: number;
  keys: number;
  opTimeoutMs: number;
  kinds: readonly FaultKind[];
  quietMs: [number, number];
  holdMs: [number, number];
  /** Extra member flags. */
  extraArgs: string[];
  /** Keep the run's dir (history, logs) even when it passes. */
  keep: boolean;
}

/**
 * Options from the environment: NEMESIS_SUT, NEMESIS_SEED, NEMESIS_SECONDS, NEMESIS_CLIENTS, NEMESIS_KEYS,
 * NEMESIS_OP_TIMEOUT_MS, NEMESIS_FAULTS (comma list), NEMESIS_KEEP=1 (keep the run's dir after a pass).
 */
export function optionsFromEnv(defaults: { seconds: number }): NemesisOptions {
  const env = process.env;
  const sut = (env.NEMESIS_SUT ?? 'etcetera') as SutKind;
  if (sut !== 'etcetera' && sut !== 'etcd') throw new Error(`NEMESIS_SUT must be etcetera or etcd, got ${sut}`);
  const kinds = (env.NEMESIS_FAULTS ? env.NEMESIS_FAULTS.split(',') : [...FAULT_KINDS]) as FaultKind[];
  for (const k of kinds) if (!FAULT_KINDS.includes(k)) throw new Error(`unknown fault ${k} in NEMESIS_FAULTS (known: ${FAULT_KINDS.join(',')})`);
  const int = (name: string, d: number): number => {
    const v = env[name];
    if (v === undefined || v === '') return d;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${v}`);
    return n;
  };
  return {
    sut,
    seed: int('NEMESIS_SEED', Math.floor(Math.random() * 2 ** 31)),
    seconds: int('NEMESIS_SECONDS', defaults.seconds),
    clients: int('NEMESIS_CLIENTS', 8),
    keys: int('NEMESIS_KEYS', 3),
    opTimeoutMs: int('NEMESIS_OP_TIMEOUT_MS', 3000),
    kinds,
    quietMs: [800, 2500],
    holdMs: [1000, 4000],
    // A small snapshot count makes restarted and partitioned members catch up from snapshots too.
    extraArgs: ['--snapshot-count=500', ...(sut === 'etcd' ? ['--logger=zap'] : [])],
    keep: env.NEMESIS_KEEP === '1',
  };
}

export interface NemesisReport {
  options: NemesisOptions;
  dir: string;
  passed: boolean;
  problems: string[];
  stats: WorkloadStats;
  faults: FaultCounts;
  operations: number;
  keyResults: KeyResult[];
  writes: { acknowledged: number; unknownLanded: number; unknownLost: number };
  finalRevision: number;
  elapsedMs: number;
  /** One-paragraph summary for logs. */
  summary: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs the nemesis and all checks. Never throws for a failed check: failures are in `problems`. */
export async function runNemesis(o: NemesisOptions): Promise<NemesisReport> {
  const t0 = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `etcetera-nemesis-${o.sut}-${o.seed}-`));
  const history = new History();
  const problems: string[] = [];
  let stats: WorkloadStats = { invoked: 0, ok: 0, fail: 0, unknown: 0, errors: new Map() };
  let faults = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as FaultCounts;
  let keyResults: KeyResult[] = [];
  let writes = { acknowledged: 0, unknownLanded: 0, unknownLost: 0 };
  let finalRevision = 0;
  let operations = 0;
  let proxy = { connections: 0, unidentified: 0, bytes: 0 };
  let cluster: NemesisCluster | null = null;
  const phases: string[] = [];
  let tPhase = Date.now();
  const phase = (name: string): void => { const now = Date.now(); phases.push(`${name} ${((now - tPhase) / 1000).toFixed(1)} s`); tPhase = now; };
  try {
    cluster = await NemesisCluster.start(o.sut, dir, { extraArgs: o.extraArgs });
    phase('start');
    const c = cluster;
    let stop = false;
    const timer = setTimeout(() => { stop = true; }, o.seconds * 1000);
    const [w, f] = await Promise.all([
      runWorkload(c, history, { clients: o.clients, keys: o.keys, opTimeoutMs: o.opTimeoutMs, seed: o.seed }, () => stop),
      runFaults(c, history, { seed: o.seed, kinds: o.kinds, quietMs: o.quietMs, holdMs: o.holdMs }, () => stop),
    ]).finally(() => clearTimeout(timer));
    stats = w;
    faults = f;
    phase('faulty phase');

    // Heal, then final reads through every member: part of the history, so they are checked like any read.
    await healAll(c);
    history.nemesis('heal-all', 'end of the faulty phase');
    await Promise.all(c.members.map((m) => m.waitServing(60_000)));
    await c.leader(60_000);
    const finalVersions = new Map<string, number>();
    let finalProcess = 1_000_000;
    for (let k = 0; k < o.keys; k++) {
      const key = `${KEY_PREFIX}k${k}`;
      for (const m of c.members) {
        await finalRead(m.client, history, ++finalProcess, key, m.name, finalVersions);
      }
    }
    finalRevision = await c.waitConverged(60_000);
    phase('heal and final reads');

    const ops = toOperations(history.events);
    operations = ops.length;
    keyResults = checkHistory(ops);
    for (const r of keyResults) {
      if (r.linearizable === false) problems.push(`key ${r.key}: NOT linearizable (${r.ops} ops)\n${r.explanation}`);
      if (r.linearizable === undefined) problems.push(`key ${r.key}: no verdict, the search gave up after ${r.steps} steps (${r.ops} ops)`);
    }
    problems.push(...checkRevisionOrder(ops).map((p) => `revision order: ${p}`));
    const events = await watchHistory(c.members[0].clientUrl, finalRevision);
    const wl = checkWriteLog(ops, events, finalVersions);
    writes = { acknowledged: wl.acknowledged, unknownLanded: wl.unknownLanded, unknownLost: wl.unknownLost };
    problems.push(...wl.problems.map((p) => `write log: ${p}`));
    problems.push(...(await compareMembers(c, finalRevision)));
    problems.push(...c.crashes.map((x) => `crash: ${x}`));
    phase('checks');
  } catch (e) {
    problems.push(`run aborted: ${(e as Error).stack ?? e}`);
  } finally {
    if (cluster) proxy = cluster.network.stats();
    await cluster?.destroy();
  }
  const elapsedMs = Date.now() - t0;
  let gap = { ms: 0, at: 0 };
  let lastOk: number | null = null;
  for (const e of history.events) {
    if (e.type === 'nemesis' && e.fault === 'heal-all') break;
    if (e.type !== 'ok') continue;
    if (lastOk !== null && e.ms - lastOk > gap.ms) gap = { ms: e.ms - lastOk, at: lastOk };
    lastOk = e.ms;
  }
  const passed = problems.length === 0;
  const errs = [...stats.errors].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k, v]) => `${v}× ${k}`).join('; ');
  const summary = [
    `nemesis ${o.sut} seed=${o.seed} ${o.seconds}s ${o.clients} clients ${o.keys} keys: ${passed ? 'PASS' : 'FAIL'} in ${(elapsedMs / 1000).toFixed(1)} s`,
    `ops ${stats.invoked} invoked: ${stats.ok} ok, ${stats.fail} fail, ${stats.unknown} unknown; ${operations} in the checked history (incl. final reads)`,
    `faults ${Object.entries(faults).filter(([, n]) => n > 0).map(([k, n]) => `${k}×${n}`).join(' ') || 'none'}; ` +
      `peer proxies: ${proxy.connections} connections (${proxy.unidentified} unidentified), ${(proxy.bytes / 1e6).toFixed(1)} MB`,
    `writes: ${writes.acknowledged} acknowledged (all found: ${!problems.some((p) => p.includes('LOST'))}), unknown ones that landed ${writes.unknownLanded}, did not ${writes.unknownLost}; final revision ${finalRevision}`,
    `linearizability: ${keyResults.map((r) => `${r.key} ${r.linearizable === true ? 'ok' : r.linearizable === false ? 'VIOLATION' : 'no verdict'} (${r.ops} ops, ${r.steps} steps)`).join(', ')}`,
    `errors: ${errs || 'none'}`,
    `time: ${phases.join(', ')}; longest stretch without an acknowledged op ${(gap.ms / 1000).toFixed(1)} s (from ${(gap.at / 1000).toFixed(1)} s)`,
  ].join('\n');
  history.write(path.join(dir, 'history.jsonl'));
  fs.writeFileSync(path.join(dir, 'report.txt'), `${summary}\n\n${problems.join('\n\n')}\n`);
  if (passed && !o.keep) fs.rmSync(dir, { recursive: true, force: true });
  return { options: o, dir, passed, problems, stats, faults, operations, keyResults, writes, finalRevision, elapsedMs, summary };
}

/** A linearizable get recorded in the history, retried (as new processes) until it succeeds; notes the key's version. */
async function finalRead(client: { call: (s: string, m: string, r: object, t: number) => Promise<any> }, history: History, process: number, key: string, member: string, versions: Map<string, number>): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (let p = process; ; p += 10_000) {
    history.invoke({ process: p, op: 'get', key, member });
    try {
      const res = await client.call('KV', 'Range', { key: Buffer.from(key) }, 5000);
      const kv = res.kvs[0];
      const v: Value = kv ? Buffer.from(kv.value).toString() : null;
      history.complete(p, 'ok', { output: { value: v }, revision: res.header.revision });
      versions.set(key, kv ? kv.version : 0);
      return;
    } catch (e) {
      history.complete(p, 'fail', { error: String((e as Error).message) });
      if (Date.now() > deadline) throw new Error(`final read of ${key} via ${member} kept failing: ${(e as Error).message}`);
      await sleep(200);
    }
  }
}

/** Every put/delete of the key prefix from revision 1 to `upTo`, from one member's watch (etcd3 client). */
async function watchHistory(endpoint: string, upTo: number): Promise<WriteEvent[]> {
  const client = new Etcd3({ hosts: [endpoint] });
  const events: WriteEvent[] = [];
  const deletes: string[] = [];
  try {
    const last = await client.getAll().prefix(KEY_PREFIX).exec();
    const maxRev = Math.max(0, ...last.kvs.map((kv) => Number(kv.mod_revision)));
    if (maxRev === 0) return events;
    const watcher = await client.watch().prefix(KEY_PREFIX).startRevision('1').create();
    try {
      watcher.on('put', (kv) => events.push({ key: kv.key.toString(), value: kv.value.toString(), modRevision: Number(kv.mod_revision), version: Number(kv.version) }));
      watcher.on('delete', (kv) => deletes.push(`${kv.key.toString()}@${kv.mod_revision}`));
      const deadline = Date.now() + 60_000;
      while ((events.at(-1)?.modRevision ?? 0) < maxRev) {
        if (Date.now() > deadline) throw new Error(`watch from revision 1 stopped at revision ${events.at(-1)?.modRevision} (want ${maxRev}, final ${upTo})`);
        await sleep(50);
      }
    } finally {
      await watcher.cancel();
    }
    if (deletes.length > 0) throw new Error(`the workload deletes nothing, but the watch saw deletes: ${deletes.slice(0, 5).join(', ')}`);
    return events;
  } finally {
    client.close();
  }
}

/** Every member: the same HashKV at the final revision and the same prefix contents, read locally. */
async function compareMembers(c: NemesisCluster, revision: number): Promise<string[]> {
  const out: string[] = [];
  const seen = await Promise.all(c.members.map(async (m) => {
    const h = await m.client.call('Maintenance', 'HashKV', { revision }, 30_000);
    const r = await m.client.call('KV', 'Range', { key: Buffer.from(KEY_PREFIX), rangeEnd: Buffer.from(prefixEnd(KEY_PREFIX)), serializable: true }, 30_000);
    const kvs = JSON.stringify(r.kvs.map((kv: any) => [Buffer.from(kv.key).toString(), Buffer.from(kv.value).toString(), kv.modRevision, kv.version]));
    return { m, hash: h.hash as number, kvs };
  }));
  for (const s of seen.slice(1)) {
    if (s.hash !== seen[0].hash) out.push(`HashKV at revision ${revision}: ${s.m.name} ${s.hash} != ${seen[0].m.name} ${seen[0].hash}`);
    if (s.kvs !== seen[0].kvs) out.push(`local contents differ: ${s.m.name} ${s.kvs} vs ${seen[0].m.name} ${seen[0].kvs}`);
  }
  return out;
}

function prefixEnd(p: string): Buffer {
  const b = Buffer.from(p);
  b[b.length - 1]++;
  return b;
}
