/**
 * Shared helpers for transport tests: a capturing logger, fresh metric objects, message builders, polling.
 */
import { Registry } from 'prom-client';
import { createEtcdMetrics } from '../../src/metrics/registry';
import type { EtcdMetrics } from '../../src/metrics/registry';
import { EntryType, MessageType, makeMessage } from '../../src/raft';
import type { Message } from '../../src/raft';
import type { TransportLogger } from '../../src/transport';

/** One captured log line. */
export interface LogLine {
  level: string;
  msg: string;
  fields: Record<string, unknown>;
}

/** A logger that records every line (and prints warn/error when TRANSPORT_TEST_LOG is set). */
export function captureLogger(name: string): TransportLogger & { lines: LogLine[]; has(substr: string): boolean } {
  const lines: LogLine[] = [];
  const rec = (level: string) => (fields: Record<string, unknown>, msg: string): void => {
    lines.push({ level, msg, fields });
    if (process.env.TRANSPORT_TEST_LOG) console.error(`[${name}] ${level} ${msg} ${JSON.stringify(fields)}`);
  };
  return {
    lines,
    debug: rec('debug'),
    info: rec('info'),
    warn: rec('warn'),
    error: rec('error'),
    has: (s: string) => lines.some((l) => l.msg.includes(s) || String(l.fields.reason ?? '').includes(s)),
  };
}

/** Fresh etcd metric objects on a private registry (no default Node metrics, no timers). */
export function freshMetrics(): EtcdMetrics {
  return createEtcdMetrics(new Registry());
}

/** Sum of a labeled counter/histogram-count series matching `labels` (prom-client get()). */
export async function metricValue(
  metric: { get(): Promise<{ values: { value: number; labels: Record<string, unknown>; metricName?: string }[] }> },
  labels: Record<string, string>,
  suffix = '',
): Promise<number> {
  const v = await metric.get();
  let sum = 0;
  for (const s of v.values) {
    if (suffix && !(s.metricName ?? '').endsWith(suffix)) continue;
    if (Object.entries(labels).every(([k, val]) => s.labels[k] === val)) sum += s.value;
  }
  return sum;
}

/** A MsgApp from `from` to `to` carrying `n` entries starting at `index`, each with `dataBytes` bytes of data. */
export function msgApp(from: number, to: number, index: number, n: number, dataBytes: number): Message {
  const entries = [];
  for (let i = 0; i < n; i++) {
    const data = new Uint8Array(dataBytes);
    for (let j = 0; j < dataBytes; j++) data[j] = (index + i + j) & 0xff;
    entries.push({ term: 3, index: index + i, type: EntryType.Normal, data });
  }
  return makeMessage({ type: MessageType.MsgApp, from, to, term: 3, logTerm: 3, index: index - 1, commit: index - 1, entries });
}

/** A MsgHeartbeat from `from` to `to`; `seq` goes into `commit` so order can be checked. */
export function heartbeat(from: number, to: number, seq: number): Message {
  return makeMessage({ type: MessageType.MsgHeartbeat, from, to, term: 3, commit: seq });
}

/** Poll `cond` every 10 ms until true; rejects after `timeoutMs` with `what` in the message. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Resolve after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** `http://127.0.0.1:<port>` */
export function url(port: number): string {
  return `http://127.0.0.1:${port}`;
}
