/**
 * Multi-member cluster harness for test/cluster/*.test.ts.
 *
 * Every member is a real `node dist/src/cli/etcetera.js` child process started with etcd's flags on free
 * loopback ports, with its own data dir under one temp root per cluster. Unlike test/helpers/servers.ts
 * (which it reuses for ports, process tracking, the raw gRPC client and etcdctl), each member can be killed,
 * restarted with other flags, or wiped individually, and its whole log is kept for assertions.
 *
 * Every child is registered with test/helpers/procs.ts, so it is SIGKILLed when the test process exits
 * however it exits; `Cluster.destroy()` kills and waits for every member and removes the data dirs.
 */
import { spawn, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { freePort, track, trackTempDir, removeTempDir, RawClient, etceteraCli, startEtcd, type ServerHandle } from '../helpers';

/** gRPC status codes used here. */
export const UNAVAILABLE = 14;
export const DEADLINE_EXCEEDED = 4;

/** etcd's messages for a write that could not be committed (all gRPC Unavailable in etcd 3.4). */
export const UNAVAILABLE_MESSAGES = [
  'etcdserver: no leader',
  'etcdserver: leader changed',
  'etcdserver: request timed out',
  'etcdserver: request timed out, possibly due to previous leader failure',
  'etcdserver: request timed out, possibly due to connection lost',
  'etcdserver: request timed out, waiting for the applied index took too long',
  'etcdserver: server stopped',
  'etcdserver: unhealthy cluster',
  'etcdserver: not capable',
];

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One member of a test cluster. */
export class Member {
  readonly clientUrl: string;
  readonly peerUrl: string;
  /** Full stdout+stderr of every incarnation (capped at 8 MiB, oldest dropped). */
  log = '';
  /** Log of the current incarnation only. */
  currentLog = '';
  private proc: ChildProcess | null = null;
  private exitP: Promise<void> = Promise.resolve();
  private rawClient: RawClient | null = null;
  /** Arguments of the last start (for failure messages). */
  argv: string[] = [];

  constructor(
    readonly cluster: Cluster,
    readonly name: string,
    readonly clientPort: number,
    readonly peerPort: number,
    readonly dataDir: string,
  ) {
    this.clientUrl = `http://127.0.0.1:${clientPort}`;
    this.peerUrl = `http://127.0.0.1:${peerPort}`;
  }

  get running(): boolean {
    return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  get pid(): number { return this.proc?.pid ?? -1; }

  /** gRPC client of this member (one per member, reconnects by itself across restarts). */
  get client(): RawClient {
    if (this.rawClient === null) this.rawClient = new RawClient(this.clientUrl);
    return this.rawClient;
  }

  /** etcd's flags for this member. `token` / `initialCluster` override the cluster's. */
  args(o: { token?: string; initialCluster?: string; state?: 'new' | 'existing'; extra?: string[] } = {}): string[] {
    return [
      `--name=${this.name}`,
      `--data-dir=${this.dataDir}`,
      `--listen-client-urls=${this.clientUrl}`,
      `--advertise-client-urls=${this.clientUrl}`,
      `--listen-peer-urls=${this.peerUrl}`,
      `--initial-advertise-peer-urls=${this.peerUrl}`,
      `--initial-cluster=${o.initialCluster ?? this.cluster.initialCluster}`,
      `--initial-cluster-state=${o.state ?? 'new'}`,
      `--initial-cluster-token=${o.token ?? this.cluster.token}`,
      ...this.cluster.extraArgs,
      ...(o.extra ?? []),
    ];
  }

  /** Spawns the member (does not wait for it to serve). */
  spawn(o: { token?: string; initialCluster?: string; state?: 'new' | 'existing'; extra?: string[] } = {}): void {
    if (this.running) throw new Error(`${this.name} already running`);
    this.argv = [etceteraCli(), ...this.args(o)];
    const child = spawn(process.execPath, this.argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    track(child);
    this.proc = child;
    this.currentLog = '';
    const keep = (b: Buffer): void => {
      const s = b.toString();
      this.currentLog += s;
      this.log += s;
      if (this.log.length > 8 << 20) this.log = this.log.slice(-(4 << 20));
      if (this.currentLog.length > 8 << 20) this.currentLog = this.currentLog.slice(-(4 << 20));
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    this.exitP = new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', (e) => { this.log += `\nspawn error: ${e.message}\n`; resolve(); });
    });
  }

  /** Spawns the member and waits until a serializable Range answers (the process serves gRPC). */
  async start(o: { token?: string; initialCluster?: string; state?: 'new' | 'existing'; extra?: string[] } = {}): Promise<void> {
    this.spawn(o);
    await this.waitServing();
  }

  /** Waits until the member answers a serializable Range (it need not have a leader). */
  async waitServing(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`${this.name} exited before serving\n${this.describe()}`);
      try {
        await this.client.call('KV', 'Range', { key: Buffer.from('__probe'), serializable: true }, 2000);
        return;
      } catch (e) {
        last = (e as Error).message;
        await sleep(100);
      }
    }
    throw new Error(`${this.name} did not serve within ${timeoutMs} ms (${last})\n${this.describe()}`);
  }

  /** Sends a signal (default SIGKILL) and waits for the process to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.proc && this.running) {
      try { this.proc.kill(signal); } catch { /* gone */ }
    }
    await this.exitP;
  }

  /** Waits for the process to exit by itself (resolves at once if it is not running). */
  exited(): Promise<void> { return this.exitP; }

  /** Deletes the data dir (member must be stopped). */
  wipe(): void {
    if (this.running) throw new Error(`${this.name} still running`);
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }

  closeClient(): void {
    this.rawClient?.close();
    this.rawClient = null;
  }

  /** Command line and log tail, for failure messages. */
  describe(tail = 3000): string {
    return `--- ${this.name} (${this.running ? `pid ${this.pid}` : 'not running'}): ${this.argv.join(' ')}\n${this.log.slice(-tail)}`;
  }
}

