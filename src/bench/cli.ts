#!/usr/bin/env node
/**
 * `etcetera-bench` (also `npm run bench --`): a load generator with the command line of etcd's benchmark tool
 * (etcd tools/benchmark: root.go, put.go, range.go, txn_put.go, watch.go, lease.go) and its report layout.
 *
 *   etcetera-bench [--endpoints=h:p,h:p] [--conns=1] [--clients=1] [--target-leader] put --key-size=8 --val-size=256 --total=10000 --sequential-keys
 *   etcetera-bench range KEY [END] --consistency=l|s --total=10000
 *   etcetera-bench txn-put --txn-ops=1 --key-size=8 --val-size=8 --total=10000 --key-space-size=1
 *   etcetera-bench watch --streams=10 --watch-per-stream=100 --put-total=1000 --put-rate=0
 *   etcetera-bench lease-keepalive --total=10000
 *   etcetera-bench gateway-put --conns=100 --clients=100 --key-size=8 --val-size=256 --total=10000 --sequential-keys
 *   etcetera-bench gateway-range KEY [END] --consistency=l|s --total=10000   (HTTP: the v3 JSON gateway, autocannon)
 *   etcetera-bench v2-set --conns=100 --clients=100 --key-size=8 --val-size=256 --total=10000 --sequential-keys
 *   etcetera-bench v2-get KEY --total=10000 [--quorum]   (HTTP: the v2 keys API, --enable-v2=true, autocannon)
 *
 * Global flags may come before or after the command. Extra flags of ours: --json (one JSON object on stdout
 * instead of the text report), --workers (upper bound on worker threads), --request-timeout (per request,
 * 0 = none). Exit status: 0 ok; 1 setup failed or every request failed; 2 usage error (one line on stderr).
 */
import * as crypto from 'node:crypto';
import yargs from 'yargs';
import type { Argv } from 'yargs';
import cliProgress from 'cli-progress';
import { formatText, toJson } from './report';
import { findLeader, runBench, type RunOptions, type RunResult } from './runner';
import { putBodies, rangeBody, runHttpBench, v2Keys, v2Path, type HttpBenchOptions } from './http';
import { benchKey, checkKeySpace, errorText } from './wire';
import type { BenchKind } from './shared';

const PROG = 'etcetera-bench';

/** Setup failure of the last run (dial, leader, worker error), reported by main() with exit status 1. */
let runError: unknown = null;

/** Usage errors: reported on one line, exit status 2. */
export class UsageError extends Error {}

/** Parses a non-negative decimal integer flag value; throws UsageError naming the flag otherwise. */
export function parseUint(flag: string, v: unknown): number {
  const s = String(v).trim();
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s))) throw new UsageError(`invalid argument "${v}" for "--${flag}" flag: expected a non-negative integer`);
  return Number(s);
}

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };

/** Parses a Go duration ("5s", "1m30s", "250ms", "0") into ms; throws UsageError naming the flag otherwise. */
export function parseDuration(flag: string, v: unknown): number {
  const s = String(v).trim();
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/gy;
  let total = 0;
  let pos = 0;
  let m: RegExpExecArray | null;
  while (pos < s.length && (m = re.exec(s)) !== null) {
    total += Number(m[1]) * UNIT_MS[m[2]];
    pos = re.lastIndex;
  }
  if (s.length === 0 || pos !== s.length) throw new UsageError(`invalid argument "${v}" for "--${flag}" flag: expected a duration such as 5s or 500ms`);
  return total;
}

interface Common {
  endpoints: string; conns: number; clients: number; precise: boolean; sample: boolean; 'target-leader': boolean;
  'dial-timeout': number; 'request-timeout': number; cacert?: string; cert?: string; key?: string; user?: string;
  json: boolean; workers?: number;
}

const uint = (flag: string) => (v: unknown): number => parseUint(flag, v);
const dur = (flag: string) => (v: unknown): number => parseDuration(flag, v);

