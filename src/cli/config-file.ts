/**
 * `--config-file`: etcd's YAML configuration file, read with the `yaml` package.
 * Keys are the flag names (`name`, `data-dir`, `listen-client-urls`, `heartbeat-interval`, ...), URL lists are
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
const DURATION_KEYS = new Set(['experimental-watch-progress-notify-interval', 'grpc-keepalive-min-time', 'grpc-keepalive-interval', 'grpc-keepalive-timeout']);

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
  for (const [key, v] of Object.entries(doc as Record<string, unknown>)) {
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
