/**
 * A 3-member cluster of real processes whose peer links run through {@link Network}'s proxies: etcetera
 * (`node dist/src/cli/etcetera.js`) or the reference etcd 3.4 (`etcd`), started with the same etcd flags.
 *
 * Every member listens for peers on a private port and advertises its proxy's port; the shared
 * `--initial-cluster` names the proxy ports, so member IDs (derived from those URLs and the token) do not depend
 * on the proxy. Each member's stdout+stderr goes to `<root>/<name>.log` (all incarnations), its data to
 * `<root>/<name>`. Processes are registered with test/helpers/procs.ts, so they die with the test process.
 */
import { spawn, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Etcd3 } from 'etcd3';
import { freePort, track, RawClient, etceteraCli } from '../helpers';
import { Network, identifyEtcd, identifyEtcetera, type MemberId } from './proxy';

/** Which server runs the members. */
export type SutKind = 'etcetera' | 'etcd';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One member process (restartable on its data dir). */
export class NemesisMember {
  readonly clientUrl: string;
  /** Advertised peer URL (the proxy's port). */
  readonly peerUrl: string;
  readonly dataDir: string;
  readonly logFile: string;
  private proc: ChildProcess | null = null;
  private exitP: Promise<void> = Promise.resolve();
  private rawClient: RawClient | null = null;
  /** SIGSTOPped and not yet SIGCONTed. */
  paused = false;
  /** Incarnations started. */
  starts = 0;
  /** Set while the test itself is stopping this incarnation (any other exit is a crash). */
  private stopping = false;

  constructor(
    readonly cluster: NemesisCluster,
    readonly name: string,
    readonly clientPort: number,
    /** The member's own --listen-peer-urls port (only the proxy connects to it). */
    readonly listenPeerPort: number,
    readonly proxyPort: number,
  ) {
    this.clientUrl = `http://127.0.0.1:${clientPort}`;
    this.peerUrl = `http://127.0.0.1:${proxyPort}`;
    this.dataDir = path.join(cluster.root, name);
    this.logFile = path.join(cluster.root, `${name}.log`);
  }

  get running(): boolean { return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null; }

  /** gRPC client of the current incarnation (a fresh channel per start, so no reconnect backoff carries over). */
  get client(): RawClient {
    // A member that is down or booting must be retried soon after it serves, not after grpc-js's default backoff
    // (which grows to minutes): quick reconnects make "down" short and cheap for the clients.
    if (this.rawClient === null) this.rawClient = new RawClient(this.clientUrl, { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 500 });
    return this.rawClient;
  }

  args(): string[] {
    const c = this.cluster;
    return [
      `--name=${this.name}`,
      `--data-dir=${this.dataDir}`,
      `--listen-client-urls=${this.clientUrl}`,
      `--advertise-client-urls=${this.clientUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${this.listenPeerPort}`,
      `--initial-advertise-peer-urls=${this.peerUrl}`,
      `--initial-cluster=${c.initialCluster}`,
      '--initial-cluster-state=new',
      `--initial-cluster-token=${c.token}`,
      ...c.extraArgs,
    ];
  }

  /** Spawns the member (same flags every time; a restart reuses the data dir). */
  spawn(): void {
    if (this.running) throw new Error(`${this.name} already running`);
    const kind = this.cluster.kind;
    const cmd = kind === 'etcd' ? process.env.ETCD_BIN ?? 'etcd' : process.execPath;
    const argv = kind === 'etcd' ? this.args() : [etceteraCli(), ...this.args()];
    const fd = fs.openSync(this.logFile, 'a');
    fs.writeSync(fd, `\n==== ${new Date().toISOString()} start #${++this.starts}: ${cmd} ${argv.join(' ')}\n`);
    const child = spawn(cmd, argv, { stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    track(child);
    this.proc = child;
    this.paused = false;
    this.stopping = false;
    this.rawClient?.close();
    this.rawClient = null;
    this.exitP = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        if (!this.stopping) this.cluster.crashes.push(`${this.name} (start #${this.starts}) exited by itself: code ${code}, signal ${signal}`);
        resolve();
      });
      child.once('error', (e) => { this.cluster.crashes.push(`${this.name}: spawn error ${e.message}`); resolve(); });
    });
  }

  /** Sends `signal` and, for SIGKILL/SIGTERM, waits for the exit. */
  async signal(signal: NodeJS.Signals): Promise<void> {
    if (!this.running) return;
    if (signal === 'SIGKILL' || signal === 'SIGTERM') this.stopping = true;
    try { this.proc!.kill(signal); } catch { /* gone */ }
    if (signal === 'SIGSTOP') this.paused = true;
    if (signal === 'SIGCONT') this.paused = false;
    if (signal === 'SIGKILL' || signal === 'SIGTERM') {
      await this.exitP;
      this.paused = false;
    }
  }

  /** Waits until a serializable Range answers (the process serves gRPC; it may have no leader yet). */
  async waitServing(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`${this.name} exited (log: ${this.logFile})`);
      try {
        await this.client.call('KV', 'Range', { key: Buffer.from('__probe'), serializable: true }, 2000);
        return;
      } catch (e) {
        last = (e as Error).message;
        await sleep(100);
      }
    }
    throw new Error(`${this.name} did not serve within ${timeoutMs} ms (${last}; log: ${this.logFile})`);
  }

  close(): void {
    this.rawClient?.close();
    this.rawClient = null;
  }
}