function globalOptions(y: Argv): Argv<Common> {
  return y
    .option('endpoints', { type: 'string', default: '127.0.0.1:2379', describe: 'gRPC endpoints (comma-separated)' })
    .option('conns', { type: 'string', default: '1', coerce: uint('conns'), describe: 'Total number of gRPC connections' })
    .option('clients', { type: 'string', default: '1', coerce: uint('clients'), describe: 'Total number of gRPC clients' })
    .option('precise', { type: 'boolean', default: false, describe: 'use full floating point precision' })
    .option('sample', { type: 'boolean', default: false, describe: "'true' to sample requests for every second" })
    .option('target-leader', { type: 'boolean', default: false, describe: 'connect only to the leader node' })
    .option('dial-timeout', { type: 'string', default: '5s', coerce: dur('dial-timeout'), describe: 'dial timeout for client connections (0 = connect lazily on the first request)' })
    .option('request-timeout', { type: 'string', default: '0', coerce: dur('request-timeout'), describe: 'per-request deadline (0 = none)' })
    .option('cacert', { type: 'string', describe: 'verify certificates of HTTPS-enabled servers using this CA bundle' })
    .option('cert', { type: 'string', describe: 'identify HTTPS client using this SSL certificate file' })
    .option('key', { type: 'string', describe: 'identify HTTPS client using this SSL key file' })
    .option('user', { type: 'string', describe: 'username[:password] (not supported yet)' })
    .option('json', { type: 'boolean', default: false, describe: 'print one JSON object instead of the text report' })
    .option('workers', { type: 'string', coerce: uint('workers'), describe: 'maximum worker threads (default: number of cores)' }) as unknown as Argv<Common>;
}

type Args = Common & Record<string, unknown>;

function baseOptions(a: Args, kind: BenchKind, total: number, rate: number): RunOptions {
  if (a.user !== undefined) throw new UsageError('--user is not supported by this tool yet');
  if (a.conns < 1) throw new UsageError('expected positive --conns');
  if (a.clients < 1) throw new UsageError('expected positive --clients');
  if (a.workers !== undefined && a.workers < 1) throw new UsageError('expected positive --workers');
  const endpoints = String(a.endpoints).split(',').map((s) => s.trim()).filter(Boolean);
  if (endpoints.length === 0) throw new UsageError('expected at least one endpoint in --endpoints');
  return {
    kind, endpoints, conns: a.conns, clients: a.clients, workers: a.workers, targetLeader: a['target-leader'],
    dialTimeoutMs: a['dial-timeout'], requestTimeoutMs: a['request-timeout'],
    tls: { cacert: a.cacert, cert: a.cert, key: a.key }, sample: a.sample, total, rate,
  };
}

async function execute(o: RunOptions, a: Args, header?: string): Promise<void> {
  const json = a.json;
  let bar: cliProgress.SingleBar | null = null;
  let barPhase = '';
  if (!json && process.stderr.isTTY) {
    o.onProgress = (done, total, phase) => {
      if (!bar || barPhase !== phase) {
        bar?.stop();
        barPhase = phase;
        bar = new cliProgress.SingleBar({ stream: process.stderr, format: `${phase} [{bar}] {value}/{total} {percentage}% | {eta}s`, hideCursor: true, clearOnComplete: false }, cliProgress.Presets.shades_classic);
        bar.start(total, 0);
      }
      bar.update(done);
    };
  }
  if (header && !json) process.stdout.write(header + '\n');
  let r: RunResult;
  try {
    r = await runBench(o);
  } catch (e) {
    // Kept aside rather than thrown: yargs would route a handler's rejection through .fail().
    runError = e;
    return;
  } finally {
    (bar as cliProgress.SingleBar | null)?.stop();
  }
  const precise = a.precise;
  if (json) {
    const out: Record<string, unknown> = {
      command: o.kind, endpoints: r.endpoints, conns: o.conns, clients: o.clients, workers: r.workers,
      ...toJson(r.main.summary, a.sample ? r.main.samples : undefined),
    };
    if (r.events) out.events = toJson(r.events.summary, a.sample ? r.events.samples : undefined);
    process.stdout.write(JSON.stringify(out) + '\n');
  } else if (o.kind === 'watch') {
    process.stdout.write(`Watch creation summary:\n${formatText(r.main.summary, { precise, samples: r.main.samples })}`);
    process.stdout.write(`Watch events received summary:\n${formatText(r.events!.summary, { precise, samples: r.events!.samples })}\n`);
  } else {
    process.stdout.write(formatText(r.main.summary, { precise, samples: r.main.samples }) + '\n');
  }
  const all = [r.main, r.events].filter(Boolean);
  if (all.some((p) => p!.summary.count === 0 && p!.summary.errors > 0)) process.exitCode = 1;
}

