/**
 * Server command line: etcd 3.4's flag names, defaults, ETCD_* environment variables and `--config-file`
 * (YAML), parsed with yargs into a typed {@link ServerConfig}.
 *
 * Precedence, as etcd 3.4 (etcd: etcdmain/config.go `config.parse`):
 *  - `--config-file` (or `ETCD_CONFIG_FILE`) given → the YAML file is the only source; every other flag and
 *    environment variable is ignored (flags are still checked for syntax: unknown flags remain errors).
 *  - otherwise command-line flags, then `ETCD_<FLAG_NAME>` variables for flags not given, then defaults.
 *    (etcd 3.4 aborts when a variable is shadowed by a flag; here the flag wins and a warning is recorded.)
 *
 * Errors are {@link FlagError}s with a one-line, etcd-worded message; {@link runCliOrExit} prints it to
 * stderr and exits with status 2.
 */
import * as fs from 'node:fs';
import { isIP } from 'node:net';
import yargs from 'yargs/yargs';
import { LOG_LEVELS, LogLevel } from '../log';
import { FlagError, loadConfigFile } from './config-file';
import type { InitialClusterMember, ServerConfig } from '../server/config';

/** etcd release whose flags we mirror (printed by --version). */
export const ETCD_VERSION = '3.4.23';

export { FlagError };

export type { InitialClusterMember, ServerConfig };

type Kind = 'string' | 'uint' | 'int64' | 'bool' | 'duration' | 'urls';

interface FlagSpec {
  kind: Kind;
  /** Default as etcd's flag text (before name-dependent substitution). */
  def: string;
  describe: string;
  choices?: readonly string[];
}

const DEFAULT_INITIAL_CLUSTER = 'default=http://localhost:2380';