export interface ClusterOptions {
  /** --initial-cluster-token (default "etcetera-cluster-test"). */
  token?: string;
  /** Flags appended to every member's command line. */
  extraArgs?: string[];
}

/** A statically bootstrapped cluster of `n` members named n1..nN. */
export class Cluster {
  readonly members: Member[] = [];
  readonly root: string;
  readonly token: string;
  readonly extraArgs: string[];
  initialCluster = '';

  private constructor(opts: ClusterOptions) {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), 'etcetera-cluster-'));
    trackTempDir(this.root);
    this.token = opts.token ?? 'etcetera-cluster-test';
    this.extraArgs = opts.extraArgs ?? [];
  }

  /** Plans `n` members on free ports, starts them all at once and waits until every member serves and a leader exists. */
  static async start(n: number, opts: ClusterOptions = {}): Promise<Cluster> {
    const c = new Cluster(opts);
    try {
      for (let i = 1; i <= n; i++) {
        c.members.push(new Member(c, `n${i}`, await freePort(), await freePort(), path.join(c.root, `n${i}`)));
      }
      c.initialCluster = c.members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
      for (const m of c.members) m.spawn();
      await Promise.all(c.members.map((m) => m.waitServing()));
      await c.leader();
      return c;
    } catch (e) {
      await c.destroy();
      throw e;
    }
  }

  get endpoints(): string[] { return this.members.map((m) => m.clientUrl); }
  running(): Member[] { return this.members.filter((m) => m.running); }
  byName(name: string): Member {
    const m = this.members.find((x) => x.name === name);
    if (!m) throw new Error(`no member ${name}`);
    return m;
  }

  /** Maintenance.Status of every running member (members that fail to answer are left out). */
  async statuses(timeoutMs = 3000): Promise<{ member: Member; status: any }[]> {
    const out = await Promise.all(this.running().map(async (member) => {
      try { return { member, status: await member.client.call('Maintenance', 'Status', {}, timeoutMs) }; } catch { return null; }
    }));
    return out.filter((x): x is { member: Member; status: any } => x !== null);
  }

  /**
   * The current leader: a running member whose Status names itself as leader, and every running member that answers
   * agrees (same leader ID). `exclude` members are never accepted (e.g. a just-killed leader). Polls until `timeoutMs`.
   */
  async leader(timeoutMs = 60_000, exclude: Member[] = []): Promise<Member> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      const st = await this.statuses();
      const leaders = new Set(st.map((s) => s.status.leader));
      const self = st.find((s) => s.status.leader !== 0 && s.status.leader === s.status.header.memberId);
      if (self && leaders.size === 1 && st.length === this.running().length && !exclude.includes(self.member)) return self.member;
      last = JSON.stringify(st.map((s) => [s.member.name, s.status.header.memberId, s.status.leader, s.status.raftTerm]));
      await sleep(200);
    }
    throw new Error(`no agreed leader within ${timeoutMs} ms; last statuses ${last}\n${this.members.map((m) => m.describe(1500)).join('\n')}`);
  }

  /**
   * Waits until every running member has applied the same index, equal to the commit index they all report
   * (no writes in flight), and returns that index.
   */
  async waitConverged(timeoutMs = 60_000, members: Member[] = this.running()): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      const st = (await this.statuses()).filter((s) => members.includes(s.member));
      if (st.length === members.length) {
        const applied = new Set(st.map((s) => s.status.raftAppliedIndex));
        const commit = new Set(st.map((s) => s.status.raftIndex));
        const rev = new Set(st.map((s) => s.status.header.revision));
        if (applied.size === 1 && commit.size === 1 && rev.size === 1 && [...applied][0] === [...commit][0]) return [...applied][0];
      }
      last = JSON.stringify(st.map((s) => [s.member.name, s.status.raftIndex, s.status.raftAppliedIndex, s.status.header.revision]));
      await sleep(200);
    }
    throw new Error(`members did not converge within ${timeoutMs} ms: [name, commit, applied, revision] ${last}`);
  }

  /** Kills every member (SIGKILL), waits for the exits, closes clients, removes the data dirs. Never throws. */
  async destroy(): Promise<void> {
    await Promise.all(this.members.map((m) => m.kill('SIGKILL').catch(() => {})));
    for (const m of this.members) m.closeClient();
    try { removeTempDir(this.root); } catch { /* best effort */ }
  }

  /** Every member's command line and log tail. */
  describe(tail = 2000): string {
    return this.members.map((m) => m.describe(tail)).join('\n');
  }
}

