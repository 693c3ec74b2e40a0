/**
 * `--config-file`: etcd's YAML configuration file, read with the `yaml` package.
 * Keys are the flag names (`name`, `data-dir`, `listen-client-urls`, `heartbeat-interval`, ...) except TLS, which
 * sits in etcd's `client-transport-security` / `peer-transport-security` sections; URL lists are
 * comma-separated strings, numbers are YAML numbers. etcd: embed/config.go configFromFile (keys = json tags).
 */
import * as fs from 'node:fs';
import * as YAML from 'yaml';

/** Thrown for any invalid command line, environment variable or config file; message is one line. */
export class FlagError extends Error {
  override readonly name = 'FlagError';
  constructor(message: string) {
    super(message);
  }
}

/** Keys whose YAML number is a Go time.Duration, i.e. nanoseconds (etcd decodes durations as int64 ns). */
const DURATION_KEYS = new Set([
  'experimental-watch-progress-notify-interval', 'experimental-corrupt-check-time', 'experimental-lease-checkpoint-interval',
  'grpc-keepalive-min-time', 'grpc-keepalive-interval', 'grpc-keepalive-timeout',
]);

/**
 * etcd's nested TLS sections (embed configYAML: `client-transport-security`, `peer-transport-security`, securityConfig
 * json tags) → the flags they stand for.
 */
const SECURITY_SECTIONS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  'client-transport-security': {
    'cert-file': 'cert-file', 'key-file': 'key-file', 'client-cert-auth': 'client-cert-auth', 'trusted-ca-file': 'trusted-ca-file', 'auto-tls': 'auto-tls',
  },
  'peer-transport-security': {
    'cert-file': 'peer-cert-file', 'key-file': 'peer-key-file', 'client-cert-auth': 'peer-client-cert-auth', 'trusted-ca-file': 'peer-trusted-ca-file',
    'auto-tls': 'peer-auto-tls', 'allowed-cn': 'peer-cert-allowed-cn',
  },
};

/** The entries of `doc` with etcd's TLS sections flattened into flag names (unknown section keys are kept as `section.key`). */
function flattenSecurity(doc: Record<string, unknown>): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  for (const [key, v] of Object.entries(doc)) {
    const section = SECURITY_SECTIONS[key];
    if (section === undefined || v === null || typeof v !== 'object' || Array.isArray(v)) {
      out.push([key, v]);
      continue;
    }
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) out.push([section[k] ?? `${key}.${k}`, x]);
  }
  return out;
}

/**
 * Read and parse the YAML config file at `path`, keeping only keys in `knownKeys`.
 * Returns each known key's value as flag text (numbers → decimal, booleans → true/false, string arrays →
 * comma-joined, duration numbers → "<n>ns"; a Go duration string is also accepted) and the unknown keys, which
 * etcd silently ignores (the caller turns them into warnings).
 * Throws FlagError (one line) when the file cannot be read, is not YAML, or is not a mapping, or when a value
 * is a nested mapping.
 */
export function loadConfigFile(path: string, knownKeys: readonly string[]): { values: Record<string, string>; unknownKeys: string[] } {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new FlagError(`error verifying flags, open ${path}: ${err.code === 'ENOENT' ? 'no such file or directory' : err.message}. See 'etcetera --help'.`);
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (e) {
    throw new FlagError(`error verifying flags, yaml: ${(e as Error).message.split('\n')[0]}. See 'etcetera --help'.`);
  }
  if (doc === null || doc === undefined) doc = {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new FlagError(`error verifying flags, yaml: config file ${path} is not a mapping. See 'etcetera --help'.`);
  }
  const values: Record<string, string> = {};
  const unknownKeys: string[] = [];
  for (const [key, v] of flattenSecurity(doc as Record<string, unknown>)) {
    if (!knownKeys.includes(key)) {
      unknownKeys.push(key);
      continue;
    }
    if (v === null || v === undefined) continue;
    if (typeof v === 'number') values[key] = DURATION_KEYS.has(key) ? `${v}ns` : String(v);
    else if (typeof v === 'boolean' || typeof v === 'string') values[key] = String(v);
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) values[key] = v.join(',');
    else throw new FlagError(`error verifying flags, yaml: cannot use a ${Array.isArray(v) ? 'list' : 'mapping'} as the value of "${key}". See 'etcetera --help'.`);
  }
  return { values, unknownKeys };
}