/** Every accepted flag (without --config-file, --version, --help). etcd: etcdmain/config.go newConfig. */
const FLAGS: Record<string, FlagSpec> = {
  name: { kind: 'string', def: 'default', describe: 'Human-readable name for this member.' },
  'data-dir': { kind: 'string', def: '', describe: 'Path to the data directory (default "${name}.etcetera").' },
  'listen-peer-urls': { kind: 'urls', def: 'http://localhost:2380', describe: 'List of URLs to listen on for peer traffic.' },
  'listen-client-urls': { kind: 'urls', def: 'http://localhost:2379', describe: 'List of URLs to listen on for client traffic.' },
  'listen-metrics-urls': { kind: 'urls', def: '', describe: 'List of URLs to listen on for the metrics and health endpoints.' },
  'initial-advertise-peer-urls': { kind: 'urls', def: 'http://localhost:2380', describe: "List of this member's peer URLs to advertise to the rest of the cluster." },
  'advertise-client-urls': { kind: 'urls', def: 'http://localhost:2379', describe: "List of this member's client URLs to advertise to the public." },
  'initial-cluster': { kind: 'string', def: DEFAULT_INITIAL_CLUSTER, describe: 'Initial cluster configuration for bootstrapping.' },
  'initial-cluster-state': { kind: 'string', def: 'new', describe: "Initial cluster state ('new' or 'existing').", choices: ['new', 'existing'] },
  'initial-cluster-token': { kind: 'string', def: 'etcd-cluster', describe: 'Initial cluster token for the etcd cluster during bootstrap.' },
  'heartbeat-interval': { kind: 'uint', def: '100', describe: 'Time (in milliseconds) of a heartbeat interval.' },
  'election-timeout': { kind: 'uint', def: '1000', describe: 'Time (in milliseconds) for an election to timeout.' },
  'snapshot-count': { kind: 'uint', def: '100000', describe: 'Number of committed transactions to trigger a snapshot to disk.' },
  'quota-backend-bytes': { kind: 'int64', def: '0', describe: 'Raise alarms when backend size exceeds the given quota. 0 means use the default quota (2 GiB).' },
  'max-txn-ops': { kind: 'uint', def: '128', describe: 'Maximum number of operations permitted in a transaction.' },
  'max-request-bytes': { kind: 'uint', def: '1572864', describe: 'Maximum client request size in bytes the server will accept.' },
  'max-concurrent-streams': { kind: 'uint', def: '4294967295', describe: 'Maximum concurrent streams that each client can open at a time.' },
  'grpc-keepalive-min-time': { kind: 'duration', def: '5s', describe: 'Minimum interval duration that a client should wait before pinging server.' },
  'grpc-keepalive-interval': { kind: 'duration', def: '2h', describe: 'Frequency duration of server-to-client ping to check if a connection is alive (0 to disable).' },
  'grpc-keepalive-timeout': { kind: 'duration', def: '20s', describe: 'Additional duration of wait before closing a non-responsive connection (0 to disable).' },
  'max-wals': { kind: 'uint', def: '5', describe: 'Maximum number of wal files to retain (0 is unlimited).' },
  'max-snapshots': { kind: 'uint', def: '5', describe: 'Maximum number of snapshot files to retain (0 is unlimited).' },
  'auth-token': { kind: 'string', def: 'simple', describe: "Specify auth token specific options: 'simple' or 'jwt,pub-key=<path>,priv-key=<path>,sign-method=<alg>[,ttl=<duration>]'." },
  'auth-token-ttl': { kind: 'uint', def: '300', describe: 'The lifetime in seconds of the auth token.' },
  'bcrypt-cost': { kind: 'uint', def: '10', describe: 'Specify bcrypt algorithm cost factor for auth password hashing.' },
  'log-level': { kind: 'string', def: 'info', describe: 'Configures log level. Only supports debug, info, warn, error, panic, or fatal.', choices: LOG_LEVELS },
  logger: { kind: 'string', def: 'zap', describe: "Specify 'zap' for structured logging ('capnslog' is accepted and treated as 'zap').", choices: ['zap', 'capnslog'] },
  'experimental-watch-progress-notify-interval': { kind: 'duration', def: '10m', describe: 'Duration of periodic watch progress notifications.' },
  'auto-compaction-mode': { kind: 'string', def: 'periodic', describe: "Interpret 'auto-compaction-retention' one of: periodic|revision." },
  'auto-compaction-retention': { kind: 'string', def: '0', describe: 'Auto compaction retention for mvcc key value store. 0 means disable auto compaction.' },
  'experimental-initial-corrupt-check': { kind: 'bool', def: 'false', describe: 'Enable to check data corruption before serving any client/peer traffic.' },
  'experimental-corrupt-check-time': { kind: 'duration', def: '0s', describe: 'Duration of time between cluster corruption check passes.' },
  'experimental-enable-lease-checkpoint': { kind: 'bool', def: 'false', describe: 'ExperimentalEnableLeaseCheckpoint enables primary lessor to persist lease remainingTTL to prevent indefinite auto-renewal of long lived leases.' },
  // etcd 3.4 fixes the interval at 5m (lessor defaultLeaseCheckpointInterval); etcd 3.5 added this flag to set it.
  'experimental-lease-checkpoint-interval': { kind: 'duration', def: '5m', describe: 'Duration of time between two lease checkpoints (etcd 3.5 flag; etcd 3.4 always uses 5m).' },
  'enable-v2': { kind: 'bool', def: 'false', describe: 'Accept etcd V2 client requests.' },
  'enable-pprof': { kind: 'bool', def: 'false', describe: 'Accepted for compatibility with etcd; ignored (no pprof in Node).' },
  'cert-file': { kind: 'string', def: '', describe: 'Path to the client server TLS cert file.' },
  'key-file': { kind: 'string', def: '', describe: 'Path to the client server TLS key file.' },
  'client-cert-auth': { kind: 'bool', def: 'false', describe: 'Enable client cert authentication.' },
  'trusted-ca-file': { kind: 'string', def: '', describe: 'Path to the client server TLS trusted CA cert file.' },
  'auto-tls': { kind: 'bool', def: 'false', describe: 'Client TLS using generated certificates.' },
  'peer-cert-file': { kind: 'string', def: '', describe: 'Path to the peer server TLS cert file.' },
  'peer-key-file': { kind: 'string', def: '', describe: 'Path to the peer server TLS key file.' },
  'peer-client-cert-auth': { kind: 'bool', def: 'false', describe: 'Enable peer client cert authentication.' },
  'peer-trusted-ca-file': { kind: 'string', def: '', describe: 'Path to the peer server TLS trusted CA file.' },
  'peer-auto-tls': { kind: 'bool', def: 'false', describe: 'Peer TLS using generated certificates.' },
  'peer-cert-allowed-cn': { kind: 'string', def: '', describe: 'Allowed CN for inter peer authentication.' },
  'cipher-suites': { kind: 'string', def: '', describe: 'Comma-separated list of supported TLS cipher suites between client/server and peers (empty will be auto-populated by Go).' },
};