/** True for a gRPC error a client should retry elsewhere: Unavailable (etcd's no leader / leader changed / timed out / connection refused) or a client deadline. */
export function retryable(e: unknown): boolean {
  const se = e as grpc.ServiceError;
  return se && (se.code === UNAVAILABLE || se.code === DEADLINE_EXCEEDED);
}

/** Short description of a gRPC error. */
export function errText(e: unknown): string {
  const se = e as grpc.ServiceError;
  return typeof se?.code === 'number' ? `${se.code} ${se.details}` : String((e as Error)?.message ?? e);
}

/** Every key-value of a member, read serializably (no Raft round): the member's local state. */
export async function localSnapshot(m: Member): Promise<{ revision: number; kvs: { key: string; value: string; createRevision: number; modRevision: number; version: number; lease: number }[] }> {
  const r = await m.client.call('KV', 'Range', { key: Buffer.from([0]), rangeEnd: Buffer.from([0]), serializable: true }, 30_000);
  return {
    revision: r.header.revision,
    kvs: r.kvs.map((kv: any) => ({
      key: Buffer.from(kv.key).toString('latin1'),
      value: Buffer.from(kv.value).toString('latin1'),
      createRevision: kv.createRevision,
      modRevision: kv.modRevision,
      version: kv.version,
      lease: kv.lease,
    })),
  };
}

/** An acknowledged write: key, value and the revision of the response that acknowledged it. */
export interface Ack { key: string; value: string; revision: number; via: string }

/**
 * Puts key=value through the given members in turn, retrying on Unavailable / deadline errors until it is
 * acknowledged or `giveUpMs` passes (then throws). Only a successful response counts as acknowledged.
 */
