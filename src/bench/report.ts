/**
 * Text and JSON renderings of a bench Summary.
 *
 * The text follows the layout etcd 3.4's benchmark tool prints (etcd tools/benchmark → pkg/report: report.go,
 * timeseries.go) so scripts that parse etcd's output parse ours: "Summary:" with Total/Slowest/Fastest/Average/
 * Stddev in seconds and Requests/sec, "Response time histogram:" (11 bound rows = 10 buckets, bars of '∎'),
 * "Latency distribution:" (10 … 99.9 % "in X secs."), then "Error distribution:" when requests failed and the
 * per-second CSV with --sample. Numbers use 4 decimals, or Go's shortest %g form with --precise.
 */
import { barLengths, type SecondPoint, type Summary } from './stats';
import { goDuration } from '../go-duration';

export { goDuration };

const BAR = '∎';

/** Go's `%g` for a float64 (shortest representation; exponent form below 1e-4 or from 1e21), e.g. 1.23e-05. */
export function goG(x: number): string {
  if (x === 0) return '0';
  if (!Number.isFinite(x)) return x > 0 ? '+Inf' : Number.isNaN(x) ? 'NaN' : '-Inf';
  const exp = Math.floor(Math.log10(Math.abs(x)));
  if (exp < -4 || exp >= 21) {
    const [m, e] = x.toExponential().split('e');
    const en = Number(e);
    const sign = en < 0 ? '-' : '+';
    const abs = Math.abs(en);
    return `${m}e${sign}${abs < 10 ? '0' : ''}${abs}`;
  }
  return String(x);
}


/** Formats a float as etcd does: `%4.4f` by default, `%g` with --precise. */
export function fmtNum(x: number, precise: boolean): string {
  return precise ? goG(x) : x.toFixed(4);
}

/**
 * The etcd-shaped text report of `s` (latencies in seconds). Empty summary sections are left out as in etcd:
 * with no successful request only the error distribution is printed. Ends with a newline.
 */
export function formatText(s: Summary, opts: { precise?: boolean; samples?: SecondPoint[] } = {}): string {
  const precise = !!opts.precise;
  const sec = (x: number): string => `${fmtNum(x, precise)} secs`;
  let out = '';
  if (s.count > 0) {
    out += '\nSummary:\n';
    out += `  Total:\t${sec(s.totalSec)}.\n`;
    out += `  Slowest:\t${sec(s.slowestSec)}.\n`;
    out += `  Fastest:\t${sec(s.fastestSec)}.\n`;
    out += `  Average:\t${sec(s.averageSec)}.\n`;
    out += `  Stddev:\t${sec(s.stddevSec)}.\n`;
    out += `  Requests/sec:\t${fmtNum(s.rps, precise)}\n`;
    out += '\nResponse time histogram:\n';
    const bars = barLengths(s.histogram);
    s.histogram.forEach((r, i) => {
      out += `  ${fmtNum(r.bound, precise)} [${r.count}]\t|${BAR.repeat(bars[i])}\n`;
    });
    out += '\nLatency distribution:\n';
    for (const [p, v] of s.percentiles) if (v > 0) out += `  ${p}% in ${sec(v)}.\n`;
    if (opts.samples) out += formatSamples(opts.samples) + '\n';
  }
  const errs = Object.entries(s.errorDist);
  if (errs.length > 0) {
    out += '\nError distribution:\n';
    for (const [msg, n] of errs) out += `  [${n}]\t${msg}\n`;
  }
  return out;
}

/** etcd's `--sample` block: a header line and a CSV of per-second min/avg/max latency and request count. */
export function formatSamples(points: SecondPoint[]): string {
  let out = '\nSample in one second (unix latency throughput):\n';
  out += 'UNIX-SECOND,MIN-LATENCY-MS,AVG-LATENCY-MS,MAX-LATENCY-MS,AVG-THROUGHPUT\n';
  for (const p of points) {
    out += `${p.unixSecond},${goDuration(p.minNs)},${goDuration(p.avgNs)},${goDuration(p.maxNs)},${p.count}\n`;
  }
  return out;
}

/** The `--json` object of one summary. Latencies in ms; `histogram` bounds in ms; `samples` only with --sample. */
export interface JsonReport {
  /** Wall time of the run, seconds. */
  total: number;
  /** Successful requests. */
  count: number;
  /** Failed requests. */
  errors: number;
  errorDist: Record<string, number>;
  /** Successful requests per second. */
  rps: number;
  latencyMs: { slowest: number; fastest: number; average: number; stddev: number };
  /** Keyed by percent as a string: "10", "25", …, "99.9" → ms. */
  percentilesMs: Record<string, number>;
  histogram: Array<{ boundMs: number; count: number }>;
  samples?: Array<{ unixSecond: number; minMs: number; avgMs: number; maxMs: number; count: number }>;
}

/** Converts a Summary (seconds) to the `--json` shape (ms). */
export function toJson(s: Summary, samples?: SecondPoint[]): JsonReport {
  const ms = (x: number): number => x * 1000;
  const j: JsonReport = {
    total: s.totalSec,
    count: s.count,
    errors: s.errors,
    errorDist: s.errorDist,
    rps: s.rps,
    latencyMs: { slowest: ms(s.slowestSec), fastest: ms(s.fastestSec), average: ms(s.averageSec), stddev: ms(s.stddevSec) },
    percentilesMs: Object.fromEntries(s.percentiles.map(([p, v]) => [String(p), ms(v)])),
    histogram: s.histogram.map((r) => ({ boundMs: ms(r.bound), count: r.count })),
  };
  if (samples) {
    j.samples = samples.map((p) => ({ unixSecond: p.unixSecond, minMs: p.minNs / 1e6, avgMs: p.avgNs / 1e6, maxMs: p.maxNs / 1e6, count: p.count }));
  }
  return j;
}