/** The requests of an HTTP benchmark: what HttpBenchOptions holds beyond endpoint, connections and total. */
type HttpRequests = Pick<HttpBenchOptions, 'path' | 'body' | 'method' | 'contentType'>;

/**
 * Runs an HTTP (JSON gateway or v2) benchmark: --conns HTTP/1.1 connections with one request in flight on each,
 * against the first endpoint (or the leader's with --target-leader); prints etcd's report.
 */
async function executeHttp(a: Args, req: HttpRequests, total: number, header?: string): Promise<void> {
  const o = baseOptions(a, 'put', total, 0);
  if (a.cacert !== undefined || a.cert !== undefined) throw new UsageError('the gateway commands speak plain HTTP only');
  // HTTP/1.1 carries one request at a time per connection (autocannon's pipelining loses answers at the end of a
  // run with a fixed total), so the number of clients is the number of connections.
  if (o.clients > o.conns) throw new UsageError(`expected --clients no larger than --conns for HTTP (one request in flight per connection), got clients(${o.clients}) conns(${o.conns})`);
  let summary;
  let endpoint = o.endpoints[0]!;
  try {
    if (o.targetLeader) endpoint = await findLeader(o.endpoints, o.tls, o.dialTimeoutMs || 5000);
    summary = await runHttpBench({ ...req, endpoint, conns: o.conns, total });
  } catch (e) {
    runError = e;
    return;
  }
  if (a.json) {
    process.stdout.write(JSON.stringify({ command: a._ instanceof Array ? a._[0] : String(req.path), endpoints: [endpoint], conns: o.conns, clients: o.clients, ...toJson(summary) }) + '\n');
  } else {
    if (header) process.stdout.write(header + '\n');
    process.stdout.write(formatText(summary, { precise: a.precise }) + '\n');
  }
  if (summary.count === 0 && summary.errors > 0) process.exitCode = 1;
}

