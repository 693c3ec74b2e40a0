/**
 * Structured logging with pino, shaped like etcd's zap JSON logger (`--logger=zap`): one JSON object per line,
 * `{"level":"info","ts":"2026-01-02T03:04:05.678Z","msg":"...", ...fields}` on stderr.
 *
 * Safe in worker threads: the default destination writes synchronously to file descriptor 2 (sonic-boom),
 * not through `process.stderr`, which in a worker is an async pipe via the main thread and can lose lines
 * when the worker exits.
 */
import pino from 'pino';

/** etcd's `--log-level` values (etcd: embed/config.go, flag --log-level; zap levels). */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'panic', 'fatal'] as const;

/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The logger type returned by {@link createLogger} (pino with an extra `panic` level between error and fatal). */
export type Logger = pino.Logger<'panic'>;

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Where lines go: a file descriptor (default 2 = stderr) or any pino destination stream (tests). */
  destination?: number | pino.DestinationStream;
  /** Fields added to every line, e.g. `{ thread: 'wal' }` or `{ 'local-member-id': '8e9e05c52164694d' }`. */
  bindings?: Record<string, unknown>;
}

/**
 * Create a logger that emits etcd/zap-like JSON lines at `level` and above.
 * `level`: one of debug|info|warn|error|panic|fatal (etcd's --log-level); throws `Error` on anything else.
 * Call `logger.info({ field: 1 }, 'message')` (pino argument order: fields first, message second).
 * Note `logger.fatal`/`logger.panic` only log; they do not exit or throw (unlike zap).
 */
export function createLogger(level: LogLevel = 'info', opts: LoggerOptions = {}): Logger {
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new Error(`unknown level "${level}"`);
  const dest =
    opts.destination === undefined || typeof opts.destination === 'number'
      ? pino.destination({ dest: opts.destination ?? 2, sync: true })
      : opts.destination;
  const logger = pino<'panic'>(
    {
      level,
      customLevels: { panic: 55 },
      base: undefined,
      messageKey: 'msg',
      timestamp: () => `,"ts":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
    },
    dest,
  );
  return opts.bindings ? logger.child(opts.bindings) : logger;
}
