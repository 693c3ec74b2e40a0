/**
 * Start/stop etcd-compatible servers for integration, differential and crash tests.
 *
 * - `startEtcd()` runs the reference etcd 3.4 (`etcd` on PATH, or env ETCD_BIN).
 * - `startEtcetera()` runs `node dist/src/cli/etcetera.js` with the same etcd flags.
 * - `startSut()` runs whichever is the system under test: env `SUT=etcetera|etcd` (default etcetera).
 *
 * Every server listens on free loopback ports, uses a temp data dir (unless one is given), and the
 * returned promise resolves only once a linearizable Range succeeds. Every child is tracked and
 * SIGKILLed when the test process exits (see procs.ts), so a failing test leaves no stray servers.
 */
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './ports';
import { track, trackTempDir, removeTempDir } from './procs';
import { waitUntilServing } from './grpc';

export type ServerKind = 'etcd' | 'etcetera';

/** Options shared by startEtcd / startEtcetera / startSut. */
export interface StartOptions {
  /** Member name (--name); default "m1" (cluster members: m1, m2, ...). */
  name?: string;
  /** Start a cluster of this many members (etcd --initial-cluster). The handle is member 1's, with all endpoints. */
  members?: number;
  /** Reuse this data dir (created if missing, never deleted by the helper). Default: a fresh temp dir. */
  dataDir?: string;
  /** Fixed ports (to restart on the same addresses); default: free ports. */
  clientPort?: number;
  peerPort?: number;
  metricsPort?: number;
  /** --initial-cluster-state (default "new"). */
  initialClusterState?: 'new' | 'existing';
  /** --initial-cluster-token (default "etcetera-test"). */
  token?: string;
  /** --initial-cluster of a single member (default: just itself), e.g. the ETCD_INITIAL_CLUSTER `member add` printed. */
  initialCluster?: string;
  /** Extra command-line flags appended after the standard ones. */
  extraArgs?: string[];
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** How long to wait for the server to answer (default 60 s). */
  readyTimeoutMs?: number;
  /** Don't wait for the server to answer (e.g. to observe a refusal to start). */
  noWait?: boolean;
  /** Scheme of the client and metrics URLs (default http; https needs certificate flags in extraArgs/memberArgs). */
  clientScheme?: 'http' | 'https';
  /** Scheme of the peer URLs and --initial-cluster (default http). */
  peerScheme?: 'http' | 'https';
  /** Flags of one member (by name), evaluated at every start and restart (e.g. its own certificate). */
  memberArgs?: (name: string) => string[];
  /** Readiness check replacing the plaintext gRPC Range (e.g. an https /health with client certificates). */
  ready?: (h: ServerHandle) => Promise<void>;
}

/** A running (or exited) server process. */
export interface ServerHandle {
  kind: ServerKind;
  name: string;
  /** Client URLs of every member (just this one for a single server). */
  endpoints: string[];
  /** This member's client URL, e.g. http://127.0.0.1:41234. */
  clientUrl: string;
  peerUrl: string;
  metricsUrl: string;
  dataDir: string;
  pid: number;
  /** Cluster members (only for `members > 1`; includes this one first). */
  members?: ServerHandle[];
  /** Resolves when the process exits. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** True once the process has exited. */
  isRunning(): boolean;
  /** Last ~64 KiB of the process's stdout+stderr. */
  output(): string;
  /** SIGTERM, then SIGKILL after 10 s; removes a helper-created data dir unless keepData. Stops all members of a cluster. */
  stop(opts?: { keepData?: boolean }): Promise<void>;
  /** Sends a signal (default SIGKILL) and waits for the exit. Keeps the data dir. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the same server again (same ports, flags and data dir) after it exited; resolves once serving (unless noWait). */
  restart(opts?: { noWait?: boolean; extraArgs?: string[] }): Promise<ServerHandle>;
  /** The full command line used (for error messages). */
  argv: string[];
}

/** Path of the compiled etcetera CLI (dist/src/cli/etcetera.js). */
export function etceteraCli(): string {
  // compiled to dist/test/helpers/servers.js
  return path.resolve(__dirname, '..', '..', 'src', 'cli', 'etcetera.js');
}

function onPath(bin: string): boolean {
  if (bin.includes('/')) return fs.existsSync(bin);
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}