/** `data-dir` → `ETCD_DATA_DIR`. etcd: pkg/flags FlagToEnv. */
export function flagToEnv(flag: string): string {
  return 'ETCD_' + flag.toUpperCase().replace(/-/g, '_');
}

const GO_DURATION_UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/**
 * Parse a Go `time.ParseDuration` string ("10m", "1h30m", "1.5s", "300ms", "0") into milliseconds.
 * Throws FlagError('parse error') on anything else (bare numbers other than 0 included, as Go).
 */
export function parseGoDurationMs(s: string): number {
  const m = /^([+-]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+|0)$/.exec(s);
  if (!m) throw new FlagError('parse error');
  let ns = 0;
  for (const p of m[2].matchAll(/(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) ns += parseFloat(p[1]) * GO_DURATION_UNIT_NS[p[2]];
  return (m[1] === '-' ? -ns : ns) / 1e6;
}

/**
 * Validate one URL as etcd's types.NewURLs does: scheme http|https|unix|unixs, "host:port" authority,
 * no path/query. Returns the trimmed URL; throws FlagError with etcd's wording.
 */
export function parseEtcdUrl(raw: string): string {
  const s = raw.trim();
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)(.*)$/.exec(s);
  if (!m || !['http', 'https', 'unix', 'unixs'].includes(m[1])) {
    throw new FlagError(`URL scheme must be http, https, unix, or unixs: ${s}`);
  }
  const hp = /^(\[[^\]]*\]|[^:[\]]*):([0-9]*)$/.exec(m[2]);
  if (!hp) throw new FlagError(`URL address does not have the form "host:port": ${s}`);
  if (m[3] !== '') throw new FlagError(`URL must not contain a path: ${s}`);
  return s;
}

/** Parse a comma-separated URL list (etcd: flags.UniqueURLsFromFlag): each URL validated, de-duplicated, sorted. */
export function parseUrlList(s: string): string[] {
  if (s.trim() === '') return [];
  return [...new Set(s.split(',').map(parseEtcdUrl))].sort();
}

/**
 * Parse `--initial-cluster` ("n1=http://a:2380,n1=http://b:2380,n2=http://c:2380") into members in order of
 * first appearance (etcd: types.NewURLsMap). Throws FlagError for an entry without '=' or a bad URL.
 */
export function parseInitialCluster(s: string): InitialClusterMember[] {
  const byName = new Map<string, string[]>();
  for (const part of s.split(',')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq);
    const url = parseEtcdUrl(eq < 0 ? '' : part.slice(eq + 1));
    const urls = byName.get(name) ?? [];
    if (!urls.includes(url)) urls.push(url);
    byName.set(name, urls);
  }
  return [...byName].map(([name, urls]) => ({ name, peerUrls: urls.sort() }));
}

/** Go strconv.ParseBool. */
function parseGoBool(s: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  throw new FlagError('parse error');
}

/** Go flag's unsigned integer (decimal or 0x hex), limited to JS safe integers. */
function parseUint(s: string): number {
  if (!/^(0[xX][0-9a-fA-F]+|[0-9]+)$/.test(s)) throw new FlagError('parse error');
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new FlagError('value out of range');
  return n;
}

/** etcd's --max-concurrent-streams is a uint32 (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). */
function parseMaxConcurrentStreams(s: string): number {
  const n = parseUint(s);
  if (n > 0xffffffff) throw new FlagError('value out of range');
  return n;
}

/** Go flag's int64 (decimal, optional sign), limited to JS safe integers. */
function parseInt64(s: string): number {
  if (!/^[+-]?[0-9]+$/.test(s)) throw new FlagError('parse error');
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new FlagError('value out of range');
  return n;
}

/** Raw textual value of every flag, plus where it came from. */
type RawValues = Record<string, string>;

/** Check a raw value against its kind; throws FlagError(reason). */
function checkValue(flag: string, v: string): void {
  const spec = FLAGS[flag];
  switch (spec.kind) {
    case 'uint': parseUint(v); break;
    case 'int64': parseInt64(v); break;
    case 'bool': parseGoBool(v); break;
    case 'duration': parseGoDurationMs(v); break;
    case 'urls': parseUrlList(v); break;
    case 'string':
      if (spec.choices && !spec.choices.includes(v)) {
        throw new FlagError(flag === 'log-level' ? `unknown level "${v}"` : 'invalid value');
      }
  }
}