/** The cluster, its proxies, and where its files are. */
export class NemesisCluster {
  readonly members: NemesisMember[] = [];
  readonly network: Network;
  readonly token = 'etcetera-nemesis';
  /** Member exits the test did not cause (each one is a failure of the run). */
  readonly crashes: string[] = [];
  initialCluster = '';

  private constructor(readonly kind: SutKind, readonly root: string, readonly extraArgs: string[]) {
    this.network = new Network(kind === 'etcd' ? identifyEtcd : identifyEtcetera);
  }

  /** Starts `n` members behind proxies in `root` and waits for a leader every member agrees on. */
  static async start(kind: SutKind, root: string, opts: { members?: number; extraArgs?: string[] } = {}): Promise<NemesisCluster> {
    const c = new NemesisCluster(kind, root, opts.extraArgs ?? []);
    try {
      for (let i = 1; i <= (opts.members ?? 3); i++) {
        const m = new NemesisMember(c, `n${i}`, await freePort(), await freePort(), await freePort());
        await c.network.add(m.name, m.proxyPort, m.listenPeerPort);
        c.members.push(m);
      }
      c.initialCluster = c.members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
      for (const m of c.members) m.spawn();
      await Promise.all(c.members.map((m) => m.waitServing()));
      c.network.setMemberIds(await c.memberIds());
      await c.leader(60_000);
      return c;
    } catch (e) {
      await c.destroy();
      throw e;
    }
  }

  /**
   * Member IDs by name, exact (u64 as decimal strings from the etcd3 client, which keeps 64-bit integers as
   * strings), matched by advertised peer URL.
   */
  async memberIds(): Promise<Map<string, MemberId>> {
    const client = new Etcd3({ hosts: this.members.map((m) => m.clientUrl), dialTimeout: 5000 });
    try {
      const res = await client.cluster.memberList({});
      const out = new Map<string, MemberId>();
      for (const m of this.members) {
        const r = res.members.find((x) => x.peerURLs.includes(m.peerUrl));
        if (!r) throw new Error(`MemberList has no member with peer URL ${m.peerUrl}: ${JSON.stringify(res.members)}`);
        out.set(m.name, BigInt(r.ID));
      }
      return out;
    } finally {
      client.close();
    }
  }

  byName(name: string): NemesisMember {
    const m = this.members.find((x) => x.name === name);
    if (!m) throw new Error(`no member ${name}`);
    return m;
  }

  /**
   * The leader as the answering members see it (Maintenance.Status from running, unpaused members within
   * `timeoutMs`), or null if none claims leadership with every answer agreeing.
   */
  async currentLeader(timeoutMs = 1000): Promise<NemesisMember | null> {
    const live = this.members.filter((m) => m.running && !m.paused);
    const st = await Promise.all(live.map(async (m) => {
      try { return { m, s: await m.client.call('Maintenance', 'Status', {}, timeoutMs) }; } catch { return null; }
    }));
    const ok = st.filter((x): x is { m: NemesisMember; s: any } => x !== null);
    const self = ok.find((x) => x.s.leader !== 0 && x.s.leader === x.s.header.memberId);
    if (!self || ok.some((x) => x.s.leader !== self.s.leader)) return null;
    return self.m;
  }

  /** Polls {@link currentLeader} until every running member answers and agrees, or throws after `timeoutMs`. */
  async leader(timeoutMs: number): Promise<NemesisMember> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const l = await this.currentLeader(3000);
      if (l) return l;
      await sleep(200);
    }
    throw new Error(`no agreed leader within ${timeoutMs} ms (logs under ${this.root})`);
  }

  /**
   * Waits until every member reports the same applied index, commit index and revision (no write in flight) and
   * returns that revision.
   */
  async waitConverged(timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      const st = await Promise.all(this.members.map(async (m) => {
        try { return await m.client.call('Maintenance', 'Status', {}, 3000); } catch { return null; }
      }));
      if (st.every((s) => s !== null)) {
        const applied = new Set(st.map((s) => s.raftAppliedIndex));
        const commit = new Set(st.map((s) => s.raftIndex));
        const rev = new Set(st.map((s) => s.header.revision));
        if (applied.size === 1 && commit.size === 1 && rev.size === 1 && [...applied][0] === [...commit][0]) return [...rev][0];
      }
      last = JSON.stringify(st.map((s, i) => (s ? [this.members[i].name, s.raftIndex, s.raftAppliedIndex, s.header.revision] : [this.members[i].name, 'no answer'])));
      await sleep(250);
    }
    throw new Error(`members did not converge within ${timeoutMs} ms: [name, commit, applied, revision] ${last}`);
  }

  /** SIGKILLs every member, closes the proxies and clients. Never throws; leaves `root` alone. */
  async destroy(): Promise<void> {
    await Promise.all(this.members.map((m) => m.signal('SIGKILL').catch(() => {})));
    for (const m of this.members) m.close();
    await this.network.close().catch(() => {});
  }
}