const ETCD_BIN = process.env.ETCD_BIN ?? 'etcd';
const ETCDCTL_BIN = process.env.ETCDCTL_BIN ?? 'etcdctl';

/** True if the reference etcd binary is available. */
export function hasEtcd(): boolean { return onPath(ETCD_BIN); }
/** True if etcdctl is available. */
export function hasEtcdctl(): boolean { return onPath(ETCDCTL_BIN); }
/** Skip reason when etcd is missing. */
export const NO_ETCD = 'etcd 3.4 not installed: apt-get install etcd-server';
export const NO_ETCDCTL = 'etcdctl not installed: apt-get install etcd-client';

/** The system under test: env SUT=etcetera|etcd, default etcetera. */
export function sutKind(): ServerKind {
  const s = (process.env.SUT ?? 'etcetera').toLowerCase();
  if (s !== 'etcd' && s !== 'etcetera') throw new Error(`SUT must be etcetera or etcd, got ${s}`);
  return s;
}

/** undefined if the SUT can be started, else a human-readable skip reason. */
export function sutUnavailable(): string | undefined {
  if (sutKind() === 'etcd') return hasEtcd() ? undefined : NO_ETCD;
  return fs.existsSync(etceteraCli()) ? undefined : `etcetera not built (${etceteraCli()} missing): npm run build`;
}

/** Starts the system under test chosen by env SUT. */
export function startSut(opts: StartOptions = {}): Promise<ServerHandle> {
  return sutKind() === 'etcd' ? startEtcd(opts) : startEtcetera(opts);
}

/** Starts the reference etcd 3.4 (short heartbeat/election timeouts so it elects itself quickly). */
export function startEtcd(opts: StartOptions = {}): Promise<ServerHandle> {
  return start('etcd', opts);
}

/** Starts etcetera (`node dist/src/cli/etcetera.js`) with etcd's flags. */
export function startEtcetera(opts: StartOptions = {}): Promise<ServerHandle> {
  return start('etcetera', opts);
}

/** Starts a server of the given kind. */
export function startServer(kind: ServerKind, opts: StartOptions = {}): Promise<ServerHandle> {
  return start(kind, opts);
}

interface MemberPlan { name: string; clientPort: number; peerPort: number; metricsPort: number; dataDir: string; ownDir: boolean }

async function planMember(name: string, o: StartOptions): Promise<MemberPlan> {
  let dataDir = o.dataDir;
  let ownDir = false;
  if (!dataDir) {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `etcetera-test-${name}-`));
    trackTempDir(dataDir);
    ownDir = true;
  } else {
    fs.mkdirSync(path.dirname(dataDir), { recursive: true });
  }
  return {
    name,
    clientPort: o.clientPort ?? (await freePort()),
    peerPort: o.peerPort ?? (await freePort()),
    metricsPort: o.metricsPort ?? (await freePort()),
    dataDir,
    ownDir,
  };
}

async function start(kind: ServerKind, opts: StartOptions): Promise<ServerHandle> {
  const n = opts.members ?? 1;
  if (n <= 1) {
    const plan = await planMember(opts.name ?? 'm1', opts);
    const initialCluster = opts.initialCluster ?? `${plan.name}=${opts.peerScheme ?? 'http'}://127.0.0.1:${plan.peerPort}`;
    const h = spawnMember(kind, plan, initialCluster, opts);
    if (!opts.noWait) await waitReady(h, opts);
    return h;
  }
  // Cluster: plan every member first so --initial-cluster is complete, then start all at once.
  const plans: MemberPlan[] = [];
  for (let i = 1; i <= n; i++) plans.push(await planMember(`m${i}`, { ...opts, dataDir: undefined, clientPort: undefined, peerPort: undefined, metricsPort: undefined }));
  const initialCluster = plans.map((p) => `${p.name}=${opts.peerScheme ?? 'http'}://127.0.0.1:${p.peerPort}`).join(',');
  const handles = plans.map((p) => spawnMember(kind, p, initialCluster, opts));
  try {
    if (!opts.noWait) await Promise.all(handles.map((h) => waitReady(h, opts)));
  } catch (e) {
    await Promise.all(handles.map((h) => h.stop()));
    throw e;
  }
  const endpoints = handles.map((h) => h.clientUrl);
  for (const h of handles) h.endpoints = endpoints;
  const first = handles[0];
  const stopOne = first.stop;
  first.members = handles;
  first.stop = async (o) => { await Promise.all([stopOne(o), ...handles.slice(1).map((h) => h.stop(o))]); };
  return first;
}