/** `-name` → `--name` (Go flags accept one or two dashes); values after value-taking flags are left alone. */
function normalizeArgv(argv: readonly string[]): string[] {
  const out: string[] = [];
  let expectValue = false;
  for (const a of argv) {
    if (expectValue) { out.push(a); expectValue = false; continue; }
    let t = a;
    if (/^-[^-]/.test(a) && a.length > 2 && !/^-[0-9.]/.test(a)) t = '-' + a;
    const withValue = /^--([^=]+)=(.*)$/s.exec(t);
    if (withValue && FLAGS[withValue[1]]?.kind === 'bool') {
      // Go's flag package: `-flag=value` must be a strconv.ParseBool value (yargs would read "maybe" as false).
      try {
        t = `--${withValue[1]}=${String(parseGoBool(withValue[2]))}`;
      } catch {
        throw new FlagError(`invalid boolean value "${withValue[2]}" for -${withValue[1]}: parse error`);
      }
    }
    out.push(t);
    const m = /^--([^=]+)$/.exec(t);
    if (m && FLAGS[m[1]] && FLAGS[m[1]].kind !== 'bool') expectValue = true;
    if (m && m[1] === 'config-file') expectValue = true;
  }
  return out;
}

/** The yargs parser (library mode: no exit, no console output, English messages). */
function buildYargs(argv: readonly string[]) {
  const options: Record<string, { type: 'string' | 'boolean'; describe: string; requiresArg?: boolean; defaultDescription?: string }> = {};
  for (const [flag, spec] of Object.entries(FLAGS)) {
    options[flag] = spec.kind === 'bool'
      ? { type: 'boolean', describe: spec.describe, defaultDescription: spec.def }
      : { type: 'string', describe: spec.describe, requiresArg: true, defaultDescription: spec.def === '' ? '""' : spec.def };
  }
  options['config-file'] = { type: 'string', requiresArg: true, describe: 'Path to the server configuration file. Note that if a configuration file is provided, other command line flags and environment variables will be ignored.' };
  options.version = { type: 'boolean', describe: 'Print the version and exit.' };
  options.help = { type: 'boolean', describe: 'Show this help and exit.' };
  return yargs([...argv])
    .locale('en')
    .scriptName('etcetera')
    .usage('Usage: etcetera [flags]\n\nStart an etcd-compatible server. Every flag can also be set with ETCD_<FLAG_NAME> (e.g. ETCD_DATA_DIR).')
    .parserConfiguration({
      'duplicate-arguments-array': false,
      'camel-case-expansion': false,
      'boolean-negation': false,
      'dot-notation': false,
      'short-option-groups': false,
      'parse-numbers': false,
      'parse-positional-numbers': false,
    })
    .help(false)
    .version(false)
    .options(options)
    .alias('help', 'h')
    .strictOptions()
    .exitProcess(false)
    .wrap(120)
    .fail((msg: string | undefined, err: Error | undefined) => {
      const text = msg ?? err?.message ?? 'invalid flags';
      const unknown = /^Unknown arguments?: ([^,]+)/.exec(text);
      if (unknown) throw new FlagError(`flag provided but not defined: -${unknown[1].trim()}`);
      const missing = /^Not enough arguments following: (.+)$/.exec(text);
      if (missing) throw new FlagError(`flag needs an argument: -${missing[1].trim()}`);
      throw new FlagError(text.split('\n')[0]);
    });
}

/** The `--help` text (yargs-generated), without trailing newline. */
export function helpText(): string {
  let out = '';
  buildYargs([]).showHelp((s: string) => { out = s; });
  return out;
}

/** The `--version` text, in etcd's four-line layout (with Node in place of Go). */
export function versionText(): string {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  return [
    `etcd Version: ${ETCD_VERSION}`,
    `Git SHA: Not provided (etcetera)`,
    `Go Version: node ${process.version}`,
    `Go OS/Arch: ${process.platform}/${arch}`,
  ].join('\n');
}

const DEFAULT_QUOTA_BYTES = 2 * 1024 * 1024 * 1024;
const MAX_QUOTA_BYTES = 8 * 1024 * 1024 * 1024;
const MAX_ELECTION_MS = 50000;