export async function putWithRetry(members: () => Member[], key: string, value: string, opts: { giveUpMs?: number; perCallMs?: number; start?: number; errors?: Map<string, number> } = {}): Promise<Ack> {
  const deadline = Date.now() + (opts.giveUpMs ?? 90_000);
  let i = opts.start ?? 0;
  let last = '';
  while (Date.now() < deadline) {
    const ms = members().filter((m) => m.running);
    if (ms.length === 0) { await sleep(100); continue; }
    const m = ms[i++ % ms.length];
    try {
      const r = await m.client.call('KV', 'Put', { key: Buffer.from(key), value: Buffer.from(value) }, opts.perCallMs ?? 10_000);
      return { key, value, revision: r.header.revision, via: m.name };
    } catch (e) {
      if (!retryable(e)) throw new Error(`put ${key} via ${m.name}: non-retryable ${errText(e)}`);
      last = errText(e);
      if (opts.errors) opts.errors.set(last, (opts.errors.get(last) ?? 0) + 1);
      await sleep(50);
    }
  }
  throw new Error(`put ${key} not acknowledged within ${opts.giveUpMs ?? 90_000} ms (last error: ${last})`);
}

/**
 * Checks that every running member holds exactly the same key-values at the same revision and that every
 * acknowledged write is there with its value (modRevision ≥ the acknowledging revision: an unacknowledged
 * earlier attempt of the same put may commit later and rewrite the same value). Returns a failure text or ''.
 */
export async function checkAllMembersAgree(cluster: Cluster, acks: Ack[], members: Member[] = cluster.running()): Promise<string> {
  const snaps = await Promise.all(members.map(async (m) => ({ m, s: await localSnapshot(m) })));
  const ref = snaps[0];
  const problems: string[] = [];
  for (const { m, s } of snaps.slice(1)) {
    if (s.revision !== ref.s.revision) problems.push(`${m.name} revision ${s.revision} != ${ref.m.name} revision ${ref.s.revision}`);
    if (s.kvs.length !== ref.s.kvs.length) problems.push(`${m.name} has ${s.kvs.length} keys, ${ref.m.name} has ${ref.s.kvs.length}`);
    const a = JSON.stringify(s.kvs);
    const b = JSON.stringify(ref.s.kvs);
    if (a !== b) {
      const n = Math.max(s.kvs.length, ref.s.kvs.length);
      for (let i = 0; i < n; i++) {
        if (JSON.stringify(s.kvs[i]) !== JSON.stringify(ref.s.kvs[i])) {
          problems.push(`first difference at #${i}: ${m.name} ${JSON.stringify(s.kvs[i])} vs ${ref.m.name} ${JSON.stringify(ref.s.kvs[i])}`);
          break;
        }
      }
    }
  }
  for (const { m, s } of snaps) {
    const byKey = new Map(s.kvs.map((kv) => [kv.key, kv]));
    let missing = 0;
    for (const a of acks) {
      const kv = byKey.get(a.key);
      if (!kv || kv.value !== a.value || kv.modRevision < a.revision) {
        if (missing++ < 5) problems.push(`${m.name}: acknowledged ${a.key}=${a.value}@${a.revision} (via ${a.via}) but has ${kv ? JSON.stringify(kv) : 'nothing'}`);
      }
    }
    if (missing > 5) problems.push(`${m.name}: ${missing} acknowledged writes missing or wrong in total`);
  }
  return problems.join('\n');
}

/**
 * A 3-member reference etcd 3.4 cluster (test/helpers/servers.ts startEtcd) for differential cluster tests.
 * `stopAll` SIGKILLs every member: a SIGTERMed etcd leader first tries to hand off its leadership, which only slows
 * the teardown. Push `stopAll` onto the test's cleanups so a failing assertion still stops the cluster.
 */
export async function startEtcdCluster(): Promise<{ handle: ServerHandle; members: ServerHandle[]; stopAll(): Promise<void> }> {
  const handle = await startEtcd({ members: 3 });
  const members = handle.members ?? [handle];
  const stopAll = async (): Promise<void> => {
    for (const m of members) await m.kill('SIGKILL');
    await handle.stop();
  };
  return { handle, members, stopAll };
}