/** Builds the yargs parser for `argv` (exposed for tests). Commands run when parsed with parseAsync. */
export function buildParser(argv: string[]): Argv {
  let y = globalOptions(yargs(argv).scriptName(PROG)) as unknown as Argv;
  y = y
    .command('put', 'Benchmark put', (c) => c
      .option('key-size', { type: 'string', default: '8', coerce: uint('key-size'), describe: 'Key size of put request' })
      .option('val-size', { type: 'string', default: '8', coerce: uint('val-size'), describe: 'Value size of put request' })
      .option('total', { type: 'string', default: '10000', coerce: uint('total'), describe: 'Total number of put requests' })
      .option('rate', { type: 'string', default: '0', coerce: uint('rate'), describe: 'Maximum puts per second (0 is no limit)' })
      .option('key-space-size', { type: 'string', default: '1', coerce: uint('key-space-size'), describe: 'Maximum possible keys' })
      .option('sequential-keys', { type: 'boolean', default: false, describe: 'Use sequential keys' }),
    async (a) => {
      const x = a as unknown as Args & { 'key-size': number; 'val-size': number; total: number; rate: number; 'key-space-size': number; 'sequential-keys': boolean };
      try { checkKeySpace(x['key-size'], x['key-space-size']); } catch (e) { throw new UsageError((e as Error).message); }
      const o = baseOptions(x, 'put', x.total, x.rate);
      o.put = { keySize: x['key-size'], value: crypto.randomBytes(x['val-size']), keySpace: x['key-space-size'], sequential: x['sequential-keys'] };
      await execute(o, x);
    })
    .command('range <KEY> [END]', 'Benchmark range', (c) => c
      .positional('KEY', { type: 'string', describe: 'key to read' })
      .positional('END', { type: 'string', describe: 'range end (exclusive)' })
      .option('total', { type: 'string', default: '10000', coerce: uint('total'), describe: 'Total number of range requests' })
      .option('rate', { type: 'string', default: '0', coerce: uint('rate'), describe: 'Maximum range requests per second (0 is no limit)' })
      .option('consistency', { type: 'string', default: 'l', describe: 'Linearizable(l) or Serializable(s)' }),
    async (a) => {
      const x = a as unknown as Args & { KEY: string; END?: string; total: number; rate: number; consistency: string };
      if (x.consistency !== 'l' && x.consistency !== 's') throw new UsageError(`invalid argument "${x.consistency}" for "--consistency" flag: expected l or s`);
      const o = baseOptions(x, 'range', x.total, x.rate);
      o.range = { key: String(x.KEY), end: x.END === undefined ? '' : String(x.END), serializable: x.consistency === 's' };
      await execute(o, x, x.consistency === 'l' ? 'bench with linearizable range' : 'bench with serializable range');
    })
    .command('txn-put', 'Benchmark txn-put', (c) => c
      .option('key-size', { type: 'string', default: '8', coerce: uint('key-size'), describe: 'Key size of txn put' })
      .option('val-size', { type: 'string', default: '8', coerce: uint('val-size'), describe: 'Value size of txn put' })
      .option('txn-ops', { type: 'string', default: '1', coerce: uint('txn-ops'), describe: 'Number of puts per txn' })
      .option('total', { type: 'string', default: '10000', coerce: uint('total'), describe: 'Total number of txn requests' })
      .option('rate', { type: 'string', default: '0', coerce: uint('rate'), describe: 'Maximum txns per second (0 is no limit)' })
      .option('key-space-size', { type: 'string', default: '1', coerce: uint('key-space-size'), describe: 'Maximum possible keys' }),
    async (a) => {
      const x = a as unknown as Args & { 'key-size': number; 'val-size': number; 'txn-ops': number; total: number; rate: number; 'key-space-size': number };
      try { checkKeySpace(x['key-size'], x['key-space-size']); } catch (e) { throw new UsageError((e as Error).message); }
      if (x['txn-ops'] < 1) throw new UsageError(`expected positive --txn-ops, got (${x['txn-ops']})`);
      if (x['txn-ops'] > x['key-space-size']) throw new UsageError(`expected --txn-ops no larger than --key-space-size, got txn-ops(${x['txn-ops']}) key-space-size(${x['key-space-size']})`);
      const o = baseOptions(x, 'txn-put', x.total, x.rate);
      o.txn = { keySize: x['key-size'], value: crypto.randomBytes(x['val-size']), keySpace: x['key-space-size'], ops: x['txn-ops'] };
      await execute(o, x);
    })
    .command('watch', 'Benchmark watch', (c) => c
      .option('streams', { type: 'string', default: '10', coerce: uint('streams'), describe: 'Total watch streams' })
      .option('watch-per-stream', { type: 'string', default: '100', coerce: uint('watch-per-stream'), describe: 'Total watchers per stream' })
      .option('watched-key-total', { type: 'string', default: '1', coerce: uint('watched-key-total'), describe: 'Total number of keys to be watched' })
      .option('put-rate', { type: 'string', default: '0', coerce: uint('put-rate'), describe: 'Number of keys to put per second (0 is no limit)' })
      .option('put-total', { type: 'string', default: '1000', coerce: uint('put-total'), describe: 'Number of put requests' })
      .option('key-size', { type: 'string', default: '32', coerce: uint('key-size'), describe: 'Key size of watch request' })
      .option('key-space-size', { type: 'string', default: '1', coerce: uint('key-space-size'), describe: 'Maximum possible keys' })
      .option('sequential-keys', { type: 'boolean', default: false, describe: 'Use sequential keys' }),
    async (a) => {
      const x = a as unknown as Args & { streams: number; 'watch-per-stream': number; 'watched-key-total': number; 'put-rate': number; 'put-total': number; 'key-size': number; 'key-space-size': number; 'sequential-keys': boolean };
      try { checkKeySpace(x['key-size'], x['key-space-size']); } catch (e) { throw new UsageError((e as Error).message); }
      if (x.streams < 1 || x['watch-per-stream'] < 1 || x['watched-key-total'] < 1) throw new UsageError('expected positive --streams, --watch-per-stream and --watched-key-total');
      const keys: Uint8Array[] = [];
      for (let i = 0; i < x['watched-key-total']; i++) {
        const n = x['sequential-keys'] ? i % x['key-space-size'] : Math.floor(Math.random() * x['key-space-size']);
        keys.push(benchKey(x['key-size'], n));
      }
      const o = baseOptions(x, 'watch', x.streams * x['watch-per-stream'], 0);
      o.watch = { streams: x.streams, watchPerStream: x['watch-per-stream'], keys, putTotal: x['put-total'], putRate: x['put-rate'], stallMs: 10000 };
      await execute(o, x);
    })
    .command('lease-keepalive', 'Benchmark lease keepalive', (c) => c
      .option('total', { type: 'string', default: '10000', coerce: uint('total'), describe: 'Total number of lease keepalive requests' }),
    async (a) => {
      const x = a as unknown as Args & { total: number };
      await execute(baseOptions(x, 'lease-keepalive', x.total, 0), x);
    })
    .command('gateway-put', 'Benchmark put through the v3 JSON gateway (HTTP, autocannon)', (c) => c
      .option('key-size', { type: 'string', default: '8', coerce: uint('key-size'), describe: 'Key size of put request' })
      .option('val-size', { type: 'string', default: '8', coerce: uint('val-size'), describe: 'Value size of put request' })
      .option('total', { type: 'string', default: '10000', coerce: uint('total'), describe: 'Total number of put requests' })
      .option('key-space-size', { type: 'string', default: '1', coerce: uint('key-space-size'), describe: 'Maximum possible keys' })
      .option('sequential-keys', { type: 'boolean', default: false, describe: 'Use sequential keys' }),
    async (a) => {
      const x = a as unknown as Args & { 'key-size': number; 'val-size': number; total: number; 'key-space-size': number; 'sequential-keys': boolean };
      try { checkKeySpace(x['key-size'], x['key-space-size']); } catch (e) { throw new UsageError((e as Error).message); }
      const body = putBodies(x['key-size'], crypto.randomBytes(x['val-size']), x['key-space-size'], x['sequential-keys']);
      await executeHttp(x, { path: '/v3/kv/put', body }, x.total);
    })
    .command('gateway-range <KEY> [END]', 'Benchmark range through the v3 JSON gateway (HTTP, autocannon)', (c) => c
      .positional('KEY', { type: 'string', describe: 'key to read' })
      .positional('END', { type: 'string', describe: 'range end (exclusive)' })
      .option('total', { type: 'string', default: '10000', coerce: uint('total'), describe: 'Total number of range requests' })
      .option('consistency', { type: 'string', default: 'l', describe: 'Linearizable(l) or Serializable(s)' }),
    async (a) => {
      const x = a as unknown as Args & { KEY: string; END?: string; total: number; consistency: string };
      if (x.consistency !== 'l' && x.consistency !== 's') throw new UsageError(`invalid argument "${x.consistency}" for "--consistency" flag: expected l or s`);
      const body = rangeBody(String(x.KEY), x.END === undefined ? '' : String(x.END), x.consistency === 's');
      await executeHttp(x, { path: '/v3/kv/range', body }, x.total, x.consistency === 'l' ? 'bench with linearizable range' : 'bench with serializable range');
    })
    .command('v2-set', 'Benchmark set through the v2 keys API (HTTP PUT /v2/keys/<key>, autocannon; needs --enable-v2=true)', (c) => c
      .option('key-size', { type: 'string', default: '8', coerce: uint('key-size'), describe: 'Key size of set request (decimal digits)' })
      .option('val-size', { type: 'string', default: '8', coerce: uint('val-size'), describe: 'Value size of set request' })
      .option('total', { type: 'string', default: '10000', coerce: uint('total'), describe: 'Total number of set requests' })
      .option('key-space-size', { type: 'string', default: '1', coerce: uint('key-space-size'), describe: 'Maximum possible keys' })
      .option('sequential-keys', { type: 'boolean', default: false, describe: 'Use sequential keys' }),
    async (a) => {
      const x = a as unknown as Args & { 'key-size': number; 'val-size': number; total: number; 'key-space-size': number; 'sequential-keys': boolean };
      if (x['key-size'] < 1 || x['key-space-size'] < 1) throw new UsageError('expected positive --key-size and --key-space-size');
      let key: (i: number) => string;
      try { key = v2Keys(x['key-size'], x['key-space-size'], x['sequential-keys']); } catch (e) { throw new UsageError((e as Error).message); }
      // A printable value: the form body carries it URL-encoded, and hex needs no escaping.
      const body = `value=${crypto.randomBytes(Math.ceil(x['val-size'] / 2)).toString('hex').slice(0, x['val-size'])}`;
      await executeHttp(x, { method: 'PUT', path: (i) => v2Path(key(i)), body: () => body, contentType: 'application/x-www-form-urlencoded' }, x.total);
    })
    .command('v2-get <KEY>', 'Benchmark get through the v2 keys API (HTTP GET /v2/keys/KEY, autocannon; needs --enable-v2=true)', (c) => c
      .positional('KEY', { type: 'string', describe: 'key to read' })
      .option('total', { type: 'string', default: '10000', coerce: uint('total'), describe: 'Total number of get requests' })
      .option('quorum', { type: 'boolean', default: false, describe: 'Quorum (linearizable) reads: quorum=true' }),
    async (a) => {
      const x = a as unknown as Args & { KEY: string; total: number; quorum: boolean };
      const path = v2Path(String(x.KEY), x.quorum ? '?quorum=true' : '');
      await executeHttp(x, { method: 'GET', path }, x.total, x.quorum ? 'bench with quorum get' : 'bench with local get');
    })
    .demandCommand(1, 'a command is required: put, range, txn-put, watch, lease-keepalive, gateway-put, gateway-range, v2-set or v2-get')
    .strict()
    .help()
    .version(false)
    .wrap(Math.min(120, process.stdout.columns || 100))
    .fail((msg, err) => {
      throw err instanceof UsageError || !err ? new UsageError(msg || err?.message || 'usage error') : err;
    });
  return y;
}

/** Runs the CLI on `argv` (without node and script); resolves with the exit status. */
export async function main(argv: string[]): Promise<number> {
  try {
    runError = null;
    await buildParser(argv).parseAsync();
    if (runError) {
      process.stderr.write(`${PROG}: ${errorText(runError)}\n`);
      return 1;
    }
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof UsageError || (e as Error)?.name === 'YError') {
      process.stderr.write(`${PROG}: ${(e as Error).message.split('\n')[0]} (see ${PROG} --help)\n`);
      return 2;
    }
    process.stderr.write(`${PROG}: ${(e as Error)?.message ?? String(e)}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