/** Validation failure with etcd's "error verifying flags" wrapper. etcd: etcdmain/etcd.go. */
function verifyError(msg: string): FlagError {
  return new FlagError(`error verifying flags, ${msg}. See 'etcetera --help'.`);
}

/**
 * Turn checked raw values into a ServerConfig and run etcd's cross-flag validation
 * (etcd: embed/config.go Config.Validate, etcdmain/etcd.go, embed UpdateDefaultClusterFromName).
 */
function finish(raw: RawValues, set: Set<string>, configFile: string | null, warnings: string[]): ServerConfig {
  const name = raw.name;
  const apUrls = parseUrlList(raw['initial-advertise-peer-urls']);
  let initialClusterText = raw['initial-cluster'];
  if (name !== 'default' && initialClusterText === DEFAULT_INITIAL_CLUSTER) {
    // etcd: only --name given → the initial cluster is this member's advertised peer URLs.
    initialClusterText = apUrls.map((u) => `${name}=${u}`).join(',');
  }
  const heartbeatIntervalMs = parseUint(raw['heartbeat-interval']);
  const electionTimeoutMs = parseUint(raw['election-timeout']);
  const lcUrls = parseUrlList(raw['listen-client-urls']);
  let acUrls = parseUrlList(raw['advertise-client-urls']);
  if (configFile === null && set.has('listen-client-urls') && !set.has('advertise-client-urls')) acUrls = [];

  for (const flag of ['listen-peer-urls', 'listen-client-urls', 'listen-metrics-urls']) {
    for (const u of parseUrlList(raw[flag])) {
      if (u.startsWith('unix')) continue;
      const host = /^[a-z]+:\/\/(\[[^\]]*\]|[^:]*):/.exec(u)?.[1] ?? '';
      const bare = host.replace(/^\[|\]$/g, '');
      if (host !== 'localhost' && isIP(bare) === 0) throw verifyError(`expected IP in URL for binding (${u})`);
    }
  }
  for (const [flag, list] of [['--initial-advertise-peer-urls', apUrls], ['--advertise-client-urls', acUrls]] as const) {
    for (const u of list) {
      if (/^[a-z]+:\/\/:/.test(u)) throw verifyError(`${flag} "${list.join(',')}" must be "host:port" (expected host in URL (${u}))`);
    }
  }
  const state = raw['initial-cluster-state'];
  if (state !== 'new' && state !== 'existing') throw verifyError(`unexpected clusterState "${state}"`);
  if (heartbeatIntervalMs <= 0) throw verifyError(`--heartbeat-interval must be >0 (set to ${heartbeatIntervalMs}ms)`);
  if (electionTimeoutMs <= 0) throw verifyError(`--election-timeout must be >0 (set to ${electionTimeoutMs}ms)`);
  if (5 * heartbeatIntervalMs > electionTimeoutMs) {
    throw verifyError(`--election-timeout[${electionTimeoutMs}ms] should be at least as 5 times as --heartbeat-interval[${heartbeatIntervalMs}ms]`);
  }
  if (electionTimeoutMs > MAX_ELECTION_MS) {
    throw verifyError(`--election-timeout[${electionTimeoutMs}ms] is too long, and should be set less than ${MAX_ELECTION_MS}ms`);
  }
  if (lcUrls.length > 0 && acUrls.length === 0) {
    throw verifyError('--advertise-client-urls is required when --listen-client-urls is set explicitly');
  }
  const mode = raw['auto-compaction-mode'];
  if (mode !== 'periodic' && mode !== 'revision') throw verifyError(`unknown auto-compaction-mode "${mode}"`);
  const retention = raw['auto-compaction-retention'];
  let retentionMs = 0;
  let retentionRevs = 0;
  if (/^[0-9]+$/.test(retention)) {
    const n = Number(retention);
    if (mode === 'periodic') retentionMs = n * 3600_000;
    else retentionRevs = n;
  } else {
    let ms: number;
    try {
      ms = parseGoDurationMs(retention);
    } catch {
      throw verifyError(`error parsing CompactionRetention: time: invalid duration "${retention}"`);
    }
    if (mode === 'revision') throw verifyError(`error parsing CompactionRetention: revision retention must be an integer, got "${retention}"`);
    retentionMs = ms;
  }
  let initialCluster: InitialClusterMember[];
  try {
    initialCluster = parseInitialCluster(initialClusterText);
  } catch (e) {
    throw verifyError(`error setting up initial cluster: ${(e as Error).message}`);
  }
  if (state === 'new' && !initialCluster.some((m) => m.name === name)) {
    throw verifyError(`couldn't find local name "${name}" in the initial cluster configuration`);
  }
  let quota = parseInt64(raw['quota-backend-bytes']);
  if (quota === 0) quota = DEFAULT_QUOTA_BYTES;
  if (quota > MAX_QUOTA_BYTES) warnings.push(`quota-backend-bytes ${quota} exceeds maximum recommended quota ${MAX_QUOTA_BYTES}`);
  const enablePprof = parseGoBool(raw['enable-pprof']);
  const cipherSuites = raw['cipher-suites'] === '' ? [] : raw['cipher-suites'].split(',').map((c) => c.trim()).filter((c) => c !== '');
  if (enablePprof) warnings.push('--enable-pprof is accepted but ignored: etcetera has no pprof endpoint');
  if (raw.logger === 'capnslog') warnings.push("--logger=capnslog is not supported; using 'zap' (JSON) logging");

  return {
    mode: 'serve',
    configFile,
    name,
    dataDir: raw['data-dir'] === '' ? `${name}.etcetera` : raw['data-dir'],
    listenClientUrls: lcUrls,
    advertiseClientUrls: acUrls,
    listenPeerUrls: parseUrlList(raw['listen-peer-urls']),
    initialAdvertisePeerUrls: apUrls,
    listenMetricsUrls: parseUrlList(raw['listen-metrics-urls']),
    initialCluster,
    initialClusterState: state,
    initialClusterToken: raw['initial-cluster-token'],
    heartbeatIntervalMs,
    electionTimeoutMs,
    snapshotCount: parseUint(raw['snapshot-count']),
    quotaBackendBytes: quota,
    maxTxnOps: parseUint(raw['max-txn-ops']),
    maxRequestBytes: parseUint(raw['max-request-bytes']),
    maxConcurrentStreams: parseMaxConcurrentStreams(raw['max-concurrent-streams']),
    grpcKeepaliveMinTimeMs: parseGoDurationMs(raw['grpc-keepalive-min-time']),
    grpcKeepaliveIntervalMs: parseGoDurationMs(raw['grpc-keepalive-interval']),
    grpcKeepaliveTimeoutMs: parseGoDurationMs(raw['grpc-keepalive-timeout']),
    maxWals: parseUint(raw['max-wals']),
    maxSnapshots: parseUint(raw['max-snapshots']),
    authToken: raw['auth-token'],
    authTokenTtlSeconds: parseUint(raw['auth-token-ttl']),
    bcryptCost: parseUint(raw['bcrypt-cost']),
    logLevel: raw['log-level'] as LogLevel,
    logger: 'zap',
    watchProgressNotifyIntervalMs: parseGoDurationMs(raw['experimental-watch-progress-notify-interval']),
    autoCompactionMode: mode,
    autoCompactionRetention: retention,
    autoCompactionRetentionMs: retentionMs,
    autoCompactionRetentionRevisions: retentionRevs,
    initialCorruptCheck: parseGoBool(raw['experimental-initial-corrupt-check']),
    corruptCheckTimeMs: parseGoDurationMs(raw['experimental-corrupt-check-time']),
    enableLeaseCheckpoint: parseGoBool(raw['experimental-enable-lease-checkpoint']),
    leaseCheckpointIntervalMs: parseGoDurationMs(raw['experimental-lease-checkpoint-interval']),
    enablePprof,
    clientTls: {
      certFile: raw['cert-file'],
      keyFile: raw['key-file'],
      trustedCaFile: raw['trusted-ca-file'],
      clientCertAuth: parseGoBool(raw['client-cert-auth']),
      allowedCn: '',
      selfCert: false,
    },
    peerTls: {
      certFile: raw['peer-cert-file'],
      keyFile: raw['peer-key-file'],
      trustedCaFile: raw['peer-trusted-ca-file'],
      clientCertAuth: parseGoBool(raw['peer-client-cert-auth']),
      allowedCn: raw['peer-cert-allowed-cn'],
      selfCert: false,
    },
    clientAutoTls: parseGoBool(raw['auto-tls']),
    peerAutoTls: parseGoBool(raw['peer-auto-tls']),
    cipherSuites,
    enableV2: parseGoBool(raw['enable-v2']),
    warnings,
  };
}