async function waitReady(h: ServerHandle, opts: StartOptions): Promise<void> {
  try {
    if (opts.ready !== undefined) return await opts.ready(h);
    await waitUntilServing(h.clientUrl, opts.readyTimeoutMs ?? 60_000, () => (h.isRunning() ? undefined : 'process exited'));
  } catch (e) {
    const out = h.output();
    await h.kill('SIGKILL');
    throw new Error(`${h.kind} ${h.name} failed to start: ${(e as Error).message}\ncommand: ${h.argv.join(' ')}\n--- output tail ---\n${out.slice(-4000)}`);
  }
}

function memberArgs(plan: MemberPlan, initialCluster: string, opts: StartOptions): string[] {
  const client = `${opts.clientScheme ?? 'http'}://127.0.0.1:${plan.clientPort}`;
  const peer = `${opts.peerScheme ?? 'http'}://127.0.0.1:${plan.peerPort}`;
  return [
    `--name=${plan.name}`,
    `--data-dir=${plan.dataDir}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=${initialCluster}`,
    `--initial-cluster-state=${opts.initialClusterState ?? 'new'}`,
    `--initial-cluster-token=${opts.token ?? 'etcetera-test'}`,
    `--listen-metrics-urls=${opts.clientScheme ?? 'http'}://127.0.0.1:${plan.metricsPort}`,
    ...(opts.memberArgs?.(plan.name) ?? []),
  ];
}

function spawnMember(kind: ServerKind, plan: MemberPlan, initialCluster: string, opts: StartOptions, extra: string[] = []): ServerHandle {
  const args = memberArgs(plan, initialCluster, opts);
  let cmd: string;
  let argv: string[];
  if (kind === 'etcd') {
    cmd = ETCD_BIN;
    // Fast election for tests; zap logger at warn level keeps the output small.
    argv = [...args, '--heartbeat-interval=20', '--election-timeout=200', '--logger=zap', '--log-level=warn', ...(opts.extraArgs ?? []), ...extra];
  } else {
    cmd = process.execPath;
    argv = [etceteraCli(), ...args, ...(opts.extraArgs ?? []), ...extra];
  }
  const child: ChildProcess = spawn(cmd, argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...(opts.env ?? {}) },
  });
  track(child);
  let out = '';
  const keep = (b: Buffer): void => { out += b.toString(); if (out.length > 65536) out = out.slice(-65536); };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let running = true;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => { running = false; resolve({ code, signal }); });
    child.once('error', (err) => { running = false; out += `\nspawn error: ${err.message}`; resolve({ code: -1, signal: null }); });
  });
  const clientUrl = `${opts.clientScheme ?? 'http'}://127.0.0.1:${plan.clientPort}`;
  const h: ServerHandle = {
    kind,
    name: plan.name,
    endpoints: [clientUrl],
    clientUrl,
    peerUrl: `${opts.peerScheme ?? 'http'}://127.0.0.1:${plan.peerPort}`,
    metricsUrl: `${opts.clientScheme ?? 'http'}://127.0.0.1:${plan.metricsPort}`,
    dataDir: plan.dataDir,
    pid: child.pid ?? -1,
    exited,
    argv: [cmd, ...argv],
    isRunning: () => running,
    output: () => out,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (running) { try { child.kill(signal); } catch { /* gone */ } }
      await exited;
    },
    async stop(o?: { keepData?: boolean }) {
      if (running) {
        child.kill('SIGTERM');
        const t = setTimeout(() => { if (running) child.kill('SIGKILL'); }, 10_000);
        await exited;
        clearTimeout(t);
      }
      if (plan.ownDir && !o?.keepData) removeTempDir(plan.dataDir);
    },
    async restart(ro?: { noWait?: boolean; extraArgs?: string[] }) {
      if (running) throw new Error('restart: server still running; kill() or stop({keepData:true}) first');
      const nh = spawnMember(kind, plan, initialCluster, opts, ro?.extraArgs ?? []);
      if (!(ro?.noWait ?? opts.noWait)) await waitReady(nh, opts);
      return nh;
    },
  };
  return h;
}