function defaults(): RawValues {
  const raw: RawValues = {};
  for (const [flag, spec] of Object.entries(FLAGS)) raw[flag] = spec.def;
  return raw;
}

/**
 * Parse the server's command line and environment into a {@link ServerConfig}.
 * `argv`: arguments after the script (process.argv.slice(2)); `env`: usually process.env.
 * Throws {@link FlagError} (one-line message) for an unknown flag, a malformed value, a bad config file, or a
 * failed cross-flag check (e.g. election-timeout < 5 × heartbeat-interval).
 * etcd: etcdmain/config.go (newConfig, parse, configFromCmdLine, configFromFile), embed/config.go Validate.
 */
export function parseServerConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ServerConfig {
  const parsed = buildYargs(normalizeArgv(argv)).parseSync() as Record<string, unknown> & { _: (string | number)[] };
  if (parsed._.length > 0) throw new FlagError(`'${parsed._[0]}' is not a valid flag`);

  const raw = defaults();
  const fromFlags = new Set<string>();
  for (const flag of Object.keys(FLAGS)) {
    const v = parsed[flag];
    if (v === undefined) continue;
    const text = String(v);
    try {
      checkValue(flag, text);
    } catch (e) {
      throw new FlagError(`invalid value "${text}" for flag -${flag}: ${(e as Error).message}`);
    }
    raw[flag] = text;
    fromFlags.add(flag);
  }
  if (parsed.version === true) return { ...parseServerConfig([], {}), mode: 'version' };
  if (parsed.help === true) return { ...parseServerConfig([], {}), mode: 'help' };

  const warnings: string[] = [];
  const configFile = typeof parsed['config-file'] === 'string' && parsed['config-file'] !== ''
    ? parsed['config-file']
    : env[flagToEnv('config-file')] || null;
  if (configFile) {
    const fileRaw = defaults();
    const { values, unknownKeys } = loadConfigFile(configFile, Object.keys(FLAGS));
    for (const [key, text] of Object.entries(values)) {
      try {
        checkValue(key, text);
      } catch (e) {
        throw verifyError(`invalid value "${text}" for "${key}" in config file ${configFile}: ${(e as Error).message}`);
      }
      fileRaw[key] = text;
    }
    for (const k of unknownKeys) warnings.push(`config file key "${k}" is not supported by etcetera and was ignored`);
    warnings.push(`loaded server configuration from ${configFile}; other command line flags and environment variables are ignored`);
    return finish(fileRaw, new Set(Object.keys(values)), configFile, warnings);
  }

  const known = new Set<string>([flagToEnv('config-file')]);
  const set = new Set(fromFlags);
  for (const flag of Object.keys(FLAGS)) {
    const key = flagToEnv(flag);
    known.add(key);
    const v = env[key];
    if (v === undefined || v === '') continue;
    if (fromFlags.has(flag)) {
      warnings.push(`environment variable ${key} is shadowed by the command-line flag --${flag}`);
      continue;
    }
    try {
      checkValue(flag, v);
    } catch (e) {
      throw new FlagError(`invalid value "${v}" for ${key}: ${(e as Error).message}`);
    }
    raw[flag] = v;
    set.add(flag);
  }
  for (const key of Object.keys(env)) {
    if (key.startsWith('ETCD_') && !known.has(key)) warnings.push(`unrecognized environment variable ${key}=${env[key]}`);
  }
  return finish(raw, set, null, warnings);
}

/**
 * CLI entry: parse like {@link parseServerConfig}; on --version / --help print to stdout and exit 0; on a
 * {@link FlagError} write its single-line message to stderr and exit 2. Returns the config for mode 'serve'.
 * Writes synchronously (fd 1/2) so nothing is lost at exit.
 */
export function runCliOrExit(argv: readonly string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): ServerConfig {
  let cfg: ServerConfig;
  try {
    cfg = parseServerConfig(argv, env);
  } catch (e) {
    if (e instanceof FlagError) {
      fs.writeSync(2, e.message.replace(/\n/g, ' ') + '\n');
      process.exit(2);
    }
    throw e;
  }
  if (cfg.mode === 'version') {
    fs.writeSync(1, versionText() + '\n');
    process.exit(0);
  }
  if (cfg.mode === 'help') {
    fs.writeSync(1, helpText() + '\n');
    process.exit(0);
  }
  return cfg;
}
